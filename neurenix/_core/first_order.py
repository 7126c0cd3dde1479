"""The first-order update rules: one home for each, shared by :mod:`neurenix.optim`
and ``minimize``.

A :class:`Rule` holds what a rule is apart from its driver: its
hyperparameters with their defaults (PyTorch's, or the paper's), their checks
(errors name the hyperparameter), its per-parameter state, and the step itself
-- the per-step scalars (bias corrections, schedules of the rule) and the one
call of the fused backend kernel that updates a whole group
(:func:`neurenix.backend.kernels_for`: Cython for NumPy, CuPy, or the generic
Array-API twin).  The stateful classes of :mod:`neurenix.optim`
(``optim.Adam`` ...) map a param group onto :meth:`Rule.update`;
``minimize(method="adam")`` calls the same method on the one flat iterate.

:data:`RULES` maps the method names of ``minimize`` to the rules.

References are in the docstrings of the :mod:`neurenix.optim` classes.
"""
from dataclasses import dataclass

import numpy as np

from ..backend import array_namespace, device_of
from .validation import check_lr, check_nonneg, check_betas, check_bool

__all__ = ["MomentSpec", "Rule", "RULES", "zeros_like", "advance_steps"]


def zeros_like(d, fill=0.0):
    """A new state array like the parameter data ``d`` (its namespace, dtype,
    device; C order for NumPy), filled with ``fill``."""
    if isinstance(d, np.ndarray):
        out = np.empty_like(d, order="C")
        out.fill(fill)
        return out
    xp = array_namespace(d)
    return xp.full(tuple(d.shape), fill, dtype=d.dtype, device=device_of(d))


def advance_steps(states):
    """Increment ``state["step"]`` of every state; return the new steps (float64)."""
    steps = np.empty(len(states))
    for i, st in enumerate(states):
        st["step"] = s = st["step"] + 1
        steps[i] = s
    return steps


def _states(states, key):
    return [st[key] for st in states]


@dataclass(frozen=True)
class MomentSpec:
    """Which variant of the first/second-moment update a class runs.

    decoupled : weight decay applied to the parameter (AdamW), not added to the gradient.
    belief : the second moment tracks :math:`(g - m)^2` (AdaBelief).
    """

    decoupled: bool = False
    belief: bool = False


class Rule:
    """One first-order update rule.

    Attributes
    ----------
    name : str
        ``minimize``'s method name.
    defaults : dict
        The hyperparameters a user sets, with their defaults (the optimizer
        class's signature, ``params`` and ``skip_nonfinite`` excepted).
    fixed : dict
        Group entries the rule sets itself (e.g. AdamW's
        ``decoupled_weight_decay=True``).
    """

    name = ""
    defaults = {}
    fixed = {}
    #: hyperparameters checked as reals >= 0, and as bools (in this order, after ``lr``
    #: and ``betas`` when the rule has them)
    nonneg = ()
    bools = ()

    def group(self, options):
        """A param group's options: the defaults, the fixed entries, then ``options``."""
        g = dict(self.defaults)
        g.update(self.fixed)
        g.update(options)
        return g

    def check(self, group):
        """Validate the group's hyperparameters (may normalize them, e.g. ``betas``);
        errors name the hyperparameter."""
        check_lr(group["lr"])
        if "betas" in self.defaults:
            group["betas"] = check_betas(group["betas"])
        for k in self.nonneg:
            check_nonneg(group[k], k)
        for k in self.bools:
            check_bool(group[k], k)
        self.check_more(group)

    def check_more(self, group):
        """Checks beyond :attr:`nonneg` and :attr:`bools` (subclasses)."""

    def init_state(self, d, group):
        """Fresh state of a parameter whose data is ``d``."""
        return {}

    def update(self, kernels, data, grads, states, group):
        """One step of every parameter of a group (lists ``data``, ``grads``,
        ``states``; one kernel call)."""
        raise NotImplementedError


class SGDRule(Rule):
    name = "sgd"
    defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                    maximize=False)

    nonneg = ("momentum", "dampening", "weight_decay")
    bools = ("nesterov", "maximize")

    def check_more(self, group):
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")

    def init_state(self, d, group):
        return {"momentum_buffer": None}

    def update(self, kernels, data, grads, states, group):
        n = len(data)
        mom = float(group["momentum"])
        sc = np.empty((n, 2))
        sc[:, 0] = group["lr"]
        sc[:, 1] = 0.0
        bufs = None
        if mom != 0:
            bufs = []
            for i, (d, st) in enumerate(zip(data, states)):
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = zeros_like(d)
                    sc[i, 1] = 1.0
                bufs.append(buf)
        kernels.sgd(data, grads, bufs, sc, float(group["weight_decay"]), mom,
                    float(group["dampening"]), bool(group["nesterov"]), bool(group["maximize"]))


class AdagradRule(Rule):
    name = "adagrad"
    defaults = dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                    eps=1e-10, maximize=False)

    nonneg = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    bools = ("maximize",)

    def init_state(self, d, group):
        return {"step": 0, "sum": zeros_like(d, float(group["initial_accumulator_value"]))}

    def update(self, kernels, data, grads, states, group):
        steps = advance_steps(states)
        sc = (group["lr"] / (1.0 + (steps - 1.0) * group["lr_decay"]))[:, None]
        kernels.adagrad(data, grads, _states(states, "sum"), np.ascontiguousarray(sc),
                        float(group["weight_decay"]), float(group["eps"]),
                        bool(group["maximize"]))


class RMSPropRule(Rule):
    name = "rmsprop"
    defaults = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                    centered=False, maximize=False)

    nonneg = ("alpha", "eps", "weight_decay", "momentum")
    bools = ("centered", "maximize")

    def check_more(self, group):
        a = group["alpha"]
        if a > 1:
            raise ValueError(f"alpha must be in [0, 1], got {a!r}")

    def init_state(self, d, group):
        return {"step": 0, "square_avg": zeros_like(d)}

    def update(self, kernels, data, grads, states, group):
        advance_steps(states)
        mom = float(group["momentum"])
        centered = bool(group["centered"])
        for d, st in zip(data, states):
            if mom > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = zeros_like(d)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = zeros_like(d)
        sc = np.full((len(data), 1), float(group["lr"]))
        kernels.rmsprop(data, grads, _states(states, "square_avg"),
                        _states(states, "grad_avg") if centered else None,
                        _states(states, "momentum_buffer") if mom > 0 else None,
                        sc, float(group["alpha"]), float(group["eps"]),
                        float(group["weight_decay"]), mom, bool(group["maximize"]))


class AdamRule(Rule):
    """Adam, AdamW and AdaBelief: one moment recipe (:class:`MomentSpec`), one kernel."""

    nonneg = ("eps", "weight_decay")
    bools = ("amsgrad", "maximize", "decoupled_weight_decay")

    def __init__(self, name, spec, defaults, fixed=None):
        self.name = name
        self.spec = spec
        self.defaults = defaults
        self.fixed = fixed or {}

    def init_state(self, d, group):
        st = {"step": 0, "exp_avg": zeros_like(d), "exp_avg_sq": zeros_like(d)}
        if group["amsgrad"]:
            st["max_exp_avg_sq"] = zeros_like(d)
        return st

    def update(self, kernels, data, grads, states, group):
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        amsgrad = bool(group["amsgrad"])
        if amsgrad:
            for d, st in zip(data, states):
                if "max_exp_avg_sq" not in st:
                    st["max_exp_avg_sq"] = zeros_like(d)
        steps = advance_steps(states)
        sc = np.empty((len(steps), 3))
        sc[:, 0] = lr / (1.0 - beta1 ** steps)
        sc[:, 1] = np.sqrt(1.0 - beta2 ** steps)
        sc[:, 2] = 1.0 - lr * wd
        decoupled = bool(group["decoupled_weight_decay"]) or self.spec.decoupled
        kernels.adam(data, grads, _states(states, "exp_avg"), _states(states, "exp_avg_sq"),
                     _states(states, "max_exp_avg_sq") if amsgrad else None, sc, beta1, beta2,
                     float(group["eps"]), wd, decoupled, self.spec.belief,
                     bool(group["maximize"]))


class NAdamRule(Rule):
    name = "nadam"
    defaults = dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)

    nonneg = ("eps", "weight_decay", "momentum_decay")
    bools = ("decoupled_weight_decay", "maximize")

    def init_state(self, d, group):
        return {"step": 0, "mu_product": 1.0, "exp_avg": zeros_like(d),
                "exp_avg_sq": zeros_like(d)}

    def update(self, kernels, data, grads, states, group):
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        psi = float(group["momentum_decay"])
        steps = advance_steps(states)
        sc = np.empty((len(steps), 4))
        for i, (st, t) in enumerate(zip(states, steps)):
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            st["mu_product"] = mu_product = st["mu_product"] * mu
            sc[i, 0] = 1.0 - beta2 ** t
            sc[i, 1] = lr * (1.0 - mu) / (1.0 - mu_product)
            sc[i, 2] = lr * mu_next / (1.0 - mu_product * mu_next)
        sc[:, 3] = 1.0 - lr * wd
        kernels.nadam(data, grads, _states(states, "exp_avg"), _states(states, "exp_avg_sq"),
                      sc, beta1, beta2, float(group["eps"]), wd,
                      bool(group["decoupled_weight_decay"]), bool(group["maximize"]))


class RAdamRule(Rule):
    name = "radam"
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    decoupled_weight_decay=False, maximize=False)

    nonneg = ("eps", "weight_decay")
    bools = ("decoupled_weight_decay", "maximize")

    def init_state(self, d, group):
        return {"step": 0, "exp_avg": zeros_like(d), "exp_avg_sq": zeros_like(d)}

    def update(self, kernels, data, grads, states, group):
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        steps = advance_steps(states)
        bc2 = 1.0 - beta2 ** steps
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * steps * (beta2 ** steps) / bc2
        on = rho_t > 5.0
        rect = np.ones_like(rho_t)
        r = rho_t[on]
        rect[on] = np.sqrt((r - 4) * (r - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * r))
        sc = np.empty((len(steps), 6))
        sc[:, 0] = lr
        sc[:, 1] = 1.0 - beta1 ** steps
        sc[:, 2] = np.sqrt(bc2)
        sc[:, 3] = rect
        sc[:, 4] = on
        sc[:, 5] = 1.0 - lr * wd
        kernels.radam(data, grads, _states(states, "exp_avg"), _states(states, "exp_avg_sq"),
                      sc, beta1, beta2, float(group["eps"]), wd,
                      bool(group["decoupled_weight_decay"]), bool(group["maximize"]))


class LAMBRule(Rule):
    name = "lamb"
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                    bias_correction=True)

    nonneg = ("eps", "weight_decay")
    bools = ("bias_correction",)

    def init_state(self, d, group):
        return {"step": 0, "exp_avg": zeros_like(d), "exp_avg_sq": zeros_like(d)}

    def update(self, kernels, data, grads, states, group):
        beta1, beta2 = group["betas"]
        steps = advance_steps(states)
        sc = np.empty((len(steps), 3))
        sc[:, 0] = float(group["lr"])
        if group["bias_correction"]:
            sc[:, 1] = 1.0 / (1.0 - beta1 ** steps)
            sc[:, 2] = np.sqrt(1.0 - beta2 ** steps)
        else:
            sc[:, 1:] = 1.0
        trust = kernels.lamb(data, grads, _states(states, "exp_avg"),
                             _states(states, "exp_avg_sq"), sc, beta1, beta2,
                             float(group["eps"]), float(group["weight_decay"]))
        for st, t in zip(states, trust):
            st["trust_ratio"] = float(t)


class LARSRule(Rule):
    name = "lars"
    defaults = dict(lr=1e-3, momentum=0.9, weight_decay=5e-4, trust_coefficient=1e-3, eps=1e-8)

    nonneg = ("momentum", "weight_decay", "trust_coefficient", "eps")

    def update(self, kernels, data, grads, states, group):
        mom = float(group["momentum"])
        bufs = None
        if mom != 0:
            for d, st in zip(data, states):
                if "momentum_buffer" not in st:
                    st["momentum_buffer"] = zeros_like(d)
            bufs = _states(states, "momentum_buffer")
        sc = np.full((len(data), 1), float(group["lr"]))
        trust = kernels.lars(data, grads, bufs, sc, float(group["weight_decay"]), mom,
                             float(group["trust_coefficient"]), float(group["eps"]))
        for st, t in zip(states, trust):
            st["trust_ratio"] = float(t)


_ADAM_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                      maximize=False, decoupled_weight_decay=False)

#: ``minimize`` method name -> rule (the :mod:`neurenix.optim` class of the same name runs it)
RULES = {r.name: r for r in (
    SGDRule(), AdagradRule(), RMSPropRule(),
    AdamRule("adam", MomentSpec(), _ADAM_DEFAULTS),
    AdamRule("adamw", MomentSpec(decoupled=True),
             dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                  maximize=False),
             fixed=dict(decoupled_weight_decay=True)),
    NAdamRule(), RAdamRule(),
    AdamRule("adabelief", MomentSpec(belief=True), dict(_ADAM_DEFAULTS, eps=1e-16)),
    LAMBRule(), LARSRule(),
)}
