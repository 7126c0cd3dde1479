# cython: language_level=3
"""MINPACK's dense kernels, column-major, ``noexcept nogil`` (Moré, Garbow &
Hillstrom, MINPACK User Guide, ANL-80-74, 1980): ENORM (:func:`enorm`,
:func:`enorm_mp`, :func:`enorm_cols`), QRFAC's Householder QR with column
pivoting (:func:`qrfac`, :func:`reflect_cols`), QRSOLV (:func:`qrsolv`), and
LAPACK's pivoted QR and ``Q^T c`` (:func:`qr_factor`, :func:`apply_qt`;
``scipy.linalg.cython_lapack``).

``cdef inline``, compiled into :mod:`neurenix._ext._lsq`, the one module that uses
them, as when they were private to it: LMDER's arithmetic, and so the iterates,
are unchanged.
"""
from libc.math cimport sqrt, fabs, isfinite, copysign, INFINITY
from libc.string cimport memcpy
from libc.float cimport DBL_MAX
from scipy.linalg.cython_lapack cimport dgeqp3, dormqr

from ._vec cimport dot_seq, dot_lanes8h


# MINPACK's machine constants (DPMPAR) and ENORM's range limits, as C constants
cdef extern from *:
    """
    static const double nx_minpack_dwarf = 2.2250738585072014e-308;
    static const double nx_minpack_epsmch = 2.220446049250313e-16;
    static const double nx_minpack_rdwarf = 3.834e-20;
    static const double nx_minpack_rgiant = 1.304e19;
    static const Py_ssize_t nx_minpack_long = 256;
    """
    const double DWARF "nx_minpack_dwarf"
    const double EPSMCH "nx_minpack_epsmch"
    const double RDWARF "nx_minpack_rdwarf"
    const double RGIANT "nx_minpack_rgiant"
    # Sums over long vectors.  Below LONG rows the sums run in index order, exactly
    # as MINPACK's (so that lm's trial points, and its counts of evaluations, are
    # those of MINPACK's lmder bit for bit); from LONG rows on, a sequential sum
    # would cost more than the rest of an iteration (each addition waits for the
    # previous one: ~1 ns a row), so eight interleaved partial sums are used there
    # (``lanes8h`` order of _vec.pxd; same values to rounding).
    const Py_ssize_t LONG "nx_minpack_long"


cdef inline double enorm(Py_ssize_t n, const double* x) noexcept nogil:
    """MINPACK's ENORM (see :func:`enorm_mp`) with a fast path: when every component
    lies in the intermediate range (the usual case) the result is ``sqrt`` of the
    squares summed in index order, exactly what ENORM computes then; otherwise the
    full three-range rule runs."""
    cdef double s2 = 0.0, agiant, xa, lo = INFINITY, hi = 0.0
    cdef Py_ssize_t i
    if n <= 0:
        return 0.0
    if n >= LONG:
        # long vectors: the square root of the interleaved sum whenever that sum lies
        # in (1e-290, inf) -- then no square overflowed and those lost to underflow
        # are below its rounding -- else the three-range rule
        s2 = dot_lanes8h(x, x, n)
        if s2 > 1e-290 and s2 < INFINITY:
            return sqrt(s2)
        return enorm_mp(n, x)
    agiant = RGIANT / n
    for i in range(n):
        xa = fabs(x[i])
        # zeros add nothing in ENORM's rule either: they do not leave the fast path
        lo = xa if (xa < lo) & (xa != 0.0) else lo
        hi = xa if xa > hi else hi
        s2 += xa * xa
    # every nonzero component intermediate (a NaN makes s2 NaN: s2 == s2 fails);
    # an all-zero x gives lo = inf, s2 = 0: ENORM's result, 0, too
    if lo > RDWARF and hi < agiant and s2 == s2:
        return sqrt(s2)
    return enorm_mp(n, x)


cdef inline void enorm_cols(Py_ssize_t m, Py_ssize_t ncol, const double* a,
                            double* out) noexcept nogil:
    """``out[k] = enorm(a[:, k])`` for the columns of a column-major ``m x ncol``
    block.  Up to four columns share one pass over the rows: their sums are
    independent, each in row order, so every result is bit-identical to
    :func:`enorm` while the additions of different columns overlap in the pipeline."""
    cdef Py_ssize_t i, k = 0, q, cnt
    cdef double s0, s1, s2, s3, x0, x1, x2, x3, y0, y1, agiant, lo, hi
    cdef const double* c[4]
    cdef bint ok
    if m <= 0 or m >= LONG:
        for k in range(ncol):
            out[k] = enorm(m, a + k * m)
        return
    agiant = RGIANT / m
    while k < ncol:
        cnt = ncol - k if ncol - k < 4 else 4
        for q in range(4):
            c[q] = a + (k + (q if q < cnt else cnt - 1)) * m
        s0 = s1 = s2 = s3 = 0.0
        lo = INFINITY
        hi = 0.0
        for i in range(m):
            x0 = fabs(c[0][i])
            x1 = fabs(c[1][i])
            x2 = fabs(c[2][i])
            x3 = fabs(c[3][i])
            y0 = x0 if x0 < x1 else x1
            y1 = x2 if x2 < x3 else x3
            y0 = y0 if y0 < y1 else y1
            lo = y0 if y0 < lo else lo
            y0 = x0 if x0 > x1 else x1
            y1 = x2 if x2 > x3 else x3
            y0 = y0 if y0 > y1 else y1
            hi = y0 if y0 > hi else hi
            s0 += x0 * x0
            s1 += x1 * x1
            s2 += x2 * x2
            s3 += x3 * x3
        # all intermediate; a NaN anywhere makes its sum NaN (x == x fails)
        ok = lo > RDWARF and hi < agiant and s0 == s0 and s1 == s1 and s2 == s2 \
            and s3 == s3
        if ok:
            out[k] = sqrt(s0)
            if cnt > 1:
                out[k + 1] = sqrt(s1)
            if cnt > 2:
                out[k + 2] = sqrt(s2)
            if cnt > 3:
                out[k + 3] = sqrt(s3)
        else:
            for q in range(cnt):
                out[k + q] = enorm(m, c[q])
        k += cnt


cdef inline void reflect_cols(Py_ssize_t len_, const double* v, double* c, Py_ssize_t ldc,
                              Py_ssize_t ncol) noexcept nogil:
    """Apply ``H = I - v v^T / v[0]`` to ``ncol`` columns ``c`` (stride ``ldc``):
    ``c_k -= (v . c_k / v[0]) v``, each dot product summed in row order as in
    MINPACK; up to eight columns share one pass for the dots (independent sums,
    bit-identical results: the pass is bound by the latency of each sum's chain of
    additions, so eight chains cost little more than one)."""
    cdef Py_ssize_t i, k = 0, q, cnt
    cdef double s0, s1, s2, s3, s4, s5, s6, s7, vi, tq, v0 = v[0]
    cdef double t[8]
    cdef double* p[8]
    cdef double* ck
    if len_ >= LONG:
        for k in range(ncol):
            ck = c + k * ldc
            tq = dot_lanes8h(v, ck, len_) / v0
            for i in range(len_):
                ck[i] -= tq * v[i]
        return
    while k < ncol:
        cnt = ncol - k if ncol - k < 8 else 8
        for q in range(8):
            p[q] = c + (k + (q if q < cnt else cnt - 1)) * ldc
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        if cnt > 4:
            for i in range(len_):
                vi = v[i]
                s0 += vi * p[0][i]
                s1 += vi * p[1][i]
                s2 += vi * p[2][i]
                s3 += vi * p[3][i]
                s4 += vi * p[4][i]
                s5 += vi * p[5][i]
                s6 += vi * p[6][i]
                s7 += vi * p[7][i]
        else:
            for i in range(len_):
                vi = v[i]
                s0 += vi * p[0][i]
                s1 += vi * p[1][i]
                s2 += vi * p[2][i]
                s3 += vi * p[3][i]
        t[0] = s0 / v0
        t[1] = s1 / v0
        t[2] = s2 / v0
        t[3] = s3 / v0
        t[4] = s4 / v0
        t[5] = s5 / v0
        t[6] = s6 / v0
        t[7] = s7 / v0
        for q in range(cnt):
            ck = p[q]
            tq = t[q]
            for i in range(len_):
                ck[i] -= tq * v[i]
        k += cnt


cdef inline double enorm_mp(Py_ssize_t n, const double* x) noexcept nogil:
    """Euclidean norm without destructive underflow or overflow, by the rule of the
    MINPACK User Guide (Moré, Garbow & Hillstrom, ANL-80-74, 1980, routine ENORM).

    Components are split into three ranges by ``RDWARF`` and ``RGIANT / n``: the
    intermediate ones are summed as plain squares in index order, the small and the
    large ones as squares scaled by the running maximum of their range.  Using the
    same accumulation as MINPACK (rather than BLAS ``dnrm2``) keeps the
    Levenberg-Marquardt iteration's rounding, and hence its termination, the same
    as MINPACK's ``lmder`` on ill-conditioned problems.
    """
    cdef double s1 = 0.0, s2 = 0.0, s3 = 0.0, x1max = 0.0, x3max = 0.0
    cdef double agiant, xabs, r
    cdef int i
    if n <= 0:
        return 0.0
    agiant = RGIANT / n
    for i in range(n):
        xabs = fabs(x[i])
        if xabs > RDWARF and xabs < agiant:
            s2 += xabs * xabs
        elif xabs <= RDWARF:
            if xabs > x3max:
                r = x3max / xabs
                s3 = 1.0 + s3 * r * r
                x3max = xabs
            elif xabs != 0.0:
                r = xabs / x3max
                s3 += r * r
        else:
            if xabs > x1max:
                r = x1max / xabs
                s1 = 1.0 + s1 * r * r
                x1max = xabs
            else:
                r = xabs / x1max
                s1 += r * r
    if s1 != 0.0:
        return x1max * sqrt(s1 + (s2 / x1max) / x1max)
    if s2 != 0.0:
        if s2 >= x3max:
            return sqrt(s2 * (1.0 + (x3max / s2) * (x3max * s3)))
        return sqrt(x3max * ((s2 / x3max) + (x3max * s3)))
    return x3max * sqrt(s3)


# ---------------------------------------------------------------------------
# Dense kernels (column-major, nogil)
# ---------------------------------------------------------------------------
cdef inline int qr_factor(int m, int n, double* A, int* jpvt, double* tau,
                          double* work, int lwork) noexcept nogil:
    """A P = Q R in place (LAPACK dgeqp3); jpvt returned 0-based."""
    cdef int info = 0, j
    for j in range(n):
        jpvt[j] = 0
    # numpy: q, r, p = scipy.linalg.qr(A, pivoting=True)
    dgeqp3(&m, &n, A, &m, jpvt, tau, work, &lwork, &info)
    for j in range(n):
        jpvt[j] -= 1
    return info


cdef inline int apply_qt(int m, int n, double* A, double* tau, double* c,
                         double* work, int lwork) noexcept nogil:
    """c <- Q^T c (LAPACK dormqr with the reflectors left by dgeqp3)."""
    cdef int info = 0, one = 1
    cdef char side = b'L'
    cdef char trans = b'T'
    dormqr(&side, &trans, &m, &one, &n, A, &m, tau, c, &m, work, &lwork, &info)
    return info


cdef inline void qrfac(int m, int n, double* a, int* ipvt, double* rdiag, double* acnorm,
                       double* wa, int nextra) noexcept nogil:
    """Householder QR with column pivoting, ``A P = Q R`` in place (column-major,
    ld ``m``, ``m >= n``), the rule of MINPACK's QRFAC (User Guide ANL-80-74).

    Column ``j`` is pivoted to the remaining column of largest partial norm (the
    first one on ties); partial norms are downdated by
    ``r_k <- r_k sqrt(max(0, 1 - (a_jk / r_k)^2))`` and recomputed from scratch when
    ``0.05 (r_k / r_k^last)^2 <= eps``.  The reflector ``H_j = I - v v^T / v_j`` has
    ``v = a_j / +-||a_j||`` with ``1`` added to ``v_j``, stored in the lower part of
    column ``j`` (``v_j`` on the diagonal); the diagonal of ``R`` goes to ``rdiag``
    (``R_jj = -+||a_j||``) and the column norms of the input to ``acnorm``.
    ``ipvt`` is 0-based.  The ``nextra`` columns stored after the ``n`` ones (e.g.
    the residual vector) take part in no pivoting but receive every reflection, so
    they end up as ``Q^T b`` -- bit-identical to applying the reflectors afterwards
    as MINPACK's LMDER does (``b + v (-s / v_j)`` and ``b - (s / v_j) v`` round
    alike), with their dot products sharing the pass of the columns'.

    LAPACK ``dgeqp3`` pivots by the same rule but downdates
    the norms with another recompute threshold and different reflector scaling,
    which changes the last bits and, on the ill-conditioned NIST problems, the
    iteration count of Levenberg-Marquardt.
    """
    cdef Py_ssize_t i, j, k, kmax, mn = n if n < m else m
    cdef double ajnorm, t
    cdef double* col
    cdef double* other
    enorm_cols(m, n, a, acnorm)
    for j in range(n):
        rdiag[j] = acnorm[j]
        wa[j] = rdiag[j]
        ipvt[j] = <int> j
    for j in range(mn):
        col = a + j * m
        kmax = j
        for k in range(j, n):
            if rdiag[k] > rdiag[kmax]:
                kmax = k
        if kmax != j:
            other = a + kmax * m
            for i in range(m):
                t = col[i]
                col[i] = other[i]
                other[i] = t
            rdiag[kmax] = rdiag[j]
            wa[kmax] = wa[j]
            k = ipvt[j]
            ipvt[j] = ipvt[kmax]
            ipvt[kmax] = <int> k
        col = col + j                      # a[j:, j]
        # the first pivot column is still whole: its norm is already in acnorm
        ajnorm = acnorm[ipvt[0]] if j == 0 else enorm(m - j, col)
        if ajnorm != 0.0:
            if col[0] < 0.0:
                ajnorm = -ajnorm
            for i in range(m - j):
                col[i] /= ajnorm
            col[0] += 1.0
            # numpy: a[j:, k] -= (a[j:, j] @ a[j:, k] / a[j, j]) * a[j:, j], k > j
            reflect_cols(m - j, col, col + m, m, n - j - 1 + nextra)
            for k in range(j + 1, n):
                if rdiag[k] != 0.0:
                    t = a[j + k * m] / rdiag[k]
                    t = 1.0 - t * t
                    rdiag[k] *= sqrt(t if t > 0.0 else 0.0)
                    t = rdiag[k] / wa[k]
                    if 0.05 * (t * t) <= EPSMCH:
                        rdiag[k] = enorm(m - j - 1, &a[j + 1 + k * m])
                        wa[k] = rdiag[k]
        rdiag[j] = -ajnorm


cdef inline void qrsolv(int n, const double* R, int ldr, const int* ipvt, const double* diag,
                        const double* qtb, double* x, double* sdiag, double* S,
                        double* wa) noexcept nogil:
    """Solve ``min || [A; D] x - [b; 0] ||`` given ``A P = Q R`` and ``qtb = Q^T b``.

    Moré (1978), section 3: the rows of ``P^T D P`` are eliminated against ``R`` by
    Givens rotations, giving ``S`` upper triangular with ``S^T S = R^T R + P^T D^2 P``.
    ``S`` (strict upper part, column-major, ld ``n``) and its diagonal ``sdiag`` are
    returned for the Newton correction of :func:`lmpar`.
    """
    cdef int i, j, k, l, nsing
    cdef double c, s, t, cotan, tn, qtbpj, rkk, acc
    for j in range(n):
        for i in range(j + 1):
            S[i + j * n] = R[i + j * ldr]
        wa[j] = qtb[j]
    for j in range(n):
        l = ipvt[j]
        if diag[l] != 0.0:
            for k in range(j, n):
                sdiag[k] = 0.0
            sdiag[j] = diag[l]
            qtbpj = 0.0
            for k in range(j, n):
                if sdiag[k] == 0.0:
                    continue
                rkk = S[k + k * n]
                if fabs(rkk) < fabs(sdiag[k]):
                    cotan = rkk / sdiag[k]
                    s = 0.5 / sqrt(0.25 + 0.25 * cotan * cotan)
                    c = s * cotan
                else:
                    tn = sdiag[k] / rkk
                    c = 0.5 / sqrt(0.25 + 0.25 * tn * tn)
                    s = c * tn
                S[k + k * n] = c * rkk + s * sdiag[k]
                t = c * wa[k] + s * qtbpj
                qtbpj = -s * wa[k] + c * qtbpj
                wa[k] = t
                for i in range(k + 1, n):
                    t = c * S[k + i * n] + s * sdiag[i]
                    sdiag[i] = -s * S[k + i * n] + c * sdiag[i]
                    S[k + i * n] = t
        sdiag[j] = S[j + j * n]
    nsing = n
    for j in range(n):
        if sdiag[j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa[j] = 0.0
    for j in range(nsing - 1, -1, -1):
        acc = 0.0
        for i in range(j + 1, nsing):
            acc += S[j + i * n] * wa[i]
        wa[j] = (wa[j] - acc) / sdiag[j]
    for j in range(n):
        x[ipvt[j]] = wa[j]
