"""Weight initialization (``torch.nn.init``), drawing from a NumPy ``Generator``.

The default generator is seeded by :func:`neurenix.manual_seed`; every function
also takes ``generator=`` (a :class:`numpy.random.Generator`).

References
----------
.. [1] K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers:
   surpassing human-level performance on ImageNet classification", ICCV (2015).
"""
import math

import numpy as np

from ..autograd import Tensor, no_grad
from ..backend import array_namespace, device_of, to_namespace

__all__ = ["manual_seed", "default_generator", "uniform_", "zeros_", "ones_",
           "kaiming_uniform_", "calculate_gain"]

from ..autograd.random import _default, default_generator, manual_seed  # noqa: E402,F401


def _gen(generator):
    if generator is None:
        return _default[0]
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
    return generator


def _fill(t, values):
    """Write NumPy ``values`` into tensor ``t`` in place (any backend)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"tensor must be a neurenix Tensor, got {type(t).__name__}")
    d = t.data
    if isinstance(d, np.ndarray):
        d[...] = values
        return t
    xp = array_namespace(d)
    new = to_namespace(np.asarray(values), xp, dtype=d.dtype, device=device_of(d))
    try:
        d[...] = new
    except (TypeError, ValueError):   # immutable arrays: replace
        t.data = new
    return t


def _fan_in_out(t):
    shape = t.shape
    if len(shape) < 2:
        raise ValueError("fan in and fan out can not be computed for a tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}")


@no_grad()
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill ``tensor`` with draws from U(a, b)."""
    return _fill(tensor, _gen(generator).uniform(a, b, tensor.shape))


@no_grad()
def zeros_(tensor):
    """Fill ``tensor`` with zeros."""
    return _fill(tensor, np.zeros(tensor.shape))


@no_grad()
def ones_(tensor):
    """Fill ``tensor`` with ones."""
    return _fill(tensor, np.ones(tensor.shape))


@no_grad()
def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialization [1]_: U(-bound, bound) with
    ``bound = gain * sqrt(3 / fan)``, ``gain = calculate_gain(nonlinearity, a)``.

    ``nn.Linear`` uses ``a = sqrt(5)``, which gives ``bound = 1 / sqrt(fan_in)``.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fan_in_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator=generator)
