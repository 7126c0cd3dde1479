"""Distributed optimization benchmarks (neurenix.distributed, part 1).

Run from the repository root::

    python benchmarks/compare_distributed.py            # launches mpiexec -n K for K = 1, 2, 4
    python benchmarks/compare_distributed.py --ks 2 4   # choose K
    mpiexec -n 4 python -m mpi4py benchmarks/compare_distributed.py --worker   # one K, JSON on stdout

What it measures, per K (ranks on ONE machine, talking through shared memory):

1. bytes per step of every compressor (CommStats: ring-model bytes sent per rank, payload);
2. Allreduce latency and bandwidth, buffer (``Allreduce``, ``IN_PLACE``) vs pickle (``allreduce``);
3. DistributedOptimizer step time vs the same compute + one bare ``Allreduce`` of the same bytes
   + the wrapped optimizer's step (the overhead of bucketing, control all-reduce, unpacking);
4. steps to a loss target and final loss, with and without compression (least squares, SGD);
5. ZeRO (ShardedOptimizer) Adam state bytes per rank vs the unsharded total;
6. an alpha-beta fit of the measured Allreduce times, and a MODEL (not a measurement) of the
   communication time per step of each compressor on two example networks.

Shared memory moves bytes at memory speed, so compression cannot show a speed-up here: the
model in (6) is where compression pays, and it is labelled as such.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- worker side
def _model(seed=0, dtype=np.float32):
    from neurenix.optim import Parameter
    g = np.random.default_rng(seed)
    shapes = [(512, 256), (256,), (256, 64), (64,), (64, 10), (10,)]
    return [Parameter(g.standard_normal(s).astype(dtype) * 0.05) for s in shapes]


def _compressors():
    from neurenix.distributed import FP16, BF16, TopK, RandomK, QSGD, SignSGD, PowerSGD, ErrorFeedback
    return [
        ("none", lambda: None),
        ("FP16", FP16),
        ("BF16", BF16),
        ("EF-TopK(1%)", lambda: ErrorFeedback(TopK(0.01))),
        ("RandomK(1%)", lambda: RandomK(0.01, seed=0)),
        ("QSGD(127)", lambda: QSGD(127)),
        ("EF-sign", lambda: ErrorFeedback(SignSGD())),
        ("PowerSGD(r=4)", lambda: PowerSGD(rank=4, start_iter=0)),
    ]


def _median_time(fn, reps, comm, inner=1):
    times = []
    for _ in range(reps):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    arr = np.array(times)
    from mpi4py import MPI
    worst = np.empty_like(arr)
    comm.Allreduce(arr, worst, op=MPI.MAX)     # a collective is as slow as its slowest rank
    return float(np.median(worst))


def bench_bytes(comm):
    from neurenix.optim import SGD
    from neurenix.distributed import DistributedOptimizer
    out = {}
    n = sum(p.size for p in _model())
    for name, make in _compressors():
        ps = _model()
        opt = DistributedOptimizer(SGD(ps, lr=0.01), comm=comm, compression=make())
        g = np.random.default_rng(comm.Get_rank())
        for _ in range(3):
            for p in ps:
                p.grad = g.standard_normal(p.shape).astype(p.dtype)
            opt.step()
        st = opt.stats.last_step
        out[name] = {"sent": st["sent"], "received": st["received"], "payload": st["payload"],
                     "raw_bytes": n * 4}
    return out


def bench_latency(comm, reps):
    from mpi4py import MPI
    rows = []
    for nbytes in [8, 64, 512, 4096, 32768, 262144, 2097152, 8388608]:
        n = nbytes // 8
        buf = np.ones(n)
        out = np.empty_like(buf)

        def buffer():
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

        def pickled():
            comm.allreduce(buf, op=MPI.SUM)

        r = reps if nbytes <= 262144 else max(3, reps // 5)
        inner = 20 if nbytes <= 32768 else 1
        tb = _median_time(buffer, r, comm, inner)
        tp = _median_time(pickled, r, comm, inner)
        rows.append({"bytes": nbytes, "buffer_s": tb, "pickle_s": tp})
        del out
    return rows


def bench_overhead(comm, reps):
    """DistributedOptimizer step vs compute + one Allreduce of the same bytes + the inner step."""
    from mpi4py import MPI
    from neurenix.optim import Adam
    from neurenix.distributed import DistributedOptimizer
    g = np.random.default_rng(comm.Get_rank())
    Xb = g.standard_normal((256, 512)).astype(np.float32)

    def compute(ps):       # a forward/backward-like workload that fills the gradients
        h = Xb @ ps[0].data
        ps[0].grad = (Xb.T @ h) * 1e-4
        for p in ps[1:]:
            p.grad = np.full(p.shape, 1e-3, dtype=p.dtype)

    ps1 = _model()
    dopt = DistributedOptimizer(Adam(ps1, lr=1e-4), comm=comm)
    ps2 = _model()
    inner = Adam(ps2, lr=1e-4)
    flat = np.empty(sum(p.size for p in ps2), dtype=np.float32)

    def wrapped():
        compute(ps1)
        dopt.step()

    def baseline():
        compute(ps2)
        pos = 0
        for p in ps2:
            flat[pos:pos + p.size] = p.grad.reshape(-1)
            pos += p.size
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        pos = 0
        for p in ps2:
            p.grad = flat[pos:pos + p.size].reshape(p.shape) / comm.Get_size()
            pos += p.size
        inner.step()

    def compute_only():
        compute(ps2)
        inner.step()

    for f in (wrapped, baseline):
        f()
    # interleave the two to share the machine's noise
    tw, tb = [], []
    for _ in range(3):
        tw.append(_median_time(wrapped, reps, comm))
        tb.append(_median_time(baseline, reps, comm))
    tc = _median_time(compute_only, reps, comm)
    return {"dist_opt_s": min(tw), "baseline_s": min(tb), "compute_and_step_s": tc,
            "overhead_pct": 100 * (min(tw) / min(tb) - 1)}


CONVERGENCE = [
    ("none", lambda: None),
    ("FP16", "FP16()"), ("BF16", "BF16()"),
    ("EF-TopK(1%)", "ErrorFeedback(TopK(0.01))"), ("EF-TopK(10%)", "ErrorFeedback(TopK(0.1))"),
    ("RandomK(10%)", "RandomK(0.1, seed=0)"),
    ("EF-RandomK(10%)", "ErrorFeedback(RandomK(0.1, seed=0, unbiased=False))"),
    ("QSGD(127)", "QSGD(127)"), ("EF-sign", "ErrorFeedback(SignSGD())"),
    ("EF-sign(bucket)", "ErrorFeedback(SignSGD(per_tensor=False))"),
    ("PowerSGD(r=4)", "PowerSGD(rank=4, start_iter=10)"),
]


def bench_convergence(comm, steps=1000, max_steps=4000, lr=0.02):
    """Linear regression (weights and a bias, two tensors) split over ranks, minibatch SGD with
    the same lr for every compressor.  The uncompressed run's loss after ``steps`` steps sets the
    target, 1.10 x that loss.  Every run goes on to ``max_steps`` and reports its loss after
    ``steps`` and ``max_steps`` steps and the step from which its loss stays at or below the
    target to the end (``None`` if it is above at ``max_steps``): error feedback with the sign
    compressor oscillates before it settles, so the first crossing would flatter it."""
    from neurenix.optim import Parameter, SGD
    from neurenix.distributed import DistributedOptimizer
    K, r = comm.Get_size(), comm.Get_rank()
    g = np.random.default_rng(123)
    N, D, H = 512, 64, 16
    X = g.standard_normal((N, D))
    Wt = g.standard_normal((D, H))
    bt = 3 * g.standard_normal(H)
    Y = X @ Wt + bt + 0.1 * g.standard_normal((N, H))
    rows = np.arange(N)[r::K]

    def loss(W, b):
        return 0.5 * np.mean(np.sum((X @ W + b - Y) ** 2, axis=1))

    def run(make):
        W, b = Parameter(np.zeros((D, H))), Parameter(np.zeros(H))
        opt = DistributedOptimizer(SGD([W, b], lr=lr), comm=comm, compression=make())
        gen = np.random.default_rng(1000 + r)
        trace = np.empty(max_steps)
        for t in range(max_steps):
            mb = gen.choice(rows, min(64, len(rows)), replace=False)
            R = X[mb] @ W.data + b.data - Y[mb]
            W.grad = X[mb].T @ R / len(mb)
            b.grad = R.mean(axis=0)
            opt.step()
            trace[t] = loss(W.data, b.data)
        return trace

    import neurenix.distributed as nd
    out = {"steps": steps, "max_steps": max_steps}
    target = None
    for name, expr in CONVERGENCE:
        make = expr if callable(expr) else (lambda e=expr: eval(e, vars(nd)))
        trace = run(make)
        if target is None:
            base_loss = trace[steps - 1]
            target = 1.10 * base_loss
            out.update(target=target, uncompressed_final=base_loss)
        above = np.flatnonzero(trace > target)
        settled = None if trace[-1] > target else (int(above[-1]) + 2 if above.size else 1)
        out[name] = {"final_loss": float(trace[steps - 1]), "loss_at_max": float(trace[-1]),
                     "steps_to_target": settled,
                     "final_vs_uncompressed": float(trace[steps - 1] / base_loss)}
    return out


def bench_zero(comm):
    from neurenix.optim import Adam
    from neurenix.distributed import ShardedOptimizer
    ps = _model()
    opt = ShardedOptimizer(ps, Adam, comm=comm, lr=1e-3)
    for p in ps:
        p.grad = np.ones(p.shape, dtype=p.dtype)
    opt.step()
    mine = np.array([opt.state_nbytes()], dtype=np.int64)
    per_rank = np.empty(comm.Get_size(), dtype=np.int64)
    comm.Allgather(mine, per_rank)
    total = 2 * sum(p.data.nbytes for p in ps)       # exp_avg + exp_avg_sq
    return {"per_rank": per_rank.tolist(), "unsharded": total}


def worker(args):
    from neurenix.distributed import get_comm
    comm = get_comm()
    res = {"K": comm.Get_size()}
    res["bytes"] = bench_bytes(comm)
    res["latency"] = bench_latency(comm, args.reps)
    res["overhead"] = bench_overhead(comm, args.reps)
    res["convergence"] = bench_convergence(comm)
    res["zero"] = bench_zero(comm)
    if comm.Get_rank() == 0:
        print("RESULT " + json.dumps(res), flush=True)


# ---------------------------------------------------------------- driver side
def _alpha_beta(rows):
    """alpha: the fastest all-reduce of at most 512 bytes; beta: the slope between the two
    largest messages (a least-squares line is dominated by the large sizes' noise)."""
    rows = sorted(rows, key=lambda r: r["bytes"])
    alpha = min(r["buffer_s"] for r in rows if r["bytes"] <= 512)
    a, b = rows[-2], rows[-1]
    beta = (b["buffer_s"] - a["buffer_s"]) / (b["bytes"] - a["bytes"])
    if beta <= 0:
        beta = b["buffer_s"] / b["bytes"]
    return alpha, beta


NETWORKS = {   # MODEL parameters, typical published figures, not measured here
    "10GbE (alpha=20us, 1.25 GB/s)": (20e-6, 1 / 1.25e9),
    "HDR InfiniBand (alpha=2us, 25 GB/s)": (2e-6, 1 / 25e9),
}


def _model_time(name, st, K, alpha, beta):
    """Alpha-beta time of one step's exchange: ring costs, 2(K-1) messages for an all-reduce,
    K-1 for an all-gather (the control all-reduce counted as latency only)."""
    if name in ("EF-TopK(1%)", "QSGD(127)", "EF-sign"):          # one all-gather
        msgs = K - 1
    elif name.startswith("PowerSGD"):                              # two all-reduces
        msgs = 4 * (K - 1)
    else:                                                          # one all-reduce (MPI or ring)
        msgs = 2 * (K - 1)
    msgs += 2 * (K - 1)                                            # the control all-reduce
    return msgs * alpha + st["sent"] * beta


def report(results):
    lines = []
    p = lines.append
    for res in results:
        K = res["K"]
        p(f"\n=== K = {K} ranks (one machine, shared memory) ===")
        p("bytes per step per rank (ring model, CommStats), model of 2 layers: "
          f"{res['bytes']['none']['raw_bytes']} raw gradient bytes")
        p(f"  {'compressor':<16}{'sent':>12}{'received':>12}{'payload':>12}{'ratio':>8}")
        base = max(res["bytes"]["none"]["sent"], 1)
        for name, st in res["bytes"].items():
            p(f"  {name:<16}{st['sent']:>12}{st['received']:>12}{st['payload']:>12}"
              f"{(st['sent'] / base if K > 1 else 0):>8.3f}")
        p("Allreduce time (median of the slowest rank), buffer vs pickle:")
        p(f"  {'bytes':>9}{'buffer us':>12}{'pickle us':>12}{'pickle/buffer':>15}{'busbw GB/s':>12}")
        for r in res["latency"]:
            busbw = (2 * (K - 1) / K * r["bytes"] / r["buffer_s"] / 1e9) if K > 1 else float("nan")
            p(f"  {r['bytes']:>9}{r['buffer_s'] * 1e6:>12.1f}{r['pickle_s'] * 1e6:>12.1f}"
              f"{r['pickle_s'] / r['buffer_s']:>15.2f}{busbw:>12.2f}")
        o = res["overhead"]
        p(f"step: DistributedOptimizer {o['dist_opt_s'] * 1e3:.3f} ms vs compute + one Allreduce + step "
          f"{o['baseline_s'] * 1e3:.3f} ms -> overhead {o['overhead_pct']:+.1f}% "
          f"(compute + step alone {o['compute_and_step_s'] * 1e3:.3f} ms)")
        c = res["convergence"]
        p(f"convergence (linear regression 512x64x16 + bias, SGD lr 0.02, batch 64/rank): uncompressed loss "
          f"after {c['steps']} steps {c['uncompressed_final']:.5f}, target 1.10x = {c['target']:.5f}")
        for name, v in c.items():
            if isinstance(v, dict):
                p(f"  {name:<16} loss after {c['steps']} steps {v['final_loss']:.5f} "
                  f"({v['final_vs_uncompressed']:.3f}x), after {c['max_steps']} {v['loss_at_max']:.5f} "
                  f"({v['loss_at_max'] / c['uncompressed_final']:.3f}x); below the target from step "
                  f"{v['steps_to_target']} on")
        z = res["zero"]
        p(f"ZeRO Adam state bytes per rank {z['per_rank']} vs unsharded {z['unsharded']} "
          f"(max/ideal {max(z['per_rank']) / (z['unsharded'] / K):.3f})")
        if K > 1:
            alpha, beta = _alpha_beta(res["latency"])
            p(f"alpha-beta of the measured buffer Allreduce on this machine: alpha = {alpha * 1e6:.1f} us, "
              f"1/beta = {1 / beta / 1e9:.2f} GB/s (algorithm bandwidth, 2-8 MB slope)")
            p("MODEL (not measured): communication time per step on a real network, "
              "T = messages * alpha + bytes_sent * beta")
            for net, (a, b) in NETWORKS.items():
                row = []
                t0 = _model_time("none", res["bytes"]["none"], K, a, b)
                for name, st in res["bytes"].items():
                    t = _model_time(name, st, K, a, b)
                    row.append(f"{name} {t * 1e3:.3f} ms ({t0 / t:.1f}x)")
                p(f"  {net}: " + "; ".join(row))
    return "\n".join(lines)


def find_mpiexec():
    cand = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(cand):
        return cand
    import shutil
    return shutil.which("mpiexec")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help="run the measurements (under mpiexec)")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--from-json", help="print the report of results saved by --json, measure nothing")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.from_json:
        print(report(json.loads(pathlib.Path(args.from_json).read_text())))
        return
    mpiexec = find_mpiexec()
    if mpiexec is None:
        sys.exit("mpiexec not found (pip install mpich)")
    results = []
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for K in args.ks:
        cmd = [mpiexec, "-n", str(K), sys.executable, "-m", "mpi4py", __file__, "--worker",
               "--reps", str(args.reps)]
        t0 = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if res.returncode != 0:
            sys.exit(f"K={K} failed:\n{res.stdout}\n{res.stderr}")
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")][0]
        results.append(json.loads(line[7:]))
        print(f"[K={K} done in {time.time() - t0:.1f} s]", file=sys.stderr)
    print(report(results))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
