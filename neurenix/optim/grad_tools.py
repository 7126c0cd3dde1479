"""Gradient accumulation over micro-batches and annealed gradient noise."""
import math

import numpy as np

from ..backend import array_namespace, device_of
from .optimizer import Optimizer
from .parameter import Parameter
from .._core.validation import _real

__all__ = ["GradientAccumulator", "GradientNoise", "add_gradient_noise_", "grads_finite"]


def grads_finite(parameters):
    """True when every gradient of ``parameters`` is finite (``None`` grads ignored)."""
    from ..backend import kernels_for

    for p in parameters:
        g = p.grad
        if g is None:
            continue
        xp = array_namespace(g)
        if xp is np and not g.flags.c_contiguous:
            g = np.ascontiguousarray(g)
        if not kernels_for(xp, g.dtype).all_finite([g]):
            return False
    return True


class GradientAccumulator:
    """Accumulate gradients over ``accumulation_steps`` micro-batches, then step.

    After each micro-batch, put its gradients in ``p.grad`` and call :meth:`step`;
    every ``accumulation_steps``-th call replaces ``p.grad`` by the mean (or the
    sum, ``average=False``) of the accumulated gradients and calls
    ``optimizer.step()``.  This equals one step on the large batch for losses
    that are means over samples.

    Parameters
    ----------
    optimizer : Optimizer
    accumulation_steps : int
    average : bool, default True

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD, GradientAccumulator
    >>> w = Parameter(np.zeros(2))
    >>> acc = GradientAccumulator(SGD([w], lr=1.0), accumulation_steps=2)
    >>> w.grad = np.array([1.0, 0.0]); acc.step()
    False
    >>> w.grad = np.array([3.0, 2.0]); acc.step()
    True
    >>> w.data
    array([-2., -1.])
    """

    def __init__(self, optimizer, accumulation_steps, average=True):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) \
                or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be a positive int, got {accumulation_steps!r}")
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self.average = bool(average)
        self.count = 0
        self._buffers = {}

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def step(self, closure=None):
        """Add the current gradients; step the optimizer when the window is full.

        Returns True when the optimizer stepped.
        """
        if closure is not None:
            closure()
        params = self._params()
        for i, p in enumerate(params):   # validate everything before accumulating
            g = p.grad
            if g is not None and (tuple(g.shape) != tuple(p.data.shape) or g.dtype != p.data.dtype):
                raise ValueError(f"grad of parameter {i} has shape {tuple(g.shape)} and dtype "
                                 f"{g.dtype}, expected {tuple(p.data.shape)} and {p.data.dtype}")
        for p in params:
            g = p.grad
            if g is None:
                continue
            buf = self._buffers.get(p)
            if buf is None:
                xp = array_namespace(g)
                self._buffers[p] = xp.asarray(g, copy=True)
            elif isinstance(buf, np.ndarray):
                buf += g
            else:
                self._buffers[p] = buf + g
        self.count += 1
        if self.count < self.accumulation_steps:
            return False
        scale = 1.0 / self.accumulation_steps if self.average else 1.0
        for p in params:
            buf = self._buffers.get(p)
            if buf is None:
                p.grad = None
                continue
            if scale != 1.0:
                if isinstance(buf, np.ndarray):
                    buf *= scale
                else:
                    buf = buf * scale
            p.grad = buf
        self._buffers = {}
        self.count = 0
        self.optimizer.step()
        return True

    def state_dict(self):
        params = self._params()
        index = {id(p): i for i, p in enumerate(params)}
        return {"count": self.count, "accumulation_steps": self.accumulation_steps,
                "average": self.average,
                "buffers": {index[id(p)]: b for p, b in self._buffers.items()}}

    def load_state_dict(self, state):
        params = self._params()
        bufs = {}
        for k, b in state["buffers"].items():
            p = params[int(k)]
            if tuple(b.shape) != tuple(p.data.shape):
                raise ValueError(f"state: buffer {k} has shape {tuple(b.shape)}, expected "
                                 f"{tuple(p.data.shape)}")
            bufs[p] = np.array(b, dtype=p.data.dtype) if isinstance(p.data, np.ndarray) else b
        self._buffers = bufs
        self.count = int(state["count"])
        self.accumulation_steps = int(state["accumulation_steps"])
        self.average = bool(state["average"])


def add_gradient_noise_(parameters, std, rng):
    """Add Gaussian noise of standard deviation ``std`` to every gradient in place."""
    std = _real("std", std)
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    for p in parameters:
        g = p.grad
        if g is None:
            continue
        noise = rng.standard_normal(tuple(g.shape))
        if isinstance(g, np.ndarray):
            noise = noise.astype(g.dtype, copy=False)
            noise *= std
            if g.flags.writeable:
                g += noise
            else:
                p.grad = g + noise
        else:
            xp = array_namespace(g)
            p.grad = g + xp.asarray(noise * std, dtype=g.dtype, device=device_of(g))


class GradientNoise:
    r"""Annealed Gaussian gradient noise (Neelakantan et al. 2015).

    At call :math:`t = 0, 1, \dots` adds :math:`\mathcal N(0, \sigma_t^2)` to every
    gradient with :math:`\sigma_t^2 = \eta / (1 + t)^\gamma`.

    Parameters
    ----------
    eta : float, default 0.01
        The paper tries :math:`\eta \in \{0.01, 0.3, 1.0\}`.
    gamma : float, default 0.55
    seed : int or numpy.random.Generator, optional

    References
    ----------
    Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach & Martens (2015),
    "Adding gradient noise improves learning for very deep networks",
    arXiv:1511.06807.
    """

    def __init__(self, eta=0.01, gamma=0.55, seed=None):
        self.eta = _real("eta", eta)
        self.gamma = _real("gamma", gamma)
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.t = 0

    def std(self, t=None):
        """Noise standard deviation at step ``t`` (default: the next one)."""
        t = self.t if t is None else t
        return math.sqrt(self.eta / (1.0 + t) ** self.gamma)

    def __call__(self, parameters):
        add_gradient_noise_(parameters, self.std(), self.rng)
        self.t += 1

    def state_dict(self):
        return {"eta": self.eta, "gamma": self.gamma, "t": self.t,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.eta = float(state["eta"])
        self.gamma = float(state["gamma"])
        self.t = int(state["t"])
        self.rng.bit_generator.state = state["rng"]
