"""``NewtonCG``: closure-driven truncated Newton over Parameters.

The algorithm is the one of ``minimize(method="Newton-CG")``
(:mod:`neurenix.optimize._newton_cg`): the same Cython CG loop
(:func:`neurenix._ext._krylov.cg_newton`), the same Hessian access
(:class:`neurenix._core.subproblems.HessianOperator`) and the same
Moré-Thuente strong-Wolfe search (:func:`neurenix._ext._krylov.wolfe_search`); this module only maps the parameters of one
group to a flat vector and the closure to an objective.
"""
import math
import numbers

import numpy as np

from .._ext import _krylov
from .._core.subproblems import HessianOperator, make_problem
from .._core.validation import check_lr, check_nonneg
from .optimizer import Optimizer
from ._flat import FlatClosure

__all__ = ["NewtonCG"]


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral,)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


class NewtonCG(Optimizer):
    """Truncated Newton with conjugate-gradient inner iterations (N&W Algorithm 7.1).

    Each :meth:`step` makes ``max_iter`` Newton iterations: CG on
    Hessian-vector products solves ``H p = -g`` to the forcing tolerance
    ``min(0.5, sqrt||g||) ||g||`` (negative curvature ends CG early), then
    the parameters move by ``lr * p`` or, with
    ``line_search_fn="strong_wolfe"``, by the Moré-Thuente step along ``p``.

    Parameters
    ----------
    params : iterable of Parameter
        One param group of NumPy parameters sharing a dtype.
    lr : float, default 1
    max_iter : int, default 1
        Newton iterations per :meth:`step`.
    max_cg_iter : int, optional
        CG iterations per Newton step (default ``20 n``).
    tolerance_grad : float, default 1e-7
        A step does nothing once ``max|g| <= tolerance_grad``.
    line_search_fn : None or "strong_wolfe"
    hvp : callable, optional
        ``hvp(v) -> H v`` at the current parameter values, ``v`` and the
        result flat vectors of all parameters (in group order).  Default:
        forward differences of closure gradients,
        ``(g(x + t v) - g(x)) / t`` with ``t = sqrt(eps) (1 + ||x||) / ||v||``.

    Notes
    -----
    ``step(closure)`` returns the loss at the parameters on entry (as
    ``torch.optim.LBFGS``).  The closure must return the loss and fill every
    parameter's ``.grad``; it is called once per gradient (and per
    finite-difference product).  State (``step``, ``func_evals``,
    ``n_hessp``, ``cg_iters``) lives in ``state[first parameter]`` and
    round-trips through ``state_dict``.

    References
    ----------
    Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Algorithm 7.1.
    Dembo & Steihaug (1983), "Truncated-Newton algorithms for large-scale
    unconstrained optimization", Math. Programming 26:190-212.
    """

    def __init__(self, params, lr=1.0, max_iter=1, max_cg_iter=None, tolerance_grad=1e-7,
                 line_search_fn=None, hvp=None):
        if hvp is not None and not callable(hvp):
            raise TypeError(f"hvp must be callable or None, got {type(hvp).__name__}")
        defaults = dict(lr=lr, max_iter=max_iter, max_cg_iter=max_cg_iter,
                        tolerance_grad=tolerance_grad, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("params: NewtonCG supports only one param group")
        self._flat = FlatClosure(self.param_groups[0]["params"], hvp)
        self.hvp = hvp

    def _check_group(self, group):
        check_lr(group["lr"])
        _check_int("max_iter", group["max_iter"])
        if group["max_cg_iter"] is not None:
            _check_int("max_cg_iter", group["max_cg_iter"])
        check_nonneg(group["tolerance_grad"], "tolerance_grad")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError("line_search_fn must be None or 'strong_wolfe', got "
                             f"{group['line_search_fn']!r}")

    def _state(self):
        first = self.param_groups[0]["params"][0]
        st = self.state.get(first)
        if not st:
            st = self.state[first] = {"step": 0, "func_evals": 0, "n_hessp": 0, "cg_iters": 0}
        return st

    def step(self, closure):
        """Make ``max_iter`` Newton-CG iterations; return the loss on entry."""
        if closure is None or not callable(closure):
            raise TypeError("closure: NewtonCG.step needs a closure that returns the loss "
                            "and fills the gradients")
        group = self.param_groups[0]
        self._check_group(group)
        st = self._state()
        x = self._flat.get().copy()
        obj = self._flat.objective(closure, x)
        f, g = obj.fun_and_grad(x)
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            raise ValueError("closure returned a non-finite loss or gradient")
        f0 = f
        n = x.size
        cg_max = group["max_cg_iter"] or 20 * n
        p = np.empty_like(x)
        prob = make_problem(obj)
        try:
            for _ in range(int(group["max_iter"])):
                if float(np.max(np.abs(g))) <= group["tolerance_grad"]:
                    break
                gn = float(np.linalg.norm(g))
                hop = HessianOperator(obj, x, check_symmetry=False)
                cg_status, it = _krylov.cg_newton(g, hop, min(0.5, math.sqrt(gn)) * gn,
                                                  int(cg_max), p)
                st["n_hessp"] += hop.nprod
                st["cg_iters"] += it
                if not float(g @ p) < 0:
                    p[:] = -g
                if group["line_search_fn"] == "strong_wolfe":
                    ls = _krylov.wolfe_search(prob, x, f, g, p, 1e-4, 0.9)
                    if ls is None:
                        break
                    alpha, f, x, g = ls
                else:
                    x = (x + float(group["lr"]) * p).astype(x.dtype, copy=False)
                    st["step"] += 1
                    if _ + 1 < int(group["max_iter"]):
                        f, g = obj.fun_and_grad(x)
                        g = g.copy()
                    continue
                st["step"] += 1
        finally:
            prob.flush()
            self._flat.set(x)
            st["func_evals"] += obj.nfev
        return f0
