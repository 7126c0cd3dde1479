"""BFGS (dense inverse-Hessian update) for ``minimize``; loop in :mod:`neurenix._ext._lbfgs`.

References
----------
Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Algorithm 6.1,
eq. 6.17 (update) and 6.20 (initial scaling).
Moré & Thuente (1994), ACM TOMS 20(3) (line search).
"""
from ._lbfgs import run_compiled, _gtol_maxiter_wolfe
from ._minimize import register_method

__all__ = []


def _minimize_bfgs(obj, x0, *, bounds, driver, gtol=1e-5, maxiter=None, c1=1e-4, c2=0.9):
    """BFGS with a strong-Wolfe (Moré–Thuente) line search.

    Options (SciPy's): ``gtol`` (stop when ``max|g| <= gtol``), ``maxiter``
    (default ``200 * n``), ``c1``, ``c2`` (Wolfe constants, ``0 < c1 < c2 < 1``).
    ``tol`` sets ``gtol``.  The result's ``hess_inv`` is the dense (n, n) matrix.

    Deviation from SciPy, on purpose: before the first update, :math:`H_0` is
    scaled to :math:`(s^Ty / y^Ty) I` (Nocedal & Wright eq. 6.20) and later
    iterations try the unit step first; SciPy keeps :math:`H_0 = I`.
    A failed line search after a reset of H ends the run with
    ``Status.PRECISION`` (SciPy's "precision loss" status 2).
    """
    gtol, maxiter, c1, c2 = _gtol_maxiter_wolfe(x0.size, gtol, maxiter, c1, c2)
    status, nit, f, x, g, st = run_compiled(obj, x0, driver, 1, gtol=gtol, maxiter=maxiter,
                                            c1=c1, c2=c2, xtol=1e-14, maxls=100)
    return driver.result(status, x, f, g, nit, hess_inv=st["H"])


register_method("BFGS", _minimize_bfgs, tol=("gtol",), hess=False, x0_read_only=True)
