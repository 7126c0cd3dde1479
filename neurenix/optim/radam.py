"""RAdam (Liu et al. 2020), PyTorch's ``torch.optim.RAdam``."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["RAdam"]


class RAdam(RuleOptimizer):
    r"""Rectified Adam: Adam whose adaptive step is switched on once the variance of
    the adaptive learning rate is tractable.

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`: if :math:`\rho_t > 5`,
    :math:`\theta_t = \theta_{t-1} - \gamma \hat m_t r_t \sqrt{1-\beta_2^t}/
    (\sqrt{v_t}+\epsilon)` with :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)
    \rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`; otherwise
    :math:`\theta_t = \theta_{t-1} - \gamma \hat m_t`.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    skip_nonfinite : bool, default False

    References
    ----------
    Liu, Jiang, He, Chen, Liu, Gao & Han (2020), "On the variance of the adaptive
    learning rate and beyond", ICLR.
    """

    rule = RULES["radam"]
    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
