"""Gradient clipping (PyTorch's ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``)."""
import math

import numpy as np

from ..backend import array_namespace, kernels_for
from .parameter import Parameter
from .._core.validation import _real

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm"]


def _grads(parameters):
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters[{i}] must be a Parameter, got {type(p).__name__}")
        if p.grad is not None:
            if tuple(p.grad.shape) != tuple(p.data.shape):
                raise ValueError(f"grad of parameters[{i}] has shape {tuple(p.grad.shape)}, "
                                 f"expected {tuple(p.data.shape)}")
            out.append(p)
    return out


def _norms(grads, norm_type):
    """Per-array norms of ``grads`` as a float64 NumPy array."""
    out = np.empty(len(grads))
    for i, g in enumerate(grads):
        xp = array_namespace(g)
        if norm_type == 2.0:
            if xp is np and g.flags.c_contiguous:
                s = kernels_for(np, g.dtype).sum_squares([g])[0]
            else:
                s = float(xp.sum(xp.astype(g, xp.float64) ** 2))
            out[i] = math.sqrt(s)
        elif math.isinf(norm_type):
            a = xp.abs(g)
            out[i] = float(xp.max(a)) if g.shape and math.prod(g.shape) else 0.0
        else:
            a = xp.abs(xp.astype(g, xp.float64))
            out[i] = float(xp.sum(a ** norm_type)) ** (1.0 / norm_type)
    return out


def grad_norm(parameters, norm_type=2.0):
    """Total ``norm_type``-norm of the gradients of ``parameters`` (as one vector)."""
    norm_type = _real("norm_type", norm_type) if not (isinstance(norm_type, float) and math.isinf(norm_type)) else norm_type
    ps = _grads(parameters)
    if not ps:
        return 0.0
    norms = _norms([p.grad for p in ps], norm_type)
    if math.isinf(norm_type):
        return float(norms.max())
    return float(np.sum(norms ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    r"""Rescale gradients in place so that their total norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector; every
    gradient is multiplied by :math:`\min(1, \text{max\_norm}/(\text{total}+10^{-6}))`,
    as ``torch.nn.utils.clip_grad_norm_`` does (Pascanu, Mikolov & Bengio 2013).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
    max_norm : float
    norm_type : float, default 2.0
        Any positive real or ``float("inf")``.
    error_if_nonfinite : bool, default False
        Raise ``RuntimeError`` (and leave the gradients untouched) when the total
        norm is NaN or infinite.

    Returns
    -------
    float
        The total norm before clipping.

    References
    ----------
    Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent
    neural networks", ICML.
    """
    max_norm = _real("max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm!r}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"norm_type must be a real number, got {type(norm_type).__name__}")
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"norm_type must be > 0, got {norm_type!r}")
    total = grad_norm(parameters, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped.")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in _grads(parameters):
            g = p.grad
            if isinstance(g, np.ndarray) and g.flags.writeable:
                g *= coef
            else:
                p.grad = g * coef
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place."""
    clip_value = _real("clip_value", clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value!r}")
    for p in _grads(parameters):
        g = p.grad
        if isinstance(g, np.ndarray) and g.flags.writeable:
            np.clip(g, -clip_value, clip_value, out=g)
        else:
            xp = array_namespace(g)
            p.grad = xp.clip(g, -clip_value, clip_value)
