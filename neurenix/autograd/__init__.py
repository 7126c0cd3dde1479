"""Reverse-mode automatic differentiation on backend arrays.

:class:`Tensor` wraps a NumPy, CuPy or Array-API array and records the
operations applied to it; :meth:`Tensor.backward` accumulates gradients into the
leaves (Rumelhart, Hinton & Williams 1986; Griewank & Walther 2008).
"""
from ._grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from ._tensor import Tensor, tensor, MaxResult, MinResult, float32, float64, int32, int64

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "MaxResult", "MinResult", "float32", "float64", "int32", "int64"]
