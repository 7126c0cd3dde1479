# cython: language_level=3
"""Small vector kernels shared by the compiled loops (one home for each).

Every kernel here is a ``cdef inline ... noexcept nogil`` function on raw
pointers, compiled into each module that cimports it, so a call on a hot path
costs no more than the private copies it replaces.  Reductions accumulate in
double for float32 and float64 vectors.

The compiled solvers are pinned to their iterates bit for bit, and a sum's value
depends on its order, so a reduction is defined by its order as much as by its
formula.  Where the loops need different orders, each order is kept once here
under a name that states it:

``*_seq``
    one running sum in index order (MINPACK's loops).
``*_lanes8``
    eight partial sums, lane ``j`` taking the elements ``i = j mod 8`` of the
    blocks of eight, the tail ``i >= 8 * (n // 8)`` added to lane 0, combined
    as ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`` (the L-BFGS loops).
``*_lanes8h``
    eight partial sums, the tail element ``8 * (n // 8) + t`` added to lane
    ``t``, combined by halving strides:
    ``((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))`` (the long sums of the
    least-squares loops).
``*_blas``
    the BLAS library's own order (``ddot`` of the OpenBLAS that SciPy links,
    :mod:`scipy.linalg.cython_blas`): the order, and the fused multiply-adds,
    of NumPy's ``np.dot`` and of SciPy's compiled solvers on the same machine.
    Used by the loops that follow a SciPy solver step for step, so that their
    iterates are SciPy's bit for bit rather than up to rounding; it depends on
    the CPU kernel the library picks, as SciPy's results do.
``*_pairwise``
    NumPy's ``np.sum`` of a contiguous float64 vector: ``-0.0 +`` the pairwise
    sum (fewer than 8 terms: one running sum from ``-0.0``; up to 128: eight lanes
    seeded with the first eight terms, combined as ``lanes8``, then the tail added
    in order; more: the two halves, split at ``n // 2`` rounded down to a multiple
    of 8, summed so and added).
``*_lanes16``
    sixteen partial sums, the tail element ``16 * (n // 16) + t`` added to lane
    ``t``, combined as ``s_j += s_{j+8}`` (j < 8), ``s_j += s_{j+4}`` (j < 4),
    then ``(s0 + s1) + (s2 + s3)`` (:func:`fold16`; the Krylov loops).

Independent lanes let the compiler keep the partial sums in vector registers
without reassociating anything (no ``-ffast-math``), so a pass is bound by its
loads rather than by the latency of one chain of additions.  Kernels whose result
does not depend on an order (a maximum, a finiteness test, an element-wise
update) exist once, without a suffix.
"""
from cython cimport floating
from libc.math cimport fabs, INFINITY
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy
from libc.limits cimport INT_MAX
from scipy.linalg.cython_blas cimport ddot as _ddot


# lanes of the ``lanes16`` reductions (for kernels elsewhere that sum in that order)
cdef enum:
    LANES16 = 16


# the second operand's type of the eight-lane dot product: the L-BFGS-B compact
# form takes products of float32 pairs with double vectors
ctypedef fused floating_b:
    float
    double


# --------------------------------------------------------------- orderless kernels
cdef inline void axpy(double a, const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    """``y += a x``, each entry computed in double and rounded to y's type."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = <floating>(y[i] + a * x[i])


cdef inline double absmax(const floating* a, Py_ssize_t n) noexcept nogil:
    """``max |a_i|`` (exact), ``inf`` when an entry is NaN.

    Computed on the bit patterns: with the sign bit cleared, IEEE doubles (floats)
    order like their unsigned-integer patterns, and NaN patterns lie above inf.
    An unsigned max reduction vectorizes where a floating-point one does not
    (without -ffast-math)."""
    cdef uint64_t r8 = 0, v8
    cdef uint32_t r4 = 0, v4
    cdef double out
    cdef float outf
    cdef Py_ssize_t i
    if floating is double:
        for i in range(n):
            memcpy(&v8, &a[i], 8)
            v8 &= 0x7fffffffffffffffULL
            r8 = v8 if v8 > r8 else r8
        memcpy(&out, &r8, 8)
    else:
        for i in range(n):
            memcpy(&v4, &a[i], 4)
            v4 &= 0x7fffffffU
            r4 = v4 if v4 > r4 else r4
        memcpy(&outf, &r4, 4)
        out = outf
    return out if out == out else INFINITY


cdef inline double fold16(double* s) noexcept nogil:
    """The sixteen partial sums ``s`` (overwritten) combined in the ``lanes16`` order."""
    cdef int j
    for j in range(8):
        s[j] += s[j + 8]
    for j in range(4):
        s[j] += s[j + 4]
    return (s[0] + s[1]) + (s[2] + s[3])


cdef inline bint all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    """True when no entry is inf or NaN: ``a_i * 0`` is ``+-0`` for a finite entry
    and NaN otherwise, summed in sixteen lanes (the sum is 0 exactly when every
    entry is finite, whatever the order)."""
    cdef double s[16]
    cdef Py_ssize_t i, m = n - n % 16
    cdef int j
    for j in range(16):
        s[j] = 0.0
    for i in range(0, m, 16):
        for j in range(16):
            s[j] += <double>a[i + j] * 0.0
    for i in range(m, n):
        s[i - m] += <double>a[i] * 0.0
    return fold16(s) == 0.0


# --------------------------------------------------------------- index order
cdef inline double dot_seq(const double* x, const double* y, Py_ssize_t n) noexcept nogil:
    """``x . y``, one sum in index order."""
    cdef Py_ssize_t i
    cdef double acc = 0.0
    for i in range(n):
        acc += x[i] * y[i]
    return acc


# --------------------------------------------------------------- the BLAS order
cdef inline double dot_blas(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """``a . b``: BLAS ``ddot`` for float64 vectors (the ``blas`` order, NumPy's and
    SciPy's); float32 vectors (which SciPy's solvers never see: they compute in
    float64) and lengths beyond a BLAS ``int`` are summed as :func:`dot_lanes8`."""
    cdef int nn = <int>n, one = 1
    if floating is double:
        if n <= INT_MAX:
            return _ddot(&nn, <double*>a, &one, <double*>b, &one)
    return dot_lanes8(a, b, n)


# --------------------------------------------------------------- NumPy's np.sum
cdef inline double _pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    cdef double r[8]
    cdef double res
    cdef Py_ssize_t i, j, n2
    if n < 8:
        res = -0.0
        for i in range(n):
            res = res + a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] = r[j] + a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef inline double sum_pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    """``sum(a)`` as NumPy's ``np.sum`` forms it for a contiguous float64 vector
    (the ``pairwise`` order)."""
    return -0.0 + _pairwise(a, n)


# --------------------------------------------------------------- eight lanes
cdef inline double dot_lanes8(const floating* a, const floating_b* b,
                              Py_ssize_t n) noexcept nogil:
    """``a . b`` in double, ``lanes8`` order (``b`` float32 or float64,
    independently of ``a``)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef double s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        s0 += <double>a[i] * <double>b[i]
        s1 += <double>a[i + 1] * <double>b[i + 1]
        s2 += <double>a[i + 2] * <double>b[i + 2]
        s3 += <double>a[i + 3] * <double>b[i + 3]
        s4 += <double>a[i + 4] * <double>b[i + 4]
        s5 += <double>a[i + 5] * <double>b[i + 5]
        s6 += <double>a[i + 6] * <double>b[i + 6]
        s7 += <double>a[i + 7] * <double>b[i + 7]
        i += 8
    while i < n:
        s0 += <double>a[i] * <double>b[i]
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline double fold8(const double* s) noexcept nogil:
    """Eight partial sums ``s`` combined in the ``lanes8`` order (for kernels
    elsewhere that sum in that order while doing other work in the same pass)."""
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef inline double nrm2sq_lanes8(const floating* a, Py_ssize_t n) noexcept nogil:
    """``a . a`` in double, ``lanes8`` order."""
    return dot_lanes8(a, a, n)


cdef inline void nrm2sq2_lanes8(const floating* a, const floating* b, Py_ssize_t n,
                                double* out) noexcept nogil:
    """``out[0] = a . a`` and ``out[1] = b . b`` in one pass, each in the ``lanes8``
    order (bitwise :func:`nrm2sq_lanes8` of each)."""
    cdef double sa[8]
    cdef double sb[8]
    cdef double x, y
    cdef Py_ssize_t i, nb = n - n % 8
    cdef int k
    for k in range(8):
        sa[k] = 0.0
        sb[k] = 0.0
    for i in range(0, nb, 8):
        for k in range(8):
            x = a[i + k]
            y = b[i + k]
            sa[k] += x * x
            sb[k] += y * y
    for i in range(nb, n):
        x = a[i]
        y = b[i]
        sa[0] += x * x
        sb[0] += y * y
    out[0] = fold8(sa)
    out[1] = fold8(sb)


cdef inline double axpy_scale_dot_lanes8(double a, const floating* x, floating* q,
                                         double scale, const floating* z,
                                         Py_ssize_t n) noexcept nogil:
    """``q <- scale * (q + a x)`` (each step rounded to q's type, as :func:`axpy`
    followed by a scaling), returning ``z . q`` of the new q in the ``lanes8``
    order (as :func:`dot_lanes8`): one pass over q instead of two."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef double s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    cdef floating t0, t1, t2, t3, t4, t5, t6, t7
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        t0 = <floating>(scale * <floating>(q[i] + a * x[i]))
        t1 = <floating>(scale * <floating>(q[i + 1] + a * x[i + 1]))
        t2 = <floating>(scale * <floating>(q[i + 2] + a * x[i + 2]))
        t3 = <floating>(scale * <floating>(q[i + 3] + a * x[i + 3]))
        t4 = <floating>(scale * <floating>(q[i + 4] + a * x[i + 4]))
        t5 = <floating>(scale * <floating>(q[i + 5] + a * x[i + 5]))
        t6 = <floating>(scale * <floating>(q[i + 6] + a * x[i + 6]))
        t7 = <floating>(scale * <floating>(q[i + 7] + a * x[i + 7]))
        q[i] = t0
        q[i + 1] = t1
        q[i + 2] = t2
        q[i + 3] = t3
        q[i + 4] = t4
        q[i + 5] = t5
        q[i + 6] = t6
        q[i + 7] = t7
        s0 += <double>z[i] * <double>t0
        s1 += <double>z[i + 1] * <double>t1
        s2 += <double>z[i + 2] * <double>t2
        s3 += <double>z[i + 3] * <double>t3
        s4 += <double>z[i + 4] * <double>t4
        s5 += <double>z[i + 5] * <double>t5
        s6 += <double>z[i + 6] * <double>t6
        s7 += <double>z[i + 7] * <double>t7
        i += 8
    while i < n:
        t0 = <floating>(scale * <floating>(q[i] + a * x[i]))
        q[i] = t0
        s0 += <double>z[i] * <double>t0
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline double dot_lanes8h(const double* x, const double* y, Py_ssize_t n) noexcept nogil:
    """``x . y``, ``lanes8h`` order (tail spread over the lanes, halving fold)."""
    cdef double s[8]
    cdef Py_ssize_t i, q, n8 = n - n % 8
    for q in range(8):
        s[q] = 0.0
    for i in range(0, n8, 8):
        for q in range(8):
            s[q] += x[i + q] * y[i + q]
    for i in range(n8, n):
        s[i - n8] += x[i] * y[i]
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))


# --------------------------------------------------------------- sixteen lanes
cdef inline double dot_lanes16(const floating* a, const floating* b,
                               Py_ssize_t n) noexcept nogil:
    """``a . b`` in double, ``lanes16`` order."""
    cdef double s[16]
    cdef Py_ssize_t i, m = n - n % 16
    cdef int j
    for j in range(16):
        s[j] = 0.0
    for i in range(0, m, 16):
        for j in range(16):
            s[j] += <double>a[i + j] * <double>b[i + j]
    for i in range(m, n):
        s[i - m] += <double>a[i] * <double>b[i]
    return fold16(s)


cdef inline double nrm2sq_lanes16(const floating* a, Py_ssize_t n) noexcept nogil:
    """``a . a`` in double, ``lanes16`` order."""
    return dot_lanes16(a, a, n)


cdef inline double asum_lanes16(const floating* a, Py_ssize_t n) noexcept nogil:
    """``sum |a_i|`` in double, ``lanes16`` order."""
    cdef double s[16]
    cdef Py_ssize_t i, m = n - n % 16
    cdef int j
    for j in range(16):
        s[j] = 0.0
    for i in range(0, m, 16):
        for j in range(16):
            s[j] += fabs(<double>a[i + j])
    for i in range(m, n):
        s[i - m] += fabs(<double>a[i])
    return fold16(s)


cdef inline double asum_sq_lanes16(const floating* a, Py_ssize_t n,
                                   double* sq) noexcept nogil:
    """``sum |a_i|`` (returned) and ``sum a_i^2`` (in ``sq``) in one pass, each in
    the ``lanes16`` order."""
    cdef double s[16]
    cdef double q[16]
    cdef double v
    cdef Py_ssize_t i, m = n - n % 16
    cdef int j
    for j in range(16):
        s[j] = 0.0
        q[j] = 0.0
    for i in range(0, m, 16):
        for j in range(16):
            v = <double>a[i + j]
            s[j] += fabs(v)
            q[j] += v * v
    for i in range(m, n):
        v = <double>a[i]
        s[i - m] += fabs(v)
        q[i - m] += v * v
    sq[0] = fold16(q)
    return fold16(s)


cdef inline double dot3_lanes16(const floating* d, const floating* hd, const floating* p,
                                Py_ssize_t n, double* pd, double* dd) noexcept nogil:
    """``d . hd`` (returned), ``p . d`` (in ``pd``) and ``d . d`` (in ``dd``) in one
    pass, each in the ``lanes16`` order."""
    cdef double s[16]
    cdef double u[16]
    cdef double w[16]
    cdef double v
    cdef Py_ssize_t i, m = n - n % 16
    cdef int j
    for j in range(16):
        s[j] = 0.0
        u[j] = 0.0
        w[j] = 0.0
    for i in range(0, m, 16):
        for j in range(16):
            v = <double>d[i + j]
            s[j] += v * <double>hd[i + j]
            u[j] += v * <double>p[i + j]
            w[j] += v * v
    for i in range(m, n):
        v = <double>d[i]
        s[i - m] += v * <double>hd[i]
        u[i - m] += v * <double>p[i]
        w[i - m] += v * v
    pd[0] = fold16(u)
    dd[0] = fold16(w)
    return fold16(s)
