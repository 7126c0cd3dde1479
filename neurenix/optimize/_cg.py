"""Nonlinear conjugate gradients (Polak–Ribière+) for ``minimize``.

References
----------
Polak & Ribière (1969); Nocedal & Wright (2006), eq. 5.45 (PR+), Section 5.2,
Algorithms 3.5 and 3.6 (the second line search); Gilbert & Nocedal (1992),
SIAM J. Optim. 2(1) (the sufficient-descent test); Moré & Thuente (1994) (the
first line search).  SciPy 1.17, ``scipy.optimize._optimize._minimize_cg``.
"""
import numpy as np

from ._lbfgs import run_compiled, _gtol_maxiter_wolfe, _gradient_norm_order, EPSILON as _EPSILON
from ._minimize import register_method

__all__ = []


def _minimize_cg(obj, x0, *, bounds, driver, gtol=1e-5, maxiter=None, c1=1e-4, c2=0.4,
                 eps=_EPSILON, norm=np.inf, return_all=False, workers=None):
    """Polak–Ribière+ conjugate gradients, SciPy's ``_minimize_cg`` step for step.

    :math:`p_{k+1} = -g_{k+1} + \\beta p_k`, :math:`\\beta = \\max(0,
    g_{k+1}^T(g_{k+1}-g_k)/\\|g_k\\|^2)`, :math:`p_0 = -g_0`, never restarted.
    A step is accepted only where the new direction is a sufficient descent
    direction, :math:`p_{k+1}^Tg_{k+1} \\le -0.01\\|g_{k+1}\\|^2` (or
    ``max|g| <= gtol`` there): a Moré–Thuente step (SciPy's
    ``line_search_wolfe1``) that fails it, or a failed Moré–Thuente search, is
    followed by the bracketing and zoom search (``line_search_wolfe2``), which
    accepts a strong-Wolfe point only where the test holds; when both fail the
    run ends with status 2 (precision loss).  The first trial step of each
    search is SciPy's :math:`\\min(1, 2.02 (f_k - f_{k-1}) / \\phi'(0))`.
    ``nfev``/``njev`` count as SciPy's ``ScalarFunction``.  Iterates and counts are
    SciPy's up to rounding (see BFGS).

    Options (SciPy's): ``gtol`` (``max|g| <= gtol``), ``norm`` (order of that
    gradient norm, default ``inf``), ``maxiter`` (default ``200 * n``), ``c1``,
    ``c2`` (default 0.4, as SciPy), ``eps`` (absolute step of the
    finite-difference gradient when no ``jac`` function is given, as SciPy),
    ``return_all`` (the result's ``allvecs``: x0 and every iterate).  ``tol`` sets
    ``gtol``.
    """
    gtol, maxiter, c1, c2 = _gtol_maxiter_wolfe(x0.size, gtol, maxiter, c1, c2)
    kw = {} if norm is np.inf else {"norm": _gradient_norm_order(norm)}
    if return_all:
        driver.keep_iterates(x0)
    obj.use_abs_step(eps)
    obj.set_workers(workers)
    status, nit, f, x, g, st = run_compiled(obj, x0, driver, 2, gtol=gtol, maxiter=maxiter,
                                            c1=c1, c2=c2, xtol=1e-14, maxls=100, **kw)
    if return_all:
        return driver.result(status, x, f, g, nit, allvecs=driver.allvecs)
    return driver.result(status, x, f, g, nit)


register_method("CG", _minimize_cg, tol=("gtol",), hess=False, x0_read_only=True)
