"""BFGS and CG (Polak–Ribière+) against SciPy on the standard problems."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize, Status

from ._problems import CASES, x0_for, quadratic

SMALL = [c for c in CASES if c[2] <= 100]


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("name,f,n", SMALL, ids=[f"{c[0]}-{c[2]}" for c in SMALL])
def test_matches_scipy(method, name, f, n):
    x0 = x0_for(name, n)
    r = minimize(f, x0, jac=True, method=method)
    s = so.minimize(f, x0, jac=True, method=method)
    assert r.success, r.message
    assert np.max(np.abs(r.jac)) <= 1e-5
    if s.success and s.fun < 1e-6:
        assert r.fun < 1e-6
    else:
        # a non-zero stationary value: ours is the same or lower (another basin)
        assert r.fun <= s.fun * (1 + 1e-3) + 1e-8


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_nfev_table_mostly_at_most_scipy(method):
    wins = 0
    for name, f, n in SMALL:
        x0 = x0_for(name, n)
        wins += minimize(f, x0, jac=True, method=method).nfev <= \
            so.minimize(f, x0, jac=True, method=method).nfev
    assert wins >= 0.5 * len(SMALL)


def test_bfgs_hess_inv_on_quadratic():
    # on a quadratic, H satisfies the secant equation and approaches A^-1
    rng = np.random.default_rng(0)
    d = rng.uniform(1, 5, 8)
    r = minimize(quadratic, np.zeros(8), args=(d,), jac=True, method="BFGS",
                 options={"gtol": 1e-12})
    H = r.hess_inv
    assert H.shape == (8, 8)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(H) > 0)
    # SciPy ends this run in precision loss 4e-9 away from 1/d (gtol=1e-12 is
    # below what its line searches resolve); ours is SciPy's run
    np.testing.assert_allclose(r.x, 1 / d, rtol=1e-7)
    s = so.minimize(quadratic, np.zeros(8), args=(d,), jac=True, method="BFGS",
                    options={"gtol": 1e-12})
    from .test_bfgs_cg_bitwise import _numpy_and_scipy_blas_agree
    if _numpy_and_scipy_blas_agree():
        assert (r.status, r.nit, r.nfev) == (s.status, s.nit, s.nfev)
        np.testing.assert_array_equal(r.x, s.x)
        np.testing.assert_array_equal(H, s.hess_inv)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_float32_stays_float32(method):
    f = lambda x: (np.sum((x - 1) ** 2), 2 * (x - 1))
    r = minimize(f, np.zeros(5, np.float32), jac=True, method=method, options={"gtol": 1e-4})
    assert r.x.dtype == np.float32 and r.jac.dtype == np.float32
    np.testing.assert_allclose(r.x, 1, atol=1e-4)


def test_cg_maxiter_status():
    x0 = x0_for("rosen_chained", 10)
    r = minimize(lambda x: (so.rosen(x), so.rosen_der(x)), x0, jac=True, method="CG",
                 options={"maxiter": 5})
    assert r.reason == Status.MAXITER and r.nit == 5 and not r.success


# ---------------------------------------------------------------------------------------
# SciPy's iteration, step for step (issue #13): iterates, nit, nfev, njev, status, message
import time
import warnings

import scipy.optimize._optimize as _sopt
from scipy.optimize import _linesearch as _sls
from scipy.special import expit, log_ndtr

from neurenix._core.linesearch import scalar_search_wolfe2
from neurenix._ext._linesearch import cubicmin, quadmin


def _rosen_fg(x):
    return so.rosen(x), so.rosen_der(x)


def _both(fun, x0, method, jac=True, options=None):
    """Run neurenix and SciPy; returns both results and their iterates (callback)."""
    xr, xs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # LineSearchWarning, overflow in the objective
        r = minimize(fun, x0, jac=jac, method=method, options=options,
                     callback=lambda x: xr.append(np.copy(x)))
        s = so.minimize(fun, x0, jac=jac, method=method, options=options,
                        callback=lambda x: xs.append(np.copy(x)))
    return r, s, np.array(xr), np.array(xs)


def _assert_same(r, s, xr, xs, rtol=1e-10, atol=1e-12):
    assert (r.nit, r.nfev, r.njev, r.status, r.message, r.success) == \
        (s.nit, s.nfev, s.njev, s.status, s.message, s.success)
    assert xr.shape == xs.shape
    np.testing.assert_allclose(xr, xs, rtol=rtol, atol=atol)
    np.testing.assert_allclose(r.x, s.x, rtol=rtol, atol=atol)
    np.testing.assert_allclose(r.fun, s.fun, rtol=rtol, atol=atol)
    # (near a solution g is small, and differences of x are multiplied by the curvature)
    np.testing.assert_allclose(r.jac, s.jac, rtol=0, atol=1e3 * rtol)


class _Events:
    """Counts what SciPy's line searches did (wrapped in scipy.optimize._optimize)."""

    def __init__(self, monkeypatch):
        self.w1_none = self.w2_calls = self.w2_none = self.w2_no_slope = self.w1_ok = 0
        w1, w2 = _sopt.line_search_wolfe1, _sopt.line_search_wolfe2

        def wolfe1(*a, **k):
            out = w1(*a, **k)
            if out[0] is None:
                self.w1_none += 1
            else:
                self.w1_ok += 1
            return out

        def wolfe2(*a, **k):
            out = w2(*a, **k)
            self.w2_calls += 1
            if out[0] is None:
                self.w2_none += 1
            elif out[5] is None:
                self.w2_no_slope += 1
            return out
        monkeypatch.setattr(_sopt, "line_search_wolfe1", wolfe1)
        monkeypatch.setattr(_sopt, "line_search_wolfe2", wolfe2)


ROSEN_STARTS = [np.array([-1.2, 1.0]), np.zeros(2), np.array([2.0, -1.0])]


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("jac_mode", ["callable", "combined"])
@pytest.mark.parametrize("k", range(3))
def test_rosenbrock_2_step_for_step(method, jac_mode, k):
    fun, jac = (so.rosen, so.rosen_der) if jac_mode == "callable" else (_rosen_fg, True)
    r, s, xr, xs = _both(fun, ROSEN_STARTS[k], method, jac)
    _assert_same(r, s, xr, xs, rtol=1e-7)
    assert r.success


@pytest.mark.parametrize("n,x0", [(5, np.full(5, -1.0)), (5, np.zeros(5)),
                                  (5, np.linspace(-1, 1.5, 5)), (10, np.zeros(10)),
                                  (10, np.full(10, -1.0))])
def test_rosenbrock_bfgs_step_for_step(n, x0):
    r, s, xr, xs = _both(_rosen_fg, x0, "BFGS")
    # 40-90 iterations on a curved valley: rounding (summation order) grows to ~1e-7
    _assert_same(r, s, xr, xs, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("n,x0", [(5, np.full(5, -1.0)), (10, np.zeros(10)),
                                  (10, np.linspace(-2, 2, 10))])
def test_rosenbrock_cg_prefix(n, x0):
    # SciPy's own CG takes 75-120 iterations from x0 + 1e-15 noise here (chaotic):
    # the first 20 iterates agree, and both converge
    r, s, xr, xs = _both(_rosen_fg, x0, "CG")
    np.testing.assert_allclose(xr[:20], xs[:20], rtol=1e-8, atol=1e-12)
    assert r.success and s.success


def _barrier(x):
    # +inf (NaN gradient) outside the domain: SciPy's Moré-Thuente search fails on the
    # infinite value, its bracketing/zoom search takes over
    c = 3.0 * np.arange(1, x.size + 1)
    if np.any(x <= 0):
        return np.inf, np.full_like(x, np.nan)
    return np.sum(c * x - np.log(x)), c - 1 / x


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("x0", [np.ones(4), np.full(3, 0.5)])
def test_second_line_search_after_a_failed_first(monkeypatch, method, x0):
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(_barrier, x0, method)
    assert ev.w1_none >= 2 and ev.w2_calls == ev.w1_none and ev.w2_none == 0
    _assert_same(r, s, xr, xs, rtol=1e-8)
    assert r.success and r.nfev > r.njev      # the zoom evaluates f without g


def _quarter_norm(x):
    # ||x||^(1/2): the searches fail at x0 (no step satisfies the curvature condition)
    q = x @ x
    return np.sqrt(np.sqrt(q)), 0.5 * x / q ** 0.75


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_both_searches_fail_precision_loss(monkeypatch, method):
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(_quarter_norm, np.array([1.0, 2.0, -1.5]), method)
    assert ev.w1_none == 1 and ev.w2_none == 1
    _assert_same(r, s, xr, xs)
    assert r.status == 2 and r.reason == Status.PRECISION and r.nit == 0
    np.testing.assert_array_equal(r.x, [1.0, 2.0, -1.5])       # the last iterate


_B = np.random.default_rng(3).standard_normal((10, 3)) * 2
_COUNTS = np.array([0.0, 1, 3, 0, 2, 5, 1, 0, 4, 2])


def _poisson(b):
    z = _B @ b
    with np.errstate(over="ignore", invalid="ignore"):
        mu = np.exp(z)
        return np.sum(mu - _COUNTS * z), _B.T @ (mu - _COUNTS)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("x0", [np.full(3, 3.0), np.array([40.0, -10.0, 5.0])])
def test_poisson_overflow(method, x0):
    # exp overflows along the first searches: fallbacks, and the runs that end in
    # precision loss end where SciPy's do
    r, s, xr, xs = _both(_poisson, x0, method)
    _assert_same(r, s, xr, xs, rtol=1e-8)


def _linear(x):
    return -np.sum(x), -np.ones_like(x)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("maxiter", [3, None])
def test_unbounded_bracketing_runs_out(monkeypatch, method, maxiter):
    # f unbounded below along every direction: the Moré-Thuente search runs out of
    # its 100 evaluations, the bracketing doubles 10 times and SciPy takes its last
    # trial without a slope (the gradient is then asked for); BFGS meets y.s == 0
    # (rho = 1000).  Without maxiter the run ends when f overflows (precision loss).
    if method == "CG" and maxiter is None:
        maxiter = 40
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(_linear, np.zeros(2), method,
                         options=None if maxiter is None else {"maxiter": maxiter})
    assert ev.w2_no_slope >= 3
    _assert_same(r, s, xr, xs, rtol=1e-12)
    if method == "BFGS" and maxiter is not None:
        np.testing.assert_allclose(r.hess_inv, s.hess_inv, rtol=1e-12)


def _concave(x):
    return -0.5 * (x @ x), -x


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_negative_curvature_update(monkeypatch, method):
    # y.s < 0: SciPy's BFGS updates H all the same (rho = 1 / y.s < 0)
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(_concave, np.array([1.0, 0.5]), method, options={"maxiter": 2})
    assert ev.w2_no_slope >= 1
    _assert_same(r, s, xr, xs, rtol=1e-12)
    if method == "BFGS":
        np.testing.assert_allclose(r.hess_inv, s.hess_inv, rtol=1e-12)


_RNG = np.random.default_rng(1)
_X = np.column_stack([np.ones(300), _RNG.standard_normal((300, 4))])
_Y = (_X @ np.array([0.3, 1.0, -2.0, 0.5, 0.0]) + _RNG.standard_normal(300) > 0).astype(float)


def _logit(b):
    z = _X @ b
    return np.sum(np.logaddexp(0, z) - _Y * z), _X.T @ (expit(z) - _Y)


def _probit(b):
    # statsmodels' Probit: loglike = sum log Phi(q z), q = 2y - 1
    q = 2 * _Y - 1
    z = q * (_X @ b)
    lc = log_ndtr(z)
    ratio = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - lc)
    return -np.sum(lc), -_X.T @ (q * ratio)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("fun", [_logit, _probit], ids=["logit", "probit"])
@pytest.mark.parametrize("x0", [np.zeros(5), np.full(5, 2.0)], ids=["zero", "far"])
def test_regression_step_for_step(method, fun, x0):
    r, s, xr, xs = _both(fun, x0, method)
    _assert_same(r, s, xr, xs, rtol=1e-8)
    f = lambda b: fun(b)[0]
    g = lambda b: fun(b)[1]
    r, s, xr, xs = _both(f, x0, method, jac=g)
    _assert_same(r, s, xr, xs, rtol=1e-8)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("case", ["rosen", "logit"])
def test_finite_differences_counts(method, case):
    # SciPy's absolute step; a finite-difference gradient counts in njev (SciPy's
    # ngev) and its evaluations in nfev.  Differences amplify rounding (1/h), so the
    # iterates agree to a few digits only
    if case == "rosen":
        f, x0 = so.rosen, np.zeros(2)
    else:
        f, x0 = (lambda b: _logit(b)[0]), np.zeros(5)
    r, s, xr, xs = _both(f, x0, method, jac=None)
    assert (r.nit, r.nfev, r.njev, r.status, r.message) == \
        (s.nit, s.nfev, s.njev, s.status, s.message)
    np.testing.assert_allclose(xr, xs, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("x0", [np.array([10.0, 10.0, 10.0, 10.0]), np.full(3, 5.0)])
def test_cg_descent_condition_rejects_a_wolfe1_step(monkeypatch, x0):
    # sqrt(1 + x^2) from far away: Moré-Thuente finds a step, but the next PR+
    # direction is not a sufficient descent direction there; SciPy rejects it and
    # searches again with bracketing/zoom under the same condition
    def fun(x):
        if x0.size == 3:
            return np.sum(np.exp(x)) + np.sum(x * x), np.exp(x) + 2 * x
        return np.sum(np.sqrt(1 + x * x)), x / np.sqrt(1 + x * x)
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(fun, x0, "CG")
    assert ev.w1_none == 0 and ev.w2_calls >= 1
    _assert_same(r, s, xr, xs, rtol=1e-10)


def test_cg_without_rejections(monkeypatch):
    ev = _Events(monkeypatch)
    r, s, xr, xs = _both(_logit, np.zeros(5), "CG")
    assert ev.w2_calls == 0
    _assert_same(r, s, xr, xs, rtol=1e-8)


@pytest.mark.parametrize("fun,x0", [(_rosen_fg, np.zeros(2)), (_logit, np.zeros(5)),
                                    (_barrier, np.ones(4))])
def test_hess_inv_is_scipys(fun, x0):
    r, s, xr, xs = _both(fun, x0, "BFGS")
    np.testing.assert_allclose(r.hess_inv, s.hess_inv, rtol=1e-8, atol=1e-12)


def test_hess_inv_not_updated_after_the_last_iteration():
    # the gradient test comes before the update: one step on a quadratic whose
    # minimizer the first trial step (1 here, |g0| = 1) hits exactly leaves H0 = I
    r, s, _, _ = _both(lambda x: (0.5 * x @ x, x.copy()), np.array([0.6, -0.8]), "BFGS")
    assert r.nit == s.nit == 1
    np.testing.assert_array_equal(r.hess_inv, np.eye(2))
    np.testing.assert_array_equal(s.hess_inv, np.eye(2))


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_maxiter_status_as_scipy(method):
    # maxiter=0, and convergence on the last allowed iteration, read as status 1
    for opts in ({"maxiter": 0}, {"maxiter": 19 if method == "BFGS" else 18}):
        r, s, xr, xs = _both(_rosen_fg, np.zeros(2), method, options=opts)
        _assert_same(r, s, xr, xs, rtol=1e-7)
        assert r.status == 1


def test_bfgs_xrtol():
    for xrtol in (1e-3, 0.1):
        r, s, xr, xs = _both(_rosen_fg, np.array([-1.2, 1.0]), "BFGS", options={"xrtol": xrtol})
        _assert_same(r, s, xr, xs, rtol=1e-8)
        assert r.success and r.nit < 32         # (32 without xrtol)


def test_statsmodels_probit_fmin_bfgs():
    sm = pytest.importorskip("statsmodels.discrete.discrete_model")
    from neurenix.optimize import fmin_bfgs
    mod = sm.Probit(_Y, _X)
    f = lambda b: -mod.loglike(b) / _X.shape[0]
    g = lambda b: -mod.score(b) / _X.shape[0]
    out_r = fmin_bfgs(f, np.zeros(5), g, full_output=True, disp=0)
    out_s = so.fmin_bfgs(f, np.zeros(5), g, full_output=True, disp=0)
    np.testing.assert_allclose(out_r[0], out_s[0], rtol=1e-9)
    assert out_r[4:] == out_s[4:]           # func_calls, grad_calls, warnflag


# ------------------------------------------------------------------ the second search
def _w2_cases():
    return [
        (lambda a: (a - 3) ** 2, lambda a: 2 * (a - 3)),
        (lambda a: np.cos(a) + 0.1 * a, lambda a: -np.sin(a) + 0.1),
        (lambda a: -a + 0.01 * a ** 4, lambda a: -1 + 0.04 * a ** 3),
        (lambda a: 10 * np.exp(-a) + 1e-3 * a, lambda a: -10 * np.exp(-a) + 1e-3),
        (lambda a: abs(a - 0.7) - 0.01 * a, lambda a: np.sign(a - 0.7) - 0.01),
        (lambda a: -a, lambda a: -1.0),
        (lambda a: 1e9 * (a - 1e-9) ** 2, lambda a: 2e9 * (a - 1e-9)),
        (lambda a: np.sin(5 * a) - a, lambda a: 5 * np.cos(5 * a) - 1),
        (lambda a: np.inf if a > 2 else (a - 1.9) ** 2 - a, lambda a: 2 * (a - 1.9) - 1),
    ]


def _counted(fn, counter, key):
    def wrapped(a):
        counter[key] += 1
        return fn(a)
    return wrapped


@pytest.mark.parametrize("k", range(9))
def test_scalar_search_wolfe2_is_scipys(k):
    F, D = _w2_cases()[k]
    f0, d0 = F(0.0), D(0.0)
    extras = [None, lambda a, p: a > 0.9, lambda a, p: p < f0 - 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for old in (None, f0 + 0.5, f0 + 1e-3, f0, f0 + 100):
            for c1, c2 in ((1e-4, 0.9), (1e-4, 0.1), (0.3, 0.4)):
                for amax in (None, 1e100, 0.5, 50.0):
                    for extra in extras:
                        cr, cs = {"f": 0, "g": 0}, {"f": 0, "g": 0}
                        r = scalar_search_wolfe2(_counted(F, cr, "f"), _counted(D, cr, "g"),
                                                 f0, old, d0, c1, c2, amax, extra)
                        s = _sls.scalar_search_wolfe2(_counted(F, cs, "f"),
                                                      _counted(D, cs, "g"), f0, old, d0,
                                                      c1, c2, amax, extra)
                        assert cr == cs
                        assert [v is None for v in r] == [v is None for v in s]
                        np.testing.assert_allclose([v for v in r if v is not None],
                                                   [v for v in s if v is not None],
                                                   rtol=1e-13)


def test_interpolants_are_scipys():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        a, b, c = rng.uniform(-2, 2, 3)
        fa, fb, fc, fpa = rng.standard_normal(4) * 10.0 ** rng.integers(-3, 4)
        for mine, ref in ((cubicmin(a, fa, fpa, b, fb, c, fc),
                           _sls._cubicmin(a, fa, fpa, b, fb, c, fc)),
                          (quadmin(a, fa, fpa, b, fb), _sls._quadmin(a, fa, fpa, b, fb))):
            assert (mine is None) == (ref is None)
            if ref is not None:
                np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-12)
    # degenerate input: SciPy's floating-point exceptions give None
    assert cubicmin(0.0, 1.0, -1.0, 1.0, 2.0, 1.0, 2.0) is None
    assert quadmin(0.0, 1.0, -1.0, 0.0, 2.0) is None
    assert _sls._quadmin(0.0, 1.0, -1.0, 0.0, 2.0) is None


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_interrupt_and_maxtime_inside_the_second_search(method):
    # Ctrl-C / maxtime during the bracketing/zoom search: the last iterate is returned
    seen = {"inf": False}

    def interrupted(x):
        out = _barrier(x)
        if seen["inf"]:
            raise KeyboardInterrupt
        seen["inf"] = not np.isfinite(out[0])
        return out
    ref = minimize(_barrier, np.ones(4), jac=True, method=method,
                   options={"maxiter": 1 if method == "BFGS" else 0})
    r = minimize(interrupted, np.ones(4), jac=True, method=method)
    assert r.reason == Status.INTERRUPTED and not r.success
    np.testing.assert_array_equal(r.x, ref.x)
    assert r.fun == ref.fun and r.nit == ref.nit

    def slow(x):
        out = _barrier(x)
        if not np.isfinite(out[0]):
            time.sleep(0.3)
        return out
    r = minimize(slow, np.ones(4), jac=True, method=method, options={"maxtime": 0.2})
    assert r.reason == Status.MAXTIME
    np.testing.assert_array_equal(r.x, ref.x)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_float32_through_the_second_search(method):
    # (the searches meet +inf on the way; f ~ 10 leaves float32 ~1e-6 of precision)
    r = minimize(_barrier, np.ones(4, np.float32), jac=True, method=method,
                 options={"gtol": 1e-2})
    assert r.x.dtype == np.float32 and r.jac.dtype == np.float32 and r.success
    np.testing.assert_allclose(r.x, 1 / (3.0 * np.arange(1, 5)), rtol=1e-2)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("norm", [2, 1, 3.5, -np.inf])
def test_norm_option(method, norm):
    r, s, xr, xs = _both(_logit, np.zeros(5), method, options={"norm": norm, "gtol": 1e-4})
    _assert_same(r, s, xr, xs, rtol=1e-8)


def test_hess_inv0():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((5, 5))
    H0 = A @ A.T / 5 + np.eye(5)
    r, s, xr, xs = _both(_logit, np.zeros(5), "BFGS", options={"hess_inv0": H0})
    _assert_same(r, s, xr, xs, rtol=1e-8)
    np.testing.assert_allclose(r.hess_inv, s.hess_inv, rtol=1e-8, atol=1e-12)
    # no iteration: H0 itself
    r = minimize(_logit, np.zeros(5), jac=True, method="BFGS",
                 options={"hess_inv0": H0, "maxiter": 0})
    np.testing.assert_array_equal(r.hess_inv, H0)
    nan_h = H0.copy()
    nan_h[0, 0] = np.nan
    for bad in (-H0, A, np.eye(4), nan_h):
        with pytest.raises(ValueError, match="hess_inv0"):
            minimize(_logit, np.zeros(5), jac=True, method="BFGS", options={"hess_inv0": bad})


def test_fmin_bfgs_cg_options_as_scipy():
    from neurenix.optimize import fmin_bfgs, fmin_cg
    f = lambda b: _logit(b)[0]
    g = lambda b: _logit(b)[1]
    H0 = np.diag(np.arange(1.0, 6.0)) / 100
    for kw in ({"norm": 2}, {"xrtol": 1e-2}, {"hess_inv0": H0}):
        r = fmin_bfgs(f, np.zeros(5), g, full_output=True, disp=0, **kw)
        s = so.fmin_bfgs(f, np.zeros(5), g, full_output=True, disp=0, **kw)
        np.testing.assert_allclose(r[0], s[0], rtol=1e-8)
        assert r[4:] == s[4:]
    r = fmin_cg(f, np.zeros(5), g, full_output=True, disp=0, norm=1)
    s = so.fmin_cg(f, np.zeros(5), g, full_output=True, disp=0, norm=1)
    np.testing.assert_allclose(r[0], s[0], rtol=1e-8)
    assert r[2:] == s[2:]


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_return_all_gives_scipys_allvecs(method):
    # SciPy's return_all: x0, then every iterate, in the result's allvecs
    x0 = np.array([-1.2, 1.0, 0.3])
    s = so.minimize(so.rosen, x0, jac=so.rosen_der, method=method,
                    options={"return_all": True})
    r = minimize(so.rosen, x0, jac=so.rosen_der, method=method,
                 options={"return_all": True})
    assert len(r.allvecs) == len(s.allvecs) == r.nit + 1
    np.testing.assert_allclose(np.array(r.allvecs), np.array(s.allvecs), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(r.allvecs[0], x0)
    np.testing.assert_array_equal(r.allvecs[-1], r.x)
    assert "allvecs" not in minimize(so.rosen, x0, jac=so.rosen_der, method=method)


@pytest.mark.parametrize("order", [np.inf, -np.inf, 2, 1, 0.5, -1])
def test_gradient_norm_is_scipys_vecnorm_bitwise(order):
    # the loops' gtol test uses SciPy's vecnorm, formed as NumPy forms it (NumPy's
    # kernels for these powers, its pairwise summation)
    from scipy.optimize._optimize import vecnorm
    from neurenix._ext._lbfgs import gnorm
    rng = np.random.default_rng(0)
    for n in list(range(1, 140)) + [257, 1000, 20000]:
        g = rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)
        assert gnorm(g, order) == vecnorm(g, order), n


def test_bfgs_norm_two_counts_as_scipy():
    f = lambda x: (so.rosen(x), so.rosen_der(x))
    x0 = np.linspace(-1.0, 1.5, 12)
    r = minimize(f, x0, jac=True, method="BFGS", options={"norm": 2, "gtol": 1e-6})
    s = so.minimize(f, x0, jac=True, method="BFGS", options={"norm": 2, "gtol": 1e-6})
    assert (r.status, r.nit, r.nfev) == (s.status, s.nit, s.nfev)
