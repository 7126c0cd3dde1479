"""Checks of a residual function's values and of its Jacobian, shared by
``optimize.least_squares`` (and ``minimize(method="gauss-newton")``) and
``optim.GaussNewton``.

The finite-difference Jacobian itself is one compiled kernel
(:func:`neurenix._ext._lsq.fd_steps` for SciPy's step rule,
:func:`neurenix._ext._lsq.fd_columns` for the columns); both callers differ only in how a
point is evaluated (a function of ``x``; parameters set in place and a closure called).
"""
import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from .._ext._lsq import as_real

__all__ = ["check_residuals", "check_jacobian"]


def check_residuals(f, m=None, what="fun"):
    """The residual vector ``f`` (what ``what`` returned) as a 1-D float64 array.

    Returned as is when it already is one (the common case: no copy); a scalar becomes
    a vector of length 1.  ``ValueError`` naming ``what`` for more than one dimension,
    or for a length other than ``m`` (when given).
    """
    if not (type(f) is np.ndarray and f.dtype == np.float64 and f.ndim == 1):
        f = as_real(f, what)            # TypeError naming ``what`` for complex values
        if f.ndim > 1:
            raise ValueError(f"{what} must return the residual vector (at most 1-D "
                             f"array_like), got shape {f.shape}")
        f = np.atleast_1d(f)
    if m is not None and f.size != m:
        raise ValueError(f"{what} returned {f.size} residuals, expected {m}")
    if not f.flags.writeable:
        f = f.copy()            # e.g. a view of a pandas Series: the kernels write into f
    return f


def check_jacobian(J, m, n, what="jac", allow_sparse=False, check_finite=True, where=None):
    """The Jacobian ``J`` (what ``what`` returned) of ``m`` residuals in ``n`` variables.

    A dense ``J`` becomes a float64 array of shape ``(m, n)``; with ``allow_sparse`` a
    SciPy sparse matrix (as CSR) or a ``LinearOperator`` of that shape passes as well.
    ``ValueError`` naming ``what`` for another shape, a sparse ``J`` where it is not
    allowed, or (``check_finite``) a non-finite entry; ``where`` (e.g. ``"x0"``) is
    added to that last message.
    """
    if sparse.issparse(J) or isinstance(J, LinearOperator):
        if not allow_sparse:
            raise ValueError(f"{what}: sparse or LinearOperator Jacobians need method='trf'")
        if J.shape != (m, n):
            raise ValueError(f"{what} must return shape ({m}, {n}), got {J.shape}")
        return J.tocsr() if sparse.issparse(J) else J
    J = as_real(J, what)
    if J.shape != (m, n):
        raise ValueError(f"{what} must return an array of shape ({m}, {n}), got shape "
                         f"{J.shape}")
    if check_finite and not np.isfinite(J).all():
        raise ValueError(f"{what} returned non-finite values"
                         + (f" at {where}" if where else ""))
    return J
