"""BFGS (dense inverse-Hessian update) for ``minimize``; loop in :mod:`neurenix._ext._lbfgs`.

References
----------
Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Algorithm 6.1,
eq. 6.17 (update) and 6.20 (initial scaling).
Moré & Thuente (1994), ACM TOMS 20(3) (line search).
"""
from ._lbfgs import run_compiled, _gtol_maxiter_wolfe, EPSILON as _EPSILON
from ._minimize import register_method

__all__ = []


def _minimize_bfgs(obj, x0, *, bounds, driver, gtol=1e-5, maxiter=None, c1=1e-4, c2=0.9,
                   eps=_EPSILON):
    """BFGS with a strong-Wolfe (Moré–Thuente) line search.

    Options (SciPy's): ``gtol`` (stop when ``max|g| <= gtol``), ``maxiter``
    (default ``200 * n``), ``c1``, ``c2`` (Wolfe constants, ``0 < c1 < c2 < 1``),
    ``eps`` (absolute step of the finite-difference gradient when no ``jac``
    function is given, as SciPy).  ``tol`` sets ``gtol``.  The result's
    ``hess_inv`` is the dense (n, n) matrix.

    The iteration is SciPy's: :math:`H_0 = I`, each line search (Moré–Thuente,
    SciPy's ``line_search_wolfe1``) starts from SciPy's trial step
    :math:`\\min(1, 2.02 (f_k - f_{k-1}) / g_k^T d_k)`, and a failed line search
    ends the run (SciPy's "precision loss", status 2).  Deviations: SciPy
    retries a failed search with a second line search (``line_search_wolfe2``)
    before giving up, and it updates H even when :math:`s^Ty \\le 0`, which
    this loop skips.
    """
    gtol, maxiter, c1, c2 = _gtol_maxiter_wolfe(x0.size, gtol, maxiter, c1, c2)
    obj.use_abs_step(eps)
    status, nit, f, x, g, st = run_compiled(obj, x0, driver, 1, gtol=gtol, maxiter=maxiter,
                                            c1=c1, c2=c2, xtol=1e-14, maxls=100)
    return driver.result(status, x, f, g, nit, hess_inv=st["H"])


register_method("BFGS", _minimize_bfgs, tol=("gtol",), hess=False, x0_read_only=True)
