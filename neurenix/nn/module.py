"""``Module``: the base class of layers and models (``torch.nn.Module``)."""
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import Tensor, no_grad
from ..backend import array_namespace, device_of, dtype_name, to_namespace
from ..optim.optimizer import zero_grads_
from .parameter import Parameter

__all__ = ["Module"]

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model.

    Subclasses set :class:`Parameter` and sub-``Module`` attributes in
    ``__init__`` (they are registered in assignment order) and define
    :meth:`forward`; calling the module calls ``forward``.

    Examples
    --------
    >>> from neurenix import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8)
    ...         self.fc2 = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> [name for name, _ in TwoLayer().named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --------------------------------------------------------- registration
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError("cannot assign attributes before Module.__init__() call")
        modules = self.__dict__["_modules"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        else:
            if name in params:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                    "(nn.Parameter or None expected)")
                params[name] = None
                return
            if name in modules:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                    "(nn.Module or None expected)")
                modules[name] = None
                return
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if "_parameters" in d and name in d["_parameters"]:
            return d["_parameters"][name]
        if "_modules" in d and name in d["_modules"]:
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a :class:`Parameter` or None) under ``name``."""
        self._register("parameter", name, param, Parameter, self._parameters)

    def add_module(self, name, module):
        """Register ``module`` (a :class:`Module` or None) under ``name``."""
        self._register("module", name, module, Module, self._modules)

    @staticmethod
    def _register(kind, name, value, cls, table):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"cannot assign {type(value).__name__} as {kind} {name!r} "
                            f"({cls.__name__} or None expected)")
        table[name] = value

    register_module = add_module

    # ------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix=""):
        """``(name, module)`` for this module and every descendant, once each."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, prefix + ("." if prefix else "") + name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """``(dotted name, Parameter)`` pairs; a shared parameter appears once."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield mp + ("." if mp else "") + name, p

    def parameters(self, recurse=True):
        """The parameters, in registration order (what an optimizer takes)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def apply(self, fn):
        """Call ``fn`` on every descendant, then on this module; return ``self``."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ----------------------------------------------------------------- modes
    def train(self, mode=True):
        """Set training mode on this module and its descendants; return ``self``."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Set evaluation mode (``train(False)``); return ``self``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (``None`` by default, as in PyTorch)."""
        zero_grads_(self.parameters(), set_to_none)

    # ------------------------------------------------------------- call
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ conversion
    @no_grad()
    def to(self, dtype=None, *, xp=None, device=None):
        """Move every parameter to another dtype and/or array namespace, in place
        (the parameters keep their identity, as in PyTorch); return ``self``.

        Parameters
        ----------
        dtype : dtype or str, optional
            A floating dtype (``neurenix.float64``, ``"float32"``).
        xp : namespace, optional
            The array library of the parameters (``numpy``, ``cupy``,
            ``array_api_strict``, ...).
        device : optional
            The device within ``xp``.

        Gradients are dropped.  Build optimizers after moving the model.
        """
        for p in self.parameters():
            d = p.data
            target = xp if xp is not None else array_namespace(d)
            dt = dtype_name(dtype if dtype is not None else d.dtype)
            if not dt.startswith("float"):
                raise TypeError(f"dtype must be a floating dtype, got {dt}")
            if target is np:
                new = np.ascontiguousarray(to_namespace(d, np), dtype=dt)
            else:
                new = to_namespace(d, target, dtype=getattr(target, dt),
                                   device=device if device is not None else
                                   (device_of(d) if array_namespace(d) is target else None))
            p.data = new
            p.grad = None
            p._checked = None
        return self

    def float(self):
        """Cast the parameters to float32."""
        return self.to("float32")

    def double(self):
        """Cast the parameters to float64."""
        return self.to("float64")

    # ------------------------------------------------------------ state
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """``{dotted name: array}`` of every parameter.

        As in PyTorch the entries share memory with the parameters (copy them,
        e.g. with ``copy.deepcopy``, to keep a snapshot while training goes on);
        with ``keep_vars=True`` the values are the :class:`Parameter` objects.
        Arrays and plain values only: :func:`neurenix.checkpoint.save` writes it.
        """
        out = OrderedDict() if destination is None else destination
        for name, p in self.named_parameters(prefix=prefix.rstrip(".")):
            out[name] = p if keep_vars else p.data
        return out

    @no_grad()
    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of ``state_dict`` into the parameters, in place.

        Everything is validated first (keys when ``strict``, shapes always); on
        an error no parameter has changed.

        Returns
        -------
        IncompatibleKeys
            ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        own = OrderedDict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               f"missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for k, p in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if isinstance(v, Tensor):
                v = v.data
            if not hasattr(v, "shape"):
                v = np.asarray(v)
            if tuple(v.shape) != p.shape:
                raise RuntimeError(f"size mismatch for {k}: copying a param with shape "
                                   f"{tuple(v.shape)}, the parameter in the current model has shape {p.shape}")
            d = p.data
            if isinstance(d, np.ndarray):
                staged.append((p, np.asarray(to_namespace(v, np), dtype=d.dtype)))
            else:
                xp = array_namespace(d)
                staged.append((p, to_namespace(v, xp, dtype=d.dtype, device=device_of(d))))
        for p, v in staged:
            d = p.data
            if isinstance(d, np.ndarray):
                d[...] = v
            else:
                try:
                    d[...] = v
                except (TypeError, ValueError):
                    p.data = array_namespace(d).asarray(v, copy=True)
                    p._checked = None
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------- repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        head = type(self).__name__ + "(" + self.extra_repr()
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
