"""Trust-region methods vs SciPy's methods of the same name; bad input; hard case."""
import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from neurenix.optimize import minimize, Status

METHODS = ["trust-ncg", "trust-krylov", "trust-exact", "dogleg"]


def rosen_x0(n):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    return x0


def _scipy(method, x0, **kw):
    return so.minimize(so.rosen, x0, jac=so.rosen_der, method=method, **kw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_matches_scipy(method, n, record_property):
    x0 = rosen_x0(n)
    kw = dict(hess=so.rosen_hess)
    r = minimize(so.rosen, x0, jac=so.rosen_der, method=method, **kw)
    s = _scipy(method, x0, **kw)
    record_property("ours", (r.nit, r.nfev, r.nhev))
    record_property("scipy", (s.nit, s.nfev, s.nhev))
    if method == "dogleg" and n == 10:
        # the Hessian at x0 is indefinite: both stop without success
        assert not r.success and r.reason == Status.INDEFINITE and not s.success
        return
    assert r.success, r.message
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    np.testing.assert_allclose(r.x, np.ones(n), atol=1e-3) if s.fun < 1e-6 else None
    assert r.fun <= max(s.fun, 1e-10) * 10 + 1e-8
    assert abs(r.nit - s.nit) <= max(3, 0.2 * s.nit)


@pytest.mark.parametrize("method", ["trust-ncg", "trust-krylov"])
def test_hessp_and_fd_and_counts(method):
    n = 30
    x0 = rosen_x0(n)
    r = minimize(so.rosen, x0, jac=so.rosen_der, hessp=so.rosen_hess_prod, method=method)
    s = _scipy(method, x0, hessp=so.rosen_hess_prod)
    assert r.success and s.success
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    # hessp calls per iteration: ours (no extra product for the model value) <= SciPy's
    # for Steihaug CG; GLTR is compared with trlib's count within a margin
    if method == "trust-ncg":
        assert r.nhev / r.nit <= s.nhev / s.nit
    assert r.nhev == r.nhessp
    rf = minimize(so.rosen, x0, jac=so.rosen_der, method=method)     # FD products
    assert rf.success
    np.testing.assert_allclose(rf.x, np.ones(n), atol=1e-4)


@pytest.mark.parametrize("method", ["trust-ncg", "trust-krylov"])
def test_large(method):
    n = 1000
    x0 = rosen_x0(n)
    r = minimize(so.rosen, x0, jac=so.rosen_der, hessp=so.rosen_hess_prod, method=method)
    assert r.success
    assert r.fun < 1e-8


@pytest.mark.parametrize("form", ["dense", "sparse", "linop"])
@pytest.mark.parametrize("method", ["trust-ncg", "trust-krylov", "trust-exact"])
def test_hess_forms(form, method):
    rng = np.random.default_rng(0)
    n = 8
    A = rng.standard_normal((n, n))
    Q = A @ A.T + n * np.eye(n)
    b = rng.standard_normal(n)

    def hess(x):
        if form == "sparse":
            return sp.csr_matrix(Q)
        if form == "linop":
            return aslinearoperator(Q)
        return Q

    r = minimize(lambda x: 0.5 * x @ Q @ x - b @ x, np.zeros(n), jac=lambda x: Q @ x - b,
                 hess=hess, method=method, options={"gtol": 1e-10})
    assert r.success
    np.testing.assert_allclose(r.x, np.linalg.solve(Q, b), rtol=1e-8)


def saddle(x):
    # f = x^2 - y^2 + y^4 : saddle at 0, minima at (0, +-1/sqrt 2), f = -1/4
    return x[0] ** 2 - x[1] ** 2 + x[1] ** 4


def saddle_grad(x):
    return np.array([2 * x[0], -2 * x[1] + 4 * x[1] ** 3])


def saddle_hess(x):
    return np.array([[2.0, 0.0], [0.0, -2.0 + 12 * x[1] ** 2]])


@pytest.mark.parametrize("method", ["trust-exact", "trust-krylov"])
def test_hard_case_escapes_saddle(method):
    # at (1, 0) the gradient is orthogonal to the negative-curvature direction
    r = minimize(saddle, np.array([1.0, 0.0]), jac=saddle_grad, hess=saddle_hess,
                 method=method, options={"gtol": 1e-8})
    assert r.success
    assert r.fun == pytest.approx(-0.25, abs=1e-10)
    assert abs(r.x[1]) == pytest.approx(1 / np.sqrt(2), abs=1e-6)


@pytest.mark.parametrize("method", ["trust-exact", "trust-krylov", "trust-ncg"])
def test_indefinite_problem_matches_scipy(method):
    # indefinite Hessian along the way (Himmelblau-like quartic with saddles)
    def f(x):
        return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2

    def g(x):
        return np.array([4 * x[0] * (x[0] ** 2 + x[1] - 11) + 2 * (x[0] + x[1] ** 2 - 7),
                         2 * (x[0] ** 2 + x[1] - 11) + 4 * x[1] * (x[0] + x[1] ** 2 - 7)])

    def h(x):
        return np.array([[12 * x[0] ** 2 + 4 * x[1] - 42, 4 * x[0] + 4 * x[1]],
                         [4 * x[0] + 4 * x[1], 4 * x[0] + 12 * x[1] ** 2 - 26]])

    x0 = np.array([-0.27, -0.92])      # near the local maximum: H negative definite
    assert np.all(np.linalg.eigvalsh(h(x0)) < 0)
    r = minimize(f, x0, jac=g, hess=h, method=method, options={"gtol": 1e-8})
    s = so.minimize(f, x0, jac=g, hess=h, method=method, options={"gtol": 1e-8})
    assert r.success
    assert r.fun < 1e-12
    assert np.all(np.linalg.eigvalsh(h(r.x)) > 0)
    if s.success:
        np.testing.assert_allclose(r.x, s.x, atol=1e-5)


def test_float32_stays_float32():
    x0 = rosen_x0(4).astype(np.float32)
    r = minimize(lambda x: so.rosen(x).astype(np.float32), x0,
                 jac=lambda x: so.rosen_der(x).astype(np.float32),
                 hessp=lambda x, p: so.rosen_hess_prod(x, p).astype(np.float32),
                 method="trust-ncg", options={"gtol": 1e-3})
    assert r.x.dtype == np.float32
    np.testing.assert_allclose(r.x, np.ones(4), atol=1e-2)


def test_callback_and_stopiteration():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.fun)
        if len(seen) == 3:
            raise StopIteration

    r = minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, hess=so.rosen_hess,
                 method="trust-exact", callback=cb)
    assert r.reason == Status.CALLBACK and not r.success and r.nit == 3


def test_friendly_name():
    r = minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, method="trust-region")
    assert r.success


@pytest.mark.parametrize("opts,match", [
    ({"initial_trust_radius": 0.0}, "initial_trust_radius"),
    ({"initial_trust_radius": -1.0}, "initial_trust_radius"),
    ({"eta": 0.25}, "eta"),
    ({"eta": -0.1}, "eta"),
    ({"max_trust_radius": 0.5}, "initial_trust_radius"),
    ({"gtol": -1.0}, "gtol"),
])
def test_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, method="trust-ncg", options=opts)


@pytest.mark.parametrize("method", ["trust-ncg", "trust-exact"])
def test_bad_hess(method):
    x0 = rosen_x0(4)
    with pytest.raises(ValueError, match="hess"):
        minimize(so.rosen, x0, jac=so.rosen_der, hess=lambda x: np.ones((4, 3)), method=method)
    with pytest.raises(ValueError, match="hess.*symmetric"):
        minimize(so.rosen, x0, jac=so.rosen_der, method=method,
                 hess=lambda x: so.rosen_hess(x) + np.triu(np.ones((4, 4)), 1))


def test_bad_hessp():
    x0 = rosen_x0(4)
    with pytest.raises(ValueError, match="hessp"):
        minimize(so.rosen, x0, jac=so.rosen_der, hessp=lambda x, p: np.ones(3),
                 method="trust-ncg")
    with pytest.raises(ValueError, match="hessp"):
        minimize(so.rosen, x0, jac=so.rosen_der, hessp=lambda x, p: np.full(4, np.nan),
                 method="trust-krylov")


def test_trust_krylov_rejected_steps_cost_no_hessp():
    # count hessp calls per iteration and the iterations where the step was rejected
    # (x unchanged): with the Krylov space kept, most rejected steps need no product
    n = 100
    x0 = rosen_x0(n)
    calls = []
    xs = []

    def hessp(x, p):
        calls.append(len(xs))
        return so.rosen_hess_prod(x, p)

    def cb(intermediate_result):
        xs.append(intermediate_result.x.copy())

    r = minimize(so.rosen, x0, jac=so.rosen_der, hessp=hessp, method="trust-krylov",
                 callback=cb)
    assert r.success
    per_iter = np.bincount(np.asarray(calls), minlength=len(xs) + 1)
    rejected = [k for k in range(1, len(xs)) if np.array_equal(xs[k], xs[k - 1])]
    assert len(rejected) >= 5
    # products are labelled by the number of callbacks made before them: the solve of
    # iteration j has label j - 1.  xs[k] == xs[k-1] means iteration k+1 was rejected,
    # so the next solve (iteration k+2, label k+1) is at the same point
    free = sum(per_iter[k + 1] == 0 for k in rejected if k + 1 < len(per_iter))
    assert free >= 0.8 * len(rejected)
    s = _scipy("trust-krylov", x0, hessp=so.rosen_hess_prod)
    assert r.nhev / r.nit <= s.nhev / s.nit


@pytest.mark.parametrize("method", ["trust-ncg", "trust-krylov", "trust-exact"])
def test_args_and_combined_fun(method):
    # fun returning (f, g) with jac=True, extra args, hessp/hess taking them too
    def fg(x, a):
        return a * so.rosen(x), a * so.rosen_der(x)

    kw = {"hess": lambda x, a: a * so.rosen_hess(x)} if method == "trust-exact" else \
        {"hessp": lambda x, p, a: a * so.rosen_hess_prod(x, p)}
    r = minimize(fg, rosen_x0(6), args=(2.0,), jac=True, method=method, **kw)
    s = so.minimize(fg, rosen_x0(6), args=(2.0,), jac=True, method=method, **kw)
    assert r.success and s.success
    np.testing.assert_allclose(r.x, s.x, atol=1e-4)
    assert r.nfev == r.njev        # one call gives both


def test_user_functions_get_copies():
    # storing x inside fun must not see it change afterwards
    seen = []

    def f(x):
        seen.append(x)
        return so.rosen(x)

    minimize(f, rosen_x0(4), jac=so.rosen_der, hessp=so.rosen_hess_prod, method="trust-ncg")
    assert len({id(a) for a in seen}) == len(seen)
    assert all(so.rosen(a) == v for a, v in zip(seen, [so.rosen(a) for a in seen]))
    assert not np.array_equal(seen[0], seen[-1])
    np.testing.assert_array_equal(seen[0], rosen_x0(4))


@pytest.mark.parametrize("n", [2, 5, 30])
def test_trust_exact_follows_scipys_iterates(n):
    # the compiled Moré-Sorensen solver runs SciPy's iteration (same bounds, tests,
    # safeguard and hard-case step): same iteration count, same point
    x0 = rosen_x0(n)
    r = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact")
    s = _scipy("trust-exact", x0, hess=so.rosen_hess)
    assert r.success and s.success
    assert r.nit == s.nit
    np.testing.assert_allclose(r.x, s.x, rtol=0, atol=1e-8)


def test_dogleg_convex_matches_scipy():
    # strictly convex (positive definite Hessian everywhere): every dogleg branch
    rng = np.random.default_rng(1)
    n = 12
    A = rng.standard_normal((n, n))
    Q = A @ A.T / n + 0.1 * np.eye(n)
    b = rng.standard_normal(n)

    def f(x):
        return 0.5 * x @ Q @ x - b @ x + np.sum(np.exp(x))

    def g(x):
        return Q @ x - b + np.exp(x)

    def h(x):
        return Q + np.diag(np.exp(x))

    x0 = np.full(n, 3.0)
    r = minimize(f, x0, jac=g, hess=h, method="dogleg", options={"gtol": 1e-8})
    s = so.minimize(f, x0, jac=g, hess=h, method="dogleg", options={"gtol": 1e-8})
    assert r.success and s.success
    assert abs(r.nit - s.nit) <= 1
    np.testing.assert_allclose(r.x, s.x, rtol=0, atol=1e-9)


def test_trust_exact_subproblem_maxiter():
    x0 = rosen_x0(10)
    with pytest.raises(ValueError, match="subproblem_maxiter"):
        minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact",
                 options={"subproblem_maxiter": 0})
    # SciPy's option: fewer factorization rounds per solve change the run as they do
    # SciPy's (the last step is returned when the rounds run out)
    d = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact")
    for m in (2, 3):
        r = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact",
                     options={"subproblem_maxiter": m})
        s = _scipy("trust-exact", x0, hess=so.rosen_hess, options={"subproblem_maxiter": m})
        assert r.nit == s.nit and r.success and s.success
        np.testing.assert_allclose(r.x, s.x, atol=1e-8)
    assert r.nit != d.nit or m == 3
    # a single round: SciPy raises UnboundLocalError (no step when the first
    # factorization fails); ours takes the Cauchy point there and reports honestly
    r1 = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="trust-exact",
                  options={"subproblem_maxiter": 1})
    assert r1.fun < so.rosen(x0)
    assert r1.success == (np.linalg.norm(r1.jac) < 1e-4)
    assert r1.success or r1.reason == Status.MAXITER


@pytest.mark.parametrize("method", ["trust-exact", "dogleg"])
def test_nonfinite_hess_later_raises(method):
    # the fast path (a C-contiguous float64 matrix after the first point) still
    # rejects a non-finite Hessian, naming hess
    calls = []

    def hess(x):
        calls.append(1)
        H = so.rosen_hess(x)
        if len(calls) > 2:
            H[1, 1] = np.inf
        return H

    with pytest.raises(ValueError, match="hess"):
        minimize(so.rosen, np.array([-1.2, 1.0]), jac=so.rosen_der, hess=hess, method=method)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-ncg", "trust-krylov"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_hessp_entry_raises(method, bad):
    # one non-finite entry of H p, at a later product: detected through d.Hd
    calls = []

    def hessp(x, p):
        calls.append(1)
        out = so.rosen_hess_prod(x, p)
        if len(calls) == 5:
            out[3] = bad
        return out

    with pytest.raises(ValueError, match="hessp"):
        minimize(so.rosen, rosen_x0(8), jac=so.rosen_der, hessp=hessp, method=method)
