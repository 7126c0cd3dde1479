"""Line-search Newton-CG (truncated Newton), ``minimize(method="Newton-CG")``.

Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.1: at each
iterate the Newton system ``H p = -g`` is solved inexactly by conjugate
gradients on Hessian-vector products (Cython loop
:func:`neurenix._ext._krylov.cg_newton`), with the forcing-term tolerance
``||r|| <= min(0.5, sqrt||g||) ||g||`` (superlinear convergence) and
negative-curvature detection (the CG iterate so far is returned, or ``-g`` at
the first CG step); then a strong-Wolfe line search from the unit step.

The small-step test is verified before it ends a run: the Newton system at
the new point is re-solved to ``1e-8 ||g||`` and the run stops only if that
accurate step, found on positive curvature, is small too.

Stopping (deliberately stricter than SciPy's): success is reported when
``max|g_i| <= gtol``, or when the step is small (SciPy's test ``mean|x_{k+1} -
x_k| <= xtol``) *and* it was a full, unit-length Newton step whose CG solve
converged on positive curvature -- near a non-degenerate minimizer the length
of that step estimates the distance to the solution.  A small step that came
from negative curvature or a shortened line-search step does not stop the
run.  (SciPy's Newton-CG stops on any small step and reports success; on the
10^4-variable Rosenbrock function it does so at f ~ 1e4.)
"""
import math
import numbers

import numpy as np

from .._ext import _krylov
from ._result import Status
from ._subproblems import HessianOperator

__all__ = ["_minimize_newton_cg"]


def _wolfe(obj, x, f, g, p, c1, c2, maxls=60):
    """Strong-Wolfe line search from step 1 along ``p`` by the project's
    Moré-Thuente search (:class:`neurenix._ext._linesearch.MoreThuente`,
    reverse communication).  Returns ``(alpha, f, g)`` or None on failure.
    A non-finite value at a trial step makes the search backtrack."""
    from .._ext._linesearch import MoreThuente
    dphi0 = float(g @ p)
    ls = MoreThuente()
    task, stp = ls.start(f, dphi0, 1.0, c1, c2, 1e-14, 0.0, 1e10)
    ft = gt = None
    for _ in range(maxls):
        if task != "FG":
            break
        xt = (x + stp * p).astype(x.dtype, copy=False)
        ft = obj.fun(xt)
        if not math.isfinite(ft):
            stp = ls.nonfinite()
            ft = None
            continue
        gt = obj.grad(xt)
        alpha = stp
        task, stp = ls.iterate(ft, float(gt @ p))
    if ft is None or gt is None:
        return None
    if task == "CONVERGENCE" or (task.startswith("WARNING") and
                                 ft <= f + c1 * alpha * dphi0 and ft < f):
        return alpha, ft, gt
    return None


def _check_positive(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return float(v)


def _minimize_newton_cg(obj, x0, *, bounds=None, driver, xtol=1e-5, gtol=1e-5, eps=None,
                        maxiter=None, cg_maxiter=None, c1=1e-4, c2=0.9, return_all=False):
    """Truncated Newton with CG inner iterations (N&W Algorithm 7.1).

    Parameters (``options``)
    ------------------------
    xtol : float, default 1e-5
        SciPy's small-step test ``mean|dx| <= xtol``; it ends the run only
        after a full Newton step (see the module docstring).
    gtol : float, default 1e-5
        Success when ``max|g_i| <= gtol`` (an addition to SciPy's options).
    eps : float, optional
        Accepted for SciPy compatibility (its finite-difference step for
        ``hessp``); here the relative step of the finite-difference Hessian
        products is set by the objective (``finite_diff_rel_step``); passing
        ``eps`` raises if it is not positive and is otherwise not used.
    maxiter : int, default 200 n
    cg_maxiter : int, default 20 n
        Cap on CG iterations per Newton step (SciPy's value).
    c1, c2 : float
        Strong-Wolfe parameters, ``0 < c1 < c2 < 1``.
    return_all : bool

    Returns
    -------
    OptimizeResult
        SciPy's fields plus ``nhessp`` (Hessian-vector products).
    """
    n = x0.size
    xtol = _check_positive("xtol", xtol)
    if isinstance(gtol, bool) or not isinstance(gtol, numbers.Real) or not gtol >= 0:
        raise ValueError(f"gtol must be >= 0, got {gtol!r}")
    if eps is not None:
        _check_positive("eps", eps)
    c1 = float(c1)
    c2 = float(c2)
    if not 0.0 < c1 < c2 < 1.0:
        raise ValueError(f"c1 and c2 must satisfy 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    if maxiter is None:
        maxiter = 200 * n
    if cg_maxiter is None:
        cg_maxiter = 20 * n
    x = x0
    f, g = obj.fun_and_grad(x)
    g = g.copy()
    p = np.empty_like(x)
    allvecs = [x.copy()] if return_all else None
    nprod = 0
    k = 0
    status = None
    while True:
        if float(np.max(np.abs(g))) <= gtol:
            status = Status.GTOL
            break
        if k >= maxiter:
            status = Status.MAXITER
            break
        gnorm = float(np.linalg.norm(g))
        tol = min(0.5, math.sqrt(gnorm)) * gnorm
        hop = HessianOperator(obj, x, check_symmetry=(k == 0))
        cg_status, _ = _krylov.cg_newton(g, hop, tol, int(cg_maxiter), p)
        nprod += hop.nprod
        gp = float(g @ p)
        if not gp < 0:
            # rounding made the CG iterate useless: fall back to steepest descent
            p[:] = -g
            gp = -gnorm * gnorm
            cg_status = _krylov.CG_NEGATIVE_CURVATURE
        ls = _wolfe(obj, x, f, g, p, c1, c2)
        if ls is None and cg_status != _krylov.CG_NEGATIVE_CURVATURE or (
                ls is None and not np.array_equal(p, -g)):
            # the (truncated) Newton direction failed: retry along steepest descent
            p[:] = -g
            cg_status = _krylov.CG_NEGATIVE_CURVATURE
            ls = _wolfe(obj, x, f, g, p, c1, c2)
        if ls is None:
            status = Status.LINESEARCH
            break
        alpha, f_new, g_new = ls
        step = alpha * p
        x_new = (x + step).astype(x.dtype, copy=False)
        k += 1
        small = float(np.mean(np.abs(step))) <= xtol
        full_newton = (alpha == 1.0 and cg_status == _krylov.CG_CONVERGED)
        unchanged = f_new >= f and np.array_equal(x_new, x)
        x, f, g = x_new, float(f_new), np.array(g_new, copy=True)
        if return_all:
            allvecs.append(x.copy())
        if driver.active:
            st = driver.iteration(k, x, f, g, step=float(np.linalg.norm(step)))
            if st is not None:
                status = st
                break
        if small and full_newton:
            if float(np.max(np.abs(g))) <= gtol:
                status = Status.GTOL
                break
            # verify with an accurate Newton step at the new point: near a
            # non-degenerate minimizer its length estimates the remaining error
            hop = HessianOperator(obj, x, check_symmetry=False)
            cg_chk, _ = _krylov.cg_newton(g, hop, 1e-8 * float(np.linalg.norm(g)),
                                          int(cg_maxiter), p)
            nprod += hop.nprod
            if cg_chk == _krylov.CG_CONVERGED and float(np.mean(np.abs(p))) <= xtol:
                status = Status.XTOL
                break
        if unchanged:
            status = Status.PRECISION
            break
    extra = {"nhessp": nprod}
    if return_all:
        extra["allvecs"] = allvecs
    return driver.result(status, x, f, g, k, **extra)


def _register():
    try:
        from ._minimize import register_method
    except ImportError:
        return
    register_method("Newton-CG", _minimize_newton_cg, ("newtoncg", "newton_cg"),
                    tol=("xtol", "gtol"))


_register()
