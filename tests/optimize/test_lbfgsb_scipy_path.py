"""L-BFGS-B takes SciPy's path (the mainlb driver of Byrd, Lu, Nocedal & Zhu 1995,
as SciPy runs it): which limit is reported first, when ``maxfun`` is tested, and
that a trial point equal to the point last evaluated is not evaluated again (SciPy's
``ScalarFunction`` cache).  The reference is SciPy's own ``minimize``."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize


def rosen(x):
    return so.rosen(x), so.rosen_der(x)


def _same_run(r, s):
    assert (r.nit, r.nfev, r.status, r.message) == (s.nit, s.nfev, s.status, s.message)
    np.testing.assert_allclose(r.x, s.x, rtol=1e-7, atol=1e-12)   # (BLAS dots round apart)


@pytest.mark.parametrize("bounds", [None, [(-2.0, 0.9)] * 4])
def test_maxiter_is_reported_before_convergence(bounds):
    # the iteration that converges is also the maxiter-th: SciPy's driver tests its
    # limits when the iteration ends, before mainlb's gradient and f tests (status 1)
    x0 = np.array([-1.2, 1.0, 0.5, -0.3])
    full = so.minimize(rosen, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    assert full.status == 0
    s = so.minimize(rosen, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": full.nit})
    r = minimize(rosen, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"maxiter": full.nit})
    assert s.status == 1 and "ITERATIONS" in s.message
    _same_run(r, s)


@pytest.mark.parametrize("maxfun", [1, 3, 7, 20])
@pytest.mark.parametrize("bounds", [None, [(-2.0, 0.9)] * 5])
def test_maxfun_never_cuts_a_line_search(maxfun, bounds):
    # SciPy stops once nfev > maxfun, tested when an iteration ends: the line
    # search in progress runs to its end (nfev may pass maxfun)
    x0 = np.array([-1.2, 1.0, 0.5, -0.3, 2.0])
    s = so.minimize(rosen, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxfun": maxfun})
    r = minimize(rosen, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"maxfun": maxfun})
    _same_run(r, s)
    assert r.nfev > maxfun


def _probit():
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.discrete.discrete_model import Probit
    from statsmodels.datasets.spector import load
    data = load()
    model = Probit(np.asarray(data.endog, float),
                   sm.add_constant(np.asarray(data.exog, float), prepend=False))
    return (lambda b: -model.loglike(b) / 32.0), (lambda b: -model.score(b) / 32.0)


def test_a_repeated_trial_point_is_not_evaluated_again():
    # statsmodels' Probit fit by basinhopping (its TestProbitBasinhopping): the second
    # line search runs on a plateau of f at rounding level; its last trial repeats
    # the one before, which SciPy's ScalarFunction answers from its cache
    fun, jac = _probit()
    x0 = np.array([2.1042321075081722, 0.3508919393764753, 1.3877482978518092,
                   -7.1711726941906475])
    seen = []

    def f(x):
        seen.append(x.copy())
        return fun(x)
    s = so.minimize(fun, x0, jac=jac, method="L-BFGS-B", tol=1e-8)
    r = minimize(f, x0, jac=jac, method="L-BFGS-B", tol=1e-8)
    _same_run(r, s)
    assert len(seen) == r.nfev
    assert not any(np.array_equal(a, b) for a, b in zip(seen, seen[1:]))


@pytest.mark.parametrize("jac", [None, "callable", True])
def test_njev_counts_every_gradient_as_scipy(jac):
    # SciPy's njev is ScalarFunction's ngev: every gradient, finite differences
    # included (the one at x0 too)
    x0 = np.array([-1.2, 1.0, 0.5])
    f = rosen if jac is True else so.rosen
    j = so.rosen_der if jac == "callable" else jac
    s = so.minimize(f, x0, jac=j, method="L-BFGS-B")
    r = minimize(f, x0, jac=j, method="L-BFGS-B")
    assert (r.nit, r.nfev, r.njev) == (s.nit, s.nfev, s.njev)
