"""Newton-CG vs SciPy's Newton-CG; the stopping test never reports a false success."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize, Status


def rosen_x0(n):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    return x0


@pytest.mark.parametrize("n", [2, 10])
@pytest.mark.parametrize("deriv", ["hess", "hessp", "fd"])
def test_rosenbrock_matches_scipy(n, deriv):
    kw = {"hess": dict(hess=so.rosen_hess), "hessp": dict(hessp=so.rosen_hess_prod),
          "fd": {}}[deriv]
    x0 = rosen_x0(n)
    r = minimize(so.rosen, x0, jac=so.rosen_der, method="Newton-CG", **kw)
    s = so.minimize(so.rosen, x0, jac=so.rosen_der, method="Newton-CG", **kw)
    assert r.success, r.message
    np.testing.assert_allclose(r.x, s.x, atol=1e-3)     # SciPy's own x is off by ~1e-4
    np.testing.assert_allclose(r.x, np.ones(n), atol=1e-5)
    assert r.nit <= 1.5 * s.nit


def test_no_false_success_far_from_minimum():
    # SciPy's Newton-CG stops on a small step and reports success at f ~ 6e-4 here;
    # ours either converges (f ~ 0, small gradient) or does not claim success.
    n = 100
    x0 = rosen_x0(n)
    s = so.minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="Newton-CG")
    r = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="Newton-CG")
    assert r.success
    # the XTOL stop (accurate Newton step with mean |p| <= 1e-5) leaves f ~ |H| |p|^2
    assert r.fun < 1e-6 and r.fun < s.fun
    np.testing.assert_allclose(r.x, np.ones(n), atol=1e-3)
    # an iteration budget too small: no success claimed
    r2 = minimize(so.rosen, x0, jac=so.rosen_der, hessp=so.rosen_hess_prod,
                  method="Newton-CG", options={"maxiter": 30})
    assert not r2.success and r2.reason == Status.MAXITER


def test_large_rosenbrock_reports_honestly():
    n = 10000
    x0 = rosen_x0(n)
    r = minimize(so.rosen, x0, jac=so.rosen_der, hessp=so.rosen_hess_prod,
                 method="Newton-CG", options={"maxiter": 400})
    assert (r.success and r.fun < 1e-6) or (not r.success)


def test_quadratic_one_step():
    rng = np.random.default_rng(0)
    n = 20
    A = rng.standard_normal((n, n))
    Q = A @ A.T + np.eye(n)
    b = rng.standard_normal(n)
    r = minimize(lambda x: 0.5 * x @ Q @ x - b @ x, np.zeros(n), jac=lambda x: Q @ x - b,
                 hessp=lambda x, p: Q @ p, method="Newton-CG", options={"gtol": 1e-10, "xtol": 1e-12})
    assert r.success
    np.testing.assert_allclose(r.x, np.linalg.solve(Q, b), rtol=1e-8)


def test_negative_curvature_start():
    def f(x):
        return x[0] ** 2 - x[1] ** 2 + x[1] ** 4

    def g(x):
        return np.array([2 * x[0], -2 * x[1] + 4 * x[1] ** 3])

    def h(x):
        return np.array([[2.0, 0.0], [0.0, -2.0 + 12 * x[1] ** 2]])

    r = minimize(f, np.array([0.5, 0.1]), jac=g, hess=h, method="Newton-CG")
    assert r.success and r.fun == pytest.approx(-0.25, abs=1e-9)


@pytest.mark.parametrize("opts,match", [({"xtol": 0.0}, "xtol"), ({"c1": 0.95}, "c1"),
                                        ({"gtol": -1.0}, "gtol")])
def test_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, method="Newton-CG", options=opts)


def test_bad_hessp_and_hess():
    with pytest.raises(ValueError, match="hessp"):
        minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, method="Newton-CG",
                 hessp=lambda x, p: np.full(4, np.nan))
    with pytest.raises(ValueError, match="hess"):
        minimize(so.rosen, rosen_x0(4), jac=so.rosen_der, method="Newton-CG",
                 hess=lambda x: np.ones((3, 4)))


def test_eps_is_scipys_finite_difference_step():
    # without hess/hessp, eps is the absolute step of (g(x + eps p) - g(x)) / eps
    # (scipy.optimize.approx_fhess_p); a huge eps must change the run, as in SciPy
    x0 = rosen_x0(6)
    runs = {}
    for eps in (1e-8, 1e-2):
        r = minimize(so.rosen, x0, jac=so.rosen_der, method="Newton-CG", options={"eps": eps})
        runs[eps] = r
        assert r.nhev == 0 and r.nhessp > 0
        # every product is one extra gradient evaluation, as in SciPy
        assert r.njev >= r.nhessp
        if eps == 1e-8:
            # (SciPy's own run stops here on "CG iterations didn't converge")
            assert r.success and np.linalg.norm(r.jac) < 1e-4
    assert runs[1e-8].nit != runs[1e-2].nit or not np.array_equal(runs[1e-8].x, runs[1e-2].x)


def test_eps_product_formula():
    # the first CG product at x0 along -g equals SciPy's approx_fhess_p
    from neurenix._core.objective import ScalarObjective
    from neurenix._core.subproblems import make_problem
    x0 = rosen_x0(4)
    obj = ScalarObjective(so.rosen, x0, jac=so.rosen_der)
    prob = make_problem(obj, eps=1e-3)
    g = obj.grad(x0).copy()
    prob.set_point(x0, g)
    d = -g
    expect = so._optimize.approx_fhess_p(x0, d, so.rosen_der, 1e-3)
    np.testing.assert_allclose(prob.hessp(d), expect, rtol=1e-12)
    prob.flush()
    assert obj.njev == 2          # g(x0) and g(x0 + eps d)


def test_float32_newton_cg():
    x0 = rosen_x0(4).astype(np.float32)
    r = minimize(lambda x: so.rosen(x).astype(np.float32), x0,
                 jac=lambda x: so.rosen_der(x).astype(np.float32),
                 hessp=lambda x, p: so.rosen_hess_prod(x, p).astype(np.float32),
                 method="Newton-CG", options={"gtol": 1e-3})
    assert r.x.dtype == np.float32 and r.jac.dtype == np.float32
    np.testing.assert_allclose(r.x, np.ones(4), atol=1e-2)


@pytest.mark.parametrize("xtol", [1e-2, 1e-3])
def test_xtol_stop_takes_the_confirming_newton_step(xtol):
    # the small accurate Newton step that confirms the xtol stop is taken (when it
    # does not raise f): the point returned is much closer to the minimizer than
    # the one before it, and closer than xtol itself
    x0 = rosen_x0(10)
    r = minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method="Newton-CG",
                 options={"xtol": xtol, "gtol": 0.0, "return_all": True})
    assert r.reason == Status.XTOL and r.success
    last, prev = r.allvecs[-1], r.allvecs[-2]
    np.testing.assert_array_equal(last, r.x)
    assert np.abs(last - 1).max() < 0.2 * np.abs(prev - 1).max()
    assert np.abs(last - 1).max() < 0.1 * xtol
    assert r.fun <= so.rosen(prev)
