"""Layers: ``Linear``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Flatten``, ``Identity``, ``Sequential``."""
import math
from collections import OrderedDict

import numpy as np

from ..backend import dtype_name
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "ReLU", "Tanh", "Sigmoid", "Flatten", "Identity", "Sequential"]


class Linear(Module):
    r"""Affine map ``y = x W^T + b`` (``torch.nn.Linear``).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : dtype or str, default float32 (PyTorch's default dtype)
    generator : numpy.random.Generator, optional
        Draws the initial weights; default :func:`neurenix.nn.init.default_generator`
        (seeded by :func:`neurenix.manual_seed`).

    Notes
    -----
    PyTorch's initialization: the weight by He et al.'s uniform rule [1]_ with
    ``a = sqrt(5)`` (``kaiming_uniform_``), i.e. ``U(-1/sqrt(in), 1/sqrt(in))``,
    and the bias from ``U(-1/sqrt(in), 1/sqrt(in))``.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers", ICCV (2015).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, generator=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        dt = np.dtype(dtype_name(dtype)) if dtype is not None else np.dtype(np.float32)
        if dt.kind != "f":
            raise TypeError(f"dtype must be a floating dtype, got {dt}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """Draw the initial weights (PyTorch's rule, see the class notes)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """Element-wise ``max(x, 0)``."""

    def forward(self, input):
        return F.relu(input)


class Tanh(Module):
    """Element-wise hyperbolic tangent."""

    def forward(self, input):
        return F._as_tensor(input, "input").tanh()


class Sigmoid(Module):
    """Element-wise logistic function."""

    def forward(self, input):
        return F._as_tensor(input, "input").sigmoid()


class Identity(Module):
    """Returns its input."""

    def forward(self, input):
        return input


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` (default: all but the batch)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return F._as_tensor(input, "input").flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied in order (``torch.nn.Sequential``).

    Parameters
    ----------
    *args : Module, or one OrderedDict of name -> Module
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
        return input

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        if not -len(mods) <= idx < len(mods):
            raise IndexError(f"index {idx} is out of range")
        return mods[idx][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self
