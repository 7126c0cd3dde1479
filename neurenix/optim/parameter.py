"""``Parameter``: an array updated in place by optimizers, with its gradient."""
import numpy as np

from ..backend import array_namespace, dtype_name, is_foreign_array


class Parameter:
    """A trainable array and its gradient, as ``torch.nn.Parameter``.

    Parameters
    ----------
    data : array_like
        The values.  A NumPy array that is C-contiguous, writeable and of a
        floating dtype is used as is (updates are visible through it); anything
        else NumPy accepts is copied into a new float64 (or its own float dtype)
        array.  Arrays of other Array-API libraries (CuPy, ...) are kept as they are.
    requires_grad : bool, optional
        Kept for PyTorch compatibility; optimizers skip parameters whose
        ``grad`` is ``None`` either way.
    name : str, optional

    Attributes
    ----------
    data : array
        Updated in place by :meth:`Optimizer.step`.
    grad : array or None
        Same shape and dtype as ``data``.
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "_checked", "__weakref__")

    def __init__(self, data, requires_grad=True, name=None):
        if isinstance(data, Parameter):
            data = data.data
        if not is_foreign_array(data):
            arr = np.asarray(data)
            if arr.dtype.kind not in "f":
                if arr.dtype.kind in "biu":
                    arr = arr.astype(np.float64)
                else:
                    raise TypeError(
                        f"data must have a real floating dtype, got {arr.dtype}")
            if not (arr.flags.c_contiguous and arr.flags.writeable):
                arr = np.ascontiguousarray(arr).copy() if not arr.flags.writeable else np.ascontiguousarray(arr)
            data = arr
        else:
            if "float" not in dtype_name(data.dtype):
                raise TypeError(f"data must have a real floating dtype, got {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._checked = None   # the data array last validated for the kernels

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return int(np.prod(self.data.shape)) if self.data.shape else 1

    def numel(self):
        return self.size

    def __array_namespace__(self, api_version=None):  # pragma: no cover - passthrough
        return array_namespace(self.data)

    def __repr__(self):
        nm = f", name={self.name!r}" if self.name else ""
        return f"Parameter(shape={self.shape}, dtype={dtype_name(self.dtype)}{nm})"
