"""Namespace resolution and moving arrays between namespaces."""
import numpy as np

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def array_namespace(*arrays):
    """Return the array namespace ``xp`` shared by ``arrays``.

    NumPy arrays (and Python scalars) give :mod:`numpy` itself, so that code can
    test ``xp is np`` to pick the Cython kernels.  Any other array is resolved by
    ``array_api_compat.array_namespace`` (CuPy, ``array_api_strict``, PyTorch, ...).

    Raises
    ------
    TypeError
        When the arrays come from different libraries.
    """
    if arrays:
        # fast path: arrays of one type already resolved (an optimizer asks this for
        # every parameter and gradient at every step; the namespace of CuPy, torch,
        # array_api_strict, ... arrays is a function of their type)
        t = type(arrays[0])
        xp = _BY_TYPE.get(t)
        if xp is not None and all(type(a) is t for a in arrays):
            return xp
    arrs = [a for a in arrays if a is not None and not isinstance(a, (int, float, complex, bool))]
    if all(isinstance(a, (np.ndarray, np.generic)) for a in arrs):
        return np
    import array_api_compat

    try:
        xp = array_api_compat.array_namespace(*arrs)
    except TypeError as exc:
        raise TypeError(f"arrays come from different or unsupported libraries: {exc}") from None
    if array_api_compat.is_numpy_namespace(xp):
        return np
    if len({type(a) for a in arrs}) == 1 and len(arrs) == len(arrays) and len(_BY_TYPE) < 64:
        _BY_TYPE[type(arrs[0])] = xp
    return xp


_BY_TYPE = {}       # array type -> its (non-NumPy) namespace, filled by array_namespace


def is_foreign_array(x):
    """True for an array of another Array-API library (CuPy, ``array_api_strict``,
    PyTorch, ...), False for NumPy arrays and for anything else.

    CuPy's ndarray has no ``__array_namespace__`` attribute, so the test goes
    through ``array_api_compat.is_array_api_obj`` (which knows CuPy, PyTorch,
    JAX, Dask, ...) as well."""
    if isinstance(x, (np.ndarray, np.generic)):
        return False
    if hasattr(x, "__array_namespace__"):
        return True
    if isinstance(x, (list, tuple, int, float, complex, bool)):
        return False
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - a dependency
        return False
    return bool(array_api_compat.is_array_api_obj(x))


def is_numpy_namespace(xp):
    """True when ``xp`` is NumPy (plain or the ``array_api_compat`` wrapper)."""
    if xp is np:
        return True
    try:
        import array_api_compat

        return array_api_compat.is_numpy_namespace(xp)
    except ImportError:  # pragma: no cover
        return False


def to_numpy(x):
    """Return ``x`` as a NumPy array (a copy from device memory for CuPy)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    try:
        return np.asarray(x)
    except Exception:
        pass
    # DLPack is the Array-API way out of a foreign library (from host memory:
    # an array on an accelerator is first moved to the CPU device).
    try:
        return np.from_dlpack(x)
    except Exception:
        pass
    import array_api_compat

    try:
        return np.from_dlpack(array_api_compat.to_device(x, "cpu"))
    except Exception:
        xp = array_api_compat.array_namespace(x)
        cpu = xp.asarray(x, copy=True)
        return np.asarray(cpu.tolist(), dtype=dtype_name(x.dtype))


def to_namespace(x, xp, dtype=None, device=None):
    """Return ``x`` (any array) as an array of namespace ``xp`` (on ``device``
    when given, e.g. ``device_of(p)`` for a CUDA tensor ``p``)."""
    if xp is np:
        out = to_numpy(x)
        return out if dtype is None else out.astype(dtype, copy=False)
    src = array_namespace(x) if not isinstance(x, np.ndarray) else np
    if src is xp and (device is None or device_of(x) == device):
        return x if dtype is None else xp.astype(x, dtype)
    arr = to_numpy(x)
    if dtype is None:
        dtype = getattr(xp, dtype_name(arr.dtype))
    if device is None:
        return xp.asarray(arr, dtype=dtype)
    return xp.asarray(arr, dtype=dtype, device=device)


def device_of(x):
    """The Array-API device of ``x`` (``"cpu"`` for NumPy arrays)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return "cpu"
    import array_api_compat

    return array_api_compat.device(x)


def dtype_name(dtype):
    """Canonical name (``"float32"``, ...) of a dtype of any namespace."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        pass
    s = str(dtype)
    for name in ("float16", "float32", "float64", "complex64", "complex128",
                 "int8", "int16", "int32", "int64", "uint8", "bool"):
        if name in s:
            return name
    return s
