"""NIST StRD certification of least_squares: every problem from both official
starts, graded by LRE against the certified values (data shipped in
neurenix.datasets; Jacobian by the complex step on the header's formula, the same
Jacobian handed to SciPy)."""
import warnings

import numpy as np
import pytest
import scipy.optimize

from neurenix.datasets import nist_strd
from neurenix.optimize import least_squares

PROBLEMS = nist_strd()
TOL = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15)


def _fit(p, x0, method, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return least_squares(p.residual, x0, jac=p.jac, method=method,
                                 max_nfev=1000 * p.n_params, **TOL, **kw)


@pytest.mark.parametrize("method", ["lm", "trf"])
@pytest.mark.parametrize("start", [1, 2])
def test_all_27_certified(method, start):
    failed = []
    for p in PROBLEMS:
        r = _fit(p, p.starts[start - 1], method)
        lre = p.lre(r.x)
        rss = 2 * r.cost
        if lre.min() < 4:
            failed.append((p.name, float(lre.min())))
            continue
        # certified residual sum of squares reproduced (Lanczos1's is 1e-25: absolute)
        if p.certified_rss > 1e-20:
            assert rss == pytest.approx(p.certified_rss, rel=1e-6), p.name
        else:
            assert rss < 1e-20, p.name
    assert not failed, f"{method} start {start}: not certified {failed}"


def test_lm_start1_at_least_as_many_as_scipy_lm():
    ours = theirs = 0
    for p in PROBLEMS:
        r = _fit(p, p.start1, "lm")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                s = scipy.optimize.least_squares(p.residual, p.start1, jac=p.jac, method="lm",
                                                 max_nfev=1000 * p.n_params, **TOL)
        ours += p.lre(r.x).min() >= 4
        theirs += p.lre(s.x).min() >= 4
    assert ours == 27
    assert ours >= theirs


def test_gn_certifies_from_start2():
    # undamped Gauss-Newton with a line search is not expected to converge from every
    # far start; from the near start it certifies all 27
    for p in PROBLEMS:
        r = _fit(p, p.start2, "gn")
        assert p.lre(r.x).min() >= 4, p.name


@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09", "BoxBOD"])
def test_covariance_reproduces_certified_std_devs(name):
    from neurenix.optimize import curve_fit
    p = nist_strd(name)
    with np.errstate(all="ignore"):
        popt, pcov = curve_fit(lambda x, *b: p.model(x, np.array(b)), p.x, p.target,
                               p0=p.start2, jac=lambda x, *b: p.jac(np.array(b)), **TOL)
    sd = np.sqrt(np.diag(pcov))
    np.testing.assert_allclose(sd, p.certified_std_dev, rtol=1e-4)


def _traced(solver, p, x0, jac):
    """Run ``solver`` (method lm) and return the result and every point at which the
    residuals were evaluated (finite-difference points included)."""
    points = []

    def fun(x):
        points.append(np.array(x, dtype=float))
        return p.residual(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            r = solver(fun, x0, jac=jac, method="lm", x_scale="jac",
                       max_nfev=1000 * p.n_params, **TOL)
    return r, points


def test_lm_nfev_not_above_scipy_lm():
    """Our lm performs MINPACK lmder's iteration, so it needs no more residual
    evaluations than SciPy's lm (MINPACK) on every NIST fit from both starts, with
    one known exception: BoxBOD from start 1, where the trial steps overflow
    (non-finite residuals).  MINPACK's NaN comparisons then shrink the trust region
    less, and SciPy stops after 10 evaluations at a point that is not the solution
    (LRE 0); we treat a non-finite trial as the worst failure and certify in 31.
    nfev counts calls of ``fun`` only in both (the Jacobian is a callable)."""
    rows, not_above = [], 0
    for p in PROBLEMS:
        for start, x0 in enumerate(p.starts, 1):
            ours, _ = _traced(least_squares, p, x0, p.jac)
            theirs, _ = _traced(scipy.optimize.least_squares, p, x0, p.jac)
            rows.append((p.name, start, ours.nfev, theirs.nfev))
            if ours.nfev <= theirs.nfev:
                not_above += 1
            else:
                # only where SciPy's answer is wrong
                assert p.lre(theirs.x).min() < 4, (p.name, start, ours.nfev, theirs.nfev)
            assert p.lre(ours.x).min() >= 4, (p.name, start)
    assert not_above >= 53, rows
    ratio = np.array([o / t for _, _, o, t in rows])
    assert np.median(ratio) <= 1.0


@pytest.mark.parametrize("name,start", [("Misra1a", 1), ("Thurber", 1), ("MGH09", 2),
                                        ("Lanczos1", 2), ("Bennett5", 2), ("Hahn1", 1),
                                        ("Eckerle4", 1), ("Gauss3", 2)])
def test_lm_iterates_bit_identical_to_minpack(name, start):
    # MINPACK's QRFAC pivoting and norm downdating and ENORM's accumulation are
    # reproduced exactly, so every trial point equals lmder's to the last bit
    p = nist_strd(name)
    ours, pts = _traced(least_squares, p, p.starts[start - 1], p.jac)
    theirs, ref = _traced(scipy.optimize.least_squares, p, p.starts[start - 1], p.jac)
    assert len(pts) == len(ref)
    for k, (a, b) in enumerate(zip(pts, ref)):
        assert np.array_equal(a, b), (k, a, b)
    np.testing.assert_array_equal(ours.x, theirs.x)


@pytest.mark.parametrize("name", ["Misra1a", "Chwirut2", "Rat43", "Kirby2"])
def test_lm_finite_difference_path_matches_scipy_lm(name):
    # with jac="2-point" both use SciPy's forward-difference step rule
    p = nist_strd(name)
    for x0 in p.starts:
        ours, _ = _traced(least_squares, p, x0, "2-point")
        theirs, _ = _traced(scipy.optimize.least_squares, p, x0, "2-point")
        assert ours.nfev == theirs.nfev
        np.testing.assert_array_equal(ours.x, theirs.x)


@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09"])
def test_lm_result_jac_is_the_jacobian_at_the_solution(name):
    """When the last Jacobian was evaluated at the solution (the final steps were
    rejected) it is reused for ``result.jac`` instead of a new call."""
    p = nist_strd(name)
    calls = []

    def jac(x):
        calls.append(np.array(x, copy=True))
        return p.jac(x)
    kw = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=1000 * p.n_params)
    r = least_squares(p.residual, p.starts[0], jac=jac, method="lm", **kw)
    np.testing.assert_array_equal(r.jac, p.jac(r.x))
    np.testing.assert_array_equal(calls[-1], r.x)
    assert r.njev == len(calls)
    s = scipy.optimize.least_squares(p.residual, p.starts[0], jac=p.jac, method="lm", **kw)
    # SciPy's count omits its own extra call at the solution
    assert r.njev in (s.njev, s.njev + 1)
    np.testing.assert_array_equal(r.grad, r.jac.T @ r.fun)
