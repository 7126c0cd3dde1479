"""``nn.Parameter``: a leaf tensor that modules register and optimizers update."""
from ..autograd import Tensor
from ..autograd._tensor import _is_float
from ..backend import dtype_name
from ..optim import parameter as _optim_parameter

__all__ = ["Parameter"]


class Parameter(Tensor, _optim_parameter.Parameter):
    """A trainable leaf :class:`~neurenix.Tensor` (``torch.nn.Parameter``).

    It is at once a :class:`neurenix.Tensor` (operations on it are recorded,
    :meth:`backward` accumulates into its :attr:`grad`) and a
    :class:`neurenix.optim.Parameter` (every ``neurenix.optim`` optimizer,
    scheduler and gradient utility accepts it): :attr:`data` is the backend
    array the optimizers update in place and :attr:`grad` the array they read.

    Parameters
    ----------
    data : Tensor or array
        Floating values; a C-contiguous writeable NumPy array (or the data of a
        tensor) is shared, not copied, as ``torch.nn.Parameter`` shares storage.
    requires_grad : bool, default True
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        if not _is_float(getattr(data, "dtype", float)):
            raise TypeError(f"data must have a floating dtype, got {dtype_name(data.dtype)}")
        _optim_parameter.Parameter.__init__(self, data, requires_grad=requires_grad)
        self._node = None
        self._retains_grad = False

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __hash__ = object.__hash__
