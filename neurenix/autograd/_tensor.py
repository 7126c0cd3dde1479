"""``Tensor``: a backend array with reverse-mode automatic differentiation.

Every operation on tensors that require grad records a node of a directed
acyclic graph: the result, its parent tensors and a function that maps the
gradient of the result to the gradients of the parents (a vector–Jacobian
product).  :meth:`Tensor.backward` walks that graph once in reverse
topological order and accumulates gradients into the leaves: the reverse mode
of Griewank & Walther, which computes the gradient of a scalar in a small
constant multiple of the cost of the forward pass, and is the
back-propagation of Rumelhart, Hinton & Williams for layered networks.

The data of a tensor is an array of any supported backend: NumPy, CuPy, or any
Array-API library (``array_api_strict``, ...).  All arithmetic goes through the
array's namespace ``xp`` (:func:`neurenix.backend.array_namespace`), so one
implementation serves every backend.

Deviations from PyTorch, by design
----------------------------------
- ``.data`` and ``.grad`` are backend *arrays*, not tensors: this is the
  contract of :class:`neurenix.optim.Parameter` (``.data`` updated in place by
  the optimizers, ``.grad`` an array of the same shape and dtype), so every
  ``neurenix.optim`` optimizer and gradient utility works on them unchanged.
- Higher-order gradients (``create_graph=True``) are not supported.
- ``Tensor(array)`` wraps an array without copying; :func:`tensor` copies and
  infers the dtype as ``torch.tensor`` does.

References
----------
.. [1] D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning representations
   by back-propagating errors", Nature 323, 533-536 (1986).
.. [2] A. Griewank, A. Walther, *Evaluating Derivatives: Principles and
   Techniques of Algorithmic Differentiation*, 2nd ed., SIAM (2008), ch. 3-4.
"""
import math
import numbers
from collections import namedtuple

import numpy as np

from ..backend import array_namespace, device_of, dtype_name, is_foreign_array, to_numpy
from ._grad_mode import _mode

__all__ = ["Tensor", "tensor", "float32", "float64", "int32", "int64"]

float32 = np.float32
float64 = np.float64
int32 = np.int32
int64 = np.int64

#: result of ``Tensor.max(dim)`` / ``Tensor.min(dim)``: a named pair, as torch.return_types
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


# --------------------------------------------------------------------------- arrays
def _xp_dtype(xp, dtype):
    """``dtype`` (NumPy type, dtype, name or the namespace's own) in namespace ``xp``."""
    if xp is np:
        return np.dtype(dtype)
    if isinstance(dtype, (str, type, np.dtype)):
        return getattr(xp, dtype_name(dtype))
    return dtype


def _astype(x, dtype, xp):
    if xp is np:
        return x.astype(dtype, copy=False)
    if x.dtype == dtype:
        return x
    return xp.astype(x, dtype)


def _is_float(dtype):
    return dtype_name(dtype).startswith(("float", "complex"))


def _is_int(dtype):
    return dtype_name(dtype).startswith(("int", "uint"))


def _mT(x, xp):
    if xp is np:
        return np.swapaxes(x, -1, -2)
    return xp.matrix_transpose(x)


def _zeros(shape, dtype, like, xp):
    if xp is np:
        return np.zeros(shape, dtype=dtype)
    return xp.zeros(shape, dtype=dtype, device=device_of(like))


def _unbroadcast(g, shape, dtype, xp):
    """Sum ``g`` down to ``shape`` (the reverse of broadcasting) and cast to ``dtype``."""
    gs = tuple(g.shape)
    if gs != shape:
        extra = len(gs) - len(shape)
        axes = tuple(range(extra)) + tuple(
            i + extra for i, n in enumerate(shape) if n == 1 and gs[i + extra] != 1)
        if axes:
            g = xp.sum(g, axis=axes, keepdims=True)
        if extra:
            g = xp.reshape(g, shape)
    if g.dtype != dtype:
        g = _astype(g, dtype, xp)
    return g


def _norm_axes(dim, ndim):
    """``dim`` (int, tuple or None) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    out = []
    for d in dims:
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise TypeError(f"dim must be an int or a tuple of ints, got {dim!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"dim {dim!r} repeats an axis")
    return tuple(sorted(out))


def _expand_reduced(g, axes, shape, keepdim, xp):
    """Broadcast the gradient of a reduction over ``axes`` back to ``shape``."""
    if not keepdim and shape:
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        g = xp.reshape(g, kept)
    return xp.broadcast_to(g, shape)


def _as_array(value, like):
    """A Python scalar, array or Tensor as an operand array for ``like``'s namespace."""
    if isinstance(value, Tensor):
        return value.data
    return value


# ---------------------------------------------------------------------------- graph
class _Node:
    """A recorded operation: its inputs and its vector-Jacobian product."""

    __slots__ = ("parents", "vjp", "name")

    def __init__(self, parents, vjp, name):
        self.parents = parents
        self.vjp = vjp
        self.name = name

    def __repr__(self):
        return f"<{self.name}Backward>"


def _result(data, parents, vjp, name):
    """Wrap ``data`` as the output of an operation on ``parents``; record the node
    when grad mode is on and a parent requires grad."""
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out._retains_grad = False
    if _mode.enabled and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._node = _Node(parents, vjp, name)
    else:
        out.requires_grad = False
        out._node = None
    return out


def _wrap(data):
    """A constant tensor (no graph)."""
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out.requires_grad = False
    out._node = None
    out._retains_grad = False
    return out


def _operand(x, other):
    """``other`` as a Tensor next to ``x`` (scalars keep ``x``'s dtype, as in PyTorch)."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, (bool, numbers.Number)) and not isinstance(other, np.ndarray):
        return None   # a Python scalar: folded into the operation
    if isinstance(other, np.ndarray) or is_foreign_array(other) or isinstance(other, (list, tuple)):
        return _wrap(_to_namespace_of(other, x))
    raise TypeError(f"unsupported operand type {type(other).__name__} for a Tensor")


def _to_namespace_of(arr, x):
    xp = array_namespace(x.data)
    if xp is np:
        return np.asarray(to_numpy(arr) if is_foreign_array(arr) else arr)
    if is_foreign_array(arr) and array_namespace(arr) is xp:
        return arr
    a = np.asarray(to_numpy(arr) if is_foreign_array(arr) else arr)
    return xp.asarray(a, dtype=_xp_dtype(xp, a.dtype), device=device_of(x.data))


class Tensor:
    """An array that records the operations applied to it, for reverse-mode
    automatic differentiation (PyTorch's ``torch.Tensor`` semantics).

    Parameters
    ----------
    data : array
        A NumPy, CuPy or Array-API array, wrapped without a copy (use
        :func:`neurenix.tensor` to build one from Python data with PyTorch's
        dtype rules).
    requires_grad : bool, default False
        Record operations on this tensor so that :meth:`backward` fills
        :attr:`grad`.  Only floating tensors can require grad.

    Attributes
    ----------
    data : array
        The values (a backend array).
    grad : array or None
        The accumulated gradient, an array of the same shape and dtype as
        ``data`` (leaves only; see :meth:`retain_grad`).  PyTorch holds a
        tensor here; an array is what ``neurenix.optim`` reads.
    requires_grad : bool
    """

    # numpy defers ``ndarray <op> Tensor`` to the Tensor's reflected operator
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        elif not (isinstance(data, np.ndarray) or is_foreign_array(data)):
            data = np.asarray(data)
        if requires_grad and not _is_float(data.dtype):
            raise RuntimeError("Only Tensors of floating point dtype can require gradients, "
                               f"got {dtype_name(data.dtype)}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None
        self._retains_grad = False

    # ------------------------------------------------------------ properties
    @property
    def xp(self):
        """The array namespace of :attr:`data`."""
        return array_namespace(self.data)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    @property
    def ndim(self):
        return len(self.data.shape)

    def dim(self):
        """Number of dimensions."""
        return len(self.data.shape)

    def size(self, dim=None):
        """The shape, or its entry ``dim`` (``targets.size(0)`` is the batch size)."""
        shape = tuple(self.data.shape)
        if dim is None:
            return shape
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        if not -len(shape) <= dim < len(shape):
            raise IndexError(f"dim {dim} is out of range for a tensor with {len(shape)} dimensions")
        return shape[dim]

    def numel(self):
        """Number of elements."""
        return math.prod(self.data.shape)

    def __len__(self):
        if not self.data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded operation."""
        return self._node is None

    @property
    def grad_fn(self):
        """The recorded operation that produced this tensor (None for leaves)."""
        return self._node

    def requires_grad_(self, requires_grad=True):
        """Set :attr:`requires_grad` of a leaf in place; return ``self``."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables")
        if requires_grad and not _is_float(self.data.dtype):
            raise RuntimeError("Only Tensors of floating point dtype can require gradients")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep :attr:`grad` on a non-leaf tensor during :meth:`backward`."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if not self.is_leaf:
            self._retains_grad = True

    # ------------------------------------------------------------ conversion
    def detach(self):
        """A tensor sharing the data, outside the graph."""
        return _wrap(self.data)

    def clone(self):
        """A copy of the data; differentiable (gradient flows to ``self``)."""
        xp = self.xp
        return _result(xp.asarray(self.data, copy=True), (self,), lambda g: (g,), "Clone")

    def numpy(self):
        """The data as a NumPy array (shared for NumPy data, copied from a device)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        a = to_numpy(self.data)
        return a.reshape(()).item()

    def tolist(self):
        """The data as nested Python lists."""
        return to_numpy(self.data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        a = to_numpy(self.data)
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return np.array(a, copy=True) if copy else a

    def to(self, dtype):
        """Cast to ``dtype`` (differentiable between floating dtypes)."""
        xp = self.xp
        dt = _xp_dtype(xp, dtype)
        if self.data.dtype == dt:
            return self
        src = self.data.dtype
        out = _astype(self.data, dt, xp)
        if not _is_float(dt):
            return _wrap(out)
        return _result(out, (self,), lambda g: (_astype(g, src, xp),), "ToCopy")

    type = to

    def float(self):
        """Cast to float32."""
        return self.to(float32)

    def double(self):
        """Cast to float64."""
        return self.to(float64)

    def long(self):
        """Cast to int64 (no gradient)."""
        return self.to(int64)

    def int(self):
        """Cast to int32 (no gradient)."""
        return self.to(int32)

    def __repr__(self):
        body = np.array2string(to_numpy(self.data), separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (np.dtype(np.float32), np.dtype(np.int64), np.dtype(bool)):
            extra += f", dtype={dtype_name(self.data.dtype)}"
        if self._node is not None:
            extra += f", grad_fn={self._node!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    # ------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None):
        """Accumulate the gradient of this tensor into the :attr:`grad` of every
        leaf that requires grad (reverse-mode accumulation [2]_).

        Parameters
        ----------
        gradient : Tensor or array, optional
            The gradient of some scalar with respect to this tensor (the vector
            of the vector-Jacobian product).  Required unless this tensor holds
            a single element, as in PyTorch.
        retain_graph : bool, optional
            Keep the graph so that ``backward`` can run through it again; by
            default it is freed.

        Raises
        ------
        RuntimeError
            When this tensor does not require grad, when ``gradient`` is omitted
            for a non-scalar, or on a second pass through a freed graph.

        References
        ----------
        .. [1] D. E. Rumelhart, G. E. Hinton, R. J. Williams, Nature 323 (1986).
        .. [2] A. Griewank, A. Walther, *Evaluating Derivatives*, SIAM (2008).
        """
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        xp = self.xp
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs "
                                   f"(this tensor has shape {self.shape}); pass gradient=")
            seed = xp.ones_like(self.data)
        else:
            seed = _to_namespace_of(gradient.data if isinstance(gradient, Tensor) else gradient, self)
            if tuple(seed.shape) != self.shape:
                raise RuntimeError(f"gradient has shape {tuple(seed.shape)}, expected {self.shape} "
                                   "(the shape of the tensor)")
            seed = _astype(seed, self.data.dtype, xp)
        keep = bool(retain_graph)

        # reverse topological order of the nodes that require grad (iterative DFS)
        order = []
        seen = {id(self)}
        stack = [(self, False)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            stack.append((t, True))
            if t._node is not None:
                for p in t._node.parents:
                    if p.requires_grad and id(p) not in seen:
                        seen.add(id(p))
                        stack.append((p, False))

        grads = {id(self): seed}
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            node = t._node
            if node is None or t._retains_grad:
                t._accumulate(g, xp)
            if node is None:
                continue
            if node.vjp is None:
                raise RuntimeError("Trying to backward through the graph a second time; "
                                   "specify retain_graph=True on the first backward")
            pgrads = node.vjp(g)
            if not keep:
                node.vjp = None
            for p, pg in zip(node.parents, pgrads):
                if pg is None or not p.requires_grad:
                    continue
                prev = grads.get(id(p))
                grads[id(p)] = pg if prev is None else prev + pg

    def _accumulate(self, g, xp):
        if g.dtype != self.data.dtype:
            g = _astype(g, self.data.dtype, xp)
        cur = self.grad
        if cur is None:
            # a fresh array: ``g`` may be shared with other gradients
            self.grad = np.array(g, copy=True, order="C") if xp is np else xp.asarray(g, copy=True)
        elif isinstance(cur, np.ndarray) and cur.flags.writeable:
            cur += g
        else:
            self.grad = cur + g

    # ----------------------------------------------------------- arithmetic
    def _binary(self, other, fwd, vjp_a, vjp_b, name, reverse=False):
        o = _operand(self, other)
        if o is None:  # Python scalar
            c = other
            if reverse:
                out = fwd(c, self.data)
                return _result(out, (self,), lambda g: (vjp_b(g, c, self.data, out),), name)
            out = fwd(self.data, c)
            return _result(out, (self,), lambda g: (vjp_a(g, self.data, c, out),), name)
        a, b = (o, self) if reverse else (self, o)
        xp = self.xp
        out = fwd(a.data, b.data)

        def vjp(g):
            ga = gb = None
            if a.requires_grad:
                ga = _unbroadcast(vjp_a(g, a.data, b.data, out), tuple(a.data.shape), a.data.dtype, xp)
            if b.requires_grad:
                gb = _unbroadcast(vjp_b(g, a.data, b.data, out), tuple(b.data.shape), b.data.dtype, xp)
            return ga, gb

        return _result(out, (a, b), vjp, name)

    def __add__(self, other):
        return self._binary(other, lambda a, b: a + b, lambda g, a, b, o: g,
                            lambda g, a, b, o: g, "Add")

    def __radd__(self, other):
        return self._binary(other, lambda a, b: a + b, lambda g, a, b, o: g,
                            lambda g, a, b, o: g, "Add", reverse=True)

    def __sub__(self, other):
        return self._binary(other, lambda a, b: a - b, lambda g, a, b, o: g,
                            lambda g, a, b, o: -g, "Sub")

    def __rsub__(self, other):
        return self._binary(other, lambda a, b: a - b, lambda g, a, b, o: g,
                            lambda g, a, b, o: -g, "Sub", reverse=True)

    def __mul__(self, other):
        return self._binary(other, lambda a, b: a * b, lambda g, a, b, o: g * b,
                            lambda g, a, b, o: g * a, "Mul")

    def __rmul__(self, other):
        return self._binary(other, lambda a, b: a * b, lambda g, a, b, o: g * b,
                            lambda g, a, b, o: g * a, "Mul", reverse=True)

    def __truediv__(self, other):
        return self._binary(other, lambda a, b: a / b, lambda g, a, b, o: g / b,
                            lambda g, a, b, o: -g * o / b, "Div")

    def __rtruediv__(self, other):
        return self._binary(other, lambda a, b: a / b, lambda g, a, b, o: g / b,
                            lambda g, a, b, o: -g * o / b, "Div", reverse=True)

    def __pow__(self, other):
        xp = self.xp
        return self._binary(other, lambda a, b: a ** b,
                            lambda g, a, b, o: g * b * a ** (b - 1),
                            lambda g, a, b, o: g * o * xp.log(a), "Pow")

    def __rpow__(self, other):
        xp = self.xp
        return self._binary(other, lambda a, b: a ** b,
                            lambda g, a, b, o: g * b * a ** (b - 1),
                            lambda g, a, b, o: g * o * (math.log(a) if isinstance(a, numbers.Number)
                                                        else xp.log(a)),
                            "Pow", reverse=True)

    def __neg__(self):
        return _result(-self.data, (self,), lambda g: (-g,), "Neg")

    def __pos__(self):
        return self

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    neg = __neg__

    def __matmul__(self, other):
        o = _operand(self, other)
        if o is None:
            raise TypeError("matmul: both operands must be tensors or arrays, got a scalar")
        return _matmul(self, o)

    def __rmatmul__(self, other):
        o = _operand(self, other)
        if o is None:
            raise TypeError("matmul: both operands must be tensors or arrays, got a scalar")
        return _matmul(o, self)

    matmul = __matmul__

    # --------------------------------------------------- comparisons (no grad)
    def _compare(self, other, fn):
        o = _operand(self, other)
        return _wrap(fn(self.data, other if o is None else o.data))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    eq = __eq__
    ne = __ne__
    lt = __lt__
    le = __le__
    gt = __gt__
    ge = __ge__

    # -------------------------------------------------------- element-wise
    def exp(self):
        """Element-wise exponential."""
        out = self.xp.exp(self.data)
        return _result(out, (self,), lambda g: (g * out,), "Exp")

    def log(self):
        """Element-wise natural logarithm."""
        x = self.data
        return _result(self.xp.log(x), (self,), lambda g: (g / x,), "Log")

    def sqrt(self):
        """Element-wise square root."""
        out = self.xp.sqrt(self.data)
        return _result(out, (self,), lambda g: (g / (2 * out),), "Sqrt")

    def tanh(self):
        """Element-wise hyperbolic tangent."""
        out = self.xp.tanh(self.data)
        return _result(out, (self,), lambda g: (g * (1 - out * out),), "Tanh")

    def sigmoid(self):
        """Element-wise logistic function, written as ``(1 + tanh(x/2)) / 2``
        (no overflow for large ``|x|``)."""
        out = 0.5 * (1 + self.xp.tanh(0.5 * self.data))
        return _result(out, (self,), lambda g: (g * out * (1 - out),), "Sigmoid")

    def relu(self):
        """Element-wise ``max(x, 0)``; the derivative at 0 is taken as 0 (PyTorch's)."""
        xp = self.xp
        x = self.data
        mask = x > 0
        if xp is np:   # NaN propagates, as in torch.relu
            out = np.maximum(x, x.dtype.type(0))
            return _result(out, (self,), lambda g: (g * mask,), "Relu")
        out = xp.maximum(x, xp.zeros_like(x))
        return _result(out, (self,), lambda g: (g * _astype(mask, g.dtype, xp),), "Relu")

    def abs(self):
        """Element-wise absolute value (derivative ``sign(x)``, 0 at 0)."""
        xp = self.xp
        x = self.data
        return _result(xp.abs(x), (self,), lambda g: (g * xp.sign(x),), "Abs")

    # ----------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, dtype=None):
        """Sum over ``dim`` (all dimensions by default).  Booleans and integers
        sum to int64, as in PyTorch."""
        xp = self.xp
        x = self.data
        if dtype is not None:
            x = _astype(x, _xp_dtype(xp, dtype), xp)
        elif not _is_float(x.dtype):
            x = _astype(x, _xp_dtype(xp, "int64"), xp)
        axes = _norm_axes(dim, x.ndim)
        shape = tuple(x.shape)
        out = xp.sum(x, axis=axes, keepdims=keepdim) if axes else x
        if not _is_float(x.dtype):
            return _wrap(out)
        src = self.data.dtype
        return _result(out, (self,),
                       lambda g: (_astype(_expand_reduced(g, axes, shape, keepdim, xp), src, xp),),
                       "Sum")

    def mean(self, dim=None, keepdim=False):
        """Mean over ``dim`` (all dimensions by default); floating tensors only."""
        xp = self.xp
        x = self.data
        if not _is_float(x.dtype):
            raise RuntimeError(f"mean(): input dtype should be floating point, got {dtype_name(x.dtype)}")
        axes = _norm_axes(dim, x.ndim)
        shape = tuple(x.shape)
        count = math.prod(shape[a] for a in axes)
        out = xp.mean(x, axis=axes, keepdims=keepdim) if axes else x
        return _result(out, (self,),
                       lambda g: (_expand_reduced(g / count, axes, shape, keepdim, xp),), "Mean")

    def _extreme(self, dim, keepdim, largest):
        xp = self.xp
        x = self.data
        red = xp.max if largest else xp.min
        arg = xp.argmax if largest else xp.argmin
        shape = tuple(x.shape)
        if dim is None:
            out = red(x)
            if not _is_float(x.dtype):
                return _wrap(out)

            def vjp(g):   # ties share the gradient evenly (PyTorch's rule)
                mask = _astype(x == out, x.dtype, xp)
                return (g * mask / xp.sum(mask),)

            return _result(out, (self,), vjp, "Max" if largest else "Min")
        (axis,) = _norm_axes(dim, x.ndim)
        values = red(x, axis=axis, keepdims=keepdim)
        idx = arg(x, axis=axis, keepdims=keepdim)
        idx = _astype(idx, _xp_dtype(xp, "int64"), xp)
        if _is_float(x.dtype):
            def vjp(g):   # the gradient goes to the returned index
                ik = idx if keepdim else xp.expand_dims(idx, axis=axis)
                gk = g if keepdim else xp.expand_dims(g, axis=axis)
                rng = xp.arange(shape[axis], dtype=idx.dtype) if xp is np else \
                    xp.arange(shape[axis], dtype=idx.dtype, device=device_of(idx))
                rshape = [1] * len(shape)
                rshape[axis] = shape[axis]
                hit = xp.reshape(rng, tuple(rshape)) == ik
                return (xp.where(hit, gk, xp.zeros_like(gk)),)

            vt = _result(values, (self,), vjp, "Max" if largest else "Min")
        else:
            vt = _wrap(values)
        return (MaxResult if largest else MinResult)(vt, _wrap(idx))

    def max(self, dim=None, keepdim=False):
        """The largest element, or ``(values, indices)`` along ``dim``
        (``_, predicted = outputs.max(1)``)."""
        return self._extreme(dim, keepdim, True)

    def min(self, dim=None, keepdim=False):
        """The smallest element, or ``(values, indices)`` along ``dim``."""
        return self._extreme(dim, keepdim, False)

    def argmax(self, dim=None, keepdim=False):
        """Index of the largest element (of the flattened tensor when ``dim`` is None)."""
        return self._argext(dim, keepdim, True)

    def argmin(self, dim=None, keepdim=False):
        """Index of the smallest element (of the flattened tensor when ``dim`` is None)."""
        return self._argext(dim, keepdim, False)

    def _argext(self, dim, keepdim, largest):
        xp = self.xp
        x = self.data
        f = xp.argmax if largest else xp.argmin
        if dim is None:
            out = f(xp.reshape(x, (-1,)))
            if keepdim:
                out = xp.reshape(out, (1,) * x.ndim)
        else:
            (axis,) = _norm_axes(dim, x.ndim)
            out = f(x, axis=axis, keepdims=keepdim)
        return _wrap(_astype(out, _xp_dtype(xp, "int64"), xp))

    def log_softmax(self, dim):
        """``x - logsumexp(x, dim)``, shifted by the maximum (no overflow)."""
        xp = self.xp
        x = self.data
        (axis,) = _norm_axes(dim, x.ndim)
        z = x - xp.max(x, axis=axis, keepdims=True)
        out = z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))

        def vjp(g):
            return (g - xp.exp(out) * xp.sum(g, axis=axis, keepdims=True),)

        return _result(out, (self,), vjp, "LogSoftmax")

    def softmax(self, dim):
        """``exp(x) / sum(exp(x), dim)``, shifted by the maximum."""
        xp = self.xp
        x = self.data
        (axis,) = _norm_axes(dim, x.ndim)
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
        out = e / xp.sum(e, axis=axis, keepdims=True)

        def vjp(g):
            return (out * (g - xp.sum(g * out, axis=axis, keepdims=True)),)

        return _result(out, (self,), vjp, "Softmax")

    # --------------------------------------------------------------- shapes
    def reshape(self, *shape):
        """The same elements in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        xp = self.xp
        src = tuple(self.data.shape)
        out = xp.reshape(self.data, tuple(int(s) for s in shape))
        return _result(out, (self,), lambda g: (xp.reshape(g, src),), "Reshape")

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dimensions ``start_dim`` .. ``end_dim`` into one."""
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = _norm_axes(start_dim, nd)[0], _norm_axes(end_dim, nd)[0]
        if s > e:
            raise ValueError(f"flatten() has invalid args: start_dim {start_dim} comes after end_dim {end_dim}")
        shp = self.shape
        return self.reshape(shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])

    def transpose(self, dim0, dim1):
        """Swap two dimensions."""
        xp = self.xp
        nd = self.ndim
        a, b = _norm_axes(dim0, nd)[0], _norm_axes(dim1, nd)[0]
        perm = list(range(nd))
        perm[a], perm[b] = perm[b], perm[a]
        perm = tuple(perm)
        out = xp.permute_dims(self.data, perm)
        return _result(out, (self,), lambda g: (xp.permute_dims(g, perm),), "Transpose")

    def t(self):
        """Transpose of a tensor with at most 2 dimensions."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self):
        return self.t()

    def unsqueeze(self, dim):
        """Insert a dimension of size 1 at ``dim``."""
        nd = self.ndim + 1
        if not -nd <= dim < nd:
            raise IndexError(f"dim {dim} is out of range for unsqueeze of a {self.ndim}-d tensor")
        d = dim % nd
        shp = self.shape
        return self.reshape(shp[:d] + (1,) + shp[d:])

    def squeeze(self, dim=None):
        """Remove dimensions of size 1 (only ``dim`` when given)."""
        shp = self.shape
        if dim is None:
            return self.reshape(tuple(n for n in shp if n != 1))
        (d,) = _norm_axes(dim, self.ndim)
        if shp[d] != 1:
            return self
        return self.reshape(shp[:d] + shp[d + 1:])

    # ------------------------------------------------------------- indexing
    def __getitem__(self, index):
        xp = self.xp
        idx = _index_arrays(index, self)
        x = self.data
        advanced = _has_array(idx)
        if xp is not np and advanced and _is_row_gather(idx):
            out = xp.take(x, idx[0] if isinstance(idx, tuple) else idx, axis=0)
        else:
            if xp is not np and not advanced:
                # the Array-API standard indexes every axis: complete the key with ``...``
                key = idx if isinstance(idx, tuple) else (idx,)
                if Ellipsis not in key:
                    idx = key + (Ellipsis,)
            out = x[idx]
        if not (_is_float(x.dtype) and self.requires_grad and _mode.enabled):
            return _wrap(out)
        shape = tuple(x.shape)
        if advanced and xp is not np and not _is_row_gather(idx):
            raise NotImplementedError(
                "differentiable integer-array indexing on a non-NumPy backend supports one "
                "1-d integer index on the first axis (x[idx]); use NumPy or index the data")

        def vjp(g):
            z = _zeros(shape, x.dtype, x, xp)
            if xp is np:
                np.add.at(z, idx, g)            # repeated indices accumulate
                return (z,)
            if advanced:                        # one-hot scatter-add: z = onehot(idx)^T @ g
                rows = idx if not isinstance(idx, tuple) else idx[0]
                rng = xp.arange(shape[0], dtype=rows.dtype, device=device_of(rows))
                onehot = _astype(xp.reshape(rows, (-1, 1)) == xp.reshape(rng, (1, -1)), x.dtype, xp)
                flat = xp.reshape(g, (g.shape[0], -1))
                return (xp.reshape(_mT(onehot, xp) @ flat, shape),)
            z[idx] = g                          # basic indexing selects each element once
            return (z,)

        return _result(out, (self,), vjp, "Index")

    def __iter__(self):
        if not self.data.shape:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.data.shape[0]):
            yield self[i]


def _index_arrays(index, ref):
    """Tensors inside an index replaced by their arrays (Python lists by arrays)."""
    def conv(i):
        if isinstance(i, Tensor):
            return i.data
        if isinstance(i, list):
            return _to_namespace_of(np.asarray(i), ref)
        return i
    if isinstance(index, tuple):
        return tuple(conv(i) for i in index)
    return conv(index)


def _has_array(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(hasattr(i, "shape") and hasattr(i, "dtype") for i in items)


def _is_row_gather(idx):
    if isinstance(idx, tuple):
        if len(idx) != 1:
            return False
        idx = idx[0]
    return hasattr(idx, "dtype") and _is_int(idx.dtype) and len(idx.shape) == 1


def _matmul(a, b):
    """Matrix product with NumPy's rules for 1-d operands and batch broadcasting."""
    xp = array_namespace(a.data)
    A, B = a.data, b.data
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("matmul: both arguments need at least one dimension, "
                         f"got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    if A.shape[-1] != B.shape[-2 if B.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {tuple(A.shape)} and {tuple(B.shape)} are not aligned "
                         f"({A.shape[-1]} != {B.shape[-2 if B.ndim > 1 else 0]})")
    out = xp.matmul(A, B)

    def vjp(g):
        A2 = xp.reshape(A, (1,) + tuple(A.shape)) if A.ndim == 1 else A
        B2 = xp.reshape(B, tuple(B.shape) + (1,)) if B.ndim == 1 else B
        g2 = g
        if A.ndim == 1:
            g2 = xp.expand_dims(g2, axis=-2 if B.ndim > 1 else 0)
        if B.ndim == 1:
            g2 = xp.expand_dims(g2, axis=-1)
        ga = gb = None
        if a.requires_grad:
            ga = xp.matmul(g2, _mT(B2, xp))
            if A.ndim == 1:
                ga = xp.reshape(ga, tuple(ga.shape[:-2]) + (ga.shape[-1],))
                ga = _unbroadcast(ga, tuple(A.shape), A.dtype, xp)
            else:
                ga = _unbroadcast(ga, tuple(A.shape), A.dtype, xp)
        if b.requires_grad:
            gb = xp.matmul(_mT(A2, xp), g2)
            if B.ndim == 1:
                gb = xp.reshape(gb, tuple(gb.shape[:-1]))
            gb = _unbroadcast(gb, tuple(B.shape), B.dtype, xp)
        return ga, gb

    return _result(out, (a, b), vjp, "Mm")


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (``torch.tensor``).

    Parameters
    ----------
    data : array_like, Tensor or array of any backend
        Python numbers and (nested) lists become NumPy arrays: floats as
        float32, integers as int64, booleans as bool (PyTorch's defaults).
        Arrays keep their dtype and their library (a CuPy or
        ``array_api_strict`` array gives a tensor on that backend).
    dtype : dtype or str, optional
        ``neurenix.float32``, ``"float64"``, ... .
    requires_grad : bool, default False

    Examples
    --------
    >>> import neurenix
    >>> x = neurenix.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> x.dtype
    dtype('float32')
    >>> (x * x).sum().backward()
    >>> x.grad
    array([[2., 4.],
           [6., 8.]], dtype=float32)
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.array(data, copy=True)
        xp = np
    elif is_foreign_array(data):
        xp = array_namespace(data)
        arr = xp.asarray(data, copy=True)
    else:
        arr = np.asarray(data)
        xp = np
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu" and dtype is None:
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "fiub":
            raise TypeError(f"data: cannot build a tensor from {type(data).__name__} "
                            f"(dtype {arr.dtype})")
    if dtype is not None:
        arr = _astype(arr, _xp_dtype(xp, dtype), xp)
    return Tensor(arr, requires_grad=requires_grad)
