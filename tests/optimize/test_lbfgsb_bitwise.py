"""L-BFGS-B reproduces SciPy's iterates bit for bit (float64, with and without bounds).

The float64 loop follows L-BFGS-B 3.0 as SciPy runs it, in its order of
operations (BLAS/LAPACK calls where SciPy makes them, explicit loops in their
order), so every iterate, and the counts and status, must equal SciPy's
exactly (``np.array_equal``), not up to rounding.  SciPy is the independent
reference here.
"""
import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import rosen, rosen_der

import neurenix.optimize as no


def _trace(mod, fun, x0, **kw):
    xs = []

    def cb(xk, *args):
        xs.append(np.array(xk.x if hasattr(xk, "x") else xk, copy=True))

    r = mod.minimize(fun, x0.copy(), method="L-BFGS-B", callback=cb, **kw)
    return r, xs


def _assert_same(fun, x0, **kw):
    rs, xs = _trace(so, fun, x0, **kw)
    rn, xn = _trace(no, fun, x0, **kw)
    assert len(xs) == len(xn), (len(xs), len(xn))
    for k, (a, b) in enumerate(zip(xs, xn)):
        assert np.array_equal(a, b), f"iterate {k} differs by {np.max(np.abs(a - b))}"
    assert np.array_equal(rs.x, rn.x)
    assert rs.fun == rn.fun
    assert (rs.nit, rs.nfev, rs.njev, rs.status) == (rn.nit, rn.nfev, rn.njev, rn.status)
    return rs


def _rosen_case(n, seed, bounds=None, **kw):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.5, 1.5, n)
    return (rosen, x0, dict(jac=rosen_der, bounds=bounds, **kw))


def _quad(n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    H = A @ A.T / n + np.eye(n)
    b = rng.standard_normal(n) * 3.0

    def fg(x):
        Hx = H @ x
        return 0.5 * x @ Hx - b @ x, Hx - b
    return fg


def _mixed_bounds(n, seed):
    # every bound type: none (nbd 0), lower (1), both (2), upper (3), one fixed
    rng = np.random.default_rng(seed)
    bounds = []
    for i in range(n):
        k = i % 4
        lo, hi = -0.3 - rng.uniform(0, 0.2), 0.3 + rng.uniform(0, 0.2)
        bounds.append([(None, None), (lo, None), (lo, hi), (None, hi)][k])
    bounds[1] = (0.1, 0.1)
    return bounds


def _logistic(n_samples, n_features, seed):
    # scikit-learn's binary LogisticRegression objective (l2, C=1, intercept),
    # handed to L-BFGS-B with jac=True and no bounds, as sklearn does
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    w_true = rng.standard_normal(n_features)
    y = (X @ w_true + 0.5 * rng.standard_normal(n_samples) > 0).astype(float) * 2 - 1

    def fg(w):
        z = X @ w[:-1] + w[-1]
        yz = y * z
        loss = np.sum(np.logaddexp(0.0, -yz)) + 0.5 * w[:-1] @ w[:-1]
        s = -y * np.exp(-np.logaddexp(0.0, yz))
        grad = np.empty_like(w)
        grad[:-1] = X.T @ s + w[:-1]
        grad[-1] = s.sum()
        return loss, grad
    return fg, np.zeros(n_features + 1)


CASES = {
    "rosen8-unbounded": _rosen_case(8, 1),
    "rosen8-box": _rosen_case(8, 2, bounds=[(-0.5, 0.8)] * 8),
    "rosen30-unbounded-m3": _rosen_case(30, 3, options={"maxcor": 3}),
    "rosen30-box-m4": _rosen_case(30, 4, bounds=[(-0.2, 0.9)] * 30, options={"maxcor": 4}),
    "rosen12-mixed": _rosen_case(12, 5, bounds=_mixed_bounds(12, 5)),
    "rosen200-unbounded": _rosen_case(200, 6),
    "rosen200-lower": _rosen_case(200, 7, bounds=[(0.0, None)] * 200),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rosen_iterates_bitwise(name):
    fun, x0, kw = CASES[name]
    _assert_same(fun, x0, **kw)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_active_bounds_bitwise(seed):
    n = 20
    fg = _quad(n, seed)
    rs = _assert_same(fg, np.zeros(n), jac=True, bounds=[(-0.4, 0.4)] * n)
    assert np.any(np.abs(rs.x) == 0.4)          # some bounds are active


@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_unbounded_bitwise(seed):
    n = 50
    fg = _quad(n, seed + 10)
    _assert_same(fg, np.ones(n), jac=True)


@pytest.mark.parametrize("shape", [(200, 10), (500, 40)])
def test_logistic_regression_bitwise(shape):
    fg, w0 = _logistic(*shape, seed=shape[1])
    _assert_same(fg, w0, jac=True, options={"gtol": 1e-6, "maxiter": 200})


@pytest.mark.parametrize("bounds", [None, [(-1.0, 0.7)] * 6])
def test_finite_difference_gradient_bitwise(bounds):
    x0 = np.array([-1.2, 1.0, 0.3, -0.5, 0.9, 0.1])
    _assert_same(rosen, x0, bounds=bounds)


def test_limits_bitwise():
    fun, x0, kw = _rosen_case(10, 8)
    _assert_same(fun, x0, **kw, options={"maxiter": 7})
    _assert_same(fun, x0, **kw, options={"maxfun": 9})


@pytest.mark.parametrize("bounds", [None, [(-0.5, 2.0)] * 40])
def test_large_memory_bitwise(bounds):
    # maxcor above the 32 pairs the matrices start with: the memory grows by
    # doubling (32 -> 64 -> 80) and then wraps, as SciPy's fixed ring does
    fun, x0, kw = _rosen_case(40, 9, bounds=bounds, options={"maxcor": 80})
    r = _assert_same(fun, x0, **kw)
    assert r.nit > 80


# ------------------------------------------------------------------ float32 x0
# SciPy iterates in float64 for a float32 x0 too: without bounds its
# ScalarFunction evaluates fun (and the finite differences, steps from
# float32's eps) at the float32 cast of each iterate and hands the gradient back
# unrounded in float64; with bounds, np.clip against the float64 bounds promotes
# x0 and the whole run is float64.  neurenix gives x and jac back in float32
# ("float32 stays float32"), so r.x == s.x.astype(float32); the callback
# receives the float64 iterate, as SciPy's.

def _assert_same32(fun, x0, **kw):
    assert x0.dtype == np.float32
    rs, xs = _trace(so, fun, x0, **kw)
    rn, xn = _trace(no, fun, x0, **kw)
    assert len(xs) == len(xn), (len(xs), len(xn))
    for k, (a, b) in enumerate(zip(xs, xn)):
        assert a.dtype == b.dtype == np.float64
        assert np.array_equal(a, b), f"iterate {k} differs by {np.max(np.abs(a - b))}"
    assert rn.x.dtype == rn.jac.dtype == rn.hess_inv.dtype == np.float32
    assert np.array_equal(rn.x, rs.x.astype(np.float32))
    assert np.array_equal(rn.jac, rs.jac.astype(np.float32))
    assert rs.fun == rn.fun
    assert (rs.nit, rs.nfev, rs.njev, rs.status) == (rn.nit, rn.nfev, rn.njev, rn.status)
    return rs


def _f32_start(n, seed):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, n).astype(np.float32)


def _rosen_fg(x):
    return rosen(x), rosen_der(x)


def _rosen64(x):
    return rosen(x.astype(np.float64))


@pytest.mark.parametrize("bounds", [None, [(-1.0, 1.2)] * 7, [(None, None)] * 7])
@pytest.mark.parametrize("grad", ["jac", "combined", "fd", "fd64"])
def test_float32_bitwise(bounds, grad):
    x0 = _f32_start(7, 3)
    fun, kw = {"jac": (rosen, dict(jac=rosen_der)), "combined": (_rosen_fg, dict(jac=True)),
               "fd": (rosen, {}), "fd64": (_rosen64, {})}[grad]
    seen = set()

    def f(x, *a):
        seen.add(x.dtype)
        return fun(x, *a)
    _assert_same32(f, x0, bounds=bounds, **kw)
    # unbounded, the objective sees float32 points; any bounds promote the run
    assert seen == {np.dtype(np.float32 if bounds is None else np.float64)}


def test_float32_gradient_in_float64_at_x0():
    # a float32 x0 whose objective returns float64 gradients: used unrounded, at x0 too
    x0 = _f32_start(6, 4)

    def fg(x):
        x = x.astype(np.float64)
        return rosen(x), rosen_der(x)
    _assert_same32(fg, x0, jac=True)
    _assert_same32(lambda x: fg(x)[0], x0, jac=lambda x: fg(x)[1])


@pytest.mark.parametrize("opts", [dict(maxcor=3), dict(maxiter=5), dict(maxfun=40)])
def test_float32_limits_bitwise(opts):
    _assert_same32(rosen, _f32_start(5, 5), options=opts)
