"""RMSProp (Tieleman & Hinton 2012), PyTorch's ``torch.optim.RMSprop``."""
import numpy as np

from .optimizer import Optimizer
from ._validation import check_lr, check_nonneg, check_bool

__all__ = ["RMSProp", "RMSprop"]


class RMSProp(Optimizer):
    r"""RMSProp, optionally centered (Graves 2013) and with momentum.

    :math:`v_t = \alpha v_{t-1} + (1-\alpha) g_t^2`; centered:
    :math:`\bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t`,
    :math:`\tilde v_t = v_t - \bar g_t^2`; :math:`b_t = \mu b_{t-1} + g_t /
    (\sqrt{\tilde v_t} + \epsilon)`, :math:`\theta_t = \theta_{t-1} - \gamma b_t`
    (:math:`\mu = 0`: :math:`b_t = g_t/(\sqrt{\tilde v_t}+\epsilon)`).

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-2
    alpha : float, default 0.99
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
    maximize : bool, default False
    skip_nonfinite : bool, default False

    References
    ----------
    Tieleman & Hinton (2012), Lecture 6.5 — RMSProp, COURSERA: Neural Networks
    for Machine Learning.  Graves (2013), "Generating sequences with recurrent
    neural networks", arXiv:1308.0850.
    """

    _state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        check_lr(group["lr"])
        a = group["alpha"]
        check_nonneg(a, "alpha")
        if a > 1:
            raise ValueError(f"alpha must be in [0, 1], got {a!r}")
        check_nonneg(group["eps"], "eps")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_nonneg(group["momentum"], "momentum")
        check_bool(group["centered"], "centered")
        check_bool(group["maximize"], "maximize")

    def _init_state(self, p, group):
        return {"step": 0, "square_avg": self._zeros_like(p)}

    def _update(self, group, b):
        self._advance_steps(b)
        mom = float(group["momentum"])
        centered = bool(group["centered"])
        for p, st in zip(b.params, b.states):
            if mom > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = self._zeros_like(p)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = self._zeros_like(p)
        sc = np.full((len(b.params), 1), float(group["lr"]))
        b.kernels.rmsprop(b.data, b.grads, b.state_list("square_avg"),
                          b.state_list("grad_avg") if centered else None,
                          b.state_list("momentum_buffer") if mom > 0 else None,
                          sc, float(group["alpha"]), float(group["eps"]),
                          float(group["weight_decay"]), mom, bool(group["maximize"]))


RMSprop = RMSProp
