"""One trust-region loop with pluggable subproblem solvers.

``trust-ncg`` (Steihaug-Toint CG), ``trust-krylov`` (GLTR), ``trust-exact``
(Moré-Sorensen) and ``dogleg`` share :func:`trust_region_loop`; they differ in
the subproblem class only (:mod:`neurenix._core.subproblems`).
``"trust-region"`` is a friendly name for the default subproblem (Steihaug CG,
the one that needs only Hessian-vector products).

The radius update is the textbook one (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Algorithm 4.1) with SciPy's options
``initial_trust_radius``, ``max_trust_radius``, ``eta`` and ``gtol``: with
``rho`` the ratio of actual to predicted reduction, the radius is quartered
when ``rho < 1/4``, doubled (up to ``max_trust_radius``) when ``rho > 3/4``
and the step reached the boundary, and the step is taken when ``rho > eta``.

Stopping: success only on ``||g||_2 < gtol`` (SciPy's test for these methods).
The run also stops, *without* success, when the radius falls below the
rounding level of ``x`` (``Status.TRUST_RADIUS``), when the model predicts no
decrease (``Status.PRECISION``), on ``maxiter``, on a non-positive-definite
Hessian for ``dogleg`` (``Status.INDEFINITE``), on the callback's
``StopIteration`` or ``maxtime``.  A trial point where ``fun`` is not finite
is treated as a failed step (the radius shrinks).
"""
import numbers

import numpy as np

from .._ext import _krylov
from .._core.validation import MAX_INT
from .._core.result import as_status
from .._core.subproblems import (NotPositiveDefinite, SteihaugCG, KrylovGLTR,
                                 ExactMoreSorensen, Dogleg, make_problem)
from .._core.trust_radius import check_trust_options, update_radius

__all__ = ["trust_region_loop", "check_trust_options", "update_radius"]


def trust_region_loop(obj, x0, driver, subproblem, *, initial_trust_radius=1.0,
                      max_trust_radius=1000.0, eta=0.15, gtol=1e-4, maxiter=None,
                      return_all=False, sub_maxiter=0, **sub_kwargs):
    """Minimize ``obj`` by a trust-region method (N&W Algorithm 4.1).

    The loop itself is compiled (:func:`neurenix._ext._krylov.trust_region`):
    it calls Python only for ``fun``/``jac``/``hessp``, for the dense
    subproblems, and -- when a callback, ``disp`` or ``maxtime`` is set --
    once per iteration for the driver.

    Parameters
    ----------
    obj : ScalarObjective
    x0 : ndarray
    driver : Driver
    subproblem : class
        :class:`SteihaugCG`, :class:`KrylovGLTR`, :class:`ExactMoreSorensen` and
        :class:`Dogleg` run inside the compiled loop (GLTR keeps its Krylov
        space across rejected steps; the dense solvers are compiled too); any other
        class ``cls(x, f, g, hop, **sub_kwargs)`` (``hop`` the
        :class:`HessianOperator` at ``x``) with ``solve(radius) -> (p,
        hits_boundary)`` and ``model_value`` is called from it.
    sub_maxiter : int
        Cap on the inner iterations per solve (0: the solver's default -- CG
        ``2n``, Lanczos ``n``, Moré-Sorensen 25 factorization rounds).
    sub_kwargs
        ``inexact`` for :class:`KrylovGLTR`; passed to other classes.

    Returns
    -------
    OptimizeResult
        SciPy's fields plus ``nhessp`` (Hessian-vector products made) and
        ``trust_radius`` (the final radius).
    """
    radius, rmax, eta, gtol = check_trust_options(initial_trust_radius, max_trust_radius,
                                                  eta, gtol)
    n = x0.size
    if maxiter is None:
        maxiter = 200 * n
    if subproblem is SteihaugCG:
        kind, factory, inexact = _krylov.SUB_CG, None, True
    elif subproblem is KrylovGLTR:
        kind, factory, inexact = _krylov.SUB_GLTR, None, bool(sub_kwargs.get("inexact", True))
    elif subproblem is ExactMoreSorensen:
        kind, factory, inexact = _krylov.SUB_EXACT, None, True
    elif subproblem is Dogleg:
        kind, factory, inexact = _krylov.SUB_DOGLEG, None, True
    else:
        kind, inexact = _krylov.SUB_PYTHON, True

        def factory(x, f, g, hop):
            return subproblem(x, f, g, hop, **sub_kwargs)
    prob = make_problem(obj, dense=kind in (_krylov.SUB_PYTHON, _krylov.SUB_EXACT,
                                            _krylov.SUB_DOGLEG))
    f, g = obj.start(x0)
    allvecs = [x0.copy()] if return_all else None
    try:
        status, k, f, radius, x, g = _krylov.trust_region(
            prob, x0, g, f, kind, factory, NotPositiveDefinite, radius=radius,
            max_radius=rmax, eta=eta, gtol=gtol, maxiter=int(min(maxiter, 2**62)),
            sub_maxiter=int(min(sub_maxiter, MAX_INT)), inexact=inexact, driver=driver if driver.active else None, allvecs=allvecs)
    finally:
        prob.flush()
    extra = {"nhessp": prob.products(), "trust_radius": radius}
    if return_all:
        extra["allvecs"] = allvecs
    return driver.result(as_status(status),
                         x, f, g, k, **extra)


def _minimize_trust_ncg(obj, x0, *, bounds=None, driver, initial_trust_radius=1.0,
                        max_trust_radius=1000.0, eta=0.15, gtol=1e-4, maxiter=None,
                        return_all=False):
    """``minimize(method="trust-ncg")``: trust region with Steihaug-Toint CG.

    Options as SciPy's ``trust-ncg``: ``initial_trust_radius=1``,
    ``max_trust_radius=1000``, ``eta=0.15``, ``gtol=1e-4`` (on ``||g||_2``),
    ``maxiter=200 n``.  Hessian-vector products from ``hess``, ``hessp`` or
    finite differences of the gradient.
    """
    return trust_region_loop(obj, x0, driver, SteihaugCG,
                             initial_trust_radius=initial_trust_radius,
                             max_trust_radius=max_trust_radius, eta=eta, gtol=gtol,
                             maxiter=maxiter, return_all=return_all)


def _minimize_trust_krylov(obj, x0, *, bounds=None, driver, initial_trust_radius=1.0,
                           max_trust_radius=1000.0, eta=0.15, gtol=1e-4, maxiter=None,
                           inexact=True, return_all=False):
    """``minimize(method="trust-krylov")``: trust region with GLTR subproblems.

    ``inexact=True`` (SciPy's default) solves the Krylov subproblem to the
    forcing tolerance ``min(0.5, sqrt|g|) |g|``; ``False`` to ``1e-8 |g|``.
    """
    if not isinstance(inexact, (bool, np.bool_)):
        raise TypeError(f"inexact must be a bool, got {type(inexact).__name__}")
    return trust_region_loop(obj, x0, driver, KrylovGLTR, inexact=bool(inexact),
                             initial_trust_radius=initial_trust_radius,
                             max_trust_radius=max_trust_radius, eta=eta, gtol=gtol,
                             maxiter=maxiter, return_all=return_all)


def _minimize_trust_exact(obj, x0, *, bounds=None, driver, initial_trust_radius=1.0,
                          max_trust_radius=1000.0, eta=0.15, gtol=1e-4, maxiter=None,
                          subproblem_maxiter=None, return_all=False):
    """``minimize(method="trust-exact")``: Moré-Sorensen subproblems (dense Hessian).

    ``subproblem_maxiter`` (SciPy's option, default 25) caps the Cholesky
    factorization rounds per subproblem solve.

    Deviation from SciPy, an extension: without ``hess`` the dense Hessian is
    assembled from ``n`` Hessian-vector products (``hessp`` or finite
    differences) per iteration instead of raising.
    """
    if subproblem_maxiter is None:
        subproblem_maxiter = 25
    if (isinstance(subproblem_maxiter, bool) or not isinstance(subproblem_maxiter, numbers.Integral)
            or subproblem_maxiter < 1):
        raise ValueError(f"subproblem_maxiter must be an integer >= 1, got {subproblem_maxiter!r}")
    return trust_region_loop(obj, x0, driver, ExactMoreSorensen,
                             sub_maxiter=int(subproblem_maxiter),
                             initial_trust_radius=initial_trust_radius,
                             max_trust_radius=max_trust_radius, eta=eta, gtol=gtol,
                             maxiter=maxiter, return_all=return_all)


def _minimize_dogleg(obj, x0, *, bounds=None, driver, initial_trust_radius=1.0,
                     max_trust_radius=1000.0, eta=0.15, gtol=1e-4, maxiter=None,
                     return_all=False):
    """``minimize(method="dogleg")``: Powell's dogleg (positive definite Hessians).

    Stops with ``Status.INDEFINITE`` (``success=False``) when the Hessian is
    not positive definite (SciPy raises ``LinAlgError`` there).
    """
    return trust_region_loop(obj, x0, driver, Dogleg,
                             initial_trust_radius=initial_trust_radius,
                             max_trust_radius=max_trust_radius, eta=eta, gtol=gtol,
                             maxiter=maxiter, return_all=return_all)


def _register():
    try:
        from ._minimize import register_method
    except ImportError:      # the dispatcher is not there: the functions stay usable
        return
    register_method("trust-ncg", _minimize_trust_ncg, ("trust_ncg", "trust-region", "trustregion"), tol=("gtol",))
    register_method("trust-krylov", _minimize_trust_krylov, tol=("gtol",))
    register_method("trust-exact", _minimize_trust_exact, tol=("gtol",))
    register_method("dogleg", _minimize_dogleg, tol=("gtol",))


_register()
