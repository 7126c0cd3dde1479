"""Trust-region reflective (``least_squares(method="trf")``).

Bound constraints by M. A. Branch, T. F. Coleman and Y. Li, "A subspace, interior,
and conjugate gradient method for large-scale bound-constrained minimization
problems", SIAM J. Sci. Comput. 21(1), 1999: Coleman-Li scaling ``v(x)`` (in units
of ``x_scale`` where a bound is active, as SciPy), the augmented trust-region
subproblem solved by Moré's LM-parameter search, reflection of the step on the first
bound it hits, and the choice between the truncated, reflected and Cauchy steps by
the quadratic model.  For dense Jacobians the whole loop runs in Cython
(:func:`neurenix._ext._lsq.trf_solve`; the augmented matrix is factored once per
Jacobian and reused for every radius); Python is called for the residuals, the
Jacobian, the loss and the callback.  A sparse matrix or ``LinearOperator``
Jacobian runs the same iteration in Python (:func:`_solve_trf_py`) with the
subproblem by LSMR (Fong & Saunders 2011, ``scipy.sparse.linalg.lsmr``) for the
Gauss-Newton direction and a 2-D subspace trust-region solve (Byrd, Schnabel &
Shultz 1988).

The Python loop and its step selection (:func:`_select_step`) are the twin of the
compiled ``trf_solve`` (the Cython file has its own ``_select_step``,
``_cl_scaling``, ``_step_to_bound``, ``_ball_exit``, ``_min_1d``); the test suite
runs both on dense problems and requires the same iterates.
"""
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator, lsmr

from ..._ext import _lsq as _k
from .common import (_active_mask, _callback_stop, _check_jac, _cl_scaling, _col_scaled,
                     _colnorms, _grad, _intersect_ball, _minimize_1d, _model, _result,
                     _scale_for_loss, _step_to_bound, _strictly_feasible)


def _select_step(x, Jh, diag_h, gh, p, p_h, d, delta, lb, ub, theta):
    """Choose among the truncated, reflected and Cauchy steps (Branch et al. 1999, sec. 3)."""
    if np.all((x + p > lb) & (x + p < ub)):
        return p, p_h, -_model(Jh, gh, diag_h, p_h)
    t, hits = _step_to_bound(x, p, lb, ub)
    r_h = p_h.copy()
    r_h[hits.astype(bool)] *= -1
    r = d * r_h
    p_h = p_h * t
    p = p * t
    x_on = x + p
    # reflected direction: from the hit point, as far as the ball and the bounds allow
    _, to_tr = _intersect_ball(p_h, r_h, delta)
    to_bound, _ = _step_to_bound(x_on, r, lb, ub)
    r_stride = min(to_bound, to_tr)
    if r_stride > 0:
        lo = (1.0 - theta) * t / r_stride
        hi = theta * to_bound if r_stride == to_bound else to_tr
    else:
        lo, hi = 0.0, -1.0
    if lo <= hi:
        Jr = Jh @ r_h if not isinstance(Jh, LinearOperator) else Jh.matvec(r_h)
        Jp = Jh @ p_h if not isinstance(Jh, LinearOperator) else Jh.matvec(p_h)
        a = 0.5 * float(Jr @ Jr + r_h @ (diag_h * r_h))
        b = float(Jp @ Jr + p_h @ (diag_h * r_h) + gh @ r_h)
        r_t, _ = _minimize_1d(a, b, lo, hi)
        r_h = p_h + r_h * r_t
        r_value = _model(Jh, gh, diag_h, r_h)
    else:
        r_value = np.inf
    p_h = p_h * theta
    p = p * theta
    p_value = _model(Jh, gh, diag_h, p_h)
    # Cauchy step: along -gh, within ball and bounds
    ag_h = -gh
    ag = d * ag_h
    to_tr = delta / max(np.linalg.norm(ag_h), 1e-300)
    to_bound, _ = _step_to_bound(x, ag, lb, ub)
    ag_stride = theta * to_bound if to_bound < to_tr else to_tr
    Jg = Jh @ ag_h if not isinstance(Jh, LinearOperator) else Jh.matvec(ag_h)
    a = 0.5 * float(Jg @ Jg + ag_h @ (diag_h * ag_h))
    b = float(gh @ ag_h)
    ag_t, ag_value = _minimize_1d(a, b, 0.0, ag_stride)
    ag_h = ag_h * ag_t
    best = int(np.argmin([p_value, r_value, ag_value]))
    if best == 0:
        return p, p_h, -p_value
    if best == 1:
        return d * r_h, r_h, -r_value
    return d * ag_h, ag_h, -ag_value


def _tr_subproblem(Jh, fh, diag_h, delta, gh=None, lsmr_options=None, regularize=False):
    """min ||Jh p + fh||^2 + p^T diag(diag_h) p subject to ||p|| <= delta.

    Dense: Moré's LM-parameter search on the augmented matrix (Cython kernel).
    Sparse / LinearOperator: Gauss-Newton direction by LSMR, then the exact
    trust-region solution in the 2-D subspace spanned by it and the gradient.
    ``lsmr_options`` are passed to ``lsmr`` (``tr_options``); ``regularize``
    adds SciPy's Tikhonov term ``-q_min / delta**2`` to ``diag_h``, where
    ``q_min`` is the model's least value along ``-gh`` inside the region.
    """
    n = diag_h.size
    if lsmr_options is None and not (sparse.issparse(Jh) or isinstance(Jh, LinearOperator)):
        Ja = np.vstack((Jh, np.diag(np.sqrt(diag_h))))
        fa = np.concatenate((fh, np.zeros(n)))
        p, _ = _k.lm_step(Ja, fa, np.ones(n), delta)
        return p
    op = aslinearoperator(Jh)
    if regularize and gh is not None:
        gnorm = float(np.linalg.norm(gh))
        if gnorm > 0:
            # the quadratic model along s = -gh: a t^2 + b t, t in [0, delta/|gh|]
            Js = op.matvec(-gh)
            a = 0.5 * (float(Js @ Js) + float((-gh * diag_h) @ -gh))
            b = -gnorm ** 2
            t_hi = delta / gnorm
            ts = [0.0, t_hi]
            if a != 0 and 0 < -0.5 * b / a < t_hi:
                ts.append(-0.5 * b / a)
            q_min = min(t * (a * t + b) for t in ts)
            diag_h = diag_h - q_min / delta ** 2
    sq = np.sqrt(diag_h)
    aug = LinearOperator((op.shape[0] + n, n),
                         matvec=lambda v: np.concatenate((op.matvec(v), sq * v)),
                         rmatvec=lambda u: op.rmatvec(u[:op.shape[0]]) + sq * u[op.shape[0]:],
                         dtype=float)
    rhs = np.concatenate((-fh, np.zeros(n)))
    opts = {"atol": 1e-10, "btol": 1e-10, "maxiter": max(2 * n, 100)} \
        if lsmr_options is None else lsmr_options
    gn = lsmr(aug, rhs, **opts)[0]
    g = op.rmatvec(fh)
    S = np.column_stack((g, gn))
    Q, R = np.linalg.qr(S)
    keep = np.abs(np.diag(R)) > 1e-12 * max(np.abs(R).max(), 1e-300)
    Q = Q[:, keep]
    JQ = np.column_stack([aug.matvec(Q[:, k]) for k in range(Q.shape[1])])
    z, _ = _k.lm_step(JQ, -rhs, np.ones(Q.shape[1]), delta)
    return Q @ z


def _solve_trf(prob, x, f, J0, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
               verbose, tr_solver="exact", tr_options=None):
    """Trust-region reflective.  Dense Jacobians (user arrays or finite differences):
    the loop runs in Cython (:func:`neurenix._ext._lsq.trf_solve`), calling Python
    for the residuals, the Jacobian, the loss and the callback.  Sparse and
    ``LinearOperator`` Jacobians: the same iteration in Python
    (:func:`_solve_trf_py`), its subproblem by LSMR."""
    lb, ub = prob.lb, prob.ub
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    n = x.size
    if bounded:
        x_in = _strictly_feasible(x, lb, ub)
        if np.any(x_in != x):
            x = x_in
            f = prob.f(x)
            prob.nfev -= 1            # the start point is not an iteration's evaluation
            if not np.all(np.isfinite(f)):
                raise ValueError("fun: residuals at x0 (moved inside the bounds) are "
                                 "not finite")
            J0 = None if prob.jac_user is None else _check_jac(
                prob.jac_user(x.copy()), prob.m, n, True)
    J = prob.J(x, f, J0)
    if sparse.issparse(J) or isinstance(J, LinearOperator) or tr_solver == "lsmr" \
            or verbose == 2:
        # (verbose=2: SciPy's per-iteration table is printed by the Python loop)
        lsmr_options = None
        regularize = False
        if tr_solver == "lsmr":
            lsmr_options = dict(tr_options or {})
            regularize = bool(lsmr_options.pop("regularize", True))
        return _solve_trf_py(prob, x, f, J, loss, ftol, xtol, gtol, max_nfev, x_scale,
                             callback, verbose, lsmr_options, regularize)
    cb = None
    if callback is not None:
        def cb(xc, fc, cost):
            return _callback_stop(callback, xc, fc, cost)
    x, f, Js, g, cost, opt, status, nit, nfev, njev = _k.trf_solve(
        prob.fun, prob.jac_user, prob.fd_jac, x, f, J, lb, ub,
        None if loss.linear else loss, ftol, xtol, gtol, max_nfev, prob.nfev,
        None if isinstance(x_scale, str) else x_scale, cb, verbose)
    prob.nfev, prob.njev = nfev, njev
    active = _active_mask(x, lb, ub) if bounded else None
    # SciPy returns the loss-scaled Jacobian (J^T J approximates the cost's Hessian)
    return _result(x, f, Js, g, cost, prob, status, nit, active=active, optimality=opt)


def _solve_trf_py(prob, x, f, J, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
                  verbose, lsmr_options=None, regularize=False):
    """The trust-region reflective loop in Python, for any Jacobian kind (used for
    sparse and ``LinearOperator`` Jacobians; ``J`` is the Jacobian at ``x``, which
    lies strictly inside the bounds)."""
    lb, ub = prob.lb, prob.ub
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    n = x.size
    cost = loss.cost(f)
    if loss.linear:
        Js, fs = J, f
    else:
        Js, fs = _scale_for_loss(J, f, loss(f))
    g = _grad(Js, fs)
    jac_scale = isinstance(x_scale, str)
    if jac_scale:
        cn = _colnorms(Js)
        scale_inv = np.where(cn > 0, cn, 1.0)
    else:
        scale_inv = 1.0 / x_scale
    v, dv = _cl_scaling(x, g, lb, ub) if bounded else (np.ones(n), np.zeros(n))
    v = np.where(dv != 0, v * scale_inv, v)
    delta = np.linalg.norm(x * scale_inv / np.sqrt(v))
    if delta == 0:
        delta = 1.0
    status = None
    nit = 0
    reduction = step_norm = None        # of the last iteration (SciPy's table)
    if verbose == 2:
        print_header()
    while True:
        if bounded:
            v, dv = _cl_scaling(x, g, lb, ub)
        g_norm = float(np.max(np.abs(g * v)))
        if verbose == 2:
            print_row(nit, prob.nfev, cost, reduction, step_norm, g_norm)
        if g_norm < gtol:
            status = 1
        if prob.nfev >= max_nfev and status is None:
            status = 0
        if status is not None:
            break
        # the distance to a bound, in units of the variable's scale
        v = np.where(dv != 0, v * scale_inv, v)
        d = np.sqrt(v) / scale_inv
        diag_h = g * dv / scale_inv
        gh = d * g
        if isinstance(Js, LinearOperator):
            Jh = _col_scaled(Js, d)
        elif sparse.issparse(Js):
            Jh = Js @ sparse.diags(d)
        else:
            Jh = Js * d
        theta = max(0.995, 1.0 - g_norm)
        actual = -1.0
        while actual <= 0 and prob.nfev < max_nfev:
            p_h = _tr_subproblem(Jh, fs, diag_h, delta, gh, lsmr_options, regularize)
            p = d * p_h
            if bounded:
                step, step_h, predicted = _select_step(x, Jh, diag_h, gh, p, p_h, d, delta,
                                                       lb, ub, theta)
            else:
                step, step_h = p, p_h
                predicted = -_model(Jh, gh, diag_h, p_h)
            x_new = x + step
            if bounded:
                x_new = _strictly_feasible(x_new, lb, ub, rstep=0.0) \
                    if np.any((x_new <= lb) | (x_new >= ub)) else x_new
                x_new = np.clip(x_new, lb, ub)
                x_new = _strictly_feasible(x_new, lb, ub)
            f_new = prob.f(x_new)
            step_norm = float(np.linalg.norm(step_h))
            if not np.all(np.isfinite(f_new)):
                delta = 0.25 * step_norm
                continue
            cost_new = loss.cost(f_new)
            actual = cost - cost_new
            ratio = actual / predicted if predicted > 0 else (1.0 if actual > 0 else 0.0)
            if ratio < 0.25:
                delta = 0.25 * step_norm
            elif ratio > 0.75 and step_norm > 0.95 * delta:
                delta *= 2.0
            dx_norm = float(np.linalg.norm(x_new - x))
            ftol_ok = actual >= 0 and actual < ftol * cost and ratio > 0.25
            xtol_ok = dx_norm < xtol * (xtol + np.linalg.norm(x))
            if ftol_ok and xtol_ok:
                status = 4
            elif ftol_ok:
                status = 2
            elif xtol_ok:
                status = 3
            if status is not None:
                break
        nit += 1
        if actual > 0:
            x, f, cost = x_new, f_new, cost_new
            J = prob.J(x, f)
            if loss.linear:
                Js, fs = J, f
            else:
                Js, fs = _scale_for_loss(J, f, loss(f))
            g = _grad(Js, fs)
            if jac_scale:
                scale_inv = np.maximum(scale_inv, _colnorms(Js))
            if status is None and _callback_stop(callback, x, f, cost):
                status = -2
        reduction = max(actual, 0.0)
        if actual <= 0:
            step_norm = 0.0
        if status is not None:
            if verbose == 2:
                g_end = g * _cl_scaling(x, g, lb, ub)[0] if bounded else g
                print_row(nit, prob.nfev, cost, reduction, step_norm,
                          float(np.max(np.abs(g_end))))
            break
        if prob.nfev >= max_nfev:
            status = 0
            break
    if bounded:
        v, _ = _cl_scaling(x, g, lb, ub)
    active = _active_mask(x, lb, ub)
    # SciPy returns the loss-scaled Jacobian (J^T J approximates the cost's Hessian)
    return _result(x, f, Js, g, cost, prob, status, nit, active=active,
                   optimality=np.max(np.abs(g * v)))


def print_header():
    """SciPy's ``verbose=2`` table header of ``least_squares``."""
    print("{:^15}{:^15}{:^15}{:^15}{:^15}{:^15}".format(
        "Iteration", "Total nfev", "Cost", "Cost reduction", "Step norm", "Optimality"))


def print_row(iteration, nfev, cost, reduction, step_norm, optimality):
    """One row of SciPy's ``verbose=2`` table (blank reduction and step norm on
    the first row)."""
    red = " " * 15 if reduction is None else f"{reduction:^15.2e}"
    stp = " " * 15 if step_norm is None else f"{step_norm:^15.2e}"
    print(f"{iteration:^15}{nfev:^15}{cost:^15.4e}{red}{stp}{optimality:^15.2e}")
