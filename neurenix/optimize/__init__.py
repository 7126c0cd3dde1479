"""SciPy-style functional solvers: ``minimize``, ``least_squares``, ``curve_fit``.

Port SciPy code by changing the import: names, signatures, defaults and result
fields follow ``scipy.optimize``.
"""
from .._core.result import OptimizeResult, Status, MESSAGES, OptimizeWarning
from ._minimize import minimize, register_method, Bounds, available_methods
from ._lsq import least_squares, curve_fit
from .._core.natural_gradient import SingularFisherError
from ._legacy import fmin_l_bfgs_b, fmin_bfgs, fmin_cg, fmin_ncg, leastsq
from .._core.linesearch import line_search

__all__ = ["OptimizeResult", "Status", "MESSAGES", "OptimizeWarning", "minimize",
           "register_method", "Bounds", "available_methods", "least_squares", "curve_fit",
           "SingularFisherError", "fmin_l_bfgs_b", "fmin_bfgs", "fmin_cg", "fmin_ncg", "leastsq",
           "line_search"]
