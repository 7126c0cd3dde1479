"""Nonlinear conjugate gradients (Polak–Ribière+) for ``minimize``.

References
----------
Polak & Ribière (1969); Nocedal & Wright (2006), eq. 5.45 (PR+) and
Section 5.2; Moré & Thuente (1994) (line search).
"""
from ._lbfgs import run_compiled, _gtol_maxiter_wolfe, EPSILON as _EPSILON
from ._minimize import register_method

__all__ = []


def _minimize_cg(obj, x0, *, bounds, driver, gtol=1e-5, maxiter=None, c1=1e-4, c2=0.4,
                 eps=_EPSILON):
    """Polak–Ribière+ conjugate gradients, :math:`\\beta = \\max(0,
    g_{k+1}^T(g_{k+1}-g_k)/\\|g_k\\|^2)`, restarted with :math:`-g` when the
    direction fails :math:`d^Tg \\le -0.01\\|g\\|^2`.

    Options (SciPy's): ``gtol`` (``max|g| <= gtol``), ``maxiter`` (default
    ``200 * n``), ``c1``, ``c2`` (default 0.4, as SciPy), ``eps`` (absolute step of
    the finite-difference gradient when no ``jac`` function is given, as SciPy).
    ``tol`` sets ``gtol``.
    The first trial step of each line search is SciPy's
    :math:`\\min(1, 2.02 (f_k - f_{k-1}) / \\phi'(0))`.
    """
    gtol, maxiter, c1, c2 = _gtol_maxiter_wolfe(x0.size, gtol, maxiter, c1, c2)
    obj.use_abs_step(eps)
    status, nit, f, x, g, st = run_compiled(obj, x0, driver, 2, gtol=gtol, maxiter=maxiter,
                                            c1=c1, c2=c2, xtol=1e-14, maxls=100)
    return driver.result(status, x, f, g, nit)


register_method("CG", _minimize_cg, tol=("gtol",), hess=False, x0_read_only=True)
