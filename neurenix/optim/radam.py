"""RAdam (Liu et al. 2020), PyTorch's ``torch.optim.RAdam``."""
import numpy as np

from .optimizer import Optimizer
from ._validation import check_lr, check_nonneg, check_betas, check_bool

__all__ = ["RAdam"]


class RAdam(Optimizer):
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

    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        check_lr(group["lr"])
        group["betas"] = check_betas(group["betas"])
        check_nonneg(group["eps"], "eps")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_bool(group["decoupled_weight_decay"], "decoupled_weight_decay")
        check_bool(group["maximize"], "maximize")

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": self._zeros_like(p), "exp_avg_sq": self._zeros_like(p)}

    def _update(self, group, b):
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        wd = float(group["weight_decay"])
        steps = self._advance_steps(b)
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
        b.kernels.radam(b.data, b.grads, b.state_list("exp_avg"), b.state_list("exp_avg_sq"),
                        sc, beta1, beta2, float(group["eps"]), wd,
                        bool(group["decoupled_weight_decay"]), bool(group["maximize"]))
