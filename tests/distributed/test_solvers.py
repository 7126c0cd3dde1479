"""neurenix.distributed.solvers: data-parallel minimize / least_squares.

References: the serial ``neurenix.optimize`` solver on the pooled data (same
method, to floating-point tolerance: only the order of the sum differs) and
SciPy on the pooled data (to the solvers' tolerance).
"""
import time

import numpy as np
import pytest
import scipy.optimize as so

from neurenix import optimize
from neurenix import distributed
from neurenix.distributed import SelfComm
from . import _problems as P
from ._mpi import requires_mpi, run_mpi, TIMEOUT_RC

SCRIPT = """
import json
import numpy as np
from neurenix import distributed
from tests.distributed import _problems as P
comm = distributed.get_comm()
r, K = comm.Get_rank(), comm.Get_size()
A, y = P.logistic_data()
rows = P.shard(P.N_ROWS, K, r, empty_last=True)
fns = P.logistic(A[rows], y[rows], P.LAM, K)
out = {}
for name in P.MIN_CASES:
    fun, x0, kw = P.minimize_case(name, fns)
    res = distributed.minimize(fun, x0, **kw)
    xs = comm.gather(res.x.tobytes(), root=0)
    out[name] = dict(x=res.x.astype(float).tolist(), fun=float(res.fun), nit=int(res.nit),
                     dtype=str(res.x.dtype), success=bool(res.success),
                     same=(r != 0 or len(set(xs)) == 1))
t, yy = P.decay_data()
rows = P.shard(t.size, K, r, empty_last=True)
for name in P.LSQ_CASES:
    x0, kw = P.lsq_case(name, t[rows], yy[rows])
    res = distributed.least_squares(P.decay_residual, x0, **kw)
    xs = comm.gather(res.x.tobytes(), root=0)
    out[name] = dict(x=res.x.tolist(), cost=float(res.cost), nfev=int(res.nfev),
                     m=int(res.fun.size), same=(r != 0 or len(set(xs)) == 1))
if r == 0:
    print("RESULT " + json.dumps(out), flush=True)
"""


def _pooled_min(name):
    A, y = P.logistic_data()
    fun, x0, kw = P.minimize_case(name, P.logistic(A, y, P.LAM, 1))
    return optimize.minimize(fun, x0, **kw)


def _pooled_lsq(name):
    t, y = P.decay_data()
    x0, kw = P.lsq_case(name, t, y)
    return optimize.least_squares(P.decay_residual, x0, **kw)


@pytest.fixture(scope="module", params=[1, 2, 4])
def mpi_results(request):
    rc, out, err = run_mpi(SCRIPT, request.param, timeout=60)
    assert rc == 0, err[-3000:]
    return request.param, P.result_of(out)


@requires_mpi
@pytest.mark.parametrize("name", P.MIN_CASES)
def test_minimize_equals_pooled_serial_solve(mpi_results, name):
    K, res = mpi_results
    got = res[name]
    ref = _pooled_min(name)
    assert got["same"] and got["success"]
    assert got["dtype"] == str(ref.x.dtype)
    tol = 1e-4 if name == "lbfgs_float32" else (1e-6 if name == "lbfgs_fd" else 1e-9)
    np.testing.assert_allclose(got["x"], ref.x, rtol=tol, atol=tol)
    np.testing.assert_allclose(got["fun"], ref.fun, rtol=1e-6 if "float32" in name else 1e-12)
    if name not in ("lbfgs_fd", "lbfgs_float32"):
        assert abs(got["nit"] - ref.nit) <= 1


@requires_mpi
@pytest.mark.parametrize("name", P.MIN_CASES)
def test_minimize_matches_scipy(mpi_results, name):
    K, res = mpi_results
    A, y = P.logistic_data()
    fun, x0, kw = P.minimize_case(name, P.logistic(A, y, P.LAM, 1))
    kw = {k: v for k, v in kw.items() if k in ("jac", "hess", "hessp", "bounds")}
    method = ("trust-exact" if "hess" in kw else "Newton-CG" if "hessp" in kw else
              "L-BFGS-B" if "bounds" in kw else "BFGS")
    sp = so.minimize(fun, x0.astype(np.float64), method=method, tol=1e-12, **kw)
    np.testing.assert_allclose(res[name]["x"], sp.x, atol=2e-3 if "float32" in name else 1e-5)


@requires_mpi
@pytest.mark.parametrize("name", P.LSQ_CASES)
def test_least_squares_equals_pooled_serial_and_scipy(mpi_results, name):
    K, res = mpi_results
    got = res[name]
    ref = _pooled_lsq(name)
    assert got["same"] and got["m"] == 60
    np.testing.assert_allclose(got["x"], ref.x, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got["cost"], ref.cost, rtol=1e-9)
    t, y = P.decay_data()
    x0, kw = P.lsq_case(name, t, y)
    kw = dict(kw)
    if kw["method"] == "gn":
        kw["method"] = "lm"
    sp = so.least_squares(P.decay_residual, x0, **kw)
    np.testing.assert_allclose(got["x"], sp.x, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- size 1, in process
def test_size1_is_the_serial_solver():
    A, y = P.logistic_data()
    fns = P.logistic(A, y, P.LAM, 1)
    for name in ("lbfgs", "newton_cg"):
        fun, x0, kw = P.minimize_case(name, fns)
        got = distributed.minimize(fun, x0, comm=SelfComm(), **kw)
        ref = optimize.minimize(fun, x0, **kw)
        np.testing.assert_array_equal(got.x, ref.x)
        assert got.nfev == ref.nfev
    t, yy = P.decay_data()
    x0, kw = P.lsq_case("lm_jac", t, yy)
    got = distributed.least_squares(P.decay_residual, x0, comm=SelfComm(), **kw)
    np.testing.assert_array_equal(got.x, optimize.least_squares(P.decay_residual, x0, **kw).x)


def test_bad_arguments():
    c = SelfComm()
    f = lambda x: float(x @ x)  # noqa: E731
    with pytest.raises(TypeError, match="local_fun"):
        distributed.minimize(3, np.zeros(2), comm=c)
    with pytest.raises(ValueError, match="jac"):
        distributed.minimize(f, np.zeros(2), jac="cs", comm=c)
    with pytest.raises(TypeError, match="hessp"):
        distributed.minimize(f, np.zeros(2), hessp=1, comm=c)
    with pytest.raises(ValueError, match="x0"):
        distributed.minimize(f, np.array([np.nan]), comm=c)
    with pytest.raises(ValueError, match="jac"):
        distributed.least_squares(lambda x: x, np.zeros(2), jac="cs", comm=c)
    with pytest.raises(TypeError, match="comm"):
        distributed.minimize(f, np.zeros(2), comm=object())


# -------------------------------------------------------------- failures on K ranks
SCRIPT_FAIL = """
import numpy as np
from neurenix import distributed
from tests.distributed import _problems as P
comm = distributed.get_comm()
r, K = comm.Get_rank(), comm.Get_size()
A, y = P.logistic_data()
rows = P.shard(P.N_ROWS, K, r)
fg = P.logistic(A[rows], y[rows], P.LAM, K)[0]
calls = [0]

def failing(x):
    calls[0] += 1
    if r == 2 and calls[0] == 3:
        raise ValueError("injected in local_fun")
    return fg(x)

def bad_shape(x):
    f, g = fg(x)
    return f, (g[:-1] if r == 1 else g)

def stop_cb(intermediate_result):
    raise RuntimeError("injected in the root's callback")

cases = [("worker", lambda: distributed.minimize(failing, np.zeros(5), timeout=30)),
         ("shape", lambda: distributed.minimize(bad_shape, np.zeros(5), method="Newton-CG",
                                                hessp=lambda x, p: p)),
         ("method", lambda: distributed.minimize(fg, np.zeros(5), method="no-such-method")),
         ("callback", lambda: distributed.minimize(fg, np.zeros(5), callback=stop_cb,
                                                   timeout=30)),
         ("x0", lambda: distributed.minimize(fg, np.zeros(5 if r else 4))),
         ("lsq", lambda: distributed.least_squares(
             lambda x: x[:2] - r, np.zeros(2), jac=lambda x: np.eye(2, 3 if r == 3 else 2)))]
msgs = []
for name, run in cases:
    P.attempt(name, run, r, msgs)
res = distributed.minimize(fg, np.zeros(5))     # the ranks are still in step
msgs.append(f"final rank {r}: {res.success}")
P.print_gathered(comm, msgs)
"""


@requires_mpi
def test_failures_raise_on_every_rank_without_hanging():
    rc, out, err = run_mpi(SCRIPT_FAIL, 4, timeout=60)
    assert rc == 0, err[-3000:]
    lines = set(out.splitlines())
    for r in (0, 1, 3):
        assert P.has(lines, f"worker rank {r}: DistributedError [2]")
    for r in (0, 2, 3):
        assert P.has(lines, f"shape rank {r}: DistributedError [1]")
    assert "worker rank 2: ValueError: injected in local_fun" in lines
    assert any(ln.startswith("shape rank 1: ValueError: the gradient must have shape")
               for ln in lines)
    assert any(ln.startswith("method rank 0: ValueError") for ln in lines)
    assert "callback rank 0: RuntimeError: injected in the root's callback" in lines
    assert P.has(lines, "x0 rank 0: DistributedError [1, 2, 3]")
    assert any(ln.startswith("x0 rank 3: ValueError: x0 on rank 3 has size 5 and dtype float64, "
                             "but the root's has size 4") for ln in lines)
    assert any(ln.startswith("lsq rank 3: ValueError: jac(x) must return") for ln in lines)
    for r in (1, 2, 3):
        assert P.has(lines, f"method rank {r}: DistributedError [0] the root (rank 0) failed: "
                            "ValueError: Unknown solver")
        assert P.has(lines, f"callback rank {r}: DistributedError [0]")
    assert sum(ln.startswith("lsq rank") and "DistributedError [3]" in ln for ln in lines) == 3
    assert not any("no error" in ln for ln in lines), out
    assert sum(ln.endswith(": True") and ln.startswith("final") for ln in lines) == 4


SCRIPT_UNCAUGHT = """
import numpy as np
from neurenix import distributed
comm = distributed.get_comm()
r = comm.Get_rank()
def fun(x):
    if r == 1:
        raise ZeroDivisionError("injected, not caught")
    return float(x @ x), 2 * x
distributed.minimize(fun, np.ones(3))
print("unreachable", flush=True)
"""


@requires_mpi
def test_uncaught_worker_error_ends_the_job():
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_UNCAUGHT, 4, timeout=60)
    assert rc not in (0, TIMEOUT_RC), (rc, err[-2000:])
    assert "injected, not caught" in err
    assert "unreachable" not in out
    assert time.monotonic() - t0 < 45


SCRIPT_ROOT_HANGS = """
import time
import numpy as np
from neurenix import distributed
def fun(x):
    return float(x @ x), 2 * x
def stuck(intermediate_result):
    time.sleep(120)              # the root never sends the next command
distributed.minimize(fun, np.ones(3), callback=stuck, timeout=3)
print("unreachable", flush=True)
"""


@requires_mpi
def test_deadline_aborts_when_the_root_hangs():
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_ROOT_HANGS, 2, timeout=60)
    assert rc not in (0, TIMEOUT_RC), (rc, err[-2000:])
    assert "the root's next command did not complete within 3 s" in err
    assert "unreachable" not in out
    assert time.monotonic() - t0 < 45
