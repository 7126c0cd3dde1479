"""RMSProp (Tieleman & Hinton 2012), PyTorch's ``torch.optim.RMSprop``."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["RMSProp", "RMSprop"]


class RMSProp(RuleOptimizer):
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

    rule = RULES["rmsprop"]
    _state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

RMSprop = RMSProp
