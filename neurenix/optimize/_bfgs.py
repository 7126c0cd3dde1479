"""BFGS (dense inverse-Hessian update) for ``minimize``; loop in :mod:`neurenix._ext._lbfgs`.

References
----------
Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Algorithm 6.1 and
eq. 6.17 (update); Algorithms 3.5 and 3.6 (the second line search).
Moré & Thuente (1994), ACM TOMS 20(3) (the first line search).
SciPy 1.17, ``scipy.optimize._optimize._minimize_bfgs`` (the iteration followed).
"""
import numpy as np
import scipy.linalg

from .._core.validation import real_option as _real_opt
from ._lbfgs import run_compiled, _gtol_maxiter_wolfe, _gradient_norm_order, EPSILON as _EPSILON
from ._minimize import register_method

__all__ = []


def _hess_inv0(h, n, dtype):
    """BFGS's ``hess_inv0`` option: an (n, n) symmetric positive definite matrix (SciPy's
    test: ``issymmetric`` and a Cholesky factorization), as a contiguous array of x's dtype."""
    a = np.asarray(h)
    if a.shape != (n, n):
        raise ValueError(f"options: hess_inv0 must have shape ({n}, {n}), got {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"options: hess_inv0 must be a real matrix, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError("options: hess_inv0 must hold finite numbers (no NaN or inf)")
    ok = scipy.linalg.issymmetric(a)
    if ok:
        try:
            scipy.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            ok = False
    if not ok:
        raise ValueError("'hess_inv0' matrix isn't positive definite.")
    return np.ascontiguousarray(a, dtype=dtype)


def _minimize_bfgs(obj, x0, *, bounds, driver, gtol=1e-5, maxiter=None, c1=1e-4, c2=0.9,
                   eps=_EPSILON, xrtol=0.0, norm=np.inf, hess_inv0=None,
                   return_all=False, workers=None):
    """BFGS with SciPy's two strong-Wolfe line searches.

    Options (SciPy's): ``gtol`` (stop when ``max|g| <= gtol``, see ``norm``), ``maxiter``
    (default ``200 * n``), ``c1``, ``c2`` (Wolfe constants, ``0 < c1 < c2 < 1``),
    ``eps`` (absolute step of the finite-difference gradient when no ``jac``
    function is given, as SciPy), ``xrtol`` (stop when the step
    :math:`\\alpha \\|p\\| \\le xrtol (xrtol + \\|x\\|)`, default 0), ``norm``
    (order of the gradient norm that ``gtol`` bounds, default ``inf``),
    ``hess_inv0`` (the initial inverse Hessian, symmetric positive definite;
    default the identity), ``return_all`` (the result's ``allvecs``: x0 and every
    iterate).  ``tol`` sets ``gtol``.  The result's ``hess_inv`` is
    the dense (n, n) matrix.

    The iteration is SciPy's ``_minimize_bfgs``, step for step: :math:`H_0 = I`;
    each line search is the Moré–Thuente search (SciPy's ``line_search_wolfe1``)
    from SciPy's trial step :math:`\\min(1, 2.02 (f_k - f_{k-1}) / g_k^T p_k)`
    (:math:`f_{-1} = f_0 + \\|g_0\\|/2`) and, when it fails, the bracketing and
    zoom search (``line_search_wolfe2``) from the same point; when both fail the
    run ends with status 2 (precision loss) at the last iterate.  The gradient,
    ``xrtol`` and non-finite-f tests come before the update of H, so H is not
    updated after the last iteration; the update is always applied, with
    :math:`\\rho = 1/y^Ts` (1000 when :math:`y^Ts = 0`).  ``nfev``/``njev``
    count as SciPy's ``ScalarFunction`` (a point equal to the last one is not
    evaluated again; finite-difference gradients count in ``njev``).  Iterates,
    ``nit``, ``nfev``, ``njev``, ``status`` and ``message`` are SciPy's, bit for
    bit on the same machine: inner products by BLAS ``ddot``, ``H g`` by ``dgemv``
    and (n <= 200) the update by SciPy's two ``dgemm`` products (above, the
    O(n^2) rank-two form, equal in exact arithmetic).  ``workers`` (an int or a
    map-like callable) evaluates the points of a finite-difference gradient in
    parallel, as SciPy's (:meth:`ScalarObjective.set_workers`).
    """
    gtol, maxiter, c1, c2 = _gtol_maxiter_wolfe(x0.size, gtol, maxiter, c1, c2)
    xrtol = _real_opt("xrtol", xrtol)
    kw = {}
    if norm is not np.inf:
        kw["norm"] = _gradient_norm_order(norm)
    if hess_inv0 is not None:
        kw["H0"] = _hess_inv0(hess_inv0, x0.size, x0.dtype)
    obj.use_abs_step(eps)
    obj.set_workers(workers)
    if return_all:
        driver.keep_iterates(x0)
    status, nit, f, x, g, st = run_compiled(obj, x0, driver, 1, gtol=gtol, maxiter=maxiter,
                                            c1=c1, c2=c2, xtol=1e-14, xrtol=xrtol, maxls=100,
                                            **kw)
    if return_all:
        return driver.result(status, x, f, g, nit, hess_inv=st["H"], allvecs=driver.allvecs)
    return driver.result(status, x, f, g, nit, hess_inv=st["H"])


register_method("BFGS", _minimize_bfgs, tol=("gtol",), hess=False, x0_read_only=True)
