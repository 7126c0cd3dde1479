"""Parameter server (sync vs async) throughput, and FedAvg rounds to a target loss.

Run: ``OMP_NUM_THREADS=1 python benchmarks/compare_distributed_ps.py`` (it starts
itself under ``mpiexec -n 4 python -m mpi4py``: rank 0 is the server, ranks 1-3
the workers/clients).  All rows of one run come from the same processes.

1. Parameter server: least-squares regression (n parameters), minibatch
   gradients; the server stops the workers after ``3 * STEPS`` applied
   gradients (sync: ``STEPS`` updates of 3 averaged gradients; async:
   ``3 * STEPS`` updates); a *straggler* row makes
   worker 3 sleep ``delay`` seconds per gradient (heterogeneous workers, the
   case async is for).  Reported: optimizer updates per second and gradients
   per second at the server, dropped (too stale) gradients, mean staleness of
   the applied gradients, and the training loss at the start (``loss0``) and
   after the run.
2. FedAvg vs centralized SGD: L2-regularized logistic regression, the data
   split non-IID over 3 clients (sorted by label); target = the optimum
   (``neurenix.optimize.minimize``, L-BFGS on the pooled data) + 1%.  Reported:
   communication rounds to the target for FedSGD (one full-batch gradient step
   per round: ``local_epochs=1``, one batch), FedAvg with E = 1 and 5 local
   epochs of minibatch SGD (B = 10), and the number of epochs of centralized
   minibatch SGD (same lr and B) on the pooled data — the yardstick of
   McMahan et al. (2017), Table 2.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

import _checkout  # noqa: F401  (an uninstalled checkout)

N_WORKERS = 3
STEPS = 60


def _launch():
    here = os.path.abspath(__file__)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, NEURENIX_BENCH_CHILD="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    res = subprocess.run([mpiexec, "-n", str(N_WORKERS + 1), sys.executable, "-m", "mpi4py", here],
                         env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(res.returncode)
    sys.stdout.write(res.stdout)


# ------------------------------------------------------------------ parameter server
def ps_rows(comm):
    from neurenix.distributed import ParameterServer
    from neurenix.optim import Parameter, SGD
    r = comm.Get_rank()
    rows = []
    for n in (1_000, 100_000):
        rng = np.random.default_rng(0)
        m = 256
        A = rng.normal(size=(m, n)) / np.sqrt(n)
        y = A @ rng.normal(size=n) + 0.1 * rng.normal(size=m)
        loss0 = 0.5 * np.mean(y ** 2)         # at the starting point w = 0
        for straggler in (0.0, 0.004):
            for mode, kw in (("sync", {}), ("async", dict(max_staleness=4)),
                             ("async", dict(max_staleness=None))):
                w = Parameter(np.zeros(n))

                def compute(params, step):
                    i = (np.arange(16) + 16 * (3 * step + r)) % m
                    params[0].grad = A[i].T @ (A[i] @ params[0].data - y[i]) / 16
                    if straggler and r == N_WORKERS:
                        time.sleep(straggler)
                comm.Barrier()
                # the same budget of applied gradients in every row: sync makes one update
                # from N_WORKERS gradients, async one per gradient; workers are not
                # limited (the server stops them), so fast workers can cover a straggler
                budget = STEPS if mode == "sync" else N_WORKERS * STEPS
                ps = ParameterServer([w], SGD([w], lr=0.5), mode=mode, **kw).run(
                    compute, steps=10 * STEPS, max_updates=budget)
                st = ps.stats
                if r == 0:
                    loss = 0.5 * np.mean((A @ w.data - y) ** 2)
                    hist = np.asarray(st["staleness"], dtype=float)
                    mean_s = float(hist @ np.arange(hist.size) / max(hist.sum(), 1))
                    rows.append(dict(n=n, straggler_s=straggler, mode=mode,
                                     max_staleness=kw.get("max_staleness"),
                                     updates_per_s=st["updates"] / st["seconds"],
                                     grads_per_s=st["pushes"] / st["seconds"],
                                     updates=st["updates"], dropped=st["dropped"],
                                     mean_staleness=mean_s, loss=loss, loss0=loss0))
    return rows


# ---------------------------------------------------------------------------- FedAvg
def fed_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 10))
    y = (X @ rng.normal(size=10) + 0.5 * rng.normal(size=600) > 0).astype(float)
    order = np.argsort(y, kind="stable")      # non-IID: clients see mostly one label
    return X[order], y[order]


LAM = 1e-2


def logloss(w, X, y, n_total):
    z = X @ w
    f = np.sum(np.logaddexp(0, z) - y * z) / n_total + 0.5 * LAM * (w @ w) * len(y) / n_total
    s = 0.5 * (1 + np.tanh(0.5 * z))
    return f, (X.T @ (s - y) + LAM * w * len(y)) / n_total


def fed_rows(comm):
    from neurenix import distributed as D
    from neurenix.optim import Parameter, SGD
    from neurenix.optimize import minimize
    r = comm.Get_rank()
    X, y = fed_data()
    best = minimize(lambda w: logloss(w, X, y, len(y)), np.zeros(10), jac=True,
                    method="L-BFGS", tol=1e-12).fun
    target = best * 1.01
    parts = np.array_split(np.arange(len(y)), N_WORKERS)
    mine = parts[r - 1] if r else np.arange(0)
    Xc, yc = X[mine], y[mine]
    rows = []
    for label, epochs, B, lr in (("FedSGD (E=1, full batch)", 1, len(yc) or 1, 0.5),
                                 ("FedAvg (E=1, B=10)", 1, 10, 0.1),
                                 ("FedAvg (E=5, B=10)", 5, 10, 0.1)):
        w = Parameter(np.zeros(10))

        def step(params, epoch, b):
            i = slice(B * b, B * (b + 1))
            f, g = logloss(params[0].data, Xc[i], yc[i], len(yc[i]))
            params[0].grad = g
            return f
        fed = D.FedAvg([w], SGD([w], lr=lr), num_samples=len(yc), local_epochs=epochs)
        t0 = time.perf_counter()
        hist = fed.fit(step, rounds=300, batches_per_epoch=max(1, len(yc) // B),
                       evaluate=lambda p: logloss(p[0].data, X, y, len(y))[0], target=target)
        if r == 0:
            rows.append(dict(method=label, rounds=len(hist), reached=hist[-1]["eval"] <= target,
                             final=hist[-1]["eval"], seconds=time.perf_counter() - t0))
    if r == 0:   # centralized minibatch SGD on the pooled (shuffled) data, same B and lr
        rng = np.random.default_rng(2)
        w = np.zeros(10)
        for epoch in range(1, 301):
            perm = rng.permutation(len(y))
            for b in range(len(y) // 10):
                i = perm[10 * b:10 * (b + 1)]
                w -= 0.1 * logloss(w, X[i], y[i], 10)[1]
            if logloss(w, X, y, len(y))[0] <= target:
                break
        rows.append(dict(method="centralized SGD (B=10), epochs", rounds=epoch,
                         reached=logloss(w, X, y, len(y))[0] <= target,
                         final=logloss(w, X, y, len(y))[0], seconds=float("nan")))
    return rows, best, target


def child():
    from neurenix.distributed import get_comm
    comm = get_comm()
    ps = ps_rows(comm)
    fed, best, target = fed_rows(comm)
    if comm.Get_rank() == 0:
        print("Parameter server, 3 workers, %d applied gradients, SGD lr=0.5, minibatch 16" % (3 * STEPS))
        print(f"{'n':>7} {'straggler':>9} {'mode':>5} {'max_s':>5} {'upd/s':>8} {'grad/s':>8} "
              f"{'updates':>7} {'dropped':>7} {'mean_s':>6} {'loss0':>9} {'loss':>9}")
        for row in ps:
            print(f"{row['n']:>7} {row['straggler_s']:>9.3f} {row['mode']:>5} "
                  f"{str(row['max_staleness']):>5} {row['updates_per_s']:>8.0f} "
                  f"{row['grads_per_s']:>8.0f} {row['updates']:>7} {row['dropped']:>7} "
                  f"{row['mean_staleness']:>6.2f} {row['loss0']:>9.4f} {row['loss']:>9.4f}")
        print()
        print(f"FedAvg on 3 non-IID clients, logistic regression; optimum {best:.5f}, "
              f"target {target:.5f}")
        for row in fed:
            print(f"  {row['method']:<34} rounds {row['rounds']:>4}  reached {row['reached']!s:>5} "
                  f" loss {row['final']:.5f}  {row['seconds']:.2f} s")
        print("JSON " + json.dumps(dict(ps=ps, fed=fed), default=lambda o: o.item()))


if __name__ == "__main__":
    if os.environ.get("NEURENIX_BENCH_CHILD") == "1":
        child()
    else:
        _launch()
