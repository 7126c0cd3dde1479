r"""Hypergradient descent: online adaptation of the learning rate (Baydin et al. 2018).

After an update :math:`\theta_t = \theta_{t-1} - \alpha\,u_t`, the derivative
of the next loss with respect to the learning rate is
:math:`\partial f(\theta_t)/\partial\alpha = -\nabla f(\theta_t)\cdot u_t`.
Hypergradient descent takes a gradient step on :math:`\alpha` before each
update:

.. math::
    \alpha_{t+1} = \alpha_t + \beta\,\nabla f(\theta_t)\cdot u_t ,

with the hypergradient learning rate :math:`\beta` (``hypergrad_lr``).  For
SGD, :math:`u_t = \nabla f(\theta_{t-1})` (SGD-HD); for Adam,
:math:`u_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon)` (Adam-HD).

The update itself is the unchanged SGD / Adam kernel: the wrapper only adapts
``group["lr"]``.  It recovers the update direction of the previous step as
:math:`u_t = (\theta_{t-1} - \theta_t)/\alpha_t` (every update here is linear in
the learning rate given the optimizer state, so this is exactly the direction
of the paper's equations, momentum, weight decay and AMSGrad included), kept in
the parameter's state as ``"hypergrad_dir"`` (one buffer per parameter, no
other copy; saved by ``state_dict``).

Deviations from the paper, by design: the learning rate is adapted per param
group (the paper has one global rate; one group gives exactly the paper's
rule); it is clipped at 0 from below (negative rates are invalid here), and
after a step with rate 0 the previous direction is kept.  The gradient used is
``p.grad`` as given (weight decay is not added to it).

References
----------
Baydin, Cornish, Martínez Rubio, Schmidt & Wood (2018), "Online learning rate
adaptation with hypergradient descent", ICLR.
"""
import numpy as np

from ..backend import array_namespace
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD
from .._core.validation import check_nonneg

__all__ = ["HypergradientSGD", "HypergradientAdam"]

_DIR = "hypergrad_dir"


def _dot(g, u):
    if isinstance(g, np.ndarray):
        return float(np.dot(g.ravel(), u.ravel()))
    xp = array_namespace(g)
    return float(xp.sum(g * u))


class _Hypergradient:
    """Mixin: adapts ``group["lr"]`` by hypergradient descent around the base step."""

    @property
    def _state_keys(self):
        return super()._state_keys | {_DIR}

    def _check_group(self, group):
        super()._check_group(group)
        check_nonneg(group["hypergrad_lr"], "hypergrad_lr")

    def step(self, closure=None):
        """One step: adapt each group's lr from the hypergradient, then update.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model, fills gradients and returns the loss.
        """
        loss = None
        if closure is not None:
            loss = closure()
        collected = self._collect()          # validates everything first
        if self.skip_nonfinite and not self._grads_finite(collected):
            self.skipped_steps += 1
            return loss
        sign = 1.0
        for group, bundles in collected:
            sign = -1.0 if group["maximize"] else 1.0
            h = 0.0
            for b in bundles:
                for p, g in zip(b.params, b.grads):
                    u = self.state.get(p, {}).get(_DIR)
                    if u is not None:
                        h += _dot(g, u)
            lr = float(group["lr"]) + sign * float(group["hypergrad_lr"]) * h
            group["lr"] = lr if lr > 0.0 else 0.0
        # snapshot theta_{t-1} into the direction buffers of groups that will move
        moving = []
        for group, bundles in collected:
            if group["lr"] == 0.0:
                continue
            for b in bundles:
                for p in b.params:
                    st = self.state.get(p)
                    if not st:
                        st = self.state[p] = self._init_state(p, group)
                    u = st.get(_DIR)
                    if u is None:
                        u = st[_DIR] = self._zeros_like(p)
                    u[...] = p.data
                    moving.append((p, u, group))
        super().step()
        for p, u, group in moving:
            # u_t = (theta_{t-1} - theta_t) / lr_t, in place
            u -= p.data
            u /= group["lr"]
        return loss


class _WithHypergradLR(Optimizer):
    """Adds the ``hypergrad_lr`` option to the defaults of the optimizer it is mixed under."""

    def __init__(self, params, defaults, **kwargs):
        defaults = dict(defaults, hypergrad_lr=self._hypergrad_lr_init)
        super().__init__(params, defaults, **kwargs)


class HypergradientSGD(_Hypergradient, SGD, _WithHypergradLR):
    r"""SGD with the learning rate adapted by hypergradient descent (SGD-HD).

    :math:`\alpha_t = \alpha_{t-1} + \beta\,g_t\cdot u_{t-1}`, then the
    :class:`~neurenix.optim.SGD` step with :math:`\alpha_t`; without momentum
    :math:`u_{t-1} = g_{t-1}` (Baydin et al. 2018, Algorithm "SGD-HD"), with
    momentum it is the previous momentum step (their "SGDN-HD").

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
        Initial learning rate :math:`\alpha_0`.
    momentum, dampening, weight_decay, nesterov, maximize, skip_nonfinite
        As :class:`~neurenix.optim.SGD`.
    hypergrad_lr : float, default 1e-3
        :math:`\beta`, the paper's value for SGD-HD.

    References
    ----------
    Baydin et al. (2018), "Online learning rate adaptation with hypergradient
    descent", ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, HypergradientSGD
    >>> w = Parameter(np.array([4.0]))
    >>> opt = HypergradientSGD([w], lr=0.01, hypergrad_lr=0.01)
    >>> for _ in range(3):
    ...     w.grad = 2 * w.data
    ...     _ = opt.step()
    >>> opt.param_groups[0]["lr"] > 0.01
    True
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, hypergrad_lr=1e-3, skip_nonfinite=False):
        self._hypergrad_lr_init = hypergrad_lr
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                         skip_nonfinite=skip_nonfinite)


class HypergradientAdam(_Hypergradient, Adam, _WithHypergradLR):
    r"""Adam with the learning rate adapted by hypergradient descent (Adam-HD).

    :math:`\alpha_t = \alpha_{t-1} + \beta\,g_t\cdot \hat m_{t-1}/(\sqrt{\hat
    v_{t-1}}+\epsilon)`, then the :class:`~neurenix.optim.Adam` step with
    :math:`\alpha_t` (Baydin et al. 2018, Algorithm "Adam-HD").

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-3
        Initial learning rate :math:`\alpha_0`.
    betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, skip_nonfinite
        As :class:`~neurenix.optim.Adam`.
    hypergrad_lr : float, default 1e-7
        :math:`\beta`, the paper's value for Adam-HD.  The scale of the
        hypergradient grows with the number of parameters; small models need a
        larger value.

    References
    ----------
    Baydin et al. (2018), "Online learning rate adaptation with hypergradient
    descent", ICLR.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False,
                 hypergrad_lr=1e-7, skip_nonfinite=False):
        self._hypergrad_lr_init = hypergrad_lr
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay,
                         skip_nonfinite=skip_nonfinite)
