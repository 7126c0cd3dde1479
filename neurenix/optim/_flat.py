"""The closure-driven second-order optimizers' adapter onto the one objective.

:class:`FlatClosure` views the parameters of one group as a flat vector and a
closure (loss, filling every ``.grad``) as ``fun(x) -> (f, g)``;
:meth:`FlatClosure.objective` wraps that in
:class:`neurenix._core.objective.ScalarObjective` (``jac=True``), which then
supplies caching, counters, finite-difference Hessian products and the checks
of what comes back.
"""
import numpy as np

from .._core.objective import ScalarObjective
from .._ext._evaluator import check_scalar

__all__ = ["FlatClosure"]


class FlatClosure:
    """The parameters of one group as a flat vector, the closure as ``(f, g)`` of it,
    and a user ``hvp(v)`` as ``hessp(x, v)``."""

    def __init__(self, params, hvp):
        self.params = params
        self.dtype = params[0].data.dtype
        for i, p in enumerate(params):
            if not isinstance(p.data, np.ndarray):
                raise TypeError("params: second-order optimizers work on NumPy parameters only")
            if p.data.dtype != self.dtype:
                raise TypeError(f"params: parameter {i} has dtype {p.data.dtype}, expected "
                                f"{self.dtype} (all parameters must share a dtype)")
        self.sizes = [p.data.size for p in params]
        self.n = sum(self.sizes)
        self.hvp = hvp
        self.closure = None

    def get(self):
        """The parameters' values as one flat vector (a new array)."""
        return np.concatenate([p.data.ravel() for p in self.params]).astype(self.dtype, copy=False)

    def set(self, x):
        """Write the flat vector ``x`` into the parameters (in place)."""
        i = 0
        for p, k in zip(self.params, self.sizes):
            p.data[...] = x[i:i + k].reshape(p.data.shape)
            i += k

    def _grad(self):
        out = np.empty(self.n, dtype=self.dtype)
        i = 0
        for j, (p, k) in enumerate(zip(self.params, self.sizes)):
            if p.grad is None:
                raise ValueError(f"closure must fill the gradient of every parameter "
                                 f"(parameter {j} has grad None)")
            g = np.asarray(p.grad)
            if g.shape != p.data.shape:
                raise ValueError(f"grad of parameter {j} has shape {g.shape}, expected "
                                 f"{p.data.shape}")
            out[i:i + k] = g.ravel()
            i += k
        return out

    def fun(self, x):
        """``(f, g)`` at ``x``: the parameters are set to ``x`` and the closure run."""
        self.set(x)
        return check_scalar(self.closure(), "closure"), self._grad()

    def hessp(self, x, v):
        self.set(x)
        return self.hvp(v)

    def objective(self, closure, x):
        """The one objective (:class:`ScalarObjective`) of ``closure``, not evaluated yet."""
        self.closure = closure
        return ScalarObjective(self.fun, x, jac=True,
                               hessp=None if self.hvp is None else self.hessp,
                               check_x0=False)
