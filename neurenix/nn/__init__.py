"""Neural-network modules on :class:`neurenix.Tensor` (``torch.nn``'s interface).

``Module`` (parameters, train/eval, state_dict), ``Parameter`` (a leaf tensor
that every ``neurenix.optim`` optimizer accepts), layers (``Linear``, ``ReLU``,
``Tanh``, ``Sigmoid``, ``Flatten``, ``Identity``, ``Sequential``) and losses
(``CrossEntropyLoss``, ``MSELoss``); ``functional`` and ``init`` as in PyTorch.
"""
from . import functional, init
from .module import Module
from .parameter import Parameter
from .layers import Linear, ReLU, Tanh, Sigmoid, Flatten, Identity, Sequential
from .loss import CrossEntropyLoss, MSELoss

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Tanh", "Sigmoid", "Flatten", "Identity",
           "Sequential", "CrossEntropyLoss", "MSELoss", "functional", "init"]
