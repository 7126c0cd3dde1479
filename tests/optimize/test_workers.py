"""SciPy's ``workers`` option: the finite-difference points of L-BFGS-B, BFGS and CG
evaluated by a map (in parallel), giving the serial run (and SciPy's) unchanged."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optimize import minimize


def fun(x):
    # module level: picklable for a process pool
    return so.rosen(x) + 0.1 * np.sum(np.sin(3 * x))


class CountingMap:
    def __init__(self):
        self.batches = []

    def __call__(self, f, points):
        pts = [np.array(p, copy=True) for p in points]
        self.batches.append(pts)
        return [f(p) for p in pts]


@pytest.mark.parametrize("method,kw", [
    ("BFGS", {}), ("CG", {}), ("L-BFGS-B", {}),
    ("L-BFGS-B", {"bounds": [(-0.5, 0.7)] * 5}),
])
def test_workers_map_gives_the_serial_run_and_scipys(method, kw):
    x0 = np.linspace(-0.4, 0.6, 5)
    serial = minimize(fun, x0, method=method, **kw)
    mp = CountingMap()
    r = minimize(fun, x0, method=method, options={"workers": mp}, **kw)
    np.testing.assert_array_equal(r.x, serial.x)
    assert (r.nit, r.nfev, r.njev, r.status) == (serial.nit, serial.nfev, serial.njev,
                                                serial.status)
    # one batch of n points per finite-difference gradient
    assert len(mp.batches) == r.njev and all(len(b) == 5 for b in mp.batches)
    # the points SciPy's map receives are ours, batch for batch (the runs are
    # SciPy's bit for bit)
    from .test_bfgs_cg_bitwise import _numpy_and_scipy_blas_agree
    if method != "L-BFGS-B" and not _numpy_and_scipy_blas_agree():
        return      # (BFGS/CG are SciPy's bit for bit only where NumPy's BLAS is SciPy's)
    ms = CountingMap()
    s = so.minimize(fun, x0, method=method, options={"workers": ms}, **kw)
    assert (r.nfev, r.njev) == (s.nfev, s.njev) and len(mp.batches) == len(ms.batches)
    for a, b in zip(mp.batches, ms.batches):
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


def test_workers_three_point():
    x0 = np.linspace(-0.4, 0.6, 4)
    serial = minimize(fun, x0, jac="3-point", method="BFGS")
    mp = CountingMap()
    r = minimize(fun, x0, jac="3-point", method="BFGS", options={"workers": mp})
    np.testing.assert_array_equal(r.x, serial.x)
    assert r.nfev == serial.nfev and all(len(b) == 8 for b in mp.batches)


def test_workers_int_process_pool():
    x0 = np.linspace(-0.4, 0.6, 3)
    opts = {"maxiter": 2}
    serial = minimize(fun, x0, method="L-BFGS-B", options=opts)
    r = minimize(fun, x0, method="L-BFGS-B", options=dict(opts, workers=2))
    np.testing.assert_array_equal(r.x, serial.x)
    assert r.nfev == serial.nfev


def test_workers_unused_with_jac():
    mp = CountingMap()
    r = minimize(so.rosen, np.zeros(3), jac=so.rosen_der, method="BFGS",
                 options={"workers": mp})
    assert r.success and mp.batches == []


@pytest.mark.parametrize("bad,exc", [("two", TypeError), (0, ValueError), (-3, ValueError),
                                     (True, TypeError)])
def test_workers_bad_value_named(bad, exc):
    with pytest.raises(exc, match="workers"):
        minimize(fun, np.zeros(3), method="BFGS", options={"workers": bad})


@pytest.mark.parametrize("workers", [1, 2, "callable"])
def test_own_map_wrapper_fallback(workers):
    # the stand-in for a SciPy without MapWrapper: the same contract
    from neurenix._core.objective import _OwnMapWrapper, _ValueAt
    w = (lambda f, it: [f(p) for p in it]) if workers == "callable" else workers
    pts = [np.linspace(-1, 1, 4) + k for k in range(3)]
    with _OwnMapWrapper(w) as mapped:
        got = list(mapped(_ValueAt(fun, ()), pts))
    assert got == [fun(p) for p in pts]


def test_line_search_maxiter_must_be_int():
    from neurenix.optimize import line_search
    with pytest.raises(TypeError, match="maxiter"):
        line_search(so.rosen, so.rosen_der, np.zeros(2), -so.rosen_der(np.zeros(2)), maxiter=2.5)
