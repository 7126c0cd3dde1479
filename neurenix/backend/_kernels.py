"""The kernel table: NumPy float32/float64 -> Cython, anything else -> generic."""
import numpy as np

from .._ext import _first_order
from . import _generic
from ._namespace import KERNEL_DTYPES, array_namespace, dtype_name


class _NumpyKernels:
    """Cython kernels (fused single-pass, OpenMP) for NumPy float32/float64 arrays."""

    name = "cython"
    sgd = staticmethod(_first_order.sgd)
    adagrad = staticmethod(_first_order.adagrad)
    rmsprop = staticmethod(_first_order.rmsprop)
    adam = staticmethod(_first_order.adam)
    nadam = staticmethod(_first_order.nadam)
    radam = staticmethod(_first_order.radam)
    lamb = staticmethod(_first_order.lamb)
    lars = staticmethod(_first_order.lars)
    all_finite = staticmethod(_first_order.all_finite)
    sum_squares = staticmethod(_first_order.sum_squares)


numpy_kernels = _NumpyKernels()
_generic_cache = {}


def generic_kernels(xp):
    """The generic (namespace-only) kernel table for namespace ``xp``."""
    k = _generic_cache.get(id(xp))
    if k is None:
        k = _generic_cache[id(xp)] = _generic.GenericKernels(xp)
    return k


_cupy_kernels = None


def cupy_kernels():
    """The fused CuPy kernel table (:mod:`._cupy`; imports CuPy)."""
    global _cupy_kernels
    if _cupy_kernels is None:
        from ._cupy import CupyKernels
        import cupy

        _cupy_kernels = CupyKernels(array_namespace(cupy.empty(0)))
    return _cupy_kernels


def kernels_for(xp, dtype):
    """Kernel table serving arrays of namespace ``xp`` and dtype ``dtype``: the
    Cython kernels for NumPy, the fused CuPy kernels for CuPy (float32/float64),
    else the generic ones."""
    if xp is np:
        if np.dtype(dtype) in KERNEL_DTYPES:
            return numpy_kernels
        return generic_kernels(xp)
    if getattr(xp, "__name__", "").endswith("cupy") and dtype_name(dtype) in ("float32",
                                                                               "float64"):
        return cupy_kernels()
    return generic_kernels(xp)
