"""Adam and AdamW: one moment-based recipe (:class:`MomentSpec`), one kernel."""
from .._core.first_order import RULES, MomentSpec
from .optimizer import RuleOptimizer

__all__ = ["MomentSpec", "Adam", "AdamW"]


class _AdamFamily(RuleOptimizer):
    """Adam-style optimizers sharing the fused ``adam`` kernel (the rule's
    :class:`MomentSpec` says which variant)."""

    rule = RULES["adam"]
    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})

    def __init__(self, params, lr, betas, eps, weight_decay, amsgrad, maximize,
                 decoupled_weight_decay, skip_nonfinite):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)


class Adam(_AdamFamily):
    r"""Adam (Kingma & Ba 2015), with AMSGrad (Reddi et al. 2018); ``torch.optim.Adam``.

    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`,
    :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
    :math:`\theta_t = \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\, m_t /
    (\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon)`; AMSGrad uses
    :math:`\max_{s\le t} v_s` in place of :math:`v_t`.  ``weight_decay`` adds
    :math:`\lambda\theta` to the gradient (or, with ``decoupled_weight_decay``,
    multiplies :math:`\theta` by :math:`1-\gamma\lambda` as AdamW does).

    One fused pass over memory per step for NumPy float32/float64.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
    skip_nonfinite : bool, default False

    References
    ----------
    Kingma & Ba (2015), "Adam: a method for stochastic optimization", ICLR.
    Reddi, Kale & Kumar (2018), "On the convergence of Adam and beyond", ICLR.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False,
                 skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         decoupled_weight_decay, skip_nonfinite)


class AdamW(_AdamFamily):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019); ``torch.optim.AdamW``.

    :math:`\theta \leftarrow \theta (1 - \gamma\lambda)` before the Adam step.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
    amsgrad : bool, default False
    maximize : bool, default False
    skip_nonfinite : bool, default False

    References
    ----------
    Loshchilov & Hutter (2019), "Decoupled weight decay regularization", ICLR.
    """

    rule = RULES["adamw"]

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, True,
                         skip_nonfinite)
