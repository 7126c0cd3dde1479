"""The fixed per-call path of ``minimize(method="L-BFGS-B")``: what it must keep
while it saves copies (x0 shared by the objective's cache and the driver, the
compiled loop's defaults left out of the call)."""
import warnings

import numpy as np
import pytest

from neurenix.optimize import minimize, Bounds
from neurenix.optimize import _lbfgs
from neurenix.optimize import Status

from ._problems import rosen_chained, x0_for


def _distinct(*arrays):
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert a is not b and not np.shares_memory(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bounds", [None, Bounds(-2.0, 0.9), Bounds(-np.inf, np.inf),
                                    Bounds(np.full(6, -2.0), np.full(6, 0.9))])
@pytest.mark.parametrize("maxiter", [0, 3, 15000])
def test_result_arrays_are_fresh_and_x0_untouched(dtype, bounds, maxiter):
    x0 = x0_for("rosen_chained", 6).astype(dtype)
    x0[0] = 5.0                     # outside the box: projected (on minimize's copy)
    keep = x0.copy()
    seen = []

    def fun(x):
        seen.append(x)
        return rosen_chained(x)
    opts = None if maxiter == 15000 else {"maxiter": maxiter}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # (x0 outside the box: OptimizeWarning)
        r = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    np.testing.assert_array_equal(x0, keep)
    _distinct(x0, r.x, r.jac, *seen)
    assert r.x.dtype == r.jac.dtype == np.dtype(dtype)
    if maxiter == 0:
        # one iteration, as SciPy's L-BFGS-B (it tests maxiter after an iteration)
        assert r.nit == 1 and r.reason == Status.MAXITER and r.status == 1


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("jac", ["combined", "callable"])
@pytest.mark.parametrize("maxiter", [0, 3, None])
def test_bfgs_cg_result_arrays_are_fresh_and_x0_untouched(method, jac, maxiter):
    # BFGS and CG are registered x0_read_only too (their loop runs on a copy)
    x0 = x0_for("rosen_chained", 6)
    keep = x0.copy()
    seen = []

    def fun(x):
        seen.append(x)
        return rosen_chained(x) if jac == "combined" else rosen_chained(x)[0]

    def grad(x):
        seen.append(x)
        return rosen_chained(x)[1]
    opts = None if maxiter is None else {"maxiter": maxiter}
    r = minimize(fun, x0, jac=True if jac == "combined" else grad, method=method, options=opts)
    np.testing.assert_array_equal(x0, keep)
    _distinct(x0, r.x, r.jac, *seen)
    if maxiter == 0:
        np.testing.assert_array_equal(r.x, keep)
        np.testing.assert_array_equal(r.jac, rosen_chained(keep)[1])
    else:
        assert r.nit > 0 and r.fun < rosen_chained(keep)[0]


def test_interrupt_before_the_loop_returns_x0_and_its_gradient(monkeypatch):
    # KeyboardInterrupt outside the compiled loop's own handling: minimize answers
    # with driver.interrupted(), whose best point is minimize's x0 (shared with
    # the objective's cache, never with the caller's x0) and the gradient there
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(_lbfgs._k, "run", interrupted)
    x0 = x0_for("rosen_chained", 4)
    x0[1] = 3.0
    keep = x0.copy()
    for bounds in (None, Bounds(-2.0, 0.9)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B", bounds=bounds)
        assert r.reason == Status.INTERRUPTED and not r.success
        xs = keep if bounds is None else np.clip(keep, -2.0, 0.9)
        f, g = rosen_chained(xs)
        np.testing.assert_array_equal(r.x, xs)
        np.testing.assert_array_equal(r.jac, g)
        assert r.fun == f and r.nfev == r.njev == 1
        np.testing.assert_array_equal(x0, keep)
        _distinct(x0, r.x, r.jac)


def test_options_equal_to_defaults_give_the_same_run():
    # the all-defaults call leaves the compiled loop's own defaults out; set
    # explicitly (a validated call passing everything) the run is the same
    x0 = np.clip(x0_for("rosen_chained", 10), -2.0, 0.9)
    for bounds in (None, Bounds(-2.0, 0.9)):
        a = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B", bounds=bounds)
        b = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                     options={"maxcor": 10, "gtol": 1e-5, "maxls": 20, "ftol": 2.2204460492503131e-09,
                              "maxiter": 15000, "maxfun": 15000})
        np.testing.assert_array_equal(a.x, b.x)
        assert (a.nit, a.nfev, a.fun, a.status) == (b.nit, b.nfev, b.fun, b.status)
        np.testing.assert_array_equal(a.hess_inv.sk, b.hess_inv.sk)
    assert _lbfgs._RUN_DEFAULTS_OK


def test_result_fields_and_duplicate_field_error():
    from neurenix.optimize._driver import Driver
    from neurenix._core.objective import ScalarObjective
    x0 = np.zeros(2)
    obj = ScalarObjective(lambda x: rosen_chained(x), x0, jac=True)
    d = Driver(obj, x0)
    r = d.result(Status.GTOL, x0, 1.0, x0, 3, hess_inv=None)
    assert list(r) == ["status", "success", "message", "x", "fun", "nit", "nfev", "njev",
                       "nhev", "hess_inv", "jac"]
    assert r.nfev == 1 and r.nit == 3 and r.success
    with pytest.raises(TypeError, match="multiple values for keyword argument 'nfev'"):
        d.result(Status.GTOL, x0, 1.0, None, 3, nfev=4)
