"""Gauss-Newton with a backtracking line search (``least_squares(method="gn")``).

Armijo backtracking on the cost; the step solves ``min ||J p + f||`` by QR with
column pivoting (LAPACK ``dgeqp3`` in Cython, :func:`neurenix._ext._lsq.qr_lstsq`),
dropping columns whose pivot falls below ``eps * max(m, n) * |R_00|`` (Nocedal &
Wright, *Numerical Optimization*, 2nd ed., section 10.3).  The loop runs in Cython
(:func:`neurenix._ext._lsq.gn_solve`).  ``minimize(method="gauss-newton")`` reaches
it through :func:`neurenix.optimize._lsq.least_squares._minimize_gauss_newton`.
"""
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ..._ext import _lsq as _k
from .common import _callback_stop, _result, _scale_for_loss


def _solve_gn(prob, x, f, J0, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
              verbose, c1=1e-4):
    """Gauss-Newton: ``p = argmin ||J_s p + f_s||`` (pivoted QR), Armijo backtracking.

    The loop runs in Cython (:func:`neurenix._ext._lsq.gn_solve`); Python is called
    for the residuals, the Jacobian, the loss and the callback."""
    J = prob.J(x, f, J0)
    if sparse.issparse(J) or isinstance(J, LinearOperator):
        raise ValueError("jac: method='gn' needs a dense Jacobian; use method='trf'")

    def f_eval(xn):
        return prob.f(xn)

    def J_eval(xn, fn):
        Jn = prob.J(xn, fn)
        if sparse.issparse(Jn) or isinstance(Jn, LinearOperator):
            raise ValueError("jac: method='gn' needs a dense Jacobian; use method='trf'")
        return Jn
    cb = None
    if callback is not None:
        def cb(xc, fc, cost):
            return _callback_stop(callback, xc, fc, cost)
    x, f, J, cost, status, nit, nfev = _k.gn_solve(
        f_eval, J_eval, x, f, J, None if loss.linear else loss, ftol, xtol, gtol,
        max_nfev, prob.nfev, None if isinstance(x_scale, str) else x_scale, cb,
        verbose, c1)
    if not loss.linear:
        J, f_s = _scale_for_loss(J, f, loss(f))
        g = J.T @ f_s
    else:
        g = J.T @ f
    return _result(x, f, J, g, cost, prob, status, nit)

