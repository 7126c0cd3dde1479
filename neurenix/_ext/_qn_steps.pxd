# cython: language_level=3
"""The direction step of limited-memory BFGS: :func:`_two_loop`, the two-loop
recursion ``q <- H q`` over the ring buffer of pairs with ``H0 = gamma I``
(Nocedal & Wright 2006, Algorithm 7.4), behind :func:`neurenix._ext._lbfgs.two_loop`
(``LbfgsInvHessProduct`` and ``neurenix.optim.LBFGS``).

``cdef inline`` on raw pointers, no Python object: compiled into the module that
cimports it.  (L-BFGS-B's own steps are the kernels of ``_compact_seq.pxd``.)
"""
from cython cimport floating

from ._vec cimport dot_lanes8, axpy, axpy_scale_dot_lanes8


cdef inline void _two_loop(floating* S, floating* Y, const double* rho, Py_ssize_t m,
                           Py_ssize_t n, Py_ssize_t newest, Py_ssize_t count, double gamma,
                           floating* q, double* alpha) noexcept nogil:
    """q <- H q with the L-BFGS matrix of the ``count`` newest pairs (ring buffer,
    row ``newest`` the newest) and H0 = gamma I (Nocedal & Wright Alg. 7.4).

    Each update of q is fused with the inner product the recursion needs next
    (``axpy_scale_dot_lanes8``), so the 4 * count passes over q of the textbook loops become
    2 * count + 1; the arithmetic, and so the result, is the same."""
    cdef Py_ssize_t k, j, jn, i
    cdef double a, b, dotv
    if count == 0:
        for i in range(n):
            q[i] = <floating>(gamma * q[i])
        return
    # first loop, newest to oldest: alpha_j = rho_j s_j.q ; q -= alpha_j y_j
    j = newest
    dotv = dot_lanes8(&S[j * n], q, n)
    for k in range(count):
        a = rho[j] * dotv
        alpha[j] = a
        if k < count - 1:
            jn = j - 1 if j > 0 else m - 1
            dotv = axpy_scale_dot_lanes8(-a, &Y[j * n], q, 1.0, &S[jn * n], n)
            j = jn
        else:
            # the oldest pair: scale by H0 = gamma I and start the second loop
            # with y_oldest . q, all in the same pass
            dotv = axpy_scale_dot_lanes8(-a, &Y[j * n], q, gamma, &Y[j * n], n)
    # second loop, oldest to newest: beta = rho_j y_j.q ; q += (alpha_j - beta) s_j
    for k in range(count):
        b = rho[j] * dotv
        if k < count - 1:
            jn = j + 1 if j < m - 1 else 0
            dotv = axpy_scale_dot_lanes8(alpha[j] - b, &S[j * n], q, 1.0, &Y[jn * n], n)
            j = jn
        else:
            axpy(alpha[j] - b, &S[j * n], q, n)
