"""Nonlinear least squares: ``least_squares`` (Levenberg-Marquardt, Gauss-Newton,
trust-region reflective), robust losses, and ``curve_fit``.

Laid out as SciPy's ``scipy/optimize/_lsq``:

``least_squares.py``
    The front end: validation, dispatch, the status table, and the
    ``minimize(method="gauss-newton")`` adapter.
``common.py``
    Robust losses, input validation shared with ``curve_fit``, the problem wrapper
    of the Python drivers, and the trust-region reflective geometry.
``lm.py``, ``gn.py``, ``trf.py``
    The three methods' drivers (their loops run in :mod:`neurenix._ext._lsq`).
``curve_fit.py``
    ``curve_fit`` on top of ``least_squares``.
"""
from .common import LOSSES
from .least_squares import LSQ_MESSAGES, least_squares, _minimize_gauss_newton
from .curve_fit import curve_fit

__all__ = ["least_squares", "curve_fit", "LSQ_MESSAGES", "_minimize_gauss_newton"]

