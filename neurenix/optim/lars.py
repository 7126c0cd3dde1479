"""LARS (You, Gitman & Ginsburg 2017): layer-wise adaptive rate scaling."""
import numpy as np

from .optimizer import Optimizer
from ._validation import check_lr, check_nonneg

__all__ = ["LARS"]


class LARS(Optimizer):
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

    _state_keys = frozenset({"momentum_buffer", "trust_ratio"})

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=5e-4,
                 trust_coefficient=1e-3, eps=1e-8, *, skip_nonfinite=False):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, eps=eps)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        check_lr(group["lr"])
        check_nonneg(group["momentum"], "momentum")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_nonneg(group["trust_coefficient"], "trust_coefficient")
        check_nonneg(group["eps"], "eps")

    def _init_state(self, p, group):
        return {}

    def _update(self, group, b):
        mom = float(group["momentum"])
        bufs = None
        if mom != 0:
            for p, st in zip(b.params, b.states):
                if "momentum_buffer" not in st:
                    st["momentum_buffer"] = self._zeros_like(p)
            bufs = b.state_list("momentum_buffer")
        sc = np.full((len(b.params), 1), float(group["lr"]))
        trust = b.kernels.lars(b.data, b.grads, bufs, sc, float(group["weight_decay"]), mom,
                               float(group["trust_coefficient"]), float(group["eps"]))
        for st, t in zip(b.states, trust):
            st["trust_ratio"] = float(t)
