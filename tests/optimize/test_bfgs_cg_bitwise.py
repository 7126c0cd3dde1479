"""BFGS and CG reproduce SciPy's runs bit for bit (same iterates, counts, status).

The loops follow ``scipy.optimize._minimize_bfgs``/``_minimize_cg`` step for step,
and their inner and matrix products go through the BLAS library in the calls
NumPy makes for SciPy's expressions (``ddot``, ``dgemv``, ``dgemm``), so every
iterate is SciPy's on the same machine, not just up to rounding.  The reference
is SciPy itself, run on the same problem in the same process.
"""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize, fmin_bfgs

from ._problems import CASES, x0_for

SMALL = [c for c in CASES if c[2] <= 100]


def _numpy_and_scipy_blas_agree():
    """Whether NumPy's BLAS (which SciPy's BFGS/CG and line search reach through
    ``np.dot``) and SciPy's (which neurenix calls) give the same bits for the
    products used here: true where both OpenBLAS builds pick the same kernels (this
    project's machines); elsewhere bit-for-bit agreement is not promised."""
    from scipy.linalg import blas
    rng = np.random.default_rng(12345)
    for n in (1, 2, 3, 5, 8, 13, 31, 64, 100):
        a, b = rng.standard_normal(n), rng.standard_normal(n)
        A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        if np.dot(a, b) != blas.ddot(a, b):
            return False
        if not np.array_equal(A @ a, blas.dgemv(1.0, A.T, a, trans=1)):
            return False
        if not np.array_equal(A @ B, blas.dgemm(1.0, B.T, A.T).T):
            return False
    return True


pytestmark = pytest.mark.skipif(
    not _numpy_and_scipy_blas_agree(),
    reason="NumPy's and SciPy's OpenBLAS builds round differently on this CPU: "
           "bit-for-bit agreement with SciPy's NumPy-based loops is not promised")


def _run(mod, f, x0, **kw):
    xs = []
    r = mod.minimize(f, x0, callback=lambda xk, *a: xs.append(np.array(
        getattr(xk, "x", xk), copy=True)), **kw)
    return r, xs


def _assert_same_run(r, xr, s, xs):
    assert (r.status, r.nit, r.nfev, r.njev) == (s.status, s.nit, s.nfev, s.njev)
    assert r.message == s.message
    assert len(xr) == len(xs)
    for k, (a, b) in enumerate(zip(xr, xs)):
        assert np.array_equal(a, b), f"iterate {k} differs by {np.max(np.abs(a - b))}"
    assert np.array_equal(r.x, s.x)
    assert r.fun == s.fun or (np.isnan(r.fun) and np.isnan(s.fun))
    assert np.array_equal(r.jac, s.jac)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
@pytest.mark.parametrize("name,f,n", SMALL, ids=[f"{c[0]}-{c[2]}" for c in SMALL])
def test_iterates_bitwise_scipy(method, name, f, n):
    x0 = x0_for(name, n)
    r, xr = _run(__import__("neurenix.optimize", fromlist=["x"]), f, x0, jac=True,
                 method=method)
    s, xs = _run(so, f, x0, jac=True, method=method)
    _assert_same_run(r, xr, s, xs)
    if method == "BFGS":
        assert np.array_equal(r.hess_inv, s.hess_inv)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_finite_difference_gradient_bitwise(method):
    # lmfit's default-method calls: f only, SciPy's forward differences
    fun = lambda x: so.rosen(x) + 0.1 * np.sum(np.sin(3 * x))
    x0 = np.linspace(-1.0, 1.5, 6)
    r, xr = _run(__import__("neurenix.optimize", fromlist=["x"]), fun, x0, method=method)
    s, xs = _run(so, fun, x0, method=method)
    _assert_same_run(r, xr, s, xs)


def test_bfgs_options_bitwise():
    # hess_inv0, gtol, norm, maxiter, c1/c2: still SciPy's run
    rng = np.random.default_rng(3)
    n = 7
    A = rng.standard_normal((n, n))
    H0 = np.linalg.inv(A @ A.T + n * np.eye(n))
    H0 = (H0 + H0.T) / 2        # (SciPy refuses a matrix that is not exactly symmetric)
    opts = dict(hess_inv0=H0, gtol=1e-7, norm=2, maxiter=25, c1=1e-3, c2=0.8)
    f = lambda x: (so.rosen(x), so.rosen_der(x))
    x0 = rng.uniform(-1, 1, n)
    r, xr = _run(__import__("neurenix.optimize", fromlist=["x"]), f, x0, jac=True,
                 method="BFGS", options=opts)
    s, xs = _run(so, f, x0, jac=True, method="BFGS", options=opts)
    _assert_same_run(r, xr, s, xs)
    assert np.array_equal(r.hess_inv, s.hess_inv)


def test_bfgs_large_n_rank_two_form_converges_as_scipy():
    # above n = 200 the update is the O(n^2) rank-two form: equal to SciPy's two
    # matrix products in exact arithmetic, not bit for bit; same answer
    n = 300
    d = np.linspace(1.0, 10.0, n)
    f = lambda x: (0.5 * np.sum(d * x * x) - np.sum(x), d * x - 1.0)
    r = minimize(f, np.zeros(n), jac=True, method="BFGS")
    s = so.minimize(f, np.zeros(n), jac=True, method="BFGS")
    assert r.status == s.status == 0
    np.testing.assert_allclose(r.x, 1 / d, rtol=1e-5)
    np.testing.assert_allclose(r.hess_inv, s.hess_inv, rtol=1e-6, atol=1e-7)
    assert abs(r.nit - s.nit) <= 2


def test_fmin_bfgs_probit_statsmodels_shape():
    # statsmodels' Probit runs fmin_bfgs with maxiter=35; SciPy needs 23 iterations
    rng = np.random.default_rng(0)
    from scipy.special import log_ndtr
    X = np.column_stack([np.ones(400), rng.standard_normal((400, 3))])
    y = (X @ [0.3, 1.0, -0.5, 0.25] + rng.standard_normal(400) > 0).astype(float)
    from scipy.stats import norm

    def nll(b):
        q = 2 * y - 1
        return -np.sum(log_ndtr(q * (X @ b)))

    def grad(b):
        q = 2 * y - 1
        z = q * (X @ b)
        return -X.T @ (q * norm.pdf(z) / norm.cdf(z))

    kw = dict(fprime=grad, maxiter=35, full_output=True, disp=False)
    r = fmin_bfgs(nll, np.zeros(4), **kw)
    s = so.fmin_bfgs(nll, np.zeros(4), **kw)
    assert np.array_equal(r[0], s[0])
    assert r[1:2] == s[1:2] and r[4:] == s[4:]


def _search_both(x, p, **kw):
    import warnings
    from neurenix.optimize import line_search
    out = []
    for fn in (line_search, so.line_search):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            r = fn(so.rosen, so.rosen_der, x, p, **kw)
        out.append((r, [(type(m.message), str(m.message)) for m in w]))
    return out


def test_line_search_is_scipys_public_wolfe2_bitwise():
    # scipy.optimize.line_search is line_search_wolfe2: same step, counts, values,
    # returned gradient and LineSearchWarnings, on 300 random searches
    rng = np.random.default_rng(0)
    for t in range(300):
        n = int(rng.integers(2, 8))
        x = rng.uniform(-2, 2, n)
        p = -so.rosen_der(x) * rng.uniform(0.01, 2)
        kw = {}
        if t % 3 == 1:
            kw = dict(old_fval=so.rosen(x), old_old_fval=so.rosen(x) + rng.uniform(0, 5))
        if t % 5 == 2:
            kw["amax"] = rng.uniform(0.001, 0.1)
        if t % 7 == 3:
            kw["extra_condition"] = lambda a, xa, fa, ga: a < 0.01
        if t % 4 == 3:
            kw["c2"] = 0.1
        (r, wr), (s, ws) = _search_both(x, p, **kw)
        assert r[:5] == s[:5], (t, r[:5], s[:5])
        assert (r[5] is None) == (s[5] is None) and (r[5] is None or np.array_equal(r[5], s[5]))
        assert wr == ws, t


@pytest.mark.parametrize("kw", [dict(amax=1e-9), dict(maxiter=1), dict(c1=0.5, c2=0.6)])
def test_line_search_failures_warn_as_scipy(kw):
    x = np.array([-1.2, 1.0])
    (r, wr), (s, ws) = _search_both(x, -5 * so.rosen_der(x), **kw)
    assert r[:5] == s[:5] and wr == ws
