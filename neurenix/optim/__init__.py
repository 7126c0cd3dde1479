"""PyTorch-style stateful optimizers over NumPy (and any Array-API) arrays.

Port a PyTorch loop by changing the import: parameters are
:class:`Parameter` objects whose ``.data`` is updated in place and whose
``.grad`` you fill; every optimizer has PyTorch's names, defaults,
``param_groups``, ``state`` and ``state_dict`` layout.
"""
from .parameter import Parameter
from .optimizer import Optimizer, required
from .sgd import SGD
from .adagrad import AdaGrad, Adagrad
from .rmsprop import RMSProp, RMSprop
from .adam import Adam, AdamW, MomentSpec
from .adabelief import AdaBelief
from .nadam import NAdam
from .radam import RAdam
from .lamb import LAMB
from .lars import LARS
from .clip_grad import clip_grad_norm_, clip_grad_value_, grad_norm
from .grad_tools import GradientAccumulator, GradientNoise, add_gradient_noise_, grads_finite
from ..checkpoint import save, load, CheckpointError
from . import schedules, lr_scheduler
from .hypergradient import HypergradientSGD, HypergradientAdam
from .lr_finder import lr_range_test, LRRangeTestResult
from .gauss_newton import GaussNewton
from .newton_cg import NewtonCG
from .trust_region import TrustRegion
from .lbfgs import LBFGS
from .natural_gradient import NaturalGradient
from .kfac import KFACLayer
from .._core.natural_gradient import SingularFisherError

__all__ = [
    "Parameter", "Optimizer", "required",
    "SGD", "AdaGrad", "Adagrad", "RMSProp", "RMSprop", "Adam", "AdamW", "AdaBelief",
    "NAdam", "RAdam", "LAMB", "LARS", "MomentSpec",
    "clip_grad_norm_", "clip_grad_value_", "grad_norm",
    "GradientAccumulator", "GradientNoise", "add_gradient_noise_", "grads_finite",
    "save", "load", "CheckpointError",
    "schedules", "lr_scheduler", "HypergradientSGD", "HypergradientAdam",
    "lr_range_test", "LRRangeTestResult",
    "GaussNewton", "LBFGS", "NewtonCG", "TrustRegion",
    "NaturalGradient", "KFACLayer", "SingularFisherError",
]
