"""AdaBelief (Zhuang et al. 2020) on the Adam kernel."""
from .._core.first_order import RULES
from .adam import _AdamFamily

__all__ = ["AdaBelief"]


class AdaBelief(_AdamFamily):
    r"""AdaBelief: Adam whose second moment tracks the "belief" :math:`(g_t - m_t)^2`.

    Algorithm 2 of the paper: :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`,
    :math:`s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon`,
    :math:`\theta_t = \theta_{t-1} - \frac{\gamma}{1-\beta_1^t} m_t /
    (\sqrt{s_t / (1-\beta_2^t)} + \epsilon)`; AMSGrad and decoupled weight decay
    as in :class:`Adam`.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-16
        The authors' recommended value (their reference implementation, v0.2).
    weight_decay : float, default 0
    amsgrad : bool, default False
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
    skip_nonfinite : bool, default False

    Notes
    -----
    The rectification option of the authors' package (RAdam-style) is not offered;
    use :class:`RAdam` for rectified steps.

    References
    ----------
    Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan (2020),
    "AdaBelief optimizer: adapting stepsizes by the belief in observed
    gradients", NeurIPS.
    """

    rule = RULES["adabelief"]

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False,
                 skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         decoupled_weight_decay, skip_nonfinite)
