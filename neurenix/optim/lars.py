"""LARS (You, Gitman & Ginsburg 2017): layer-wise adaptive rate scaling."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["LARS"]


class LARS(RuleOptimizer):
    r"""SGD with momentum whose step is scaled per parameter by a local learning rate.

    Algorithm 1 of You et al. (2017):
    :math:`\lambda^l = \eta \|w^l\| / (\|\nabla L(w^l)\| + \beta\|w^l\| + \epsilon)`
    (``trust_coefficient`` :math:`\eta`, ``weight_decay`` :math:`\beta`; 1 when a
    norm is zero), :math:`v_t = m v_{t-1} + \lambda^l (\nabla L + \beta w)`,
    :math:`w \leftarrow w - \gamma v_t`.  Each parameter array is one layer.
    The last local learning rate is kept in ``state["trust_ratio"]``.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
        Global learning rate :math:`\gamma` (combine with a scheduler; the paper uses
        polynomial decay with warm-up).
    momentum : float, default 0.9
    weight_decay : float, default 5e-4
        The paper's value for ImageNet training.
    trust_coefficient : float, default 1e-3
        :math:`\eta` in the paper.
    eps : float, default 1e-8
    skip_nonfinite : bool, default False

    References
    ----------
    You, Gitman & Ginsburg (2017), "Large batch training of convolutional
    networks", arXiv:1708.03888.
    """

    rule = RULES["lars"]
    _state_keys = frozenset({"momentum_buffer", "trust_ratio"})

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=5e-4,
                 trust_coefficient=1e-3, eps=1e-8, *, skip_nonfinite=False):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, eps=eps)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
