"""``TrustRegion``: closure-driven trust-region Newton over Parameters.

One :meth:`TrustRegion.step` is one iteration of the loop of
:func:`neurenix.optimize._trustregion.trust_region_loop`: the same subproblem
classes (:mod:`neurenix._core.subproblems`: Steihaug CG, GLTR, Moré-Sorensen),
the same radius update (:func:`~neurenix._core.trust_radius.update_radius`)
and the same option checks; the radius is kept in the optimizer state.
"""
import math

import numpy as np

from .._core.subproblems import HessianOperator, SteihaugCG, KrylovGLTR, ExactMoreSorensen
from .._core.trust_radius import check_trust_options, update_radius
from .optimizer import Optimizer
from ._flat import FlatClosure

__all__ = ["TrustRegion"]

_SUBPROBLEMS = {"cg": SteihaugCG, "krylov": KrylovGLTR, "exact": ExactMoreSorensen}


class TrustRegion(Optimizer):
    """Trust-region Newton method with a choice of subproblem solver.

    Each :meth:`step` evaluates the closure at the current parameters, solves
    the trust-region subproblem on Hessian-vector products, evaluates the loss
    at the trial point and accepts it when the ratio of actual to predicted
    reduction exceeds ``eta``; the radius is updated as in Nocedal & Wright,
    Algorithm 4.1.

    Parameters
    ----------
    params : iterable of Parameter
        One param group of NumPy parameters sharing a dtype.
    subproblem : {"cg", "krylov", "exact"}, default "cg"
        Steihaug-Toint CG, GLTR (Gould et al. 1999), or Moré-Sorensen (dense
        Hessian assembled from ``n`` products: small models only).
    initial_trust_radius : float, default 1
    max_trust_radius : float, default 1000
    eta : float in [0, 0.25), default 0.15
    tolerance_grad : float, default 1e-7
        A step does nothing once ``||g||_2 <= tolerance_grad``.
    hvp : callable, optional
        ``hvp(v) -> H v`` at the current parameters on flat vectors; default:
        forward differences of closure gradients.

    Notes
    -----
    ``step(closure)`` returns the loss on entry.  It calls the closure once
    for the gradient, once at the trial point, and once per finite-difference
    product.  State (``step``, ``radius``, ``accepted``, ``func_evals``,
    ``n_hessp``) lives in ``state[first parameter]`` and round-trips through
    ``state_dict``.

    References
    ----------
    Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Ch. 4 and 7.2.
    Steihaug (1983), SIAM J. Numer. Anal. 20(3):626-637.
    Gould, Lucidi, Roma & Toint (1999), SIAM J. Optim. 9(2):504-525.
    Moré & Sorensen (1983), SIAM J. Sci. Stat. Comput. 4(3):553-572.
    """

    def __init__(self, params, subproblem="cg", initial_trust_radius=1.0,
                 max_trust_radius=1000.0, eta=0.15, tolerance_grad=1e-7, hvp=None):
        if hvp is not None and not callable(hvp):
            raise TypeError(f"hvp must be callable or None, got {type(hvp).__name__}")
        defaults = dict(subproblem=subproblem, initial_trust_radius=initial_trust_radius,
                        max_trust_radius=max_trust_radius, eta=eta,
                        tolerance_grad=tolerance_grad)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("params: TrustRegion supports only one param group")
        self._flat = FlatClosure(self.param_groups[0]["params"], hvp)
        self.hvp = hvp

    def _check_group(self, group):
        if group["subproblem"] not in _SUBPROBLEMS:
            raise ValueError(f"subproblem must be one of {sorted(_SUBPROBLEMS)}, got "
                             f"{group['subproblem']!r}")
        check_trust_options(group["initial_trust_radius"], group["max_trust_radius"],
                            group["eta"], group["tolerance_grad"])

    def _state(self, group):
        first = group["params"][0]
        st = self.state.get(first)
        if not st:
            st = self.state[first] = {"step": 0, "radius": float(group["initial_trust_radius"]),
                                      "accepted": 0, "func_evals": 0, "n_hessp": 0}
        return st

    def step(self, closure):
        """One trust-region iteration; return the loss on entry."""
        if closure is None or not callable(closure):
            raise TypeError("closure: TrustRegion.step needs a closure that returns the loss "
                            "and fills the gradients")
        group = self.param_groups[0]
        self._check_group(group)
        st = self._state(group)
        x = self._flat.get().copy()
        obj = self._flat.objective(closure, x)
        try:
            f, g = obj.fun_and_grad(x)
            g = g.copy()
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                raise ValueError("closure returned a non-finite loss or gradient")
            if float(np.linalg.norm(g)) <= group["tolerance_grad"]:
                return f
            hop = HessianOperator(obj, x, check_symmetry=False)
            sub = _SUBPROBLEMS[group["subproblem"]](x, f, g, hop)
            radius = float(st["radius"])
            p, hits = sub.solve(radius)
            st["n_hessp"] += hop.nprod
            predicted = -sub.model_value
            x_new = (x + p).astype(x.dtype, copy=False)
            accepted = False
            if predicted > 0:
                f_new = obj.fun(x_new)
                actual = f - f_new if math.isfinite(f_new) else -math.inf
                rho = actual / predicted
                st["radius"] = update_radius(radius, rho, hits,
                                             float(group["max_trust_radius"]))
                accepted = rho > group["eta"]
            else:
                st["radius"] = 0.25 * radius
            if accepted:
                x = x_new
                st["accepted"] += 1
            st["step"] += 1
            return f
        finally:
            self._flat.set(x)
            st["func_evals"] += obj.nfev
