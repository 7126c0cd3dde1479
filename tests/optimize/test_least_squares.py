"""least_squares against SciPy (same problem, same Jacobian), the Cython kernels
against dense closed forms, and the bad-input table."""
import warnings

import numpy as np
import pytest
import scipy.optimize
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

from neurenix._ext import _lsq as K
from neurenix.optimize import least_squares, minimize
from neurenix.optimize._lsq import LOSSES, _minimize_gauss_newton


def rosen_res(x):
    return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])


def rosen_jac(x):
    return np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])


T = np.linspace(0, 4, 60)
RNG = np.random.default_rng(0)
Y = 2.5 * np.exp(-1.3 * T) + 0.5 + 0.01 * RNG.standard_normal(T.size)
Y_OUT = Y.copy()
Y_OUT[::7] += 2.0          # outliers


def exp_res(p, y=Y):
    return p[0] * np.exp(-p[1] * T) + p[2] - y


def exp_jac(p, y=Y):
    e = np.exp(-p[1] * T)
    return np.column_stack((e, -p[0] * T * e, np.ones_like(T)))


# ------------------------------------------------------------------ kernels
def test_lm_step_satisfies_more_conditions():
    rng = np.random.default_rng(1)
    J = rng.standard_normal((12, 4))
    f = rng.standard_normal(12)
    D = rng.uniform(0.5, 2.0, 4)
    gn = np.linalg.lstsq(J, -f, rcond=None)[0]
    for delta in [1e-3, 0.1, 0.5 * np.linalg.norm(D * gn), 10.0]:
        p, par = K.lm_step(J, f, D, delta)
        # p solves (J^T J + par D^2) p = -J^T f
        np.testing.assert_allclose((J.T @ J + par * np.diag(D ** 2)) @ p, -J.T @ f,
                                   rtol=1e-9, atol=1e-11)
        dp = np.linalg.norm(D * p)
        if par == 0:
            assert dp <= 1.1 * delta
            np.testing.assert_allclose(p, gn, rtol=1e-10)
        else:
            assert abs(dp - delta) <= 0.1 * delta


def test_qr_lstsq_matches_lstsq_and_handles_rank_deficiency():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((20, 5))
    f = rng.standard_normal(20)
    p, rank = K.qr_lstsq(J, f)
    assert rank == 5
    np.testing.assert_allclose(p, np.linalg.lstsq(J, -f, rcond=None)[0], rtol=1e-10)
    Jd = np.column_stack((J[:, :3], J[:, 0] + J[:, 1], J[:, 2]))
    p, rank = K.qr_lstsq(Jd, f)
    assert rank == 3
    # a basic solution: same residual as the minimum-norm solution
    pm = np.linalg.lstsq(Jd, -f, rcond=None)[0]
    np.testing.assert_allclose(np.linalg.norm(Jd @ p + f), np.linalg.norm(Jd @ pm + f),
                               rtol=1e-10)


@pytest.mark.parametrize("method,tol", [("2-point", 1e-6), ("3-point", 1e-9), ("cs", 1e-13)])
def test_fd_columns(method, tol):
    p = np.array([2.0, 1.1, 0.3])
    f0 = exp_res(p)
    h = K.fd_steps(p, method)
    J = K.fd_columns(exp_res, p, f0, h, np.full(3, method == "3-point"), method == "cs")
    np.testing.assert_allclose(J, exp_jac(p), rtol=tol, atol=tol)


# ------------------------------------------------------------- vs SciPy
@pytest.mark.parametrize("jac", ["2-point", "3-point", "cs", "analytic"])
def test_lm_matches_scipy_lm(jac):
    j = exp_jac if jac == "analytic" else jac
    p0 = [1.0, 0.5, 0.0]
    r = least_squares(exp_res, p0, jac=j, method="lm")
    s = scipy.optimize.least_squares(exp_res, p0, jac=j, method="lm")
    np.testing.assert_allclose(r.x, s.x, rtol=1e-7)
    assert r.cost == pytest.approx(s.cost, rel=1e-10)
    assert r.success and r.status in (1, 2, 3, 4)
    np.testing.assert_allclose(r.grad, r.jac.T @ r.fun)
    assert r.optimality == pytest.approx(np.max(np.abs(r.grad)))
    assert r.nfev <= s.nfev + 4      # same algorithm; rounding and step details differ


def test_lm_rosenbrock_and_x_scale():
    for xs in [None, "jac", [1.0, 2.0]]:
        r = least_squares(rosen_res, [-1.2, 1.0], jac=rosen_jac, method="lm", x_scale=xs)
        np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-10)
        s = scipy.optimize.least_squares(rosen_res, [-1.2, 1.0], jac=rosen_jac, method="lm",
                                         x_scale=xs)
        assert r.nfev <= s.nfev + 4      # same algorithm; rounding and step details differ


@pytest.mark.parametrize("method", ["gn", "trf"])
def test_gn_trf_unbounded_match_scipy(method):
    r = least_squares(exp_res, [1.0, 0.5, 0.0], jac=exp_jac, method=method)
    s = scipy.optimize.least_squares(exp_res, [1.0, 0.5, 0.0], jac=exp_jac, method="trf")
    np.testing.assert_allclose(r.x, s.x, rtol=1e-6)
    assert r.success


@pytest.mark.parametrize("loss", ["soft_l1", "huber", "cauchy", "arctan"])
@pytest.mark.parametrize("method", ["trf", "gn"])
def test_robust_losses_match_scipy(loss, method):
    kw = dict(loss=loss, f_scale=0.1, ftol=1e-12, xtol=1e-12, gtol=1e-12)
    r = least_squares(exp_res, [2.0, 1.0, 0.4], jac=exp_jac, method=method, args=(Y_OUT,), **kw)
    s = scipy.optimize.least_squares(exp_res, [2.0, 1.0, 0.4], jac=exp_jac, method="trf",
                                     args=(Y_OUT,), **kw)
    assert r.cost == pytest.approx(s.cost, rel=1e-7)
    np.testing.assert_allclose(r.x, s.x, rtol=1e-5)
    # the robust fit is close to the truth despite the outliers; the plain fit is not
    assert np.allclose(r.x, [2.5, 1.3, 0.5], atol=0.05)


def test_loss_functions_are_derivatives_of_each_other():
    z = np.linspace(0.01, 4, 50)
    h = 1e-6
    for name, fn in LOSSES.items():
        r = fn(z)
        np.testing.assert_allclose(r[1], (fn(z + h)[0] - fn(z - h)[0]) / (2 * h), rtol=1e-5,
                                   atol=1e-8, err_msg=name)
        np.testing.assert_allclose(r[2], (fn(z + h)[1] - fn(z - h)[1]) / (2 * h), rtol=1e-4,
                                   atol=1e-7, err_msg=name)


def test_callable_loss_equals_builtin():
    def my_soft_l1(z):
        t = 1 + z
        return np.vstack((2 * (t ** 0.5 - 1), t ** -0.5, -0.5 * t ** -1.5))
    a = least_squares(exp_res, [2.0, 1.0, 0.4], jac=exp_jac, method="trf", args=(Y_OUT,),
                      loss=my_soft_l1, f_scale=0.2)
    b = least_squares(exp_res, [2.0, 1.0, 0.4], jac=exp_jac, method="trf", args=(Y_OUT,),
                      loss="soft_l1", f_scale=0.2)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12)


@pytest.mark.parametrize("jac", ["2-point", "3-point", "analytic"])
def test_trf_bounds_match_scipy(jac):
    j = exp_jac if jac == "analytic" else jac
    lb, ub = [0.0, 1.5, -1.0], [2.0, 5.0, 1.0]
    r = least_squares(exp_res, [1.0, 2.0, 0.0], jac=j, bounds=(lb, ub), method="trf",
                      ftol=1e-12, xtol=1e-12, gtol=1e-12)
    s = scipy.optimize.least_squares(exp_res, [1.0, 2.0, 0.0], jac=j, bounds=(lb, ub),
                                     method="trf", ftol=1e-12, xtol=1e-12, gtol=1e-12)
    np.testing.assert_allclose(r.x, s.x, rtol=1e-5, atol=1e-8)
    assert r.cost == pytest.approx(s.cost, rel=1e-8)
    assert np.all(r.x >= lb) and np.all(r.x <= ub)
    np.testing.assert_array_equal(r.active_mask, s.active_mask)


def test_trf_rosenbrock_bound_active():
    r = least_squares(rosen_res, [-1.2, 2.0], jac=rosen_jac, bounds=([-np.inf, 1.5], np.inf),
                      method="trf")
    s = scipy.optimize.least_squares(rosen_res, [-1.2, 2.0], jac=rosen_jac,
                                     bounds=([-np.inf, 1.5], np.inf), method="trf")
    np.testing.assert_allclose(r.x, s.x, rtol=1e-6)
    assert r.active_mask.tolist() == [0, -1]


def _broyden_banded(n):
    def fun(x):
        f = (3 - 2 * x) * x + 1
        f[1:] -= x[:-1]
        f[:-1] -= 2 * x[1:]
        return f

    def jac(x):
        return sparse.diags([-np.ones(n - 1), 3 - 4 * x, -2 * np.ones(n - 1)], [-1, 0, 1],
                            format="csr")
    return fun, jac


@pytest.mark.parametrize("kind", ["sparse", "linop"])
def test_sparse_and_linear_operator_jacobians(kind):
    n = 200
    fun, jac = _broyden_banded(n)
    j = jac if kind == "sparse" else (lambda x: aslinearoperator(jac(x)))
    r = least_squares(fun, -np.ones(n), jac=j, method="trf", x_scale=1.0)
    d = least_squares(fun, -np.ones(n), jac=lambda x: jac(x).toarray(), method="trf")
    assert r.cost < 1e-12
    np.testing.assert_allclose(r.x, d.x, atol=1e-6)


# ------------------------------------------------------------- interface
def test_args_kwargs_and_result_fields():
    def f(p, t, *, off):
        return p[0] * t + off - 2 * t
    r = least_squares(f, [0.0], args=(np.arange(5.0),), kwargs={"off": 0.0})
    assert r.x == pytest.approx([2.0])
    for k in ("x", "cost", "fun", "jac", "grad", "optimality", "active_mask", "nfev",
              "njev", "status", "message", "success"):
        assert k in r
    assert r.njev is None          # finite differences, as SciPy


@pytest.mark.parametrize("method", ["lm", "gn", "trf"])
def test_callback_stopiteration(method):
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.cost)
        if len(seen) == 2:
            raise StopIteration
    r = least_squares(rosen_res, [-1.2, 1.0], jac=rosen_jac, method=method, callback=cb)
    assert r.status == -2 and not r.success
    assert len(seen) == 2


def test_max_nfev_status_0():
    r = least_squares(rosen_res, [-1.2, 1.0], jac=rosen_jac, method="lm", max_nfev=3)
    assert r.status == 0 and not r.success and r.nfev <= 3


def test_minimize_gauss_newton_entry():
    r = _minimize_gauss_newton(rosen_res, np.array([-1.2, 1.0]), jac=rosen_jac)
    np.testing.assert_allclose(r.x, [1, 1], atol=1e-8)
    assert r.fun == pytest.approx(0.0, abs=1e-16)
    assert r.success


BAD = [
    (dict(fun=lambda x: np.array([np.nan, 1.0]), x0=[1.0, 2.0]), ValueError, "fun"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], jac=lambda x: np.ones((3, 2))), ValueError, "jac"),
    (dict(fun=lambda x: x[:1], x0=[1.0, 2.0], method="lm"), ValueError, "m >= n"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="lm", bounds=(0, 3)), ValueError, "bounds"),
    (dict(fun=rosen_res, x0=[1.0, 5.0], method="trf", bounds=(0, 3)), ValueError, "x0"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="trf", f_scale=-1.0), ValueError, "f_scale"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="trf", loss="bogus"), ValueError, "loss"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="lm", loss="huber"), ValueError, "loss"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="nope"), ValueError, "method"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], jac="4-point"), ValueError, "jac"),
    (dict(fun=rosen_res, x0=[1.0, np.inf]), ValueError, "x0"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], x_scale=-1.0), ValueError, "x_scale"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], max_nfev=0), ValueError, "max_nfev"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], ftol=-1.0), ValueError, "ftol"),
    (dict(fun=lambda x: np.ones((2, 2)), x0=[1.0, 2.0]), ValueError, "fun"),
    (dict(fun=rosen_res, x0=[1.0, 2.0], method="trf", bounds=(3, 0)), ValueError, "bounds"),
]


@pytest.mark.parametrize("kw,exc,word", BAD)
def test_bad_input(kw, exc, word):
    with pytest.raises(exc, match=word):
        least_squares(**kw)


def test_wrong_jacobian_shape_mid_run_is_reported():
    calls = [0]

    def jac(x):
        calls[0] += 1
        return rosen_jac(x) if calls[0] < 3 else np.ones((2, 3))
    with pytest.raises(ValueError, match="jac"):
        least_squares(rosen_res, [-1.2, 1.0], jac=jac, method="lm")


def _gn_reference(fun, jac, x, loss, ftol=1e-8, xtol=1e-8, gtol=1e-8, c1=1e-4):
    """Plain NumPy Gauss-Newton with Armijo backtracking and IRLS loss scaling (the
    algorithm the Cython loop implements), the step by numpy.linalg.lstsq."""
    rho = (lambda f: LOSSES[loss](f * f)) if loss != "linear" else None

    def cost_of(f):
        return 0.5 * float(f @ f) if rho is None else 0.5 * float(np.sum(rho(f)[0]))
    f = fun(x)
    J = jac(x)
    cost = cost_of(f)
    nfev, nit = 1, 0
    while True:
        if rho is None:
            Js, fs = J, f
        else:
            r = rho(f)
            w = np.sqrt(np.maximum(r[1] + 2 * r[2] * f ** 2, np.finfo(float).eps))
            Js, fs = J * w[:, None], f * (r[1] / w)
        g = Js.T @ fs
        if np.abs(g).max() <= gtol:
            return x, nit, nfev
        d = 1.0 / np.linalg.norm(Js, axis=0)
        p = d * np.linalg.lstsq(Js * d, -fs, rcond=None)[0]
        slope = g @ p
        t = 1.0
        while True:
            x_new = x + t * p
            f_new = fun(x_new)
            nfev += 1
            cost_new = cost_of(f_new)
            if cost_new <= cost + c1 * t * slope:
                break
            t *= 0.5
        nit += 1
        dF, dx = cost - cost_new, x_new - x
        accepted = cost_new < cost
        cost_old = cost
        if accepted:
            x, f, cost, J = x_new, f_new, cost_new, jac(x_new)
        ftol_ok = accepted and dF < ftol * cost_old
        if ftol_ok or np.linalg.norm(dx) < xtol * (xtol + np.linalg.norm(x)):
            return x, nit, nfev


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "cauchy"])
def test_gn_cython_loop_matches_numpy_reference(loss):
    y = Y if loss == "linear" else Y_OUT
    r = least_squares(exp_res, [2.0, 1.0, 0.4], jac=exp_jac, method="gn", loss=loss,
                      x_scale="jac", args=(y,))
    x, nit, nfev = _gn_reference(lambda p: exp_res(p, y), lambda p: exp_jac(p, y),
                                 np.array([2.0, 1.0, 0.4]), loss)
    assert (r.nit, r.nfev) == (nit, nfev)
    np.testing.assert_allclose(r.x, x, rtol=1e-7)   # the tolerances are 1e-8


# ------------------------------------------------------------- trf: the Cython loop
def _trf_python_loop(y, x0, bounds, loss, f_scale, x_scale, jac):
    """Run the Python trust-region reflective loop (the sparse / LinearOperator
    driver) on a dense problem: the reference the Cython loop must agree with."""
    from neurenix.optimize._lsq import common, trf
    x0 = np.array(x0, dtype=float)
    lb, ub = common._prepare_bounds(bounds, 3)
    f0 = exp_res(x0, y)
    jf = (lambda p: exp_jac(p, y)) if jac == "analytic" else None
    prob = common._Problem(lambda p: exp_res(p, y), jf, jac, lb, ub, None, f0.size, 3)
    x = x0
    if np.isfinite(lb).any() or np.isfinite(ub).any():
        x = common._strictly_feasible(x0, lb, ub)
        if np.any(x != x0):
            f0 = prob.f(x)
            prob.nfev -= 1
    J = prob.J(x, f0, None)
    xs = x_scale if isinstance(x_scale, str) else np.full(3, float(x_scale))
    return trf._solve_trf_py(prob, x, f0, J, common._Loss(loss, f_scale, f0.size), 1e-10,
                             1e-10, 1e-10, 300, xs, None, 0)


@pytest.mark.parametrize("bounds", [(-np.inf, np.inf), ([0.0, 1.5, -1.0], [2.0, 5.0, 1.0]),
                                    ([0.0, 0.0, 0.6], [3.0, 3.0, 1.0])])
@pytest.mark.parametrize("loss", ["linear", "soft_l1"])
@pytest.mark.parametrize("x_scale", [1.0, "jac"])
def test_trf_cython_loop_matches_python_loop_and_scipy(bounds, loss, x_scale):
    y = Y if loss == "linear" else Y_OUT
    f_scale = 1.0 if loss == "linear" else 0.1
    kw = dict(bounds=bounds, method="trf", loss=loss, f_scale=f_scale, x_scale=x_scale,
              ftol=1e-10, xtol=1e-10, gtol=1e-10)
    r = least_squares(exp_res, [1.0, 2.0, 0.7], jac=exp_jac, args=(y,), **kw)
    q = _trf_python_loop(y, [1.0, 2.0, 0.7], bounds, loss, f_scale, x_scale, "analytic")
    assert (r.nfev, r.nit, r.status) == (q.nfev, q.nit, q.status)
    np.testing.assert_allclose(r.x, q.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(r.active_mask, q.active_mask)
    s = scipy.optimize.least_squares(exp_res, [1.0, 2.0, 0.7], jac=exp_jac, args=(y,), **kw)
    np.testing.assert_allclose(r.x, s.x, rtol=1e-5, atol=1e-5)
    assert r.cost == pytest.approx(s.cost, rel=1e-7)
    assert r.nfev <= s.nfev + 4      # same algorithm; rounding and step details differ
    np.testing.assert_array_equal(r.active_mask, s.active_mask)
    # result fields from the kernel: loss-scaled Jacobian and gradient, optimality
    np.testing.assert_allclose(r.jac, q.jac, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r.grad, q.grad, atol=1e-8)
    if loss == "linear":
        np.testing.assert_allclose(r.grad, r.jac.T @ r.fun, atol=1e-12)
    assert abs(r.optimality - q.optimality) <= 1e-8


def test_trf_cython_loop_callback_verbose_and_nonfinite(capsys):
    seen = []

    def cb(res):
        seen.append(res.cost)
        if len(seen) == 2:
            raise StopIteration
    r = least_squares(exp_res, [1.0, 2.0, 0.7], jac=exp_jac, method="trf", callback=cb,
                      bounds=([0.0, 0.0, -1.0], [5.0, 5.0, 1.0]), verbose=2)
    assert r.status == -2 and len(seen) == 2 and seen[1] <= seen[0]
    out = capsys.readouterr().out          # SciPy's table and report
    assert "Iteration     Total nfev        Cost      Cost reduction" in out
    assert "Function evaluations 3, initial cost" in out

    def res_nan(p):                 # non-finite residuals shrink the region, not fail
        return exp_res(p) if p[1] < 3.0 else np.full(T.size, np.nan)
    r = least_squares(res_nan, [1.0, 2.9, 0.0], jac=exp_jac, method="trf")
    assert r.success and r.x[1] < 3.0
    np.testing.assert_allclose(r.x, [2.5, 1.3, 0.5], atol=0.05)


@pytest.mark.parametrize("m", [7, 255, 256, 1001])
def test_enorm_without_destructive_underflow_or_overflow(m):
    # short vectors sum in MINPACK's order, long ones in eight partial sums: both
    # must give the norm to rounding, and fall back to the three-range rule where
    # plain squares would underflow or overflow
    rng = np.random.default_rng(m)
    x = rng.standard_normal(m)
    for scale in (1.0, 1e-30, 1e-160, 1e-200, 1e150, 1e200, 1e300):
        y = x * scale
        ref = np.linalg.norm(y / scale) * scale
        assert K.enorm_py(y) == pytest.approx(ref, rel=1e-13), scale
    y = x.copy()
    y[::3] = 0.0
    y[1] = 1e-300                           # one tiny component among normal ones
    assert K.enorm_py(y) == pytest.approx(np.linalg.norm(y), rel=1e-14)
    assert K.enorm_py(np.zeros(m)) == 0.0
    y[2] = np.nan
    assert np.isnan(K.enorm_py(y))


def test_lm_long_residual_vectors_agree_with_minpack():
    # from 256 rows on, lm's sums use partial sums: same solution as SciPy's lm
    # (MINPACK) to rounding, and the same number of evaluations on this fit
    t = np.linspace(0, 5, 1000)
    y = 3.0 * np.exp(-1.2 * t) + 0.4 + 0.01 * np.random.default_rng(0).standard_normal(t.size)

    def f(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    def J(p):
        e = np.exp(-p[1] * t)
        return np.column_stack((e, -p[0] * t * e, np.ones_like(t)))
    for jac in (J, "2-point"):
        r = least_squares(f, [1.0, 0.5, 0.0], jac=jac, method="lm")
        s = scipy.optimize.least_squares(f, [1.0, 0.5, 0.0], jac=jac, method="lm")
        np.testing.assert_allclose(r.x, s.x, rtol=1e-9)
        assert r.cost == pytest.approx(s.cost, rel=1e-12)
        assert r.nfev <= s.nfev


@pytest.mark.parametrize("m", [40, 300])       # sequential sums / partial sums
def test_qrfac_factors_with_minpack_pivoting(m):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((m, 11)) * np.logspace(0, 3, 11)
    a, ipvt, rdiag, acnorm = K.qrfac_py(A)
    R = np.triu(a[:11])
    np.fill_diagonal(R, rdiag)
    assert a.shape == (m, 11)
    # A P = Q R: the Gram matrices agree
    AP = A[:, ipvt]
    np.testing.assert_allclose(R.T @ R, AP.T @ AP, rtol=1e-10, atol=1e-8 * acnorm.max() ** 2)
    np.testing.assert_allclose(acnorm, np.linalg.norm(A, axis=0), rtol=1e-14)
    # the first pivot is the column of largest norm; |R_jj| does not increase
    assert ipvt[0] == np.argmax(acnorm)
    assert np.all(np.diff(np.abs(rdiag)) <= 1e-12 * np.abs(rdiag[0]))
