"""AdaGrad (Duchi, Hazan & Singer 2011), PyTorch's ``torch.optim.Adagrad``."""
from .._core.first_order import RULES
from .._core.validation import check_nonneg
from .optimizer import RuleOptimizer

__all__ = ["AdaGrad", "Adagrad"]


class AdaGrad(RuleOptimizer):
    r"""AdaGrad: per-coordinate steps scaled by the root of the summed squared gradients.

    :math:`s_t = s_{t-1} + g_t^2`, :math:`\theta_t = \theta_{t-1} - \tilde\gamma_t\,
    g_t / (\sqrt{s_t} + \epsilon)` with :math:`\tilde\gamma_t = \gamma / (1 + (t-1)\eta)`
    (``lr_decay`` :math:`\eta`), as documented for ``torch.optim.Adagrad``.

    Parameters
    ----------
    params : iterable
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False
    skip_nonfinite : bool, default False

    Notes
    -----
    ``initial_accumulator_value`` is a per-group option here: a group's own value
    initialises the ``sum`` state of its parameters.  PyTorch (2.x) accepts it in a
    group but initialises every parameter from the constructor's argument.

    References
    ----------
    Duchi, Hazan & Singer (2011), "Adaptive subgradient methods for online
    learning and stochastic optimization", JMLR 12.
    """

    rule = RULES["adagrad"]
    _state_keys = frozenset({"step", "sum"})

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False,
                 skip_nonfinite=False):
        check_nonneg(initial_accumulator_value, "initial_accumulator_value")
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
        # PyTorch creates AdaGrad's state eagerly
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self.state.setdefault(p, self._init_state(p, group))


Adagrad = AdaGrad
