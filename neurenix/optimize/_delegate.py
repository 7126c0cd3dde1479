"""The ``minimize`` methods neurenix does not implement: delegated to SciPy.

``Nelder-Mead``, ``Powell``, ``TNC``, ``COBYLA``, ``COBYQA``, ``SLSQP`` and
``trust-constr`` are derivative-free or constrained solvers outside neurenix's
scope.  So that every SciPy method name works with ``neurenix.optimize.minimize``
(and under :func:`neurenix.patch_scipy`), a call with one of them is handed to
SciPy's own ``minimize`` unchanged: same arguments (``x0`` as the user gave it,
``constraints``, ``tol``, ``options``), hence the same iterates, result fields,
status codes, messages and warnings.  The result is returned as neurenix's
:class:`~neurenix.optimize.OptimizeResult` (a dict with the same keys).
"""
import numpy as np

from .._core.result import OptimizeResult

__all__ = ["DELEGATED", "delegated_method", "delegate_minimize", "has_constraints"]

#: SciPy's spelling of each delegated method
DELEGATED = ("Nelder-Mead", "Powell", "TNC", "COBYLA", "COBYQA", "SLSQP", "trust-constr")

#: canonical key (case, ``-``, ``_`` and spaces ignored) -> SciPy's name
_KEYS = {"".join(ch for ch in name.lower() if ch not in "-_ "): name for name in DELEGATED}


def delegated_method(method):
    """SciPy's name of ``method`` when it is delegated, else None."""
    if not isinstance(method, str):
        return None
    return _KEYS.get("".join(ch for ch in method.lower() if ch not in "-_ "))


def has_constraints(constraints):
    """SciPy's test for "constraints were given" (``np.any(constraints)``): False for
    None, ``()``, ``[]`` and an empty dict."""
    if constraints is None:
        return False
    if isinstance(constraints, (tuple, list)) and len(constraints) == 0:
        return False
    try:
        return bool(np.any(constraints))
    except Exception:        # an object NumPy cannot make an array of: given
        return True


def delegate_minimize(fun, x0, args, method, jac, hess, hessp, bounds, constraints, tol,
                      callback, options):
    """``scipy.optimize.minimize`` itself (never a patched binding) with the
    user's arguments; the result as an :class:`OptimizeResult`."""
    from scipy.optimize._minimize import minimize as scipy_minimize
    res = scipy_minimize(fun, x0, args=args, method=method, jac=jac, hess=hess, hessp=hessp,
                         bounds=bounds, constraints=constraints, tol=tol, callback=callback,
                         options=options)
    return OptimizeResult(res)
