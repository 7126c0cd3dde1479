"""Functional forms of the layers and losses (``torch.nn.functional``)."""
import warnings

import numpy as np

from ..autograd import Tensor
from ..autograd._tensor import _astype, _is_float, _is_int, _mT, _result
from ..backend import array_namespace, device_of, dtype_name, is_foreign_array

__all__ = ["linear", "relu", "tanh", "sigmoid", "softmax", "log_softmax",
           "cross_entropy", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _as_tensor(x, name):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or is_foreign_array(x):
        return Tensor(x)
    raise TypeError(f"{name} must be a Tensor or an array, got {type(x).__name__}")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``.

    Raises
    ------
    ValueError
        When the last dimension of ``input`` is not ``weight.shape[1]``.
    TypeError
        When ``input`` and ``weight`` have different dtypes (PyTorch refuses
        mixed-precision matrix products as well).
    """
    x = _as_tensor(input, "input")
    weight = _as_tensor(weight, "weight")
    bias = None if bias is None else _as_tensor(bias, "bias")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"input has shape {x.shape}: its last dimension must be "
                         f"in_features={weight.shape[1]}")
    if x.dtype != weight.dtype:
        raise TypeError(f"input has dtype {dtype_name(x.dtype)}, the weight has "
                        f"{dtype_name(weight.dtype)}: convert the input (e.g. x.float())")
    if bias is not None and (bias.dtype != weight.dtype or bias.shape != (weight.shape[0],)):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) and the weight's dtype, got "
                         f"shape {bias.shape}, dtype {dtype_name(bias.dtype)}")
    # one recorded node: y = x W^T + b, with dx = g W, dW = g^T x, db = sum(g) over rows
    xp = array_namespace(x.data)
    X, Wt = x.data, weight.data
    shape = x.shape
    X2 = xp.reshape(X, (-1, shape[-1])) if len(shape) != 2 else X
    out = xp.matmul(X2, _mT(Wt, xp))
    if bias is not None:
        out = out + bias.data
    if len(shape) != 2:
        out = xp.reshape(out, shape[:-1] + (Wt.shape[0],))
    parents = (x, weight) if bias is None else (x, weight, bias)

    def vjp(g):
        g2 = xp.reshape(g, (-1, Wt.shape[0])) if len(shape) != 2 else g
        gx = gw = gb = None
        if x.requires_grad:
            gx = xp.matmul(g2, Wt)
            gx = xp.reshape(gx, shape) if len(shape) != 2 else gx
        if weight.requires_grad:
            gw = xp.matmul(_mT(g2, xp), X2)
        if bias is not None and bias.requires_grad:
            gb = xp.sum(g2, axis=0)
        return gx, gw, gb

    return _result(out, parents, vjp, "Linear")


def relu(input):
    """Element-wise ``max(x, 0)``."""
    return _as_tensor(input, "input").relu()


def tanh(input):
    return _as_tensor(input, "input").tanh()


def sigmoid(input):
    return _as_tensor(input, "input").sigmoid()


def softmax(input, dim):
    return _as_tensor(input, "input").softmax(dim)


def log_softmax(input, dim):
    return _as_tensor(input, "input").log_softmax(dim)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Cross-entropy between the logits ``input`` and class indices ``target``.

    ``loss_i = -w[t_i] * log_softmax(input_i)[t_i]`` with the log-softmax
    shifted by the row maximum (no overflow); ``"mean"`` divides the sum by
    ``sum_i w[t_i]`` over the targets that are not ``ignore_index``, as PyTorch
    does.  The gradient with respect to the logits is
    ``w[t_i] * (softmax(input_i) - onehot(t_i))`` times the upstream factor.

    Parameters
    ----------
    input : Tensor, shape (N, C) or (C,)
        Unnormalized scores (logits).
    target : Tensor or array of integers, shape (N,) or ()
        Class indices in ``[0, C)`` (or ``ignore_index``).  Class-probability
        targets (PyTorch's floating ``target``) are not supported.
    weight : Tensor or array, shape (C,), optional
        Per-class weights.
    ignore_index : int, default -100
    reduction : {"mean", "sum", "none"}

    Raises
    ------
    TypeError
        When ``target`` is not of an integer dtype.
    ValueError
        On shapes that do not match, or a class index out of range.
    """
    _check_reduction(reduction)
    x = _as_tensor(input, "input")
    t = _as_tensor(target, "target")
    if not _is_float(x.dtype):
        raise TypeError(f"input must be floating (logits), got {dtype_name(x.dtype)}")
    if not _is_int(t.dtype):
        raise TypeError(f"target must hold integer class indices (int64), got dtype "
                        f"{dtype_name(t.dtype)}; class-probability targets are not supported")
    if x.ndim == 1:
        if t.ndim != 0:
            raise ValueError(f"target must be a scalar for input of shape {x.shape}, got shape {t.shape}")
        squeeze = True
        X = x.data[None, :] if array_namespace(x.data) is np else \
            array_namespace(x.data).reshape(x.data, (1, x.shape[0]))
        T = array_namespace(t.data).reshape(t.data, (1,))
    elif x.ndim == 2:
        if t.shape != (x.shape[0],):
            raise ValueError(f"target must have shape ({x.shape[0]},) for input of shape {x.shape}, "
                             f"got {t.shape}")
        squeeze = False
        X, T = x.data, t.data
    else:
        raise ValueError(f"input must have shape (N, C) or (C,), got {x.shape}")
    xp = array_namespace(X)
    if array_namespace(T) is not xp:
        raise TypeError("target must come from the same array library as input")
    N, C = X.shape
    valid = T != ignore_index
    safe = xp.where(valid, T, xp.zeros_like(T))
    if N and bool(xp.any(valid & ((safe < 0) | (safe >= C)))):
        raise ValueError(f"target holds a class index outside [0, {C})")
    rng = xp.arange(C, dtype=T.dtype) if xp is np else xp.arange(C, dtype=T.dtype, device=device_of(T))
    onehot = _astype(xp.reshape(safe, (N, 1)) == xp.reshape(rng, (1, C)), X.dtype, xp)
    w_i = _astype(valid, X.dtype, xp)
    if weight is not None:
        wt = weight.data if isinstance(weight, Tensor) else weight
        if tuple(wt.shape) != (C,):
            raise ValueError(f"weight must have shape ({C},), got {tuple(wt.shape)}")
        wt = _astype(wt, X.dtype, xp)
        w_i = w_i * xp.take(wt, safe, axis=0)
    m = xp.max(X, axis=1, keepdims=True)
    z = X - m
    lse = xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
    logp = z - lse
    loss_i = -w_i * xp.sum(onehot * logp, axis=1)
    if reduction == "none":
        out = loss_i[0] if squeeze and xp is np else (xp.reshape(loss_i, ()) if squeeze else loss_i)
        denom = None
    else:
        out = xp.sum(loss_i)
        denom = xp.sum(w_i) if reduction == "mean" else None
        if denom is not None:
            out = out / denom
    shape_in = x.shape

    def vjp(g):
        if reduction == "none":
            gi = xp.reshape(g, (N,))
        else:
            gi = g / denom if denom is not None else g
            gi = gi * xp.ones((N,), dtype=X.dtype) if xp is np else \
                gi * xp.ones((N,), dtype=X.dtype, device=device_of(X))
        p = xp.exp(logp)
        gx = xp.reshape(gi * w_i, (N, 1)) * (p - onehot)
        return (xp.reshape(gx, shape_in),)

    return _result(out, (x,), vjp, "CrossEntropy")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target)**2``, reduced.

    A ``target`` whose shape differs from ``input``'s is broadcast with a
    ``UserWarning``, as in PyTorch.
    """
    _check_reduction(reduction)
    x = _as_tensor(input, "input")
    y = _as_tensor(target, "target")
    if x.shape != y.shape:
        warnings.warn(f"Using a target size ({y.shape}) that is different to the input size "
                      f"({x.shape}). This will likely lead to incorrect results due to broadcasting.",
                      UserWarning, stacklevel=2)
    d = x - y
    sq = d * d
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()
