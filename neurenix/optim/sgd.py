"""Stochastic gradient descent with momentum (PyTorch's ``torch.optim.SGD``)."""
import numpy as np

from .optimizer import Optimizer
from ._validation import check_lr, check_nonneg, check_bool

__all__ = ["SGD"]


class SGD(Optimizer):
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

    _state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, skip_nonfinite=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        check_lr(group["lr"])
        check_nonneg(group["momentum"], "momentum")
        check_nonneg(group["dampening"], "dampening")
        check_nonneg(group["weight_decay"], "weight_decay")
        check_bool(group["nesterov"], "nesterov")
        check_bool(group["maximize"], "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")

    def _init_state(self, p, group):
        return {"momentum_buffer": None}

    def _update(self, group, b):
        n = len(b.params)
        mom = float(group["momentum"])
        sc = np.empty((n, 2))
        sc[:, 0] = group["lr"]
        sc[:, 1] = 0.0
        bufs = None
        if mom != 0:
            bufs = []
            for i, (p, st) in enumerate(zip(b.params, b.states)):
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = self._zeros_like(p)
                    sc[i, 1] = 1.0
                bufs.append(buf)
        b.kernels.sgd(b.data, b.grads, bufs, sc, float(group["weight_decay"]), mom,
                      float(group["dampening"]), bool(group["nesterov"]),
                      bool(group["maximize"]))
