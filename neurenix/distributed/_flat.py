"""One contiguous buffer for a list of parameters (what point-to-point messages and the
model-averaging collectives of the parameter server, local SGD and federated averaging send)."""
import numpy as np

from ..optim import Parameter

__all__ = ["FlatParams"]


class FlatParams:
    """Copies between the parameters of a model and one flat buffer.

    Parameters
    ----------
    params : iterable of Parameter
        NumPy parameters; with ``same_dtype`` they must share one dtype.
    same_dtype : bool, default True
        Require one dtype (buffers then use it: no conversion on the wire).

    Attributes
    ----------
    n : int
        Total number of elements.
    dtype : numpy.dtype
        The parameters' dtype (float64 when ``same_dtype`` is False).
    """

    def __init__(self, params, same_dtype=True):
        if isinstance(params, Parameter):
            params = [params]
        self.params = list(params)
        if not self.params:
            raise ValueError("params must not be empty")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a neurenix.optim.Parameter, got "
                                f"{type(p).__name__}")
            if not isinstance(p.data, np.ndarray):
                raise TypeError(f"params[{i}] must hold a NumPy array (messages are host buffers)")
        dt = self.params[0].data.dtype
        if same_dtype:
            for i, p in enumerate(self.params):
                if p.data.dtype != dt:
                    raise TypeError(f"params[{i}] has dtype {p.data.dtype}, expected {dt} (all "
                                    "parameters share one flat buffer)")
        self.dtype = dt if same_dtype else np.dtype(np.float64)
        self.sizes = [p.data.size for p in self.params]
        self.n = int(sum(self.sizes))

    def empty(self, dtype=None):
        """A new buffer of ``n`` elements (the parameters' dtype by default)."""
        return np.empty(self.n, dtype=self.dtype if dtype is None else dtype)

    def pack(self, arrays, out=None):
        """Concatenate ``arrays`` (one per parameter, any shape of the right size) into ``out``."""
        out = self.empty() if out is None else out
        off = 0
        for a, k in zip(arrays, self.sizes):
            out[off:off + k] = np.asarray(a).reshape(-1)
            off += k
        return out

    def data(self, out=None):
        """The parameters' values, packed."""
        return self.pack([p.data for p in self.params], out)

    def set_data(self, buf):
        """Write ``buf`` back into the parameters' arrays, in place (each in its own dtype)."""
        off = 0
        for p, k in zip(self.params, self.sizes):
            p.data.reshape(-1)[:] = buf[off:off + k]
            off += k

    def set_grads(self, buf):
        """Set every ``p.grad`` to a new array holding its slice of ``buf``."""
        off = 0
        for p, k in zip(self.params, self.sizes):
            p.grad = np.array(buf[off:off + k], dtype=p.data.dtype).reshape(p.data.shape)
            off += k
