"""The minimize dispatcher: names, options, tol, bounds, callbacks, limits, bad input."""
import io
import time
import warnings

import numpy as np
import pytest
import scipy.optimize as so

from neurenix import optim
from neurenix.optimize import (minimize, Bounds, Status, OptimizeWarning, register_method,
                               OptimizeResult)

from ._problems import rosen_chained

X0 = np.array([-1.2, 1.0, -1.2, 1.0])


@pytest.mark.parametrize("name", ["L-BFGS-B", "l-bfgs-b", "L-BFGS", "lbfgs", "L_BFGS_B",
                                  "bfgs", "Cg"])
def test_names_case_insensitive(name):
    r = minimize(rosen_chained, X0, jac=True, method=name)
    assert r.success


def test_default_method_follows_scipy():
    r = minimize(rosen_chained, X0, jac=True)
    assert isinstance(r.hess_inv, np.ndarray)          # BFGS
    r = minimize(rosen_chained, X0, jac=True, bounds=[(-2, 2)] * 4)
    assert not isinstance(r.hess_inv, np.ndarray)      # L-BFGS-B operator


def test_unknown_method_and_option():
    with pytest.raises(ValueError, match="method"):
        minimize(rosen_chained, X0, jac=True, method="nope")
    with pytest.warns(OptimizeWarning, match="Unknown solver options: bogus"):
        minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"bogus": 1})


@pytest.mark.parametrize("opt,exc", [({"maxiter": -1}, ValueError), ({"maxfun": -3}, ValueError),
                                     ({"maxiter": 1.5}, TypeError), ({"maxcor": 0}, ValueError),
                                     ({"gtol": -1.0}, ValueError), ({"maxtime": 0}, ValueError)])
def test_bad_options(opt, exc):
    with pytest.raises(exc, match=list(opt)[0]):
        minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options=opt)


def test_tol_maps_to_method_tolerances():
    loose = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", tol=1e-2)
    tight = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", tol=1e-12)
    assert loose.nit < tight.nit
    s = so.minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", tol=1e-2)
    assert loose.nit == s.nit
    with pytest.raises(ValueError, match="tol"):
        minimize(rosen_chained, X0, jac=True, tol=-1)


@pytest.mark.parametrize("jac", [None, "2-point", "3-point"])
def test_finite_difference_jac(jac):
    f = lambda x: rosen_chained(x)[0]
    r = minimize(f, X0, jac=jac, method="L-BFGS-B")
    s = so.minimize(f, X0, jac=jac, method="L-BFGS-B")
    np.testing.assert_allclose(r.x, s.x, atol=1e-3)
    assert r.nfev > r.nit * 4                      # FD calls are counted


def test_separate_jac_callable_and_args():
    f = lambda x, a: rosen_chained(x)[0] * a
    g = lambda x, a: rosen_chained(x)[1] * a
    r = minimize(f, X0, args=(2.0,), jac=g, method="CG")
    assert r.success and r.njev == r.nfev


def test_bounds_forms_and_projection():
    b_pairs = [(-2, 0.5), (None, 0.5), (-2, None), (-2, 0.5)]
    b_obj = Bounds([-2, -np.inf, -2, -2], [0.5, 0.5, np.inf, 0.5])
    r1 = minimize(rosen_chained, np.zeros(4), jac=True, bounds=b_pairs)
    r2 = minimize(rosen_chained, np.zeros(4), jac=True, bounds=b_obj)
    r3 = minimize(rosen_chained, np.zeros(4), jac=True, bounds=so.Bounds(b_obj.lb, b_obj.ub))
    np.testing.assert_allclose(r1.x, r2.x)
    np.testing.assert_allclose(r1.x, r3.x)
    # x0 outside the bounds is clipped silently, as SciPy's L-BFGS-B
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = minimize(rosen_chained, np.full(4, 3.0), jac=True, bounds=b_pairs)
    assert np.all(r.x <= 0.5 + 1e-12) or r.x[2] > 0.5


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lb,ub", [
    (np.array([-2.0, -np.inf, 0.25, -1e-30]), np.array([0.5, 0.5, np.inf, 1e-30])),
    (-0.3, 0.7), (np.array([-0.3]), np.array(0.7)), (None, np.full(4, 0.1)),
    (np.full(4, -1.0), None), (1, 2), (np.zeros(4), np.zeros(4)),
    (np.array([-2.0, -1e300, -0.1, 0.3], dtype=np.float64), 0.3 + 1e-9)])
def test_compiled_bounds_path_equals_numpy_path(dtype, lb, ub):
    # minimize's compiled bounds preparation (float inputs) gives the arrays,
    # the projected x0 and the warning flag that the general NumPy path gives
    from neurenix.optimize._minimize import prepare_bounds
    from neurenix._ext._lbfgs import prepare_box
    x0 = np.array([3.0, -5.0, 0.2, 1e-31], dtype=dtype)
    x1 = x0.copy()
    lo, hi, outside = prepare_box(lb, ub, x1)
    b = prepare_bounds(Bounds(lb, ub), 4, np.dtype(dtype))
    assert lo.dtype == hi.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(lo, b.lb)
    np.testing.assert_array_equal(hi, b.ub)
    assert outside == bool(np.any(x0 < b.lb) or np.any(x0 > b.ub))
    np.testing.assert_array_equal(x1, np.clip(x0, b.lb, b.ub))


def test_compiled_bounds_path_errors_and_fallback():
    from neurenix._ext._lbfgs import prepare_box
    x = np.zeros(3)
    with pytest.raises(ValueError, match="NaN"):
        prepare_box(np.array([0.0, np.nan, 0.0]), 1.0, x)
    with pytest.raises(ValueError, match="lower bound 2.0 > upper bound 1.0 for variable 1"):
        prepare_box(np.array([0.0, 2.0, 0.0]), 1.0, x)
    # inputs the NumPy path handles: int arrays, lists, wrong lengths, 2-D
    for lb in (np.zeros(3, dtype=int), [0.0, 0.0, 0.0], np.zeros(2), np.zeros((3, 1)),
               np.zeros(6)[::2], True):
        assert prepare_box(lb, 1.0, x) is None
    with pytest.raises(ValueError, match="lower bound"):
        minimize(rosen_chained, X0, jac=True, bounds=Bounds(np.ones(4), np.zeros(4)))
    with pytest.raises(ValueError, match="bounds"):
        minimize(rosen_chained, X0, jac=True, bounds=Bounds(np.zeros(3), np.ones(3)))


@pytest.mark.parametrize("bounds,match", [([(1, 0)] * 4, "lower bound"),
                                          ([(0, 1)] * 3, "bounds"),
                                          (Bounds([0, 0], [1, 1]), "bounds")])
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        minimize(rosen_chained, X0, jac=True, bounds=bounds)


def test_bounds_ignored_with_warning_for_bfgs():
    with pytest.warns(RuntimeWarning, match="Method BFGS cannot handle bounds."):
        minimize(rosen_chained, X0, jac=True, method="BFGS", bounds=[(0, 1)] * 4)


@pytest.mark.parametrize("x0,match", [([np.nan, 1.0], "x0"), ([np.inf, 1.0], "x0")])
def test_bad_x0(x0, match):
    with pytest.raises(ValueError, match=match):
        minimize(lambda x: x @ x, x0)


def test_bad_fun_returns():
    with pytest.raises(ValueError, match="scalar"):
        minimize(lambda x: x, np.ones(2))
    # a non-finite f(x0) returns a result, as SciPy (BFGS: status 3, L-BFGS-B: 2)
    for method, code, message in (("BFGS", 3, "NaN result encountered."),
                                  ("L-BFGS-B", 2, "ABNORMAL: ")):
        r = minimize(lambda x: np.nan, np.ones(2), method=method)
        s = so.minimize(lambda x: np.nan, np.ones(2), method=method)
        assert (r.status, r.message, r.success) == (code, message, False) \
            == (s.status, s.message, s.success)
        assert r.reason == Status.NONFINITE and r.nit == 0
    with pytest.raises(ValueError, match="shape"):
        minimize(lambda x: (x @ x, np.ones(3)), np.ones(2), jac=True, method="L-BFGS")


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG"])
@pytest.mark.parametrize("fx0", [np.inf, np.nan])
@pytest.mark.parametrize("combined", [True, False])
def test_nonfinite_f_small_gradient_at_x0_as_scipy(method, fx0, combined):
    # scikit-learn's GaussianProcessRegressor meets this (a kernel that is not positive
    # definite: f = inf with a zero gradient): SciPy's first test is the gradient's,
    # so the run ends at x0 with status 0 (BFGS/CG with a NaN f: status 3)
    if combined:
        kw = dict(fun=lambda x: (fx0, np.zeros(2)), jac=True)
    else:
        kw = dict(fun=lambda x: fx0, jac=lambda x: np.zeros(2))
    r = minimize(x0=np.ones(2), method=method, **kw)
    s = so.minimize(x0=np.ones(2), method=method, **kw)
    assert (r.status, r.message, r.nit, r.nfev, r.njev) == \
        (s.status, s.message, s.nit, s.nfev, s.njev)
    np.testing.assert_array_equal(r.x, s.x)
    np.testing.assert_array_equal(r.jac, s.jac)


def test_exception_in_fun_propagates_unchanged():
    class Boom(Exception):
        pass
    n = [0]

    def f(x):
        n[0] += 1
        if n[0] > 3:
            raise Boom("boom")
        return rosen_chained(x)
    for m in ("L-BFGS", "BFGS", "CG"):
        n[0] = 0
        with pytest.raises(Boom, match="boom"):
            minimize(f, X0, jac=True, method=m)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG", "adam"])
def test_callbacks_new_and_legacy(method):
    seen_new, seen_old = [], []

    def cb_new(intermediate_result):
        assert isinstance(intermediate_result, OptimizeResult)
        seen_new.append((intermediate_result.x.copy(), intermediate_result.fun))

    opts = {"maxiter": 30, "lr": 1e-3} if method == "adam" else {"maxiter": 30}
    r = minimize(rosen_chained, X0, jac=True, method=method, callback=cb_new, options=opts)
    minimize(rosen_chained, X0, jac=True, method=method, callback=seen_old.append, options=opts)
    assert len(seen_new) == len(seen_old) == r.nit
    np.testing.assert_allclose(seen_new[-1][0], r.x)
    assert seen_new[-1][1] == pytest.approx(r.fun)
    np.testing.assert_allclose(seen_old[-1], r.x)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG"])
def test_stop_iteration(method):
    def cb(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration
    r = minimize(rosen_chained, X0, jac=True, method=method, callback=cb)
    assert r.reason == Status.CALLBACK and r.nit == 3 and not r.success


def test_maxtime():
    def slow(x):
        time.sleep(0.002)
        return rosen_chained(x)
    t = time.perf_counter()
    r = minimize(slow, np.tile(X0, 5), jac=True, method="CG", options={"maxtime": 0.05})
    assert r.reason == Status.MAXTIME
    assert time.perf_counter() - t < 1.0


def test_keyboard_interrupt_returns_best_point():
    calls = [0]

    def f(x):
        calls[0] += 1
        if calls[0] == 25:
            raise KeyboardInterrupt
        return rosen_chained(x)
    for m in ("L-BFGS", "BFGS", "adam"):
        calls[0] = 0
        r = minimize(f, X0, jac=True, method=m)
        assert r.reason == Status.INTERRUPTED and not r.success
        assert r.fun == pytest.approx(rosen_chained(r.x)[0])
        assert r.fun < rosen_chained(X0)[0]


def test_disp_progress(capsys):
    minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"disp": True})
    out = capsys.readouterr().out
    assert "iter" in out and "|g|" in out and "Iterations:" in out


def test_maxfun_and_maxiter():
    r = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"maxfun": 10})
    assert r.reason == Status.MAXFUN and r.nfev <= 12
    r = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"maxiter": 4})
    assert r.reason == Status.MAXITER and r.nit == 4
    # SciPy's L-BFGS-B tests maxiter after an iteration: maxiter=0 still does one
    r = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"maxiter": 0})
    s = so.minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"maxiter": 0})
    assert r.nit == s.nit == 1 and r.reason == Status.MAXITER
    assert (r.status, r.message) == (s.status, s.message) == (
        1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT")
    np.testing.assert_allclose(r.x, s.x, rtol=1e-12)
    # maxiter = inf is accepted, as SciPy
    r = minimize(rosen_chained, X0, jac=True, method="L-BFGS-B", options={"maxiter": np.inf})
    assert r.success and r.status == 0


def test_callable_method_and_register_method():
    def custom(fun, x0, args=(), **kw):
        return OptimizeResult(x=x0 * 0, fun=0.0, success=True, kw=sorted(kw))
    r = minimize(rosen_chained, X0, method=custom, options={"foo": 1})
    assert r.success and "foo" in r.kw and "callback" in r.kw

    def _minimize_halving(obj, x0, *, bounds, driver, maxiter=3):
        x = x0.copy()
        for k in range(maxiter):
            x = x / 2
            if driver.iteration(k + 1, x, obj.fun(x)):
                break
        return driver.result(Status.MAXITER, x, obj.fun(x), nit=maxiter)
    register_method("halving-test", _minimize_halving, aliases=("halve",))
    r = minimize(lambda x: float(x @ x), np.ones(2), method="HALVE", options={"maxiter": 2})
    np.testing.assert_allclose(r.x, 0.25)
    assert r.nfev >= 2


@pytest.mark.parametrize("name,cls,kw", [("adam", optim.Adam, {"betas": (0.8, 0.99)}),
                                         ("sgd", optim.SGD, {"momentum": 0.9}),
                                         ("rmsprop", optim.RMSprop, {}),
                                         ("lamb", optim.LAMB, {})])
def test_first_order_equals_optim_loop(name, cls, kw):
    x = X0.copy()
    p = optim.Parameter(x)
    opt = cls([p], lr=1e-3, **kw)
    for _ in range(20):
        p.grad = rosen_chained(p.data)[1]
        opt.step()
    r = minimize(rosen_chained, X0, jac=True, method=name,
                 options=dict(lr=1e-3, maxiter=20, **kw))
    np.testing.assert_allclose(r.x, p.data, rtol=1e-12, atol=1e-14)
    assert r.nit == 20 and r.reason == Status.MAXITER


def test_first_order_lr_schedule_and_bad_lr():
    lrs = []
    sched = lambda k: (lrs.append(k), 0.1 / (1 + k))[1]
    r = minimize(lambda x: (float(x @ x), 2 * x), np.ones(3), jac=True, method="sgd",
                 options={"lr": sched, "maxiter": 5, "gtol": 0})
    assert lrs[:1] == [0] and 4 in lrs
    ref = np.ones(3)
    for k in range(5):
        ref = ref - 0.1 / (1 + k) * 2 * ref
    np.testing.assert_allclose(r.x, ref)
    with pytest.raises(ValueError, match="lr"):
        minimize(lambda x: float(x @ x), np.ones(3), method="sgd", options={"lr": -1.0})
    with pytest.raises(ValueError, match="lr"):
        minimize(lambda x: float(x @ x), np.ones(3), method="sgd",
                 options={"lr": lambda k: float("nan"), "maxiter": 3})


# ------------------------------------------------------------- first-order limits
def _quad(d):
    return lambda x: (0.5 * float(x @ (d * x)) - float(x.sum()), d * x - 1.0)


def test_first_order_maxfun_stops_with_maxfun():
    d = np.array([1.0, 2.0, 4.0])
    calls = []

    def fg(x):
        calls.append(1)
        return _quad(d)(x)
    r = minimize(fg, np.zeros(3), jac=True, method="sgd",
                 options={"lr": 0.01, "maxfun": 5, "maxiter": 1000})
    # x0 plus four updates, one evaluation each; the fifth update would need a sixth
    assert r.reason == Status.MAXFUN and not r.success
    assert r.nfev == len(calls) == 5 and r.nit == 4
    # the same four updates as a run limited by maxiter
    r2 = minimize(_quad(d), np.zeros(3), jac=True, method="sgd",
                  options={"lr": 0.01, "maxiter": 4})
    np.testing.assert_array_equal(r.x, r2.x)
    assert r2.reason == Status.MAXITER
    # finite-difference gradients: n + 1 evaluations per gradient, the limit may be passed by < n
    r = minimize(lambda x: _quad(d)(x)[0], np.zeros(3), method="adam",
                 options={"lr": 0.01, "maxfun": 10})
    assert r.reason == Status.MAXFUN and 10 <= r.nfev < 10 + 3 and r.nit == 2
    for bad in (-1, 2.5, True):
        with pytest.raises((ValueError, TypeError), match="maxfun"):
            minimize(_quad(d), np.zeros(3), jac=True, method="sgd", options={"maxfun": bad})


def test_first_order_gtol_convergence_is_success():
    d = np.array([1.0, 2.0, 4.0])
    xstar = 1.0 / d                     # closed-form minimizer
    r = minimize(_quad(d), np.zeros(3), jac=True, method="sgd",
                 options={"lr": 0.2, "maxiter": 10000, "gtol": 1e-8})
    assert r.reason == Status.GTOL and r.success and r.nit < 10000
    assert np.max(np.abs(r.jac)) <= 1e-8
    np.testing.assert_allclose(r.x, xstar, atol=1e-8 / d.min())
    # converging on the last allowed update still reports success
    r2 = minimize(_quad(d), np.zeros(3), jac=True, method="sgd",
                  options={"lr": 0.2, "maxiter": r.nit, "gtol": 1e-8})
    assert r2.reason == Status.GTOL and r2.nit == r.nit
    r3 = minimize(_quad(d), np.zeros(3), jac=True, method="sgd",
                  options={"lr": 0.2, "maxiter": r.nit - 1, "gtol": 1e-8})
    assert r3.reason == Status.MAXITER and not r3.success
    # tol sets gtol; the default gtol is 1e-5 (max-abs norm, as SciPy's BFGS/CG)
    r4 = minimize(_quad(d), np.zeros(3), jac=True, method="sgd", tol=1e-3,
                  options={"lr": 0.2, "maxiter": 10000})
    assert r4.success and 1e-3 * 0.2 < np.max(np.abs(r4.jac)) <= 1e-3
    # an adaptive rule with a decaying rate converges too, and stops at the first
    # iterate that passes the default gtol
    for name in ("rmsprop", "adam"):
        r5 = minimize(_quad(d), np.zeros(3), jac=True, method=name,
                      options={"lr": lambda k: 0.1 / (1 + k) ** 0.5, "maxiter": 20000})
        assert r5.reason == Status.GTOL and r5.nit < 20000
        assert np.max(np.abs(r5.jac)) <= 1e-5
        r6 = minimize(_quad(d), np.zeros(3), jac=True, method=name,
                      options={"lr": lambda k: 0.1 / (1 + k) ** 0.5, "maxiter": r5.nit - 1})
        assert np.max(np.abs(r6.jac)) > 1e-5 and r6.reason == Status.MAXITER
    # already converged at x0: no update at all
    r6 = minimize(_quad(d), xstar, jac=True, method="adam")
    assert r6.reason == Status.GTOL and r6.nit == 0 and r6.nfev == 1


def test_hess_warning_for_methods_without_hessian():
    with pytest.warns(RuntimeWarning, match="does not use Hessian"):
        r = minimize(rosen_chained, X0, jac=True, method="BFGS", hess=lambda x: np.eye(4))
    assert r.success
    with pytest.warns(RuntimeWarning, match="hessp"):
        minimize(rosen_chained, X0, jac=True, method="L-BFGS-B",
                 hessp=lambda x, p: p)


# ----------------------------------------------------------------- gauss-newton
def _exp_model():
    t = np.linspace(0.0, 3.0, 25)
    rng = np.random.default_rng(4)
    y = 2.5 * np.exp(-1.3 * t) + 0.3 + 0.01 * rng.standard_normal(t.size)

    def res(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    def jac(p):
        e = np.exp(-p[1] * t)
        return np.column_stack([e, -p[0] * t * e, np.ones_like(t)])
    return res, jac


@pytest.mark.parametrize("name", ["gauss-newton", "Gauss_Newton", "gn"])
def test_gauss_newton_through_minimize(name):
    res, jac = _exp_model()
    p0 = np.array([1.0, 1.0, 0.0])
    r = minimize(res, p0, jac=jac, method=name)
    ref = so.least_squares(res, p0, jac=jac, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(r.x, ref.x, rtol=1e-6)
    assert r.fun == pytest.approx(ref.cost, rel=1e-8)
    np.testing.assert_allclose(r.residuals, res(r.x))
    np.testing.assert_allclose(r.jac, jac(r.x).T @ res(r.x), atol=1e-8)
    # the result speaks minimize's status table
    assert r.success and r.reason in (Status.GTOL, Status.FTOL, Status.XTOL)
    assert r.status == 0 and r.message == "Optimization terminated successfully."
    # finite-difference Jacobian by default
    r2 = minimize(res, p0, method=name)
    np.testing.assert_allclose(r2.x, ref.x, rtol=1e-5)


def test_gauss_newton_limits_and_warnings():
    res, jac = _exp_model()
    p0 = np.array([1.0, 1.0, 0.0])
    r = minimize(res, p0, jac=jac, method="gauss-newton", options={"max_nfev": 2})
    assert r.reason == Status.MAXFUN and not r.success
    with pytest.warns(RuntimeWarning, match="does not use Hessian"):
        minimize(res, p0, jac=jac, method="gauss-newton", hess=lambda x: np.eye(3))
    with pytest.warns(RuntimeWarning, match="cannot handle bounds"):
        minimize(res, p0, jac=jac, method="gauss-newton", bounds=[(0, 5)] * 3)
    with pytest.raises(ValueError, match="bogus"):
        minimize(res, p0, jac=jac, method="gauss-newton", options={"bogus": 1})
