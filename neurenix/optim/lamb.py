"""LAMB (You et al. 2019): layer-wise adaptive moments for large-batch training."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["LAMB"]


class LAMB(RuleOptimizer):
    r"""LAMB: AdamW's direction, rescaled per parameter by a trust ratio.

    Algorithm 2 of You et al. (2019), with :math:`\phi` the identity:
    :math:`r_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda\theta_{t-1}`,
    :math:`\theta_t = \theta_{t-1} - \gamma \frac{\|\theta_{t-1}\|}{\|r_t\|} r_t`
    (ratio 1 when either norm is zero).  Each parameter array is one "layer";
    use param groups to exclude biases from weight decay.  Two passes over
    memory per step (moments and norms, then the update); no temporary arrays.
    The last trust ratio of each parameter is kept in ``state["trust_ratio"]``.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-6
    weight_decay : float, default 0.01
        The value used in the paper's BERT experiments.
    bias_correction : bool, default True
        Use :math:`\hat m_t = m_t/(1-\beta_1^t)`, :math:`\hat v_t = v_t/(1-\beta_2^t)`.
    skip_nonfinite : bool, default False

    References
    ----------
    You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer & Hsieh
    (2020), "Large batch optimization for deep learning: training BERT in 76
    minutes", ICLR (arXiv:1904.00962, 2019).
    """

    rule = RULES["lamb"]
    _state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "trust_ratio"})

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                 bias_correction=True, *, skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
