"""neurenix: numerical optimization for NumPy, fast.

- :mod:`neurenix.optim` — PyTorch-style stateful optimizers on fused Cython kernels.
- :mod:`neurenix.tune` — hyperparameter search (random, grid, Hyperband; Optuna optional).
- :mod:`neurenix.nn`, :mod:`neurenix.data` — autograd :class:`Tensor`, modules, losses, DataLoader.
- :mod:`neurenix.backend` — the array layer (NumPy / CuPy / any Array-API library).
"""
__version__ = "0.1.0"

from .backend import set_num_threads, get_num_threads, num_threads  # noqa: E402
from . import optim  # noqa: E402
from . import optimize  # noqa: E402
from . import tune  # noqa: E402
from .autograd import (Tensor, tensor, no_grad, enable_grad, set_grad_enabled,  # noqa: E402
                       is_grad_enabled, float32, float64, int32, int64)
from . import nn, data  # noqa: E402
from .autograd.random import manual_seed  # noqa: E402

__all__ = ["optim", "optimize", "tune", "set_num_threads", "get_num_threads", "num_threads", "__version__"]
__all__ += ["nn", "data", "Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled",
            "is_grad_enabled", "manual_seed", "float32", "float64", "int32", "int64"]
from ._patch import patch_scipy, unpatch_scipy  # noqa: E402

__all__ += ["patch_scipy", "unpatch_scipy"]
