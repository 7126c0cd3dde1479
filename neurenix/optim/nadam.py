"""NAdam (Dozat 2016), PyTorch's ``torch.optim.NAdam``."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["NAdam"]


class NAdam(RuleOptimizer):
    r"""Adam with Nesterov momentum and PyTorch's momentum-decay schedule.

    :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})` (``momentum_decay``
    :math:`\psi`), :math:`m_t, v_t` as in Adam, and
    :math:`\theta_t = \theta_{t-1} - \gamma\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}
    \frac{g_t}{\sqrt{\hat v_t}+\epsilon} - \gamma\frac{\mu_{t+1}}{1-\prod_{i\le t+1}
    \mu_i}\frac{m_t}{\sqrt{\hat v_t}+\epsilon}` with
    :math:`\hat v_t = v_t/(1-\beta_2^t)`.

    Parameters
    ----------
    params : iterable
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum_decay : float, default 4e-3
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    skip_nonfinite : bool, default False

    References
    ----------
    Dozat (2016), "Incorporating Nesterov momentum into Adam", ICLR workshop.
    """

    rule = RULES["nadam"]
    _state_keys = frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False,
                 skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
