"""neurenix.distributed.parameter_server: sync/async parameter server.

References: PyTorch's SGD/Adam (their NumPy transcriptions in ``_reference``) applied to
the same gradient sequence (sync
mode, and async mode with one worker, where the order is deterministic), and
for async mode with several workers a replay of the server's log: every
applied gradient must be the worker's gradient at the parameters of version
``k - staleness``, applied with ``lr / (1 + staleness)``.
"""
import time

import numpy as np
import pytest

from neurenix.optim import Parameter, SGD
from neurenix.distributed import ParameterServer, SelfComm, staleness_inverse
from . import _problems as P
from ._mpi import requires_mpi, run_mpi, TIMEOUT_RC
from ._reference import RefSGD, RefAdam

COMMON = """
import json, sys
import numpy as np
from neurenix import distributed
from neurenix.distributed import ParameterServer, DistributedError
from neurenix.optim import Parameter, SGD, Adam
from tests.distributed import _problems as P
comm = distributed.get_comm()
r, K = comm.Get_rank(), comm.Get_size()
rng = np.random.default_rng(3)
A = rng.normal(size=(96, 4)); y = A @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.05 * rng.normal(size=96)

def batch(step, rank):
    return (np.arange(8) + 8 * (3 * step + rank)) % 96

def grad_at(w, step, rank):
    i = batch(step, rank)
    return A[i].T @ (A[i] @ w - y[i]) / 8
"""


def _data():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(96, 4))
    y = A @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.05 * rng.normal(size=96)
    return A, y


def _grad_at(w, step, rank):
    A, y = _data()
    i = (np.arange(8) + 8 * (3 * step + rank)) % 96
    return A[i].T @ (A[i] @ w - y[i]) / 8


SCRIPT_MAIN = COMMON + """
out = {}
# sync, SGD with momentum, 3 workers
w = Parameter(np.zeros(4))
def compute(params, step):
    params[0].grad = grad_at(params[0].data, step, r)
ps = ParameterServer([w], SGD([w], lr=0.05, momentum=0.9), mode="sync").run(compute, steps=12)
out["sync"] = dict(w=w.data.tolist(), stats=ps.stats)
# async with bounded staleness: log what the server applies and what workers computed
w = Parameter(np.zeros(4))
opt = SGD([w], lr=0.05)
log = []
if r == 0:
    inner = opt.step
    def logged_step(closure=None):
        log.append((w.data.tolist(), w.grad.tolist(), opt.param_groups[0]["lr"]))
        return inner(closure)
    opt.step = logged_step
wlog = []
def compute_async(params, step):
    g = grad_at(params[0].data, step, r)
    wlog.append((params[0].data.tolist(), g.tolist()))
    params[0].grad = g
ps = ParameterServer([w], opt, mode="async", max_staleness=2).run(compute_async, steps=15)
wlogs = comm.gather(wlog, root=0)
out["async"] = dict(w=w.data.tolist(), stats=ps.stats, server_log=log,
                    worker_logs=(wlogs[1:] if r == 0 else None), lr_after=opt.param_groups[0]["lr"])
# sync with unequal numbers of steps: a worker that is done leaves the rounds
w = Parameter(np.zeros(4))
ps = ParameterServer([w], SGD([w], lr=0.05), mode="sync").run(compute, steps=3 + r)
out["sync_unequal"] = dict(w=w.data.tolist(), stats=ps.stats)
# max_updates stops the workers early
w = Parameter(np.zeros(4))
ps = ParameterServer([w], SGD([w], lr=0.05), mode="async").run(compute, steps=50, max_updates=7)
out["max_updates"] = ps.stats
if r == 0:
    print("RESULT " + json.dumps(out), flush=True)
"""

SCRIPT_ONE_WORKER = COMMON + """
w = Parameter(np.zeros(4))
def compute(params, step):
    params[0].grad = grad_at(params[0].data, step, r)
ps = ParameterServer([w], Adam([w], lr=0.1), mode="async").run(compute, steps=10)
if r == 0:
    print("RESULT " + json.dumps(dict(w=w.data.tolist(), stats=ps.stats)), flush=True)
"""


@pytest.fixture(scope="module")
def main_results():
    rc, out, err = run_mpi(SCRIPT_MAIN, 4, timeout=60)
    assert rc == 0, err[-3000:]
    return P.result_of(out)


@requires_mpi
def test_sync_equals_minibatch_sgd(main_results):
    res = main_results["sync"]
    opt, w = RefSGD(lr=0.05, momentum=0.9), np.zeros(4)
    for step in range(12):
        w = opt.step(w, np.mean([_grad_at(w, step, r) for r in (1, 2, 3)], axis=0))
    np.testing.assert_allclose(res["w"], w, rtol=1e-12, atol=1e-14)
    assert res["stats"]["updates"] == 12 and res["stats"]["pushes"] == 36
    assert res["stats"]["staleness"] == [12] and res["stats"]["dropped"] == 0


@requires_mpi
def test_sync_rounds_shrink_when_workers_finish(main_results):
    res = main_results["sync_unequal"]
    opt, w = RefSGD(lr=0.05), np.zeros(4)
    for step in range(6):                      # workers 1, 2, 3 compute 4, 5, 6 gradients
        active = [r for r in (1, 2, 3) if step < 3 + r]
        w = opt.step(w, np.mean([_grad_at(w, step, r) for r in active], axis=0))
    np.testing.assert_allclose(res["w"], w, rtol=1e-12, atol=1e-14)
    assert res["stats"]["updates"] == 6 and res["stats"]["pushes"] == 15


@requires_mpi
def test_async_replay_staleness_and_lr(main_results):
    res = main_results["async"]
    st = res["stats"]
    assert st["pushes"] == 45 and st["updates"] + st["dropped"] == 45
    assert sum(st["staleness"]) == st["updates"] and len(st["staleness"]) <= 3
    assert res["lr_after"] == 0.05
    log = res["server_log"]
    assert len(log) == st["updates"]
    computed = {}
    for wl in res["worker_logs"]:
        for w_used, g in wl:
            computed[tuple(g)] = w_used
    hist = [0] * len(st["staleness"])
    w = np.zeros(4)
    versions = [w.copy()]
    for k, (w_before, g, lr) in enumerate(log):
        np.testing.assert_array_equal(w_before, w)       # the server's state, replayed
        s = int(round(0.05 / lr - 1))
        assert lr == pytest.approx(0.05 * staleness_inverse(s), rel=1e-15)
        hist[s] += 1
        # the gradient was computed by a worker at the parameters of version k - s
        np.testing.assert_array_equal(computed[tuple(g)], versions[k - s])
        w = w - lr * np.asarray(g)
        versions.append(w.copy())
    assert hist == st["staleness"]
    np.testing.assert_allclose(res["w"], w, rtol=1e-13, atol=1e-15)


@requires_mpi
def test_max_updates_stops_every_worker(main_results):
    st = main_results["max_updates"]
    assert st["updates"] == 7 and st["pushes"] >= 7


@requires_mpi
def test_async_one_worker_equals_adam():
    rc, out, err = run_mpi(SCRIPT_ONE_WORKER, 2, timeout=60)
    assert rc == 0, err[-3000:]
    res = P.result_of(out)
    opt, w = RefAdam(lr=0.1), np.zeros(4)
    for step in range(10):
        w = opt.step(w, _grad_at(w, step, 1))
    np.testing.assert_allclose(res["w"], w, rtol=1e-12, atol=1e-14)
    assert res["stats"]["staleness"] == [10]


def test_size1_is_plain_training():
    w = Parameter(np.zeros(4))

    def compute(params, step):
        params[0].grad = _grad_at(params[0].data, step, 0)
    ps = ParameterServer([w], SGD([w], lr=0.05, momentum=0.5), mode="async", max_staleness=0,
                         comm=SelfComm()).run(compute, steps=6)
    opt, ref = RefSGD(lr=0.05, momentum=0.5), np.zeros(4)
    for step in range(6):
        ref = opt.step(ref, _grad_at(ref, step, 0))
    np.testing.assert_allclose(w.data, ref, rtol=1e-13)
    assert ps.stats["updates"] == 6


def test_bad_arguments():
    w = Parameter(np.zeros(2))
    opt = SGD([w], lr=0.1)
    c = SelfComm()
    with pytest.raises(ValueError, match="mode"):
        ParameterServer([w], opt, mode="hogwild", comm=c)
    with pytest.raises(ValueError, match="max_staleness"):
        ParameterServer([w], opt, mode="sync", max_staleness=2, comm=c)
    with pytest.raises(ValueError, match="max_staleness"):
        ParameterServer([w], opt, mode="async", max_staleness=-1, comm=c)
    with pytest.raises(ValueError, match="staleness_lr"):
        ParameterServer([w], opt, mode="async", staleness_lr="sqrt", comm=c)
    with pytest.raises(TypeError, match="optimizer"):
        ParameterServer([w], "sgd", comm=c)
    with pytest.raises(ValueError, match="every parameter"):
        ParameterServer([w, Parameter(np.zeros(2))], opt, comm=c)
    with pytest.raises(TypeError, match="dtype"):
        v = Parameter(np.zeros(2, dtype=np.float32))
        ParameterServer([w, v], SGD([w, v]), comm=c)
    with pytest.raises(ValueError, match="timeout"):
        ParameterServer([w], opt, timeout=0, comm=c)
    ps = ParameterServer([w], opt, comm=c)
    with pytest.raises(ValueError, match="steps"):
        ps.run(lambda p, s: None, steps=-1)
    with pytest.raises(ValueError, match="gradient of params"):
        ps.run(lambda p, s: None, steps=1)


SCRIPT_FAIL = COMMON + """
msgs = []
def attempt(name, mode, fail_in):
    w = Parameter(np.zeros(4))
    opt = SGD([w], lr=0.05)
    if fail_in == "server" and r == 0:
        inner, n = opt.step, [0]
        def bad(closure=None):
            n[0] += 1
            if n[0] == 4:
                raise FloatingPointError("injected in the server's step")
            return inner(closure)
        opt.step = bad
    def compute(params, step):
        if fail_in == "worker" and r == 2 and step == 3:
            raise ValueError("injected in worker 2")
        params[0].grad = grad_at(params[0].data, step, r)
    P.attempt(name, lambda: ParameterServer([w], opt, mode=mode, timeout=30).run(compute, steps=10),
              r, msgs)
for mode in ("sync", "async"):
    for where in ("worker", "server"):
        attempt(f"{mode}-{where}", mode, where)
w = Parameter(np.zeros(4))
ParameterServer([w], SGD([w], lr=0.05)).run(lambda p, s: setattr(p[0], "grad", grad_at(p[0].data, s, r)), steps=3)
msgs.append(f"final rank {r}: {w.data.tolist()}")
P.print_gathered(comm, msgs)
"""


@requires_mpi
def test_failures_raise_on_every_rank_without_hanging():
    rc, out, err = run_mpi(SCRIPT_FAIL, 4, timeout=60)
    assert rc == 0, err[-3000:]
    lines = out.splitlines()
    for mode in ("sync", "async"):
        got = {ln.split(":")[0]: ln for ln in lines if ln.startswith(f"{mode}-")}
        assert got[f"{mode}-worker rank 2"].endswith("ValueError: injected in worker 2")
        assert "worker rank 2 failed: ValueError: injected in worker 2" in got[f"{mode}-worker rank 0"]
        assert "DistributedError" in got[f"{mode}-worker rank 1"]
        assert "DistributedError" in got[f"{mode}-worker rank 3"]
        assert got[f"{mode}-server rank 0"].endswith("FloatingPointError: injected in the server's step")
        for r in (1, 2, 3):
            assert "DistributedError [0] the parameter server aborted" in got[f"{mode}-server rank {r}"]
    finals = [ln.split(": ", 1)[1] for ln in lines if ln.startswith("final")]
    assert len(finals) == 4 and len(set(finals)) == 1


SCRIPT_UNCAUGHT = COMMON + """
w = Parameter(np.zeros(4))
def compute(params, step):
    if r == 3:
        raise RuntimeError("worker 3 dies, uncaught")
    params[0].grad = grad_at(params[0].data, step, r)
ParameterServer([w], SGD([w], lr=0.05), mode="sync").run(compute, steps=5)
print("unreachable", flush=True)
"""


@requires_mpi
def test_uncaught_worker_error_ends_the_job():
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_UNCAUGHT, 4, timeout=60)
    assert rc not in (0, TIMEOUT_RC), (rc, err[-2000:])
    assert "worker 3 dies, uncaught" in err and "unreachable" not in out
    assert time.monotonic() - t0 < 45


def test_reference_matches_torch():
    """The NumPy references are PyTorch's rules (checked where torch is installed)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for ref, make in ((RefSGD(0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
                      (RefAdam(0.1), lambda p: torch.optim.Adam(p, lr=0.1))):
        w = np.zeros(5)
        wt = torch.zeros(5, dtype=torch.float64)
        opt = make([wt])
        for _ in range(20):
            g = rng.normal(size=5)
            w = ref.step(w, g)
            wt.grad = torch.from_numpy(g.copy())
            opt.step()
        np.testing.assert_allclose(w, wt.numpy(), rtol=1e-13, atol=1e-15)
