"""The array layer: which namespace an array belongs to, and which kernels serve it.

NumPy float32/float64 arrays are served by the Cython kernels in
:mod:`neurenix._ext`; every other array (CuPy, ``array_api_strict``, any
Array-API library reachable through ``array_api_compat``) is served by the
generic implementation in :mod:`neurenix.backend._generic`, written with
namespace calls only.  The generic implementation is also the oracle the fast
kernels are tested against.
"""
from ._namespace import (
    array_namespace,
    device_of,
    is_foreign_array,
    is_numpy_namespace,
    to_numpy,
    to_namespace,
    dtype_name,
    KERNEL_DTYPES,
)
from ._kernels import kernels_for, numpy_kernels, generic_kernels
from ._threads import set_num_threads, get_num_threads, num_threads

__all__ = [
    "array_namespace",
    "device_of",
    "is_foreign_array",
    "is_numpy_namespace",
    "to_numpy",
    "to_namespace",
    "dtype_name",
    "KERNEL_DTYPES",
    "kernels_for",
    "numpy_kernels",
    "generic_kernels",
    "set_num_threads",
    "get_num_threads",
    "num_threads",
]
