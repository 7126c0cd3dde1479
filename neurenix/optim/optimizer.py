"""``Optimizer``: PyTorch's stateful optimizer protocol over backend arrays.

The base class owns parameter groups, per-parameter state, validation of every
gradient before anything is updated, ``state_dict``/``load_state_dict`` in
PyTorch's layout, and the dispatch of each group to a kernel table
(:func:`neurenix.backend.kernels_for`).  Subclasses validate their
hyperparameters (:meth:`_check_group`), create state (:meth:`_init_state`) and
map one group onto one kernel call (:meth:`_update`).

Deviation from PyTorch, by design: instead of packing a group into one flat
buffer, the kernels take the list of arrays of a group and walk all of them in
one native call (raw pointers collected once per step).  Parameters keep their
identity and memory, gradients may be fresh arrays each step, and there is
still one Python round trip per group, not per element-wise operation.
"""
import copy
import math

import numpy as np

from ..backend import array_namespace, kernels_for, dtype_name, KERNEL_DTYPES, is_foreign_array
from .._core.first_order import zeros_like, advance_steps
from .._core.validation import check_lr
from .parameter import Parameter

__all__ = ["Optimizer", "RuleOptimizer", "required"]

# keys that LR schedulers and users attach to param groups
_GROUP_EXTRA_KEYS = frozenset({
    "initial_lr", "name", "max_lr", "min_lr", "base_momentum", "max_momentum",
    "base_lr", "swa_lr",
})


#: what a known state entry must hold: "count" a non-negative integer (int or an integral
#: float, as torch keeps ``step`` as a float tensor), "scalar" a finite real, "array" a finite
#: array of the parameter's shape, "nonneg" a finite array >= 0 (second moments, accumulators)
_STATE_KINDS = {
    "step": "count", "func_evals": "count", "n_iter": "count", "n_hessp": "count",
    "cg_iters": "count",
    "exp_avg": "array", "momentum_buffer": "array", "grad_avg": "array", "hypergrad_dir": "array",
    "exp_avg_sq": "nonneg", "max_exp_avg_sq": "nonneg", "square_avg": "nonneg", "sum": "nonneg",
    "mu_product": "scalar", "trust_ratio": "scalar",
}


def _check_state_value(key, val, kind, index):
    """``val`` checked against the kind of state entry ``key``; raise naming the entry."""
    where = f"state_dict: state entry {key!r}" + ("" if index is None else f" of parameter {index!r}")
    if kind == "count":
        if hasattr(val, "shape") and tuple(val.shape) == ():
            val = np.asarray(val).item() if isinstance(val, (np.ndarray, np.generic)) else float(val)
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise ValueError(f"{where} must be a non-negative integer, got {val!r}")
        if isinstance(val, float):
            if not (math.isfinite(val) and val == int(val)):
                raise ValueError(f"{where} must be a non-negative integer, got {val!r}")
            val = int(val)
        if val < 0:
            raise ValueError(f"{where} must be a non-negative integer, got {val!r}")
        return val
    if kind == "scalar":
        if hasattr(val, "shape") and tuple(val.shape) == ():
            val = np.asarray(val).item() if isinstance(val, (np.ndarray, np.generic)) else float(val)
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ValueError(f"{where} must be a finite real number, got {val!r}")
        return val
    if val is None and key == "momentum_buffer":       # SGD's buffer before the first step
        return val
    if not hasattr(val, "shape") or not hasattr(val, "dtype"):
        raise ValueError(f"{where} must be an array, got {type(val).__name__}")
    a = val if isinstance(val, np.ndarray) else None
    if a is None:
        from ..backend import to_numpy
        a = to_numpy(val)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{where} must be a real array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where} contains non-finite values")
    if kind == "nonneg" and a.size and np.min(a) < 0:
        raise ValueError(f"{where} must be >= 0 everywhere (a second moment or accumulator), "
                         f"found {np.min(a)!r}; are two state entries swapped?")
    return val


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class _Bundle:
    """Parameters of one group that share a namespace and a dtype."""

    __slots__ = ("xp", "kernels", "params", "data", "grads", "states")

    def __init__(self, xp, kernels):
        self.xp = xp
        self.kernels = kernels
        self.params = []
        self.data = []
        self.grads = []
        self.states = []

    def state_list(self, key):
        return [st[key] for st in self.states]


class Optimizer:
    """Base class of the stateful optimizers (PyTorch semantics).

    Parameters
    ----------
    params : iterable of Parameter or of dict
        Parameters, or param groups: dicts with a ``"params"`` entry and
        per-group options that override ``defaults``.
    defaults : dict
        Default options of every group.
    skip_nonfinite : bool, optional
        When True, :meth:`step` checks that every gradient is finite and, if
        one is not, skips the step entirely (parameters and state untouched)
        and counts it in ``skipped_steps``.
    """

    def __init__(self, params, defaults, *, skip_nonfinite=False):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if not isinstance(skip_nonfinite, bool):
            raise TypeError(f"skip_nonfinite must be a bool, got {type(skip_nonfinite).__name__}")
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0
        if isinstance(params, (Parameter, np.ndarray)) or is_foreign_array(params):
            raise TypeError("params must be an iterable of Parameters or dicts, "
                            f"got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered iterable (a set has no stable order)")
        try:
            param_list = list(params)
        except TypeError:
            raise TypeError("params must be an iterable of Parameters or dicts, "
                            f"got {type(params).__name__}") from None
        if len(param_list) == 0:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(param_list[0], dict):
            param_list = [{"params": param_list}]
        for group in param_list:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _check_group(self, group):
        """Validate a group's options (subclasses extend); raise naming the option."""
        if "lr" in group:
            check_lr(group["lr"])

    def add_param_group(self, param_group):
        """Add a param group (a dict with ``"params"`` and optional options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered iterable (a set has no stable order)")
        else:
            params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a neurenix.optim.Parameter, "
                                f"got {type(p).__name__}")
        if len(params) == 0:
            raise ValueError("params: a param group must not be empty")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("params: a param group contains the same parameter twice")
        unknown = set(group) - set(self.defaults) - {"params"} - _GROUP_EXTRA_KEYS
        if unknown:
            raise ValueError(f"unknown option(s) in param group: {sorted(unknown)}")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"param group didn't specify a value of required option {name!r}")
            group.setdefault(name, default)
        self._check_group(group)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & {id(p) for p in params}:
            raise ValueError("params: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -------------------------------------------------------------------- grads
    def zero_grad(self, set_to_none=False):
        """Reset gradients: fill with zeros (default) or set them to ``None``."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
                    p.grad.fill(0)
                else:
                    xp = array_namespace(p.grad)
                    p.grad = xp.zeros_like(p.grad)

    def _collect(self):
        """Validate every group and gradient, and bundle them for the kernels.

        Nothing is modified here; an error leaves parameters and state untouched.
        """
        out = []
        for gi, group in enumerate(self.param_groups):
            self._check_group(group)
            bundles = {}
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                d = p.data
                if type(d) is np.ndarray or isinstance(d, np.ndarray):
                    if not isinstance(g, np.ndarray):
                        raise TypeError(f"grad of parameter {pi} of param group {gi} must be a numpy array like its "
                                        f"parameter, got {type(g).__name__}")
                    if g.shape != d.shape:
                        raise ValueError(f"grad of parameter {pi} of param group {gi} has shape {g.shape}, "
                                         f"expected {d.shape}")
                    dt = d.dtype
                    if g.dtype != dt:
                        raise TypeError(f"grad of parameter {pi} of param group {gi} has dtype {g.dtype}, "
                                        f"expected {dt}")
                    if p._checked is not d:   # flags are costly to read: once per array
                        if not (d.flags.c_contiguous and d.flags.writeable):
                            raise ValueError(f"data of parameter {pi} of param group {gi} must be a C-contiguous, "
                                             "writeable array")
                        p._checked = d
                    if g.strides != d.strides:   # same shape and itemsize as a C array
                        g = np.ascontiguousarray(g)
                    xp = np
                    key = dt
                else:
                    xp = array_namespace(d)
                    if array_namespace(d, g) is not xp:
                        raise TypeError(f"grad of parameter {pi} of param group {gi} belongs to another array library")
                    if tuple(g.shape) != tuple(d.shape):
                        raise ValueError(f"grad of parameter {pi} of param group {gi} has shape {tuple(g.shape)}, "
                                         f"expected {tuple(d.shape)}")
                    if g.dtype != d.dtype:
                        raise TypeError(f"grad of parameter {pi} of param group {gi} has dtype {g.dtype}, "
                                        f"expected {d.dtype}")
                    key = (id(xp), dtype_name(d.dtype))
                b = bundles.get(key)
                if b is None:
                    b = bundles[key] = _Bundle(xp, kernels_for(xp, d.dtype))
                b.params.append(p)
                b.data.append(d)
                b.grads.append(g)
            out.append((group, list(bundles.values())))
        return out

    def _grads_finite(self, collected):
        for _, bundles in collected:
            for b in bundles:
                if not b.kernels.all_finite(b.grads):
                    return False
        return True

    # --------------------------------------------------------------------- step
    def step(self, closure=None):
        """Perform one optimization step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model, fills gradients and returns the loss.

        Returns
        -------
        loss
            What ``closure`` returned, or None.
        """
        loss = None
        if closure is not None:
            loss = closure()
        collected = self._collect()
        if self.skip_nonfinite and not self._grads_finite(collected):
            self.skipped_steps += 1
            return loss
        for group, bundles in collected:
            for b in bundles:
                for p in b.params:
                    st = self.state.get(p)
                    if not st:
                        st = self.state[p] = self._init_state(p, group)
                    b.states.append(st)
                self._update(group, b)
        return loss

    def _init_state(self, p, group):
        """Fresh state dict of parameter ``p`` (subclasses override)."""
        return {}

    def _update(self, group, bundle):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ state_dict
    def state_dict(self):
        """Return the state as ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are replaced by their index in the order they appear across
        groups (PyTorch's layout); values are arrays and plain Python values.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st:
                    state[index[id(p)]] = dict(st)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a state produced by :meth:`state_dict` (copied, cast to each
        parameter's namespace and dtype).  Validated first: on error nothing changes."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with exactly the keys "
                             "'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(self.param_groups):
            raise ValueError("state_dict: loaded state dict has a different number of "
                             "parameter groups")
        id_map = {}
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ValueError(f"state_dict: param group {gi} is malformed")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict: param group {gi} has {len(saved['params'])} "
                                 f"parameters, this optimizer's has {len(group['params'])}")
            for k, p in zip(saved["params"], group["params"]):
                id_map[int(k)] = p
            missing = sorted(set(self.defaults) - set(saved))
            unknown = sorted(set(saved) - set(self.defaults) - {"params"} - _GROUP_EXTRA_KEYS)
            if missing or unknown:
                what = (f"lacks option(s) {missing}" if missing else "") + \
                    (" and " if missing and unknown else "") + \
                    (f"has option(s) {unknown} that {type(self).__name__} does not take"
                     if unknown else "")
                raise ValueError(f"state_dict: param group {gi} {what} (is it the state_dict "
                                 f"of another optimizer?)")
            g = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            for k in ("betas",):
                if k in g and isinstance(g[k], list):
                    g[k] = tuple(g[k])
            g["params"] = group["params"]
            self._check_group(g)
            new_groups.append(g)
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise ValueError("state_dict: 'state' must be a dict")
        new_state = {}
        for k, st in saved_state.items():
            try:
                p = id_map[int(k)]
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"state_dict: state refers to unknown parameter {k!r}") from None
            if not isinstance(st, dict):
                raise ValueError(f"state_dict: state of parameter {k!r} must be a dict")
            if self._state_keys is not None:
                extra = sorted(map(str, set(st) - self._state_keys))
                if extra:
                    raise ValueError(f"state_dict: state of parameter {k!r} has entr"
                                     f"{'ies' if len(extra) > 1 else 'y'} {extra} that "
                                     f"{type(self).__name__} does not keep (is it the "
                                     f"state_dict of another optimizer?)")
            new_state[p] = {key: self._cast_state(p, key, val, k) for key, val in st.items()}
        self.state = new_state
        self.param_groups = new_groups

    #: the state entries this optimizer keeps (None: not declared, entries not checked by
    #: name); entries whose name is in ``_STATE_KINDS`` are checked by kind whatever the class
    _state_keys = None

    @staticmethod
    def _cast_state(p, key, val, index=None):
        kind = _STATE_KINDS.get(key)
        if kind is not None:
            val = _check_state_value(key, val, kind, index)
        if val is None or isinstance(val, (bool, int, float, str)):
            return val
        if isinstance(val, (list, tuple, dict)):
            return copy.deepcopy(val)
        if not hasattr(val, "shape"):
            raise ValueError(f"state_dict: state entry {key!r} has unsupported type "
                             f"{type(val).__name__}")
        if tuple(val.shape) == ():
            return np.asarray(val).item() if isinstance(val, (np.ndarray, np.generic)) else float(val)
        if tuple(val.shape) != tuple(p.data.shape):
            raise ValueError(f"state_dict: state entry {key!r} has shape {tuple(val.shape)}, "
                             f"its parameter has shape {tuple(p.data.shape)}")
        d = p.data
        if isinstance(d, np.ndarray):
            return np.array(np.asarray(val), dtype=d.dtype, order="C", copy=True)
        xp = array_namespace(d)
        from ..backend import device_of, to_namespace
        return xp.asarray(to_namespace(val, xp, dtype=d.dtype, device=device_of(d)), copy=True)

    # ------------------------------------------------------------------ misc
    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

    # helpers for subclasses -------------------------------------------------
    @staticmethod
    def _zeros_like(p, fill=0.0):
        """A new state array like parameter ``p`` (see :func:`~neurenix._core.first_order.zeros_like`)."""
        return zeros_like(p.data, fill)

    @staticmethod
    def _advance_steps(bundle):
        """Increment ``state["step"]`` of every parameter; return steps (float64)."""
        return advance_steps(bundle.states)


class RuleOptimizer(Optimizer):
    """An optimizer that runs one first-order rule (:class:`neurenix._core.first_order.Rule`):
    the rule checks a group's hyperparameters, creates the state and makes the step
    (one fused kernel call per group); this class only maps groups onto it."""

    #: the :class:`~neurenix._core.first_order.Rule` (set by each subclass)
    rule = None

    def _check_group(self, group):
        self.rule.check(group)

    def _init_state(self, p, group):
        return self.rule.init_state(p.data, group)

    def _update(self, group, b):
        self.rule.update(b.kernels, b.data, b.grads, b.states, group)
