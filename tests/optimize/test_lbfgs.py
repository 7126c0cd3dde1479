"""L-BFGS / L-BFGS-B against SciPy, the compact-form inverse Hessian, and the
Moré–Thuente line search against the strong Wolfe conditions."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize, Bounds, Status
from neurenix.optimize._lbfgs import LbfgsInvHessProduct
from neurenix._core.linesearch import scalar_search_wolfe, line_search
from neurenix._ext import _lbfgs as K

from ._problems import CASES, x0_for, rosen_chained, rosen_uncoupled, quadratic


@pytest.mark.parametrize("name,f,n", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_matches_scipy_unconstrained(name, f, n):
    x0 = x0_for(name, n)
    r = minimize(f, x0, jac=True, method="L-BFGS")
    s = so.minimize(f, x0, jac=True, method="L-BFGS-B")
    assert r.success, r.message
    assert r.fun == pytest.approx(s.fun, rel=1e-4, abs=1e-7)
    if s.fun < 1e-6:        # unique global minimiser reached by both
        np.testing.assert_allclose(r.x, s.x, atol=2e-3)
    assert np.max(np.abs(r.jac)) <= 1e-5 or r.reason == Status.FTOL
    assert r.nfev <= 1.1 * s.nfev + 2


def test_nfev_not_above_scipy_on_most():
    wins = 0
    for name, f, n in CASES:
        x0 = x0_for(name, n)
        wins += minimize(f, x0, jac=True, method="L-BFGS-B").nfev <= \
            so.minimize(f, x0, jac=True, method="L-BFGS-B").nfev
    assert wins >= 0.75 * len(CASES)


@pytest.mark.parametrize("n", [2, 10, 50])
def test_bounded_matches_scipy(n):
    x0 = x0_for("rosen_chained", n)
    bounds = [(-2.0, 0.5)] * n
    x0 = np.clip(x0, -2, 0.5)
    r = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    s = so.minimize(rosen_chained, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    assert r.success
    assert r.fun == pytest.approx(s.fun, rel=1e-6)
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    assert np.all(r.x >= -2) and np.all(r.x <= 0.5)


def test_bounded_quadratic_closed_form():
    # min 0.5 sum d x^2 - sum x on a box: solution clip(1/d, lo, hi)
    rng = np.random.default_rng(0)
    n = 200
    d = rng.uniform(0.1, 10, n)
    lo = rng.uniform(-1, 0.5, n)
    hi = lo + rng.uniform(0.1, 2, n)
    r = minimize(quadratic, np.clip(np.zeros(n), lo, hi), args=(d,), jac=True,
                 bounds=Bounds(lo, hi), options={"gtol": 1e-10, "ftol": 0})
    np.testing.assert_allclose(r.x, np.clip(1 / d, lo, hi), atol=1e-8)
    assert r.reason in (Status.GTOL, Status.FTOL)


def test_half_bounded_and_infinite_bounds():
    r = minimize(rosen_chained, np.zeros(6), jac=True, bounds=[(None, 0.8)] + [(None, None)] * 5)
    s = so.minimize(rosen_chained, np.zeros(6), jac=True, method="L-BFGS-B",
                    bounds=[(None, 0.8)] + [(None, None)] * 5)
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    assert r.x[0] <= 0.8


def test_large_uncoupled_rosenbrock_float32_and_float64():
    n = 100_000
    x0 = x0_for("rosen_uncoupled", n)
    r = minimize(rosen_uncoupled, x0, jac=True, method="L-BFGS")
    assert r.success and r.x.dtype == np.float64
    np.testing.assert_allclose(r.x, 1.0, atol=1e-3)
    r32 = minimize(rosen_uncoupled, x0.astype(np.float32), jac=True, method="L-BFGS",
                   options={"gtol": 1e-3})
    assert r32.x.dtype == np.float32 and r32.jac.dtype == np.float32
    np.testing.assert_allclose(r32.x, 1.0, atol=1e-2)


def _dense_lbfgs_inverse(S, Y):
    """H from the compact form of Byrd, Nocedal & Schnabel (1994), Thm 2.2:
    H = g I + [S gY] [[R^-T (D + g Y^T Y) R^-1, -R^-T], [-R^-1, 0]] [S gY]^T."""
    S, Y = S.T, Y.T               # columns are pairs, oldest first
    n, k = S.shape
    g = S[:, -1] @ Y[:, -1] / (Y[:, -1] @ Y[:, -1])
    SY = S.T @ Y
    R = np.triu(SY)
    D = np.diag(np.diag(SY))
    Ri = np.linalg.inv(R)
    mid = np.block([[Ri.T @ (D + g * Y.T @ Y) @ Ri, -Ri.T], [-Ri, np.zeros((k, k))]])
    W = np.hstack([S, g * Y])
    return g * np.eye(n) + W @ mid @ W.T


def test_hess_inv_is_a_complete_linear_operator():
    # built without calling LinearOperator.__init__ per result (cost), it must still
    # carry every attribute that __init__ sets in the installed SciPy (1.18 adds _xp)
    from scipy.sparse.linalg import LinearOperator
    r = minimize(rosen_chained, x0_for("rosen_chained", 6), jac=True, method="L-BFGS",
                 options={"maxiter": 5})
    ref = object.__new__(LbfgsInvHessProduct)
    LinearOperator.__init__(ref, np.float64, (6, 6))
    for H in (r.hess_inv, LbfgsInvHessProduct(r.hess_inv.sk, r.hess_inv.yk)):
        assert set(ref.__dict__) <= set(H.__dict__)
        assert H.shape == (6, 6) and H.dtype == np.float64
        v = np.arange(6.0)
        np.testing.assert_allclose(H @ v, H.matvec(v))
        np.testing.assert_allclose((H.T @ v), H.rmatvec(v))
        np.testing.assert_allclose(H.todense() @ v, H.matvec(v), rtol=1e-12)


def test_hess_inv_matches_compact_form():
    x0 = x0_for("rosen_chained", 12)
    r = minimize(rosen_chained, x0, jac=True, method="L-BFGS", options={"maxiter": 25})
    H = r.hess_inv
    assert isinstance(H, LbfgsInvHessProduct) and H.n_corrs == 10
    ref = _dense_lbfgs_inverse(H.sk, H.yk)
    v = np.random.default_rng(1).standard_normal(12)
    np.testing.assert_allclose(H.matvec(v), ref @ v, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(H.todense(), ref, rtol=1e-7, atol=1e-10)
    # SciPy's operator uses H0 = I on the same pairs; ours is the matrix the
    # iteration used (H0 = gamma I), so they must differ unless gamma == 1
    sref = so.LbfgsInvHessProduct(H.sk, H.yk)
    assert not np.allclose(H.matvec(v), sref.matvec(v))


def test_two_loop_kernel_ring_buffer_float32():
    rng = np.random.default_rng(2)
    n, m = 7, 4
    S = rng.standard_normal((m, n)).astype(np.float32)
    A = rng.standard_normal((n, n))
    A = (A @ A.T + n * np.eye(n)).astype(np.float32)
    Y = (S @ A).astype(np.float32)         # y = A s: positive curvature
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(float), Y.astype(float))
    newest, count = 1, 3                   # pairs in slots 3, 0, 1 (oldest first)
    order = [3, 0, 1]
    gamma = float(S[1] @ Y[1] / (Y[1] @ Y[1]))
    ref = _dense_lbfgs_inverse(S[order].astype(float), Y[order].astype(float))
    q = rng.standard_normal(n).astype(np.float32)
    out = q.copy()
    K.two_loop(S, Y, rho, newest, count, gamma, out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref @ q, rtol=1e-4, atol=1e-5)


def _check_strong_wolfe(phi, dphi, stp, c1, c2):
    assert phi(stp) <= phi(0) + c1 * stp * dphi(0) + 1e-12
    assert abs(dphi(stp)) <= c2 * abs(dphi(0)) + 1e-12


@pytest.mark.parametrize("stp0", [1e-3, 1e-1, 1.0, 10.0, 1e3])
def test_more_thuente_paper_functions(stp0):
    # Moré & Thuente (1994), Table 1-2 test functions (1) and (2)
    b = 2.0
    fns = [
        (lambda a: -a / (a * a + b), lambda a: (a * a - b) / (a * a + b) ** 2, 1e-3, 0.1),
        (lambda a: (a + 0.004) ** 5 - 2 * (a + 0.004) ** 4,
         lambda a: 5 * (a + 0.004) ** 4 - 8 * (a + 0.004) ** 3, 0.1, 0.1),
    ]
    for phi, dphi, c1, c2 in fns:
        stp, f, g, nev, task = scalar_search_wolfe(lambda a: (phi(a), dphi(a)), phi(0), dphi(0),
                                                   stp0, c1=c1, c2=c2, xtol=1e-10, maxls=50)
        assert task == "CONVERGENCE" and stp is not None, task
        _check_strong_wolfe(phi, dphi, stp, c1, c2)
        assert nev <= 15


def test_line_search_backtracks_over_nonfinite():
    # phi is +inf beyond 0.5: the search must come back and meet Wolfe
    phi = lambda a: (a - 0.4) ** 2 if a < 0.5 else np.inf
    dphi = lambda a: 2 * (a - 0.4) if a < 0.5 else np.nan
    stp, f, g, nev, task = scalar_search_wolfe(lambda a: (phi(a), dphi(a)), phi(0), dphi(0), 4.0)
    assert stp is not None and stp < 0.5
    _check_strong_wolfe(phi, dphi, stp, 1e-4, 0.9)


def test_scipy_style_line_search():
    x = np.array([-1.2, 1.0])
    f = lambda x: so.rosen(x)
    p = -so.rosen_der(x)
    alpha, fc, gc, fnew, fold, slope = line_search(f, so.rosen_der, x, p)
    _check_strong_wolfe(lambda a: f(x + a * p), lambda a: so.rosen_der(x + a * p) @ p,
                        alpha, 1e-4, 0.9)
    assert fnew == pytest.approx(f(x + alpha * p))


def test_minimize_backtracks_over_inf_region():
    # f = +inf outside |x| < 3; the first unit step of L-BFGS overshoots
    def f(x):
        if np.any(np.abs(x) >= 3):
            return np.inf, np.full_like(x, np.nan)
        return np.sum((x - 2.5) ** 2 * 10), 20 * (x - 2.5)
    r = minimize(f, np.zeros(3), jac=True, method="L-BFGS")
    assert r.success
    np.testing.assert_allclose(r.x, 2.5, atol=1e-5)


def test_nonfinite_everywhere_gives_status_not_crash():
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) > 1:
            return np.nan, np.full_like(x, np.nan)
        return float(x @ x), 2 * x
    r = minimize(f, np.ones(2), jac=True, method="L-BFGS", options={"maxls": 5})
    assert not r.success and r.reason == Status.NONFINITE
    np.testing.assert_array_equal(r.x, np.ones(2))
    assert len(calls) < 20


def test_hess_inv_from_memory_equals_public_constructor():
    x0 = x0_for("rosen_chained", 12)
    for dtype in (np.float64, np.float32):
        r = minimize(rosen_chained, x0.astype(dtype), jac=True, method="L-BFGS",
                     options={"maxiter": 15})
        H = r.hess_inv
        P = LbfgsInvHessProduct(H.sk, H.yk)       # rho and gamma recomputed from the pairs
        assert H.dtype == dtype and H.shape == (12, 12)
        np.testing.assert_allclose(H.rho, P.rho, rtol=1e-5 if dtype == np.float32 else 1e-12)
        assert H.gamma == pytest.approx(P.gamma, rel=1e-5 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(H.todense(), P.todense(),
                                   rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG"])
@pytest.mark.parametrize("jac_mode", ["combined", "callable"])
def test_user_functions_get_fresh_copies(method, jac_mode):
    """As SciPy (which passes ``np.copy(x)``): every call sees its own array, so a
    function that keeps or scribbles on its argument changes nothing."""
    x0 = x0_for("rosen_chained", 6)
    seen = []

    def fun(x):
        seen.append((x, x.copy()))
        out = rosen_chained(x)
        x[:] = 1e6                    # vandalise the argument after use
        return out if jac_mode == "combined" else out[0]

    def jac(x):
        seen.append((x, x.copy()))
        g = rosen_chained(x)[1]
        x[:] = -1e6
        return g
    kw = dict(jac=True) if jac_mode == "combined" else dict(jac=jac)
    r = minimize(fun, x0, method=method, **kw)
    clean = minimize(rosen_chained, x0, jac=True, method=method)
    np.testing.assert_array_equal(r.x, clean.x)
    assert r.nit == clean.nit and r.nfev == clean.nfev == sum(
        1 for a, _ in seen if a is not None) - (r.njev if jac_mode == "callable" else 0)
    ids = {id(a) for a, _ in seen}
    assert len(ids) == len(seen)      # never the same buffer twice
    assert r.njev == (r.nfev if jac_mode == "combined" else sum(1 for _ in seen) - r.nfev)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG"])
def test_counters_exact_after_callback_stop_and_interrupt(method):
    calls = [0]

    def fun(x):
        calls[0] += 1
        return rosen_chained(x)

    def cb(intermediate_result):
        if intermediate_result.nit == 5:
            raise StopIteration
    r = minimize(fun, x0_for("rosen_chained", 8), jac=True, method=method, callback=cb)
    assert r.reason == Status.CALLBACK and r.nit == 5
    assert r.nfev == r.njev == calls[0]

    calls[0] = 0

    def fun_interrupt(x):
        calls[0] += 1
        if calls[0] == 9:
            raise KeyboardInterrupt
        return rosen_chained(x)
    r = minimize(fun_interrupt, x0_for("rosen_chained", 8), jac=True, method=method)
    assert r.reason == Status.INTERRUPTED
    assert r.nfev == calls[0] - 1     # the interrupted call returned nothing (as SciPy counts)


def test_kernel_helpers():
    a = np.array([1.0, -0.0, np.nan])
    assert K.same_point(a, a.copy()) is True          # bitwise: a NaN matches itself
    assert K.same_point(a, np.array([1.0, 0.0, np.nan])) is False    # -0.0 is not 0.0
    assert K.same_point(a, a[:2]) is False
    assert K.same_point(a, a.astype(np.float32)) is None               # caller falls back
    assert K.same_point(a[::2], a[::2].copy()) is None
    for dt in (np.float64, np.float32):
        assert K.all_finite(np.array([1.0, -3e38, 0.0], dtype=dt)) is True
        for bad in (np.inf, -np.inf, np.nan):
            v = np.ones(9, dtype=dt)
            v[7] = bad
            assert K.all_finite(v) is False
    assert K.all_finite(np.ones(3, dtype=np.int64)) is None
    assert K.all_finite(np.ones((2, 2))) is None


def test_bounds_kind_matches_numpy():
    rng = np.random.default_rng(3)
    for dt in (np.float64, np.float32):
        for _ in range(30):
            lb = rng.choice([-np.inf, -1.0, 0.5], size=7).astype(dt)
            ub = rng.choice([np.inf, 2.0], size=7).astype(dt)
            fl, fu = np.isfinite(lb), np.isfinite(ub)
            want = 0 if not (fl.any() or fu.any()) else (2 if fl.all() and fu.all() else 1)
            assert K.bounds_kind(lb, ub) == want
            assert K.bounds_kind(lb[::-1].copy()[::1], list(ub)) == K.bounds_kind(lb[::-1], ub)
    assert K.bounds_kind(np.full(3, -np.inf), np.full(3, np.inf)) == 0
    # all-infinite Bounds run the unbounded iteration: same result as no bounds
    x0 = x0_for("rosen_chained", 6)
    r0 = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B")
    r1 = minimize(rosen_chained, x0, jac=True, method="L-BFGS-B",
                  bounds=Bounds(np.full(6, -np.inf), np.full(6, np.inf)))
    assert (r0.nit, r0.nfev) == (r1.nit, r1.nfev)
    np.testing.assert_array_equal(r0.x, r1.x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("maxcor", [1, 3, 5, 10, 13])
def test_bounded_coupled_quadratic_kkt(dtype, maxcor):
    # a coupled convex quadratic on a box cutting through it: many variables enter
    # and leave the free set, the memory wraps; the answer satisfies the KKT
    # conditions (the independent check) and matches SciPy's.  maxcor values on
    # both sides of the kernels' block width (4): memories of 1, 5 or 13 pairs
    # fill part of their last block of four
    rng = np.random.default_rng(7)
    n = 120
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * rng.uniform(0.5, 50.0, n)) @ Q.T
    bvec = rng.standard_normal(n) * 5

    def fun(x):
        x64 = x.astype(np.float64)
        g = A @ x64 - bvec
        return 0.5 * x64 @ (A @ x64) - bvec @ x64, g.astype(x.dtype)

    lo, hi = np.full(n, -0.3), np.full(n, 0.4)
    x0 = np.zeros(n, dtype=dtype)
    opts = {"maxcor": maxcor, "gtol": 1e-9 if dtype == np.float64 else 1e-3, "ftol": 0.0,
            "maxiter": 5000}
    r = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=Bounds(lo, hi), options=opts)
    assert r.x.dtype == dtype
    g = A @ r.x.astype(np.float64) - bvec
    tol = 1e-6 if dtype == np.float64 else 2e-2
    at_lo, at_hi = r.x <= lo + 1e-12, r.x >= hi - 1e-7
    free = ~(at_lo | at_hi)
    assert 10 < free.sum() < n - 10                     # both sets substantial
    assert np.all(np.abs(g[free]) <= tol * 50)
    assert np.all(g[at_lo] >= -tol * 50) and np.all(g[at_hi] <= tol * 50)
    if dtype == np.float64:
        s = so.minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=so.Bounds(lo, hi),
                        options=opts)
        assert r.fun == pytest.approx(s.fun, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(r.x, s.x, atol=1e-5)
