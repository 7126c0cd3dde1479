"""``NaturalGradient``: damped natural-gradient steps over Parameters.

Two curvature models (``fisher=``):

``"empirical"``
    The empirical Fisher ``G^T G / N`` of per-sample gradients ``G`` recorded
    with :meth:`NaturalGradient.record_sample_grads` (all parameters of a group
    form one block); the step solves ``(G^T G / N + damping I) d = grad`` by the
    package's one CG loop (:func:`neurenix._ext._krylov.cg_newton`) on the
    compiled product of :class:`neurenix._ext._natgrad.FisherOperator` -- the
    same solve as ``minimize(method="natural-gradient")`` with ``sample_grads``
    (:mod:`neurenix._core.natural_gradient`).
``"kfac"``
    K-FAC (Martens & Grosse 2015; :mod:`neurenix.optim.kfac`): dense layers
    registered with :meth:`NaturalGradient.register_layer`, their activations and
    back-propagated output gradients recorded with :meth:`NaturalGradient.record`,
    so it works with any model code (plain NumPy included).
"""
import numbers

import numpy as np

from .optimizer import Optimizer, _check_state_value
from .parameter import Parameter
from .._core.validation import check_lr, check_nonneg, check_positive, check_unit
from .._core.natural_gradient import (SingularFisherError, as_real_array, empirical_fisher,
                                      natural_direction)
from .kfac import KFACLayer, damped_inverses, precondition, update_factor

__all__ = ["NaturalGradient"]

_FACTOR_KEYS = ("A", "G", "A_inv", "G_inv")


class NaturalGradient(Optimizer):
    """Natural gradient descent with an empirical-Fisher or K-FAC curvature model.

    Each :meth:`step` replaces every gradient ``grad`` (plus ``weight_decay *
    param``) by a natural-gradient direction ``d ~ (F + damping I)^{-1} grad``
    (Amari 1998), scales it by ``nu = min(1, sqrt(kl_clip / (lr^2 d^T grad)))``
    when ``kl_clip`` is set (Ba, Grosse & Martens 2017), and updates as SGD with
    momentum: ``buf <- momentum buf + nu d``, ``param <- param - lr buf``.

    Parameters
    ----------
    params : iterable of Parameter or dict
        Parameters or param groups (NumPy arrays); options below may be set per group.
    lr : float, default 0.01
    damping : float, default 1e-3
        Tikhonov damping ``lambda > 0``.  K-FAC uses factored damping
        ``sqrt(lambda)`` per factor (Martens & Grosse 2015, section 6.3).
    fisher : {"empirical", "kfac"}, default "empirical"
        The curvature model (see the module docstring).
    momentum : float, default 0
    weight_decay : float, default 0
        L2 term added to the gradient before preconditioning.
    factor_decay : float, default 0.95
        K-FAC: EMA decay of the Kronecker factors (the paper's ``epsilon``;
        ``min(1 - 1/k, factor_decay)`` at the ``k``-th update).
    inv_update_period : int, default 10
        K-FAC: recompute the damped factor inverses every this many steps (``T_3``).
    kl_clip : float or None, default 1e-3
        Bound on the step's predicted KL change ``lr^2 d^T grad``; None disables it.
    cg_tol : float, default 1e-6
        Empirical Fisher: CG stops at ``||r|| <= cg_tol ||grad||``.
    cg_maxiter : int or None
        Empirical Fisher: CG iterations per solve; default ``min(20 n, N + 1)``
        (the damped empirical Fisher of ``N`` samples has at most ``N + 1``
        distinct eigenvalues, so CG in exact arithmetic ends within ``N + 1`` steps).

    Notes
    -----
    Parameters with a gradient that the curvature model does not cover (not in
    a registered layer for K-FAC) take the plain gradient as their direction.
    Recorded statistics are consumed by the next :meth:`step`; with several
    :meth:`record` calls before a step they are averaged over all samples.
    State (``step``, the factors ``A, G``, their damped inverses, momentum
    buffers) lives in ``state`` and round-trips through ``state_dict``;
    registrations are not state: register the same layers again before
    :meth:`load_state_dict`.

    References
    ----------
    S. Amari, "Natural gradient works efficiently in learning", Neural
    Computation 10(2):251-276, 1998.
    J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    J. Martens and R. Grosse, "Optimizing neural networks with
    Kronecker-factored approximate curvature", ICML 2015.
    J. Ba, R. Grosse and J. Martens, "Distributed second-order optimization
    using Kronecker-factored approximations", ICLR 2017.
    J. Martens, "New insights and perspectives on the natural gradient method",
    JMLR 21(146):1-76, 2020 (empirical Fisher vs Fisher, GGN equivalence).
    """

    def __init__(self, params, lr=1e-2, damping=1e-3, fisher="empirical", *, momentum=0.0,
                 weight_decay=0.0, factor_decay=0.95, inv_update_period=10, kl_clip=1e-3,
                 cg_tol=1e-6, cg_maxiter=None):
        if fisher not in ("empirical", "kfac"):
            raise ValueError(f"fisher must be 'empirical' or 'kfac', got {fisher!r}")
        self.fisher = fisher
        defaults = dict(lr=lr, damping=damping, momentum=momentum, weight_decay=weight_decay,
                        factor_decay=factor_decay, inv_update_period=inv_update_period,
                        kl_clip=kl_clip, cg_tol=cg_tol, cg_maxiter=cg_maxiter)
        self._layers = []            # KFACLayer, in registration order
        self._by_param = {}          # id(param) -> KFACLayer
        self._sample_grads = {}      # id(param) -> (N, *shape) array, for "empirical"
        super().__init__(params, defaults)
        for gi, group in enumerate(self.param_groups):
            for p in group["params"]:
                if not isinstance(p.data, np.ndarray):
                    raise TypeError(f"params: NaturalGradient works on NumPy parameters only "
                                    f"(param group {gi})")

    def _check_group(self, group):
        check_lr(group["lr"])
        check_positive(group["damping"], "damping")
        check_unit(group["momentum"], "momentum")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_unit(group["factor_decay"], "factor_decay")
        v = group["inv_update_period"]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"inv_update_period must be an integer >= 1, got {v!r}")
        if group["kl_clip"] is not None:
            check_positive(group["kl_clip"], "kl_clip")
        check_nonneg(group["cg_tol"], "cg_tol")
        v = group["cg_maxiter"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              or v < 1):
            raise ValueError(f"cg_maxiter must be None or an integer >= 1, got {v!r}")

    # ------------------------------------------------------------ registration
    def _group_of(self, p):
        for gi, group in enumerate(self.param_groups):
            if any(q is p for q in group["params"]):
                return gi
        return None

    def register_layer(self, weight, bias=None, name=None):
        """Register a dense layer ``y = a @ weight.T + bias`` for K-FAC.

        Parameters
        ----------
        weight : Parameter, shape (d_out, d_in)
        bias : Parameter, shape (d_out,), optional
            Folded into the activation factor through a constant input 1.
        name : str, optional
            Used in error messages.

        Returns
        -------
        KFACLayer
            The handle to pass to :meth:`record`.
        """
        if self.fisher != "kfac":
            raise ValueError("register_layer: this optimizer has fisher="
                             f"{self.fisher!r}; layers are registered for fisher='kfac'")
        if not isinstance(weight, Parameter):
            raise TypeError(f"weight must be a Parameter, got {type(weight).__name__}")
        if weight.data.ndim != 2:
            raise ValueError(f"weight must be 2-D (d_out, d_in), got shape {weight.shape}")
        gi = self._group_of(weight)
        if gi is None:
            raise ValueError("weight is not a parameter of this optimizer")
        if bias is not None:
            if not isinstance(bias, Parameter):
                raise TypeError(f"bias must be a Parameter or None, got {type(bias).__name__}")
            if bias.shape != (weight.shape[0],):
                raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
            if bias.dtype != weight.dtype:
                raise TypeError(f"bias has dtype {bias.dtype}, weight {weight.dtype}")
            if self._group_of(bias) != gi:
                raise ValueError("bias must be a parameter of this optimizer, in the "
                                 "weight's param group")
        for p in (weight, bias):
            if p is not None and id(p) in self._by_param:
                raise ValueError("register_layer: a parameter is already part of a "
                                 "registered layer")
        layer = KFACLayer(weight, bias, name)
        self._layers.append(layer)
        for p in (weight, bias):
            if p is not None:
                self._by_param[id(p)] = layer
        return layer

    def record(self, layer, activations, output_grads, reduction="mean"):
        """Record one batch of a registered layer's inputs and output gradients.

        Parameters
        ----------
        layer : KFACLayer
            From :meth:`register_layer`.
        activations : array, shape (N, d_in)
            The layer's inputs ``a``.
        output_grads : array, shape (N, d_out)
            Back-propagated gradients of the loss with respect to the layer's
            outputs ``y``.  For the true Fisher they come from targets sampled
            from the model's predictive distribution; with the data's targets
            they give the empirical Fisher (Martens 2020, section 11).
        reduction : {"mean", "sum"}, default "mean"
            ``"mean"``: the gradients are of the batch-mean loss (what
            back-propagation of a mean gives: per-sample gradients divided by
            ``N``), rescaled by ``N`` here; ``"sum"``: per-sample gradients.
        """
        if not isinstance(layer, KFACLayer) or not any(layer is l for l in self._layers):
            raise ValueError("layer must be a KFACLayer returned by this optimizer's "
                             "register_layer")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        layer.accumulate(activations, output_grads, reduction)

    def record_sample_grads(self, sample_grads):
        """Per-sample gradients for the empirical Fisher (``fisher="empirical"``).

        Parameters
        ----------
        sample_grads : dict {Parameter: array} or sequence of arrays
            For each parameter (a sequence: in the order of all param groups),
            an array of shape ``(N, *param.shape)``: the gradients of the ``N``
            per-sample losses whose mean is the loss; ``N`` is the same for the
            parameters of a group.  Used by the next :meth:`step`.
        """
        if self.fisher != "empirical":
            raise ValueError("record_sample_grads: this optimizer has fisher="
                             f"{self.fisher!r}; per-sample gradients are for "
                             "fisher='empirical'")
        params = [p for g in self.param_groups for p in g["params"]]
        if isinstance(sample_grads, dict):
            known = {id(p) for p in params}
            for k in sample_grads:
                if not isinstance(k, Parameter) or id(k) not in known:
                    raise ValueError("sample_grads: keys must be parameters of this optimizer")
            items = [(p, sample_grads[p]) for p in params if p in sample_grads]
        else:
            seq = list(sample_grads)
            if len(seq) != len(params):
                raise ValueError(f"sample_grads: expected {len(params)} arrays (one per "
                                 f"parameter), got {len(seq)}")
            items = list(zip(params, seq))
        new = {}
        for p, G in items:
            i = params.index(p)
            arr = as_real_array(G, f"sample_grads[{i}]", p.dtype, (p.data.ndim + 1,))
            if arr.shape[1:] != p.shape or arr.shape[0] < 1:
                raise ValueError(f"sample_grads[{i}] must have shape (N, *{p.shape}), got "
                                 f"{arr.shape}")
            new[id(p)] = arr.reshape(arr.shape[0], -1)
        self._sample_grads.update(new)

    # -------------------------------------------------------------------- step
    def step(self, closure=None):
        """One natural-gradient step; returns what ``closure`` returned (or None).

        Everything is computed before anything is written: an error (missing
        statistics, a singular damped factor) leaves parameters and state untouched.
        """
        loss, collected = self._begin_step(closure)
        if collected is None:
            return loss
        plans = []
        for group, bundles in collected:
            params = [p for b in bundles for p in b.params]
            if params:
                plans.append(self._plan_group(group, params))
        # commit
        for writes, updates in plans:
            for p, st in writes:
                self.state[p] = st
            for p, delta in updates:
                p.data -= delta
        if self.fisher == "empirical":
            self._sample_grads.clear()
        else:
            for layer in self._layers:
                layer._clear()
        return loss

    def _plan_group(self, group, params):
        """New states and parameter decrements of one group (nothing is written)."""
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        grads = {}
        for i, p in enumerate(params):
            g = np.asarray(p.grad)
            if not np.isfinite(g).all():
                raise ValueError(f"grad of parameter {i} of its param group contains NaN or inf")
            grads[id(p)] = g + p.dtype.type(wd) * p.data if wd else g
        states = {id(p): _copy_state(self.state.get(p)) for p in params}
        for p in params:
            states[id(p)].setdefault("step", 0)
            states[id(p)]["step"] += 1
        if self.fisher == "empirical":
            dirs = self._empirical_dirs(group, params, grads)
        else:
            dirs = self._kfac_dirs(group, params, grads, states)
        nu = 1.0
        if group["kl_clip"] is not None:
            vg = sum(float(np.vdot(dirs[id(p)], grads[id(p)])) for p in params)
            vg *= lr * lr
            if vg > 0:
                nu = min(1.0, (float(group["kl_clip"]) / vg) ** 0.5)
        for p in params:
            if not np.isfinite(dirs[id(p)]).all():
                raise SingularFisherError("the natural-gradient direction is not finite: the "
                                          "damped Fisher is numerically singular; use a "
                                          "larger damping")
        mom = float(group["momentum"])
        writes, updates = [], []
        for p in params:
            st = states[id(p)]
            d = dirs[id(p)]
            if nu != 1.0:
                d = d * p.dtype.type(nu)
            if mom:
                buf = st.get("momentum_buffer")
                buf = np.array(d, copy=True) if buf is None else buf * p.dtype.type(mom) + d
                st["momentum_buffer"] = buf
                d = buf
            writes.append((p, st))
            updates.append((p, (p.dtype.type(lr) * d).astype(p.dtype, copy=False)))
        return writes, updates

    def _empirical_dirs(self, group, params, grads):
        missing = [i for i, p in enumerate(params) if id(p) not in self._sample_grads]
        if missing:
            raise ValueError("step: no per-sample gradients recorded for parameter(s) "
                             f"{missing} of the group; call record_sample_grads before step")
        Gs = [self._sample_grads[id(p)] for p in params]
        N = Gs[0].shape[0]
        if any(G.shape[0] != N for G in Gs):
            raise ValueError("sample_grads: all parameters of a group need the same number "
                             f"of samples, got {[G.shape[0] for G in Gs]}")
        dtype = params[0].dtype
        if any(p.dtype != dtype for p in params):
            raise TypeError("params: fisher='empirical' needs one dtype per param group")
        G = np.concatenate(Gs, axis=1) if len(Gs) > 1 else Gs[0]
        g = np.concatenate([grads[id(p)].ravel() for p in params]).astype(dtype, copy=False)
        n = g.size
        op = empirical_fisher(G, n, dtype)
        op.damping = float(group["damping"])
        maxiter = group["cg_maxiter"] or min(20 * n, N + 1)
        gn = float(np.linalg.norm(g))
        p_neg, _ = natural_direction(op, g, float(group["cg_tol"]) * gn, maxiter,
                                     name="sample_grads")
        out, i = {}, 0
        for p in params:
            k = p.size
            out[id(p)] = (-p_neg[i:i + k]).reshape(p.shape)
            i += k
        return out

    def _kfac_dirs(self, group, params, grads, states):
        out = {}
        in_group = {id(p) for p in params}
        damping = float(group["damping"])
        for layer in self._layers:
            w, b = layer.weight, layer.bias
            if id(w) not in in_group:
                continue
            if b is not None and id(b) not in in_group:
                raise ValueError(f"{layer._label()}: bias has no gradient but weight has")
            st = states[id(w)]
            if layer.pending:
                A_hat, G_hat = layer.batch_factors()
                k = st.get("factor_updates", 0) + 1
                st["A"] = update_factor(st.get("A"), A_hat, k, float(group["factor_decay"]))
                st["G"] = update_factor(st.get("G"), G_hat, k, float(group["factor_decay"]))
                st["factor_updates"] = k
            elif "A" not in st:
                raise ValueError(f"step: {layer._label()} has no recorded statistics; call "
                                 "record(layer, activations, output_grads) before step")
            if "A_inv" not in st or (st["step"] - 1) % int(group["inv_update_period"]) == 0:
                st["A_inv"], st["G_inv"] = damped_inverses(st["A"], st["G"], damping,
                                                           layer._label())
            V = grads[id(w)]
            if b is not None:
                V = np.concatenate([V, grads[id(b)][:, None]], axis=1)
            D = precondition(st["G_inv"], V, st["A_inv"]).astype(w.dtype, copy=False)
            out[id(w)] = np.ascontiguousarray(D[:, :layer.d_in])
            if b is not None:
                out[id(b)] = np.ascontiguousarray(D[:, layer.d_in])
        for p in params:
            if id(p) not in out:     # not in a registered layer: the plain gradient
                out[id(p)] = grads[id(p)]
        return out

    # ------------------------------------------------------------- checkpoints
    _state_keys = frozenset({"step", "factor_updates", "momentum_buffer", *_FACTOR_KEYS})

    @staticmethod
    def _cast_state(p, key, val, index=None):
        if key == "factor_updates":
            return _check_state_value(key, val, "count", index)
        if key in _FACTOR_KEYS:
            where = f"state_dict: state entry {key!r} of parameter {index!r}"
            arr = np.asarray(val)
            if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or p.data.ndim != 2:
                raise ValueError(f"{where} must be a square matrix of a 2-D weight, got shape "
                                 f"{arr.shape}")
            d_out, d_in = p.data.shape
            ok = (d_out,) if key[0] == "G" else (d_in, d_in + 1)
            if arr.shape[0] not in ok:
                raise ValueError(f"{where} has shape {arr.shape}, which does not fit a weight "
                                 f"of shape {p.data.shape}")
            if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
                raise ValueError(f"{where} must be a finite real matrix")
            return np.array(arr, dtype=p.data.dtype, order="C", copy=True)
        return Optimizer._cast_state(p, key, val, index)


def _copy_state(st):
    """A shallow copy of a state dict (arrays are replaced, never modified in place)."""
    return {} if not st else dict(st)
