"""curve_fit against SciPy's curve_fit: popt and pcov for every sigma convention."""
import numpy as np
import pytest
import scipy.optimize

from neurenix.optimize import curve_fit

X = np.linspace(0, 4, 40)
RNG = np.random.default_rng(3)
SIG = 0.05 + 0.1 * RNG.random(X.size)
Y = 2.5 * np.exp(-1.3 * X) + 0.5 + SIG * RNG.standard_normal(X.size)


def model(x, a, b, c):
    return a * np.exp(-b * x) + c


def model_jac(x, a, b, c):
    e = np.exp(-b * x)
    return np.column_stack((e, -a * x * e, np.ones_like(x)))


COV = np.diag(SIG ** 2) + 0.002 * np.exp(-np.abs(X[:, None] - X[None, :]))


@pytest.mark.parametrize("sigma", [None, "1d", "2d"])
@pytest.mark.parametrize("absolute_sigma", [False, True])
@pytest.mark.parametrize("jac", [None, "analytic"])
def test_matches_scipy(sigma, absolute_sigma, jac):
    s = {None: None, "1d": SIG, "2d": COV}[sigma]
    j = model_jac if jac == "analytic" else None
    # tight tolerances: SciPy's lm path (leastsq) takes pcov from the last Jacobian it
    # evaluated, one iterate before the solution; ours is J at the solution
    kw = dict(p0=[1.0, 1.0, 0.0], sigma=s, absolute_sigma=absolute_sigma, jac=j,
              ftol=1e-13, xtol=1e-13, gtol=1e-13)
    popt, pcov = curve_fit(model, X, Y, **kw)
    sp, sc = scipy.optimize.curve_fit(model, X, Y, **kw)
    np.testing.assert_allclose(popt, sp, rtol=1e-6)
    np.testing.assert_allclose(pcov, sc, rtol=1e-5)


def test_bounds_use_trf_and_match_scipy():
    bounds = ([0, 1.4, 0], [10, 10, 10])
    popt, pcov = curve_fit(model, X, Y, p0=[1.0, 2.0, 0.1], bounds=bounds)
    sp, sc = scipy.optimize.curve_fit(model, X, Y, p0=[1.0, 2.0, 0.1], bounds=bounds)
    np.testing.assert_allclose(popt, sp, rtol=1e-5)
    np.testing.assert_allclose(pcov, sc, rtol=1e-3)
    assert popt[1] >= 1.4


def test_p0_default_from_signature_and_full_output():
    popt, pcov, info, mesg, ier = curve_fit(lambda x, a, b: a * x + b, X, 3 * X + 1,
                                            full_output=True)
    np.testing.assert_allclose(popt, [3, 1], rtol=1e-10)
    assert ier in (1, 2, 3, 4) and "fvec" in info and isinstance(mesg, str)


def test_covariance_inf_when_underdetermined():
    with pytest.warns(RuntimeWarning, match="Covariance"):
        _, pcov = curve_fit(lambda x, a, b: a * x + b, X[:2], Y[:2], method="trf")
    assert np.all(np.isinf(pcov))


@pytest.mark.parametrize("kw,word", [
    (dict(ydata=np.full(X.size, np.nan)), "ydata"),
    (dict(sigma=-SIG), "sigma"),
    (dict(sigma=np.ones(3)), "sigma"),
    (dict(sigma=-np.eye(X.size)), "sigma"),
])
def test_bad_input(kw, word):
    args = dict(f=model, xdata=X, ydata=Y, p0=[1, 1, 0])
    args.update(kw)
    with pytest.raises(ValueError, match=word):
        curve_fit(**args)
