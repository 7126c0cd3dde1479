# cython: language_level=3
"""Fisher / generalized Gauss-Newton products and Kronecker-factor updates.

What is here
------------
* :class:`FisherOperator` -- the damped curvature-vector product
  ``(J^T H J + damping I) v`` of a generalized Gauss-Newton matrix (Schraudolph
  2002; Martens 2010, section 4.2; Martens 2020, section 9) given the model's
  output Jacobian ``J`` and the Fisher (Hessian) of the loss in the model's
  outputs ``H``: a constant (``scale``), a diagonal (one weight per output) or
  ``K x K`` blocks (one block per sample).  The empirical Fisher of per-sample
  gradients ``G`` is the case ``J = G, H = I / N``.  One product is two BLAS
  ``gemv`` passes over ``J`` and the block products, all without the GIL.  The
  object is callable, so it serves directly as the ``hessp`` of the one CG loop
  of the package, :func:`neurenix._ext._krylov.cg_newton` (it needs no second
  CG kernel).
* :func:`ema_gram` -- ``A <- decay A + scale X^T X`` in place (BLAS ``syrk``),
  the exponential moving average of a K-FAC Kronecker factor (Martens &
  Grosse 2015, section 5).

Inputs are validated in Python (:mod:`neurenix._core.natural_gradient`):
shapes, dtypes (float32/float64, all alike), C-contiguity and finiteness.
"""
cimport numpy as cnp
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemv, sgemv, dsyrk, ssyrk

from ._vec cimport dot_lanes16

import numpy as np

cnp.import_array()


cdef inline void _gemv(char* trans, int m, int n, floating alpha, const floating* a, int lda,
                       const floating* x, floating beta, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is double:
        dgemv(trans, &m, &n, &alpha, <double*>a, &lda, <double*>x, &one, &beta, y, &one)
    else:
        sgemv(trans, &m, &n, &alpha, <float*>a, &lda, <float*>x, &one, &beta, y, &one)


cdef double _ggn_product(const floating[:, ::1] J, const floating[::1] h, Py_ssize_t K,
                         double scale, double damping, const floating[::1] v,
                         floating[::1] u, floating[::1] w, floating[::1] out,
                         bint quad_only) noexcept nogil:
    """``out = J^T (scale H (J v)) + damping v``; returns ``v^T J^T (scale H) J v``.

    ``K == 0``: ``H = I``; ``K == 1``: ``H = diag(h)``; ``K > 1``: ``H`` is block
    diagonal, block ``b`` the row-major ``K x K`` matrix ``h[b K^2:(b+1) K^2]``
    acting on rows ``b K .. b K + K - 1`` of ``J``.  With ``quad_only`` only the
    quadratic form is computed (``out`` untouched).
    """
    cdef Py_ssize_t m = J.shape[0], n = J.shape[1], i, j, b, nb
    cdef double q, s
    if m == 0 or n == 0:
        if not quad_only:
            for i in range(n):
                out[i] = <floating>(damping * v[i])
        return 0.0
    # u = J v : the C-ordered (m, n) J is the Fortran (n, m) matrix J^T
    _gemv(b"T", <int>n, <int>m, <floating>1.0, &J[0, 0], <int>n, &v[0], <floating>0.0, &u[0])
    if K == 0:
        for i in range(m):
            w[i] = <floating>(scale * u[i])
    elif K == 1:
        for i in range(m):
            w[i] = <floating>(scale * h[i] * u[i])
    else:
        nb = m // K
        for b in range(nb):
            for i in range(K):
                s = 0.0
                for j in range(K):
                    s += h[b * K * K + i * K + j] * u[b * K + j]
                w[b * K + i] = <floating>(scale * s)
    # q = u . w, the quadratic form v^T J^T (scale H) J v
    q = dot_lanes16(&u[0], &w[0], m)
    if quad_only:
        return q
    # out = J^T w + damping v
    for i in range(n):
        out[i] = <floating>(damping * v[i])
    _gemv(b"N", <int>n, <int>m, <floating>1.0, &J[0, 0], <int>n, &w[0], <floating>1.0, &out[0])
    return q


cdef class FisherOperator:
    """``v -> (J^T (scale H) J + damping I) v`` for the CG solve of a natural-gradient step.

    Parameters
    ----------
    J : ndarray, shape (m, n), C-contiguous float32 or float64
        Output Jacobian of the model (or per-sample gradients, one per row).
    h : ndarray or None
        ``None``: ``H = I``; shape ``(m,)``: ``H = diag(h)``; shape
        ``(m // K, K, K)`` (C-contiguous): one ``K x K`` block per sample.  Same
        dtype as ``J``.
    scale : float
        Multiplies ``H`` (``1 / N`` for the empirical Fisher of a mean loss).
    damping : float
        Tikhonov damping ``lambda >= 0`` added to the diagonal (writable).

    Calling the operator on a vector ``v`` of length ``n`` (``J``'s dtype,
    contiguous) returns a new array; ``nprod`` counts the calls.
    """

    cdef readonly object J, h
    cdef readonly Py_ssize_t m, n, K
    cdef public double scale, damping
    cdef public Py_ssize_t nprod
    cdef object u, w, dtype

    def __init__(self, J, h=None, double scale=1.0, double damping=0.0):
        self.J = J
        self.h = h
        self.m = J.shape[0]
        self.n = J.shape[1]
        self.dtype = J.dtype
        if h is None:
            self.K = 0
            self.h = np.zeros(1, dtype=J.dtype)
        elif h.ndim == 1:
            self.K = 1
        else:
            self.K = h.shape[1]
            self.h = h.reshape(-1)
        self.scale = scale
        self.damping = damping
        self.nprod = 0
        self.u = np.empty(max(self.m, 1), dtype=J.dtype)
        self.w = np.empty(max(self.m, 1), dtype=J.dtype)

    def __call__(self, v):
        out = np.empty(self.n, dtype=self.dtype)
        self.nprod += 1
        if self.dtype == np.float64:
            _run[double](self.J, self.h, self.K, self.scale, self.damping, v, self.u, self.w,
                         out, False)
        else:
            _run[float](self.J, self.h, self.K, self.scale, self.damping, v, self.u, self.w,
                        out, False)
        return out

    def quad(self, v):
        """``v^T J^T (scale H) J v`` (undamped; one pass ``J v``, not counted in ``nprod``)."""
        out = self.u   # not written when quad_only
        if self.dtype == np.float64:
            return _run[double](self.J, self.h, self.K, self.scale, 0.0, v, self.u, self.w,
                                out, True)
        return _run[float](self.J, self.h, self.K, self.scale, 0.0, v, self.u, self.w, out, True)


cdef double _run(const floating[:, ::1] J, const floating[::1] h, Py_ssize_t K, double scale,
                 double damping, const floating[::1] v, floating[::1] u, floating[::1] w,
                 floating[::1] out, bint quad_only):
    cdef double q
    if v.shape[0] != J.shape[1]:
        raise ValueError(f"v has length {v.shape[0]}, expected {J.shape[1]}")
    with nogil:
        q = _ggn_product(J, h, K, scale, damping, v, u, w, out, quad_only)
    return q


def ema_gram(floating[:, ::1] A, const floating[:, ::1] X, double decay, double scale):
    """``A <- decay A + scale X^T X`` in place (``A`` symmetric ``d x d``, ``X`` ``(N, d)``).

    NumPy equivalent: ``A *= decay; A += scale * X.T @ X``.  One BLAS ``syrk``
    (half the products of a general ``gemm``), then the other triangle mirrored.
    """
    cdef int d = <int>A.shape[0], N = <int>X.shape[0]
    cdef Py_ssize_t i, j
    cdef floating alpha = <floating>scale, beta = <floating>decay
    if A.shape[1] != d or X.shape[1] != d:
        raise ValueError("ema_gram: A must be (d, d) and X (N, d)")
    if d == 0:
        return
    with nogil:
        if N == 0:
            for i in range(d):
                for j in range(d):
                    A[i, j] = <floating>(decay * A[i, j])
        else:
            # Fortran view: X is the (d, N) matrix X^T, A its own transpose (symmetric);
            # "U" of the Fortran matrix is the lower triangle of the C array
            if floating is double:
                dsyrk(b"U", b"N", &d, &N, &alpha, <double*>&X[0, 0], &d, &beta, &A[0, 0], &d)
            else:
                ssyrk(b"U", b"N", &d, &N, &alpha, <float*>&X[0, 0], &d, &beta, &A[0, 0], &d)
            for i in range(d):
                for j in range(i + 1, d):
                    A[i, j] = A[j, i]
