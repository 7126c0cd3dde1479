"""neurenix: numerical optimization for NumPy, fast.

- :mod:`neurenix.optim` — PyTorch-style stateful optimizers on fused Cython kernels.
- :mod:`neurenix.tune` — hyperparameter search (random, grid, Hyperband; Optuna optional).
- :mod:`neurenix.backend` — the array layer (NumPy / CuPy / any Array-API library).
"""
__version__ = "0.1.0"

from .backend import set_num_threads, get_num_threads, num_threads  # noqa: E402
from . import optim  # noqa: E402
from . import optimize  # noqa: E402
from . import tune  # noqa: E402
from ._patch import patch_scipy, unpatch_scipy  # noqa: E402

__all__ = ["optim", "optimize", "tune", "set_num_threads", "get_num_threads", "num_threads", "__version__",
           "patch_scipy", "unpatch_scipy"]
