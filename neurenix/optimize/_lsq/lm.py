"""Levenberg-Marquardt (``least_squares(method="lm")``).

Moré's scaling and trust-region control (J. J. Moré, "The Levenberg-Marquardt
algorithm: implementation and theory", Lecture Notes in Mathematics 630, 1978): the
iteration of MINPACK's ``lmder``, with its QR pivoting and norm accumulation
reproduced so that the trial points (hence ``nfev``) equal SciPy's ``lm`` to the
last bit while residuals stay finite.  The whole loop runs in Cython
(:func:`neurenix._ext._lsq.lm_solve`) over LAPACK; Python is called only for the
residuals, the Jacobian and the callback.
"""
import numpy as np

from ..._ext import _lsq as _k
from ..._core.result import OptimizeResult
from ..._core.residuals import check_jacobian
from ..._ext._status import LSQ_CODES as _L      # least_squares' codes, the one table

# MINPACK's info -> SciPy's least_squares status (6/7/8: the same tests hit at
# machine precision)
_FROM_MINPACK = {1: _L["FTOL"], 2: _L["XTOL"], 3: _L["FTOL_XTOL"], 4: _L["GTOL"],
                 5: _L["MAXFEV"], 6: _L["FTOL"], 7: _L["XTOL"], 8: _L["GTOL"],
                 -2: _L["CALLBACK"]}



def _stop_adapter(callback):
    """Adapt ``callback(OptimizeResult)`` to the kernel's ``cb(x, f) -> bool``."""
    if callback is None:
        return None

    def cb(x, f):
        try:
            r = callback(OptimizeResult(x=x, fun=f, cost=0.5 * float(f @ f)))
        except StopIteration:
            return True
        return bool(r)
    return cb


def _solve_lm(f_user, jac_user, jac, x0, f0, J0, ftol, xtol, gtol, max_nfev, x_scale,
              diff_step, callback):
    diag = None if isinstance(x_scale, str) else 1.0 / x_scale
    fd_method = jac if isinstance(jac, str) else "2-point"
    # the first Jacobian at x0 was already evaluated (and validated): reuse it
    x, f, info, nfev, njev, nit, J = _k.lm_solve(
        f_user, jac_user, x0, f0, ftol, xtol, gtol, max_nfev, diag, 100.0, fd_method,
        diff_step, _stop_adapter(callback), J0)
    if J is not None:
        pass      # the last Jacobian evaluated was at the solution: reuse it
    elif jac_user is not None:
        # the Jacobian at the solution, for result.jac (as SciPy); not fed to a kernel
        J = check_jacobian(jac_user(x.copy()), f.size, x.size, check_finite=False)
        njev += 1
    else:
        J = _k.fd_columns(f_user, x, f, _k.fd_steps(x, fd_method, diff_step),
                          np.full(x.size, fd_method == "3-point"), fd_method == "cs")
    g = J.T @ f
    return OptimizeResult(x=x, cost=0.5 * float(f @ f), fun=f, jac=J, grad=g,
                          optimality=float(np.abs(g).max()),
                          active_mask=np.zeros(x.size, dtype=int), nfev=int(nfev),
                          njev=int(njev) if jac_user is not None else None, nit=int(nit),
                          status=_FROM_MINPACK[info])

