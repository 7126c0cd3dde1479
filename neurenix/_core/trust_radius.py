"""The trust-radius update and the trust-region options, shared by
``minimize``'s trust-region methods and :class:`neurenix.optim.TrustRegion`.

The update is the textbook one (Nocedal & Wright, *Numerical Optimization*,
2nd ed., Algorithm 4.1): with ``rho`` the ratio of actual to predicted
reduction, the radius is quartered when ``rho < 1/4`` and doubled (up to
``max_radius``) when ``rho > 3/4`` and the step reached the boundary.  It is
compiled (:func:`neurenix._ext._krylov.update_radius`, the code the compiled
loops run); this module is its Python face.
"""
import math

from .._ext import _krylov
from .validation import check_real

__all__ = ["update_radius", "check_trust_options"]

#: ``update_radius(radius, rho, hits_boundary, max_radius) -> new radius``
update_radius = _krylov.update_radius


def check_trust_options(initial_trust_radius, max_trust_radius, eta, gtol):
    """Validate SciPy's trust-region options; errors name the argument.

    Returns ``(initial_trust_radius, max_trust_radius, eta, gtol)`` as floats.
    """
    r0 = check_real(initial_trust_radius, "initial_trust_radius")
    if not 0 < r0 < math.inf:
        raise ValueError(f"initial_trust_radius must be > 0 and finite, got {initial_trust_radius!r}")
    rmax = check_real(max_trust_radius, "max_trust_radius")
    if not rmax > 0:
        raise ValueError(f"max_trust_radius must be > 0, got {max_trust_radius!r}")
    if r0 > rmax:
        raise ValueError(f"initial_trust_radius ({r0}) must be <= max_trust_radius ({rmax})")
    e = check_real(eta, "eta")
    if not 0.0 <= e < 0.25:
        raise ValueError(f"eta must be in [0, 0.25), got {eta!r}")
    gt = check_real(gtol, "gtol")
    if not gt >= 0:
        raise ValueError(f"gtol must be >= 0, got {gtol!r}")
    return r0, rmax, e, gt
