"""SciPy drop-in fidelity (issue #13), each against SciPy itself: per-method status and
message, constraints and delegated methods, BFGS iterates, the legacy fmin_*/leastsq
interfaces, least_squares' SciPy options."""
import numpy as np
import pytest
import scipy.optimize as so
from scipy import sparse

from neurenix.optimize import (minimize, least_squares, Status, fmin_bfgs, fmin_cg,
                               fmin_l_bfgs_b, fmin_ncg, leastsq)


def rosen(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def rosen_der(x):
    return so.rosen_der(x)


@pytest.mark.parametrize("method,opts", [("L-BFGS-B", {}), ("L-BFGS-B", {"maxiter": 3}),
                                         ("L-BFGS-B", {"maxfun": 5}), ("BFGS", {}),
                                         ("BFGS", {"maxiter": 3}), ("CG", {}),
                                         ("CG", {"maxiter": 3})])
def test_status_and_message_are_scipys(method, opts):
    r = minimize(rosen, np.zeros(4), jac=rosen_der, method=method, options=opts)
    s = so.minimize(rosen, np.zeros(4), jac=rosen_der, method=method, options=opts)
    assert (r.status, r.message, r.success) == (s.status, s.message, s.success)
    assert isinstance(r.reason, Status) and r.reason.ok == r.success


def test_callback_stop_is_99():
    def cb(intermediate_result):
        raise StopIteration
    for method in ("L-BFGS-B", "BFGS"):
        r = minimize(rosen, np.zeros(3), method=method, callback=cb)
        s = so.minimize(rosen, np.zeros(3), method=method, callback=cb)
        assert (r.status, r.message, r.success) == (s.status, s.message, s.success) \
            == (99, "`callback` raised `StopIteration`.", False)
        assert r.reason == Status.CALLBACK


def test_bfgs_iterates_are_scipys():
    """H0 = I, SciPy's first trial step: the iterates follow SciPy's."""
    for x0 in (np.zeros(5), np.array([-1.2, 1.0, -1.2, 1.0])):
        xs_r, xs_s = [], []
        r = minimize(rosen, x0, jac=rosen_der, method="BFGS", callback=lambda x: xs_r.append(x))
        s = so.minimize(rosen, x0, jac=rosen_der, method="BFGS",
                        callback=lambda x: xs_s.append(x))
        assert (r.nit, r.nfev, r.njev) == (s.nit, s.nfev, s.njev)
        np.testing.assert_allclose(np.array(xs_r), np.array(xs_s), rtol=1e-7, atol=1e-10)
        # finite differences with SciPy's absolute step: the same path until the
        # last digits of the differences matter (at most an iteration or two apart)
        r = minimize(rosen, x0, method="BFGS")
        s = so.minimize(rosen, x0, method="BFGS")
        assert abs(r.nit - s.nit) <= 2 and r.fun < 1e-8 and s.fun < 1e-8


def test_constraints_and_delegation():
    r = minimize(rosen, np.zeros(2), constraints=())          # statsmodels passes it
    assert r.success and r.reason is not None
    with pytest.warns(RuntimeWarning, match="cannot handle constraints"):
        minimize(rosen, np.zeros(2), method="BFGS",
                 constraints={"type": "eq", "fun": lambda x: x[0]})
    con = {"type": "ineq", "fun": lambda x: 0.5 - x[0]}
    for kw in ({"constraints": con}, {"method": "Nelder-Mead"}, {"method": "powell"},
               {"method": "TNC", "bounds": [(0, 2)] * 2}, {"method": "COBYLA", "constraints": con},
               {"method": "trust-constr"}):
        r = minimize(rosen, np.zeros(2), **kw)
        s = so.minimize(rosen, np.zeros(2), **kw)
        np.testing.assert_array_equal(r.x, s.x)
        assert (r.status, r.message, r.nfev) == (s.status, s.message, s.nfev)


def test_lbfgsb_edge_semantics():
    x0 = np.array([3.0, -3.0])
    b = [(0.0, 2.0), (np.nan, 1.0)]          # NaN bound: no bound on that side
    r = minimize(rosen, x0, method="L-BFGS-B", bounds=b)
    s = so.minimize(rosen, x0, method="L-BFGS-B", bounds=b)
    np.testing.assert_allclose(r.x, s.x, atol=1e-5)
    assert (r.status, r.message) == (s.status, s.message)


def test_legacy_interfaces_match_scipy():
    x0 = np.array([-1.2, 1.0])
    a = fmin_bfgs(rosen, x0, rosen_der, full_output=True, disp=False)
    b = so.fmin_bfgs(rosen, x0, rosen_der, full_output=True, disp=False)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    assert a[4:] == b[4:]                    # func_calls, grad_calls, warnflag
    a = fmin_cg(rosen, x0, rosen_der, full_output=True, disp=False)
    b = so.fmin_cg(rosen, x0, rosen_der, full_output=True, disp=False)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-4)
    assert a[-1] == b[-1]
    x, f, d = fmin_l_bfgs_b(rosen, x0, rosen_der)
    xs, fs, ds = so.fmin_l_bfgs_b(rosen, x0, rosen_der)
    np.testing.assert_allclose(x, xs, rtol=1e-5)
    assert (d["warnflag"], d["task"], d["nit"]) == (ds["warnflag"], ds["task"], ds["nit"])
    x = fmin_ncg(rosen, x0, rosen_der, fhess=so.rosen_hess, disp=False)
    np.testing.assert_allclose(x, so.fmin_ncg(rosen, x0, rosen_der, fhess=so.rosen_hess,
                                              disp=False), atol=1e-4)


def test_leastsq_matches_minpack():
    t = np.linspace(0, 3, 30)
    y = 2 * np.exp(-1.3 * t) + 0.5
    res = lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y  # noqa: E731
    for p0 in ([1.0, 1.0, 0.0], [3.0, 0.2, 1.0]):
        a = leastsq(res, p0, full_output=True)
        b = so.leastsq(res, p0, full_output=True)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-7)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
        assert (a[2]["nfev"], a[3], a[4]) == (b[2]["nfev"], b[3], b[4])
    with pytest.raises(TypeError, match="Improper input"):
        leastsq(lambda p: p[:1], [1.0, 2.0])


def test_least_squares_scipy_options(capsys):
    t = np.linspace(0, 3, 30)
    y = 2 * np.exp(-1.3 * t) + 0.5
    res = lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y  # noqa: E731
    r = least_squares(res, [1.0, 1.0, 0.0])                    # default trf, as SciPy
    s = so.least_squares(res, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(r.x, s.x, rtol=1e-8)
    import importlib
    messages = importlib.import_module("scipy.optimize._lsq.least_squares").TERMINATION_MESSAGES
    assert r.nfev == s.nfev and r.message in messages.values()
    r = least_squares(res, [1.0, 1.0, 0.0], tr_solver="lsmr", tr_options={"regularize": False})
    np.testing.assert_allclose(r.x, s.x, rtol=1e-6)
    r = least_squares(res, [1.0, 1.0, 0.0], method="dogbox")
    np.testing.assert_array_equal(r.x, so.least_squares(res, [1.0, 1.0, 0.0], method="dogbox").x)
    capsys.readouterr()
    least_squares(res, [1.0, 1.0, 0.0], verbose=2)
    ours = capsys.readouterr().out.splitlines()
    so.least_squares(res, [1.0, 1.0, 0.0], verbose=2)
    theirs = capsys.readouterr().out.splitlines()
    assert ours[0] == theirs[0] and ours[1] == theirs[1]     # header, iteration 0
    # jac_sparsity: grouped differences, a sparse Jacobian, lsmr
    n = 30

    def broyden(z):
        f = (3 - z) * z + 1
        f[1:] -= z[:-1]
        f[:-1] -= 2 * z[1:]
        return f
    S = sparse.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n))
    r = least_squares(broyden, -np.ones(n), jac_sparsity=S)
    s = so.least_squares(broyden, -np.ones(n), jac_sparsity=S)
    assert sparse.issparse(r.jac) and r.cost < 1e-20 and s.cost < 1e-20
    with pytest.raises(ValueError, match="jac_sparsity"):
        least_squares(broyden, -np.ones(n), jac_sparsity=S, tr_solver="exact")
