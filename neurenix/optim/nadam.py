"""NAdam (Dozat 2016), PyTorch's ``torch.optim.NAdam``."""
import numpy as np

from .optimizer import Optimizer
from ._validation import check_lr, check_nonneg, check_betas, check_bool

__all__ = ["NAdam"]


class NAdam(Optimizer):
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

    _state_keys = frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False,
                 skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        check_lr(group["lr"])
        group["betas"] = check_betas(group["betas"])
        check_nonneg(group["eps"], "eps")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_nonneg(group["momentum_decay"], "momentum_decay")
        check_bool(group["decoupled_weight_decay"], "decoupled_weight_decay")
        check_bool(group["maximize"], "maximize")

    def _init_state(self, p, group):
        return {"step": 0, "mu_product": 1.0, "exp_avg": self._zeros_like(p),
                "exp_avg_sq": self._zeros_like(p)}

    def _update(self, group, b):
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        psi = float(group["momentum_decay"])
        steps = self._advance_steps(b)
        sc = np.empty((len(steps), 4))
        for i, (st, t) in enumerate(zip(b.states, steps)):
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            st["mu_product"] = mu_product = st["mu_product"] * mu
            sc[i, 0] = 1.0 - beta2 ** t
            sc[i, 1] = lr * (1.0 - mu) / (1.0 - mu_product)
            sc[i, 2] = lr * mu_next / (1.0 - mu_product * mu_next)
        sc[:, 3] = 1.0 - lr * wd
        b.kernels.nadam(b.data, b.grads, b.state_list("exp_avg"), b.state_list("exp_avg_sq"),
                        sc, beta1, beta2, float(group["eps"]), wd,
                        bool(group["decoupled_weight_decay"]), bool(group["maximize"]))
