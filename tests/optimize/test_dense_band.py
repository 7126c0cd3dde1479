"""The band path of the dense subproblems (trust-exact, dogleg): a Hessian with at most
n // 8 nonzero diagonals on each side is factored by a band Cholesky; the steps must
equal the dense (LAPACK ?potrf) path's to rounding."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix._ext import _krylov
from neurenix.optimize import minimize

from .test_subproblems import model, trs_reference


def banded(rng, n, kd, kind):
    """A symmetric matrix with exactly ``kd`` nonzero sub-diagonals: ``pd`` (diagonally
    dominant), ``indefinite`` (a negative shift), ``hard`` (indefinite, with ``g``
    orthogonal to the eigenvector of lambda_min)."""
    B = np.zeros((n, n))
    for k in range(1, kd + 1):
        d = rng.uniform(0.2, 1.0, n - k) * rng.choice([-1.0, 1.0], n - k)
        B += np.diag(d, k) + np.diag(d, -k)
    H = B + np.diag(np.abs(B).sum(axis=1) + rng.uniform(0.5, 2.0, n))
    if kind != "pd":
        H -= 1.5 * np.mean(np.diag(H)) * np.eye(n)
    g = rng.standard_normal(n)
    if kind == "hard":
        w, V = np.linalg.eigh(H)
        g -= (g @ V[:, 0]) * V[:, 0]
    return H, g


def both_paths(H, g, dtype):
    ds_band = _krylov.DenseSubproblem(H.shape[0], dtype)
    ds_dense = _krylov.DenseSubproblem(H.shape[0], dtype, band=False)
    Hc = np.ascontiguousarray(H, dtype=dtype)
    gc = np.ascontiguousarray(g, dtype=dtype)
    ds_band.set_point(Hc, gc)
    ds_dense.set_point(Hc, gc)
    return ds_band, ds_dense


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["pd", "indefinite", "hard"])
@pytest.mark.parametrize("n,kd", [(40, 0), (40, 1), (41, 2), (48, 3), (200, 25), (203, 25)])
def test_more_sorensen_band_equals_dense(n, kd, kind, dtype):
    rng = np.random.default_rng(1000 * n + 10 * kd + len(kind))
    H, g = banded(rng, n, kd, kind)
    band, dense = both_paths(H, g, dtype)
    assert band.bandwidth == kd and dense.bandwidth == -1
    np.testing.assert_allclose(band.bounds, dense.bounds, rtol=1e-12 if dtype == np.float64 else 1e-5)
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    # a rejected step re-solves at the same point with a smaller radius: both paths
    # keep the same state between solves
    for radius in (4.0, 1.0, 0.25, 0.01):
        pb, hb, mb = band.solve(radius)
        pd_, hd, md = dense.solve(radius)
        assert hb == hd
        assert band.niter == dense.niter
        np.testing.assert_allclose(band.lam, dense.lam, rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(pb, pd_, rtol=rtol, atol=rtol * np.linalg.norm(pd_))
        np.testing.assert_allclose(mb, md, rtol=rtol)
        if dtype == np.float64:
            # and the model value reported is the model of the step returned
            assert mb == pytest.approx(model(H, g, pb), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_band_hard_case_reaches_the_reference(dtype):
    # hard case on a tridiagonal matrix, solved tightly: the band path finds the
    # global minimizer (model value of the eigen-decomposition reference)
    rng = np.random.default_rng(3)
    H, g = banded(rng, 64, 1, "hard")
    ds = _krylov.DenseSubproblem(64, dtype, 1e-8, 1e-8, 200)
    ds.set_point(np.ascontiguousarray(H, dtype=dtype), g.astype(dtype))
    assert ds.bandwidth == 1
    radius = 3.0
    p, hits, m = ds.solve(radius)
    ref = model(H, g, trs_reference(H, g, radius))
    assert hits and np.linalg.norm(p) == pytest.approx(radius, rel=1e-5)
    assert model(H, g, p.astype(np.float64)) == pytest.approx(ref, rel=1e-6 if dtype == np.float64 else 1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kd", [0, 2])
def test_dogleg_band_equals_dense(kd, dtype):
    rng = np.random.default_rng(kd)
    H, g = banded(rng, 50, kd, "pd")
    band, dense = both_paths(H, g, dtype)
    assert band.bandwidth == kd
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for radius in (100.0, 1.0, 0.05):          # Newton point, dogleg leg, Cauchy leg
        pb, hb, mb = band.solve(radius, True)
        pd_, hd, md = dense.solve(radius, True)
        assert hb == hd
        np.testing.assert_allclose(pb, pd_, rtol=rtol, atol=rtol * np.linalg.norm(pd_))
        np.testing.assert_allclose(mb, md, rtol=rtol)
    Hi, gi = banded(rng, 50, kd, "indefinite")
    band, dense = both_paths(Hi, gi, dtype)
    assert band.solve(1.0, True) is None and dense.solve(1.0, True) is None


def test_bandwidth_detection():
    n = 24
    H = np.eye(n)
    assert _krylov.bandwidth(H) == 0
    H[3, 5] = 1e-300                    # one tiny entry above the diagonal
    assert _krylov.bandwidth(H) == 2
    H[20, 10] = -1.0                    # below, farther out (the test reads both triangles)
    assert _krylov.bandwidth(H) == 10
    H[0, n - 1] = np.nan                # NaN counts as nonzero
    assert _krylov.bandwidth(H) == n - 1
    assert _krylov.bandwidth(np.ones((5, 5), np.float32)) == 4
    assert _krylov.bandwidth(np.zeros((7, 7))) == 0
    # the subproblem picks the band path up to n // 8 sub-diagonals
    ds = _krylov.DenseSubproblem(n, np.float64)
    T = np.diag(np.full(n, 4.0)) + np.diag(np.ones(n - 3), 3) + np.diag(np.ones(n - 3), -3)
    ds.set_point(T, np.ones(n))
    assert ds.bandwidth == 3
    T[0, 4] = T[4, 0] = 0.5
    ds.set_point(T, np.ones(n))
    assert ds.bandwidth == -1           # 4 > 24 // 8: dense
    # a non-finite entry outside the band is still found (it widens the band)
    T[0, 4] = T[4, 0] = 0.0
    T[n - 1, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        ds.set_point(T, np.ones(n))


@pytest.mark.parametrize("method", ["trust-exact", "dogleg"])
def test_band_path_in_minimize_matches_scipy(method):
    # Rosenbrock's Hessian is tridiagonal (band path at n >= 8); the convex
    # problem of the benchmark likewise
    n = 100
    if method == "trust-exact":
        x0 = np.full(n, -1.2)
        x0[1::2] = 1.0
        fun, jac, hess = so.rosen, so.rosen_der, so.rosen_hess
    else:
        def fun(x):
            d = np.diff(x)
            return float(np.sum(np.exp(x) - x) + 0.5 * d @ d)

        def jac(x):
            gg = np.exp(x) - 1.0
            d = np.diff(x)
            gg[:-1] -= d
            gg[1:] += d
            return gg

        def hess(x):
            return (np.diag(np.exp(x) + 2.0) - np.diag(np.ones(n - 1), 1)
                    - np.diag(np.ones(n - 1), -1) - np.diag(np.r_[1.0, np.zeros(n - 2), 1.0]))
        x0 = np.linspace(-2.0, 3.0, n)
    r = minimize(fun, x0, jac=jac, hess=hess, method=method)
    s = so.minimize(fun, x0, jac=jac, hess=hess, method=method)
    assert r.success and s.success
    assert r.nit == s.nit and r.nfev == s.nfev
    np.testing.assert_allclose(r.x, s.x, rtol=0, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bandwidth_random_patterns(dtype):
    # against NumPy on sparse random patterns (single entries anywhere, both
    # triangles, signed zeros that must not count)
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 30))
        H = np.zeros((n, n), dtype)
        H[np.arange(n), np.arange(n)] = -0.0
        for _ in range(int(rng.integers(0, 4))):
            i, j = rng.integers(0, n, 2)
            H[i, j] = rng.choice([1.0, -2.0, np.nan, np.inf, 1e-30])
        nz = np.argwhere((H != 0) | np.isnan(H))
        ref = int(np.max(np.abs(nz[:, 0] - nz[:, 1]))) if nz.size else 0
        assert _krylov.bandwidth(H) == ref, (trial, n, nz)


@pytest.mark.parametrize("method", ["trust-exact", "dogleg"])
@pytest.mark.parametrize("n", [4, 40])
def test_hess_checks_on_both_paths(method, n):
    # symmetry (first point) and finiteness, on the dense path (n = 4) and the band
    # path (n = 40, tridiagonal): the band test reads the band, and outside it the
    # entries are zero in both triangles by construction
    x0 = np.full(n, 0.5)
    bad = so.rosen_hess(x0)
    bad[1, 2] += 1.0
    with pytest.raises(ValueError, match="hess.*symmetric"):
        minimize(so.rosen, x0, jac=so.rosen_der, hess=lambda x: bad, method=method)
    nan = so.rosen_hess(x0)
    nan[2, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        minimize(so.rosen, x0, jac=so.rosen_der, hess=lambda x: nan, method=method)
    far = so.rosen_hess(x0)
    far[n - 1, 0] = np.inf          # outside the band: widens it, then fails the test
    with pytest.raises(ValueError, match="non-finite"):
        minimize(so.rosen, x0, jac=so.rosen_der, hess=lambda x: far, method=method)


def test_factorizations_not_more_than_scipy():
    # replay SciPy's trust-exact subproblems on Rosenbrock (same points, same radii):
    # ours makes no more Cholesky factorizations than SciPy's IterativeSubproblem,
    # on the band path and on the dense one
    te = pytest.importorskip("scipy.optimize._trustregion_exact")
    if not hasattr(te, "IterativeSubproblem"):
        pytest.skip("SciPy's trust-exact internals changed")
    log = []
    orig_init, orig_solve = te.IterativeSubproblem.__init__, te.IterativeSubproblem.solve

    def init(self, x, *a, **k):
        orig_init(self, x, *a, **k)
        chol, self._nchol = self.cholesky, [0]

        def counted(*aa, **kk):
            self._nchol[0] += 1
            return chol(*aa, **kk)
        self.cholesky = counted

    def solve(self, r):
        before = self._nchol[0]
        out = orig_solve(self, r)
        log.append((self._x.copy(), np.array(self.hess), self.jac.copy(), r,
                    self._nchol[0] - before))
        return out

    n = 20
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    te.IterativeSubproblem.__init__, te.IterativeSubproblem.solve = init, solve
    try:
        so.minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact")
    finally:
        te.IterativeSubproblem.__init__, te.IterativeSubproblem.solve = orig_init, orig_solve
    assert len(log) > 10
    scipy_count = sum(c for *_, c in log)
    for band in (True, False):
        ds = _krylov.DenseSubproblem(n, np.float64, band=band)
        last = None
        for x, H, g, r, _ in log:
            if last is None or not np.array_equal(x, last):
                ds.set_point(np.ascontiguousarray(H), np.ascontiguousarray(g))
                last = x
            ds.solve(r)
        assert ds.bandwidth == (1 if band else -1)
        assert 0 < ds.nfactor <= scipy_count


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [3, 16, 37])
def test_symmetry_check_every_position(dtype, n):
    # the dense check runs by 16 x 16 tiles (the mirror tile transposed): one
    # asymmetric pair anywhere -- in a diagonal tile, off it, in the partial last
    # tile -- is found, and its size is the one reported; rounding-level
    # asymmetry (a few ulps of the largest entry) passes
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n))
    S = (A @ A.T + n * np.eye(n)).astype(dtype)
    ds = _krylov.DenseSubproblem(n, dtype, band=False)
    g = np.ones(n, dtype)
    eps = np.finfo(dtype).eps
    pairs = {(i, j) for i in range(n) for j in range(n) if i != j}
    for i, j in sorted(pairs)[:: max(1, len(pairs) // 40)] + [(n - 1, 0), (0, n - 1)]:
        H = S.copy()
        H[i, j] += dtype(0.5) * np.abs(S).max()
        want = float(np.max(np.abs(H.astype(np.float64) - H.T.astype(np.float64))))
        with pytest.raises(ValueError, match="symmetric") as err:
            ds.set_point(H, g, check_symmetric=True)
        assert f"{want:.3g}" in str(err.value), (i, j, str(err.value))
        H = S.copy()
        H[i, j] = H[i, j] * (1 + 4 * eps)
        ds.set_point(H, g, check_symmetric=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_newton_step_every_size(dtype):
    # the dense triangular solves run four columns per pass with a remainder: the
    # interior (lam = 0) step of a positive-definite H is the Newton step -H^{-1} g
    # of a dense reference solve, for every size around the block edges
    for n in range(1, 14):
        rng = np.random.default_rng(n)
        A = rng.standard_normal((n, n))
        H = A @ A.T + n * np.eye(n)
        g = rng.standard_normal(n)
        ref = -np.linalg.solve(H, g)
        tol = 1e-12 if dtype == np.float64 else 1e-4
        for dogleg in (False, True):
            ds = _krylov.DenseSubproblem(n, dtype, band=False)
            ds.set_point(H.astype(dtype), g.astype(dtype))
            p, hits, _ = ds.solve(10 * np.linalg.norm(ref), dogleg=dogleg)
            assert not hits
            np.testing.assert_allclose(p, ref, rtol=tol, atol=tol * np.linalg.norm(ref))
