"""minimize(method="natural-gradient"): GLMs with canonical link (Fisher = Hessian),
so lr=1 natural gradient is Newton's method is IRLS; references: statsmodels GLM
(IRLS), scikit-learn, and a dense Newton/IRLS written here from the formula."""
import math
import warnings

import numpy as np
import pytest
from scipy.special import expit

from neurenix.optimize import SingularFisherError, Status, minimize
from neurenix._core.natural_gradient import adapt_damping, predicted_change

sm = pytest.importorskip("statsmodels.api")


# ---------------------------------------------------------------- problems
def _design(N=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([np.ones(N), rng.standard_normal((N, d - 1))]), rng


class Logistic:
    """Mean negative log-likelihood of a logistic regression (canonical logit link)."""

    def __init__(self, N=300, d=5, seed=0):
        self.X, rng = _design(N, d, seed)
        beta = np.linspace(-1.0, 1.0, d)
        self.y = (rng.random(N) < 1.0 / (1.0 + np.exp(-self.X @ beta))).astype(float)
        self.N = N

    def mu(self, b):
        return expit(self.X @ b)

    def fun(self, b):
        eta = self.X @ b
        return (float(np.mean(np.logaddexp(0.0, eta) - self.y * eta)),
                self.X.T @ (self.mu(b) - self.y) / self.N)

    def weights(self, b):          # d^2 l / d eta^2 = Var(y)
        m = self.mu(b)
        return m * (1.0 - m)

    def ggn(self, b):
        return self.X, self.weights(b) / self.N

    def sample_grads(self, b):
        return self.X * (self.mu(b) - self.y)[:, None]

    def fvp(self, b, v):
        return self.X.T @ (self.weights(b) * (self.X @ v)) / self.N

    def family(self):
        return sm.families.Binomial()


class Poisson(Logistic):
    """Mean negative log-likelihood of a Poisson regression (canonical log link)."""

    def __init__(self, N=300, d=5, seed=0):
        self.X, rng = _design(N, d, seed)
        beta = np.linspace(-0.4, 0.4, d)
        self.y = rng.poisson(np.exp(self.X @ beta)).astype(float)
        self.N = N

    def mu(self, b):
        return np.exp(self.X @ b)

    def fun(self, b):
        eta = self.X @ b
        return (float(np.mean(np.exp(eta) - self.y * eta)),
                self.X.T @ (self.mu(b) - self.y) / self.N)

    def weights(self, b):
        return self.mu(b)

    def family(self):
        return sm.families.Poisson()


def dense_irls(prob, iters):
    """IRLS from the formula: b <- b + (X^T W X)^{-1} X^T (y - mu)."""
    b = np.zeros(prob.X.shape[1])
    out = []
    for _ in range(iters):
        W = prob.weights(b)
        z = prob.X.T @ (prob.y - prob.mu(b))
        b = b + np.linalg.solve(prob.X.T @ (W[:, None] * prob.X), z)
        out.append(b.copy())
    return out


EXACT = dict(damping=0.0, adapt_damping=False, cg_tol=1e-14)


# ------------------------------------------------------------- equivalence
@pytest.mark.parametrize("Prob", [Logistic, Poisson])
def test_lr1_undamped_is_newton_is_irls(Prob):
    prob = Prob()
    seen = []
    res = minimize(prob.fun, np.zeros(prob.X.shape[1]), jac=True, method="natural-gradient",
                   callback=lambda intermediate_result: seen.append(intermediate_result.x),
                   options=dict(ggn=prob.ggn, gtol=1e-13, **EXACT))
    assert res.success and res.reason == Status.GTOL
    irls = dense_irls(prob, len(seen))
    for k, (a, b) in enumerate(zip(seen, irls)):   # every iterate is the IRLS iterate
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11, err_msg=f"iterate {k + 1}")
    ref = sm.GLM(prob.y, prob.X, family=prob.family()).fit(tol=1e-14, maxiter=100)
    np.testing.assert_allclose(res.x, ref.params, rtol=0, atol=1e-8)
    assert res.nit == len(seen) <= 12
    assert res.nfisher == res.nit + 1 and res.nfvp > 0 and res.damping == 0.0


@pytest.mark.parametrize("Prob", [Logistic, Poisson])
@pytest.mark.parametrize("source", ["ggn", "sample_grads", "fvp"])
def test_every_curvature_source_reaches_the_mle(Prob, source):
    prob = Prob(seed=3)
    res = minimize(prob.fun, np.zeros(prob.X.shape[1]), jac=True, method="natural-gradient",
                   tol=1e-11, options={source: getattr(prob, source)})
    ref = sm.GLM(prob.y, prob.X, family=prob.family()).fit(tol=1e-14, maxiter=100)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, ref.params, rtol=0, atol=1e-8)
    for k in ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message",
              "damping", "nfvp", "ncg"):
        assert k in res
    assert res.damping > 0


def test_logistic_matches_sklearn():
    sk = pytest.importorskip("sklearn.linear_model")
    prob = Logistic(N=400, d=4, seed=5)
    res = minimize(prob.fun, np.zeros(4), jac=True, method="natural-gradient", tol=1e-12,
                   options=dict(ggn=prob.ggn))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # penalty=None's spelling changes
        clf = sk.LogisticRegression(penalty=None, fit_intercept=False,
                                    solver="newton-cholesky", tol=1e-15,
                                    max_iter=200).fit(prob.X, prob.y)
    np.testing.assert_allclose(res.x, clf.coef_.ravel(), rtol=0, atol=1e-8)


def test_block_output_fisher_multinomial():
    """K x K output-Fisher blocks: multinomial logistic regression, whose GGN is the
    Hessian (softmax is the canonical link); against a dense damped Newton iteration
    (the over-parametrized softmax makes the Hessian singular: damping is needed)."""
    rng = np.random.default_rng(2)
    N, d, K = 200, 3, 3
    X = np.column_stack([np.ones(N), rng.standard_normal((N, d - 1))])
    y = rng.integers(0, K, N)
    Y = np.eye(K)[y]

    def probs(w):
        Z = X @ w.reshape(d, K)
        E = np.exp(Z - Z.max(1, keepdims=True))
        return E / E.sum(1, keepdims=True)

    def fun(w):
        P = probs(w)
        return float(-np.mean(np.log(P[np.arange(N), y]))), (X.T @ (P - Y) / N).ravel()

    def ggn(w):
        P = probs(w)
        # outputs z_i = X_i W (K of them); J_i = kron(X_i, I_K) for w = vec_row(W)
        J = np.einsum("na,kc->nkac", X, np.eye(K)).reshape(N, K, d * K)
        H = (np.einsum("nk,kc->nkc", P, np.eye(K)) - P[:, :, None] * P[:, None, :]) / N
        return J, H

    res = minimize(fun, np.zeros(d * K), jac=True, method="natural-gradient",
                   options=dict(ggn=ggn, gtol=1e-12, damping=1e-3, adapt_damping=False,
                                cg_tol=1e-14))
    assert res.success
    w = np.zeros(d * K)
    for _ in range(res.nit):                     # dense Newton with the same Hessian
        J, H = ggn(w)
        Hd = np.einsum("nka,nkc,ncb->ab", J, H, J)
        w = w - np.linalg.solve(Hd + 1e-3 * np.eye(d * K), fun(w)[1])
    np.testing.assert_allclose(res.x, w, rtol=0, atol=1e-8)


# ---------------------------------------------------------------- damping
def test_levenberg_marquardt_rule():
    assert adapt_damping(2.0, 0.1) == 3.0
    assert adapt_damping(2.0, float("nan")) == 3.0
    assert adapt_damping(3.0, 0.9) == pytest.approx(2.0)
    assert adapt_damping(2.0, 0.5) == 2.0


def test_predicted_change_is_the_undamped_model():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    F = A @ A.T
    g = rng.standard_normal(6)
    lam, lr = 0.3, 0.7
    p = np.linalg.solve(F + lam * np.eye(6), -g)
    s = lr * p
    assert predicted_change(g, p, lam, lr) == pytest.approx(g @ s + 0.5 * s @ F @ s, rel=1e-12)


def test_rejected_steps_raise_damping_and_f_never_increases():
    prob = Logistic(N=200, d=5, seed=7)
    prob.X[:, 1:] *= 6.0      # from x0 = 2, near-Newton steps overshoot at first
    fs, lams = [], []

    def cb(intermediate_result):
        fs.append(intermediate_result.fun)
        lams.append(intermediate_result.damping)

    res = minimize(prob.fun, np.full(5, 2.0), jac=True, method="natural-gradient",
                   callback=cb, options=dict(ggn=prob.ggn, damping=1e-8, gtol=1e-10))
    assert res.success
    assert all(b <= a for a, b in zip(fs, fs[1:]))
    assert any(b > a for a, b in zip(lams, lams[1:]))      # some step was rejected
    ref = sm.GLM(prob.y, prob.X, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(res.x, ref.params, rtol=0, atol=1e-7)


def test_float32_stays_float32():
    prob = Logistic(N=100, d=3, seed=1)
    X32 = prob.X.astype(np.float32)

    def ggn(b):
        return X32, (prob.weights(b.astype(float)) / prob.N).astype(np.float32)

    res = minimize(lambda b: tuple(np.asarray(v, dtype=np.float32) if np.ndim(v) else v
                                   for v in prob.fun(b.astype(float))),
                   np.zeros(3, np.float32), jac=True, method="natural-gradient",
                   options=dict(ggn=ggn, gtol=1e-4))
    assert res.x.dtype == np.float32 and res.success


# -------------------------------------------------------------- bad input
def _run(prob, **opts):
    return minimize(prob.fun, np.zeros(prob.X.shape[1]), jac=True, method="natural-gradient",
                    options=opts)


def test_bad_input_named_errors():
    prob = Logistic(N=50, d=3)
    with pytest.raises(ValueError, match="exactly one curvature source"):
        _run(prob)
    with pytest.raises(ValueError, match="exactly one curvature source"):
        _run(prob, ggn=prob.ggn, fvp=prob.fvp)
    with pytest.raises(TypeError, match="options\\['fvp'\\] must be callable"):
        _run(prob, fvp=3)
    with pytest.raises(ValueError, match="ggn: J must have 3 columns"):
        _run(prob, ggn=lambda b: (prob.X[:, :2], np.ones(50)))
    with pytest.raises(ValueError, match="ggn: H must have shape \\(50,\\)"):
        _run(prob, ggn=lambda b: (prob.X, np.ones(49)))
    with pytest.raises(TypeError, match="ggn must return a pair"):
        _run(prob, ggn=lambda b: prob.X)
    with pytest.raises(ValueError, match="sample_grads contains NaN"):
        _run(prob, sample_grads=lambda b: np.full((50, 3), np.nan))
    with pytest.raises(ValueError, match="sample_grads must have shape \\(N, 3\\)"):
        _run(prob, sample_grads=lambda b: np.ones((50, 4)))
    with pytest.raises(ValueError, match="fvp must return an array of shape \\(3,\\)"):
        _run(prob, fvp=lambda b, v: np.ones(4))
    with pytest.raises(ValueError, match="fvp returned NaN"):
        _run(prob, fvp=lambda b, v: v * np.nan)
    with pytest.raises(ValueError, match="options\\['damping'\\] must be > 0 when adapt_damping"):
        _run(prob, ggn=prob.ggn, damping=0.0)
    with pytest.raises(ValueError, match="options\\['damping'\\] must be >= 0"):
        _run(prob, ggn=prob.ggn, damping=-1.0)
    with pytest.raises(ValueError, match="options\\['lr'\\] must be > 0"):
        _run(prob, ggn=prob.ggn, lr=0.0)
    with pytest.raises(ValueError, match="options\\['damping_drop'\\] must be \\(0.0, 1.0\\)"):
        _run(prob, ggn=prob.ggn, damping_drop=1.0)
    with pytest.raises(ValueError, match="options\\['damping'\\] must be finite"):
        _run(prob, ggn=prob.ggn, damping=np.inf)
    with pytest.raises(TypeError, match="adapt_damping'\\] must be a bool"):
        _run(prob, ggn=prob.ggn, adapt_damping="yes")
    with pytest.raises(ValueError, match="x0"):
        minimize(prob.fun, [np.nan, 0, 0], jac=True, method="natural-gradient",
                 options=dict(ggn=prob.ggn))


def test_singular_fisher_is_a_named_error():
    prob = Logistic(N=50, d=3)
    with pytest.raises(SingularFisherError, match="singular"):
        _run(prob, fvp=lambda b, v: np.zeros(3), damping=0.0, adapt_damping=False)
    # a vanishing output Fisher (all H = 0): F = 0, zero curvature at the first product
    with pytest.raises(SingularFisherError, match="damping=0"):
        _run(prob, ggn=lambda b: (prob.X, np.zeros(50)), damping=0.0, adapt_damping=False)
    # an indefinite "Fisher" from a wrong fvp
    with pytest.raises(SingularFisherError, match="not positive"):
        _run(prob, fvp=lambda b, v: -v, damping=0.0, adapt_damping=False)
    # with damping, the same F = 0 gives a (steepest-descent) step
    assert _run(prob, ggn=lambda b: (prob.X, np.zeros(50)), damping=1.0, maxiter=2).nit == 2
    assert issubclass(SingularFisherError, np.linalg.LinAlgError)


def test_hessp_is_ignored_with_a_warning():
    prob = Logistic(N=50, d=3)
    with pytest.warns(RuntimeWarning, match="does not use Hessian"):
        minimize(prob.fun, np.zeros(3), jac=True, method="natural-gradient",
                 hessp=lambda x, p: p, options=dict(ggn=prob.ggn))


def test_callback_stop_iteration_and_maxiter():
    prob = Logistic(N=50, d=3)

    def cb(intermediate_result):
        raise StopIteration

    r = minimize(prob.fun, np.zeros(3), jac=True, method="ngd", callback=cb,
                 options=dict(ggn=prob.ggn))
    assert r.reason == Status.CALLBACK and r.nit == 1 and not r.success
    r = _run(prob, ggn=prob.ggn, maxiter=1)
    assert r.reason == Status.MAXITER and r.nit == 1
