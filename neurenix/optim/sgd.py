"""Stochastic gradient descent with momentum (PyTorch's ``torch.optim.SGD``)."""
from .._core.first_order import RULES
from .optimizer import RuleOptimizer

__all__ = ["SGD"]


class SGD(RuleOptimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    With :math:`d_t = g_t + \lambda\theta_{t-1}` (``weight_decay`` :math:`\lambda`),
    :math:`b_t = \mu b_{t-1} + (1-\tau) d_t` (:math:`b_1 = d_1`), and the step
    :math:`\theta_t = \theta_{t-1} - \gamma (d_t + \mu b_t)` (Nesterov) or
    :math:`\theta_{t-1} - \gamma b_t`; PyTorch's formulation of momentum
    (Sutskever et al., 2013).

    Parameters
    ----------
    params : iterable
        Parameters or param groups.
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
    nesterov : bool, default False
        Requires ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
    skip_nonfinite : bool, default False
        See :class:`Optimizer`.

    References
    ----------
    Sutskever, Martens, Dahl & Hinton (2013), "On the importance of
    initialization and momentum in deep learning", ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD
    >>> w = Parameter(np.ones(3))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> w.grad = 2 * w.data
    >>> _ = opt.step()
    >>> w.data
    array([0.8, 0.8, 0.8])
    """

    rule = RULES["sgd"]
    _state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
