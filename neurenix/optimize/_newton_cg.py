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
accurate step, found on positive curvature, is small too; that last step is
then taken (one more ``fun``/``jac`` evaluation, kept only if ``f`` does not
increase), so the point returned is closer to the minimizer than ``xtol``.

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

from .._ext import _krylov
from .._core.result import as_status
from .._core.subproblems import make_problem
from .._core.validation import check_positive_option as _check_positive, MAX_COUNT

#: forcing test of the inner CG: False, 2-norms as N&W 7.1 prints it,
#: ``||r|| <= min(0.5, sqrt||g||) ||g||``; True, 1-norms as SciPy's Newton-CG.
#: Measured on Rosenbrock (benchmarks/compare_second_order.py), the 1-norm
#: test makes fewer products per iteration at n = 10 but more iterations and
#: more products in total, and more products per iteration at n >= 100.
_L1_FORCING = False

__all__ = ["_minimize_newton_cg"]


def _minimize_newton_cg(obj, x0, *, bounds=None, driver, xtol=1e-5, gtol=1e-5, eps=None,
                        maxiter=None, cg_maxiter=None, c1=1e-4, c2=0.9, return_all=False):
    """Truncated Newton with CG inner iterations (N&W Algorithm 7.1).

    The whole loop is compiled (:func:`neurenix._ext._krylov.newton_cg`); it
    calls Python only for ``fun``/``jac``/``hessp`` and, when a callback,
    ``disp`` or ``maxtime`` is set, once per iteration for the driver.

    Parameters (``options``)
    ------------------------
    xtol : float, default 1e-5
        SciPy's small-step test ``mean|dx| <= xtol``; it ends the run only
        after a full Newton step (see the module docstring).
    gtol : float, default 1e-5
        Success when ``max|g_i| <= gtol`` (an addition to SciPy's options).
    eps : float, optional
        As SciPy's: when neither ``hess`` nor ``hessp`` is given, Hessian-vector
        products are the forward differences ``(g(x + eps p) - g(x)) / eps``
        with this absolute step (SciPy's default is ``sqrt(2.2e-16)``).  Left
        at None, the step is scaled instead, ``t = sqrt(eps_dtype) (1 +
        ||x||) / ||p||`` (the objective's rule, which suits float32 and badly
        scaled ``x`` better).  Not used when ``hess`` or ``hessp`` is given.
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
        eps = _check_positive("eps", eps)
        if not math.isfinite(eps):
            raise ValueError(f"eps must be finite, got {eps!r}")
    c1 = float(c1)
    c2 = float(c2)
    if not 0.0 < c1 < c2 < 1.0:
        raise ValueError(f"c1 and c2 must satisfy 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    if maxiter is None:
        maxiter = 200 * n
    if cg_maxiter is None:
        cg_maxiter = 20 * n
    if isinstance(cg_maxiter, bool) or not isinstance(cg_maxiter, numbers.Integral) \
            or cg_maxiter < 1:
        raise ValueError(f"cg_maxiter must be an integer >= 1, got {cg_maxiter!r}")
    f, g = obj.start(x0)
    prob = make_problem(obj, eps=eps)
    allvecs = [x0.copy()] if return_all else None
    try:
        status, k, f, x, g = _krylov.newton_cg(
            prob, x0, g, f, xtol=xtol, gtol=float(gtol), maxiter=int(min(maxiter, 2**62)),
            cg_maxiter=int(min(cg_maxiter, MAX_COUNT)), c1=c1, c2=c2, l1=_L1_FORCING,
            driver=driver if driver.active else None, allvecs=allvecs)
    finally:
        prob.flush()
    extra = {"nhessp": prob.products()}
    if return_all:
        extra["allvecs"] = allvecs
    return driver.result(as_status(status),
                         x, f, g, k, **extra)


def _register():
    try:
        from ._minimize import register_method
    except ImportError:
        return
    register_method("Newton-CG", _minimize_newton_cg, ("newtoncg", "newton_cg"),
                    tol=("xtol", "gtol"))


_register()
