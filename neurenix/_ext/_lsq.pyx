# cython: language_level=3
"""Nonlinear least squares in Cython: the Levenberg-Marquardt loop of Moré (1978)
and the dense linear algebra of the Gauss-Newton and trust-region steps.

What is here
------------
* :func:`lm_solve` — the whole Levenberg-Marquardt iteration, written fresh from
  J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory",
  Numerical Analysis, Lecture Notes in Mathematics 630 (1978), pp. 105-116, and the
  MINPACK User Guide (Moré, Garbow & Hillstrom, ANL-80-74, 1980), reproducing the
  arithmetic of MINPACK's LMDER exactly (its trial points agree to the last bit):
  Householder QR with column pivoting by QRFAC's rule (:func:`qrfac`), ``Q^T f``,
  Moré's scaling ``D = diag(max column norms)``, the Levenberg-Marquardt parameter
  search (section 5, safeguarded Newton iteration on ``phi(lambda) = ||D p|| - Delta``),
  the solve of ``[J; sqrt(lambda) D] p = [-f; 0]`` by Givens rotations that reuse the
  QR factor (section 3), and the trust-region update of section 4.  The loop calls
  Python only to evaluate the residuals, the Jacobian (or the residuals at the
  finite-difference points) and the user's callback.
* :func:`trf_solve` — the trust-region reflective loop (Branch, Coleman & Li 1999)
  for dense Jacobians: bounds by Coleman-Li scaling and reflection, robust losses,
  ``x_scale``; Python only for residuals, Jacobian, loss and callback.
* :func:`gn_solve` — the Gauss-Newton loop with an Armijo line search.
* :func:`qr_lstsq` — minimum-norm-ish least squares ``min ||J p + f||`` by pivoted QR
  with a rank cut (the Gauss-Newton step).
* :func:`lm_step` — one Levenberg-Marquardt parameter search on a given ``J, f, D,
  Delta`` (exposed for tests and for the Python drivers).
* :func:`fd_columns` — the finite-difference / complex-step Jacobian columns.

Everything that reaches the typed code has been validated in Python (shapes,
finiteness, option ranges); values returned by user callables are converted and
shape-checked here before any LAPACK call sees them.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt, fabs, isfinite, copysign, INFINITY
from libc.string cimport memcpy
from libc.float cimport DBL_MAX
from scipy.linalg.cython_lapack cimport dgeqp3, dormqr

cnp.import_array()

cdef double DWARF = 2.2250738585072014e-308
cdef double EPSMCH = 2.220446049250313e-16


cdef double RDWARF = 3.834e-20
cdef double RGIANT = 1.304e19


# Sums over long vectors.  Below LONG rows the sums run in index order, exactly as
# MINPACK's (so that lm's trial points, and its counts of evaluations, are those of
# MINPACK's lmder bit for bit); from LONG rows on, a sequential sum would cost more
# than the rest of an iteration (each addition waits for the previous one: ~1 ns a
# row), so eight interleaved partial sums are used there (same values to rounding).
cdef Py_ssize_t LONG = 256

cdef inline double _dot8(Py_ssize_t n, const double* x, const double* y) noexcept nogil:
    """``x . y`` in eight interleaved partial sums added pairwise."""
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


cdef double enorm(Py_ssize_t n, const double* x) noexcept nogil:
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
        s2 = _dot8(n, x, x)
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


cdef void enorm_cols(Py_ssize_t m, Py_ssize_t ncol, const double* a,
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


cdef void reflect_cols(Py_ssize_t len_, const double* v, double* c, Py_ssize_t ldc,
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
            tq = _dot8(len_, v, ck) / v0
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


cdef double enorm_mp(Py_ssize_t n, const double* x) noexcept nogil:
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
cdef int qr_factor(int m, int n, double* A, int* jpvt, double* tau,
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


cdef int apply_qt(int m, int n, double* A, double* tau, double* c,
                  double* work, int lwork) noexcept nogil:
    """c <- Q^T c (LAPACK dormqr with the reflectors left by dgeqp3)."""
    cdef int info = 0, one = 1
    cdef char side = b'L'
    cdef char trans = b'T'
    dormqr(&side, &trans, &m, &one, &n, A, &m, tau, c, &m, work, &lwork, &info)
    return info


cdef void qrfac(int m, int n, double* a, int* ipvt, double* rdiag, double* acnorm,
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


cdef void qrsolv(int n, const double* R, int ldr, const int* ipvt, const double* diag,
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


cdef double lmpar(int n, const double* R, int ldr, const int* ipvt, const double* diag,
                  const double* qtb, double delta, double par, double* x, double* sdiag,
                  double* S, double* wa1, double* wa2, double* wa3) noexcept nogil:
    """Levenberg-Marquardt parameter (Moré 1978, section 5).

    Finds ``par >= 0`` with either ``par == 0`` and ``||D x|| <= 1.1 delta`` or
    ``| ||D x|| - delta | <= 0.1 delta``, where ``x`` solves
    ``min || [A; sqrt(par) D] x - [b; 0] ||``.  Returns ``par``; ``x`` holds the
    solution (the LM step is ``-x`` when ``b = f``).
    """
    cdef int i, j, l, it = 0, nsing = n
    cdef double dxnorm, fp, fp_old, parl, paru, parc, gnorm, t, acc
    # Gauss-Newton direction (rank-deficient: zero the trailing components)
    for j in range(n):
        wa1[j] = qtb[j]
        if R[j + j * ldr] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa1[j] = 0.0
    for j in range(nsing - 1, -1, -1):
        wa1[j] /= R[j + j * ldr]
        t = wa1[j]
        for i in range(j):
            wa1[i] -= R[i + j * ldr] * t
    for j in range(n):
        x[ipvt[j]] = wa1[j]
    for j in range(n):
        wa2[j] = diag[j] * x[j]
    dxnorm = enorm(n, wa2)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0
    # lower bound parl from the Newton step at par = 0 (full rank only)
    parl = 0.0
    if nsing >= n:
        for j in range(n):
            l = ipvt[j]
            wa1[j] = diag[l] * (wa2[l] / dxnorm)
        for j in range(n):
            acc = 0.0
            for i in range(j):
                acc += R[i + j * ldr] * wa1[i]
            wa1[j] = (wa1[j] - acc) / R[j + j * ldr]
        t = enorm(n, wa1)
        parl = ((fp / delta) / t) / t
    # upper bound paru = ||(J D^-1)^T f|| / delta
    for j in range(n):
        acc = 0.0
        for i in range(j + 1):
            acc += R[i + j * ldr] * qtb[i]
        wa1[j] = acc / diag[ipvt[j]]
    gnorm = enorm(n, wa1)
    paru = gnorm / delta
    if paru == 0.0:
        paru = DWARF / (delta if delta < 0.1 else 0.1)
    if par < parl:
        par = parl
    if par > paru:
        par = paru
    if par == 0.0:
        par = gnorm / dxnorm
    while True:
        it += 1
        if par == 0.0:
            par = 0.001 * paru
            if par < DWARF:
                par = DWARF
        t = sqrt(par)
        for j in range(n):
            wa1[j] = t * diag[j]
        qrsolv(n, R, ldr, ipvt, wa1, qtb, x, sdiag, S, wa3)
        for j in range(n):
            wa2[j] = diag[j] * x[j]
        dxnorm = enorm(n, wa2)
        fp_old = fp
        fp = dxnorm - delta
        if fabs(fp) <= 0.1 * delta or (parl == 0.0 and fp <= fp_old and fp_old < 0.0) \
                or it == 10:
            break
        # Newton correction: parc = phi / phi', phi' from S^T S = R^T R + par D^2
        for j in range(n):
            l = ipvt[j]
            wa1[j] = diag[l] * (wa2[l] / dxnorm)
        for j in range(n):
            wa1[j] /= sdiag[j]
            t = wa1[j]
            for i in range(j + 1, n):
                wa1[i] -= S[j + i * n] * t
        t = enorm(n, wa1)
        parc = ((fp / delta) / t) / t
        if fp > 0.0 and par > parl:
            parl = par
        if fp < 0.0 and par < paru:
            paru = par
        par = par + parc
        if par < parl:
            par = parl
    return par


# ---------------------------------------------------------------------------
# Calls into Python (validated conversions)
# ---------------------------------------------------------------------------
cdef object _vec(object value, Py_ssize_t m, str what):
    cdef cnp.ndarray a = np.asarray(value, dtype=np.float64)
    if a.ndim > 1:
        raise ValueError(f"{what} must return at most 1-D array_like, got shape {np.shape(a)}")
    if a.ndim == 0:
        a = a.reshape(1)
    if a.shape[0] != m:
        raise ValueError(f"{what} returned {a.shape[0]} residuals, expected {m} "
                         "(the number at x0)")
    return a


cdef bint _all_finite(Py_ssize_t n, const double* x) noexcept nogil:
    """True when no entry is inf or NaN (``|x| <= DBL_MAX`` is false for both)."""
    cdef Py_ssize_t i
    cdef bint ok = True
    for i in range(n):
        ok = ok & (fabs(x[i]) <= DBL_MAX)
    return ok


cdef inline cnp.ndarray _new_vec(Py_ssize_t n, const double* src):
    """A fresh float64 array holding ``src[:n]`` (what the user's callables get)."""
    cdef cnp.npy_intp dim = n
    cdef cnp.ndarray a = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_DOUBLE, 0)
    memcpy(cnp.PyArray_DATA(a), src, n * sizeof(double))
    return a


cdef inline bint _plain(object v, int ndim):
    """True for a float64, aligned, C-contiguous ndarray of ``ndim`` dimensions."""
    cdef cnp.ndarray a
    if type(v) is not np.ndarray:
        return False
    a = <cnp.ndarray> v
    return (cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE and cnp.PyArray_NDIM(a) == ndim
            and cnp.PyArray_ISCARRAY_RO(a))


cdef int _fun_into(object fun, const double* x, Py_ssize_t n, Py_ssize_t m,
                   double* out) except -1:
    """``out[:m] = fun(x)`` on a fresh copy of ``x``; the value is converted and its
    length checked before it is copied (a plain float64 vector is copied directly)."""
    cdef object v = fun(_new_vec(n, x))
    cdef cnp.ndarray a
    if _plain(v, 1) and cnp.PyArray_DIMS(<cnp.ndarray> v)[0] == m:
        a = <cnp.ndarray> v
    else:
        a = np.ascontiguousarray(_vec(v, m, "fun"))
    memcpy(out, cnp.PyArray_DATA(a), m * sizeof(double))
    return 0


cdef int _jac_into(object jac, object x, Py_ssize_t m, Py_ssize_t n, double* A,
                   double* B=NULL) except -1:
    """Evaluate a user Jacobian and copy it column-major into A (finite values only)
    and, when ``B`` is not NULL, into B as well."""
    return _jac_copy(jac(x), m, n, A, B)


cdef int _jac_copy(object v, Py_ssize_t m, Py_ssize_t n, double* A,
                   double* B=NULL) except -1:
    """Check a Jacobian value's shape and finiteness; copy it column-major into A
    (and into B unless NULL: the transposing copy stores twice in one pass)."""
    cdef cnp.ndarray J
    cdef const double* src
    cdef double[:, :] Jv
    cdef Py_ssize_t i, j
    cdef bint finite = True
    cdef double* dst
    cdef double* dst2
    cdef double e
    cdef Py_ssize_t i0, i1
    if _plain(v, 2):
        J = <cnp.ndarray> v
    else:
        J = np.asarray(v, dtype=np.float64)
    if J.ndim != 2 or J.shape[0] != m or J.shape[1] != n:
        raise ValueError(f"jac must return an array of shape ({m}, {n}), got shape "
                         f"{np.shape(J)}")
    if cnp.PyArray_ISFARRAY_RO(J) and cnp.PyArray_TYPE(J) == cnp.NPY_DOUBLE:
        memcpy(A, cnp.PyArray_DATA(J), m * n * sizeof(double))
    elif cnp.PyArray_ISCARRAY_RO(J) and cnp.PyArray_TYPE(J) == cnp.NPY_DOUBLE:
        src = <const double*> cnp.PyArray_DATA(J)
        with nogil:
            # transpose in tiles of 32 rows, so that a tile of the source stays in
            # cache while its columns are written
            i0 = 0
            while i0 < m:
                i1 = i0 + 32 if i0 + 32 < m else m
                for j in range(n):
                    dst = A + j * m
                    if B == NULL:
                        for i in range(i0, i1):
                            dst[i] = src[i * n + j]
                    else:
                        dst2 = B + j * m
                        for i in range(i0, i1):
                            e = src[i * n + j]
                            dst[i] = e
                            dst2[i] = e
                i0 = i1
            B = NULL
    else:
        Jv = J
        for j in range(n):
            for i in range(m):
                A[i + j * m] = Jv[i, j]
    with nogil:
        if B != NULL:
            memcpy(B, A, m * n * sizeof(double))
        finite = _all_finite(m * n, A)
    if not finite:
        raise ValueError("jac returned non-finite values")
    return 0


cdef int _fd_into(object fun, double* x, Py_ssize_t n, const double* f0, Py_ssize_t m,
                  const double* h, const char* central, int cs, double* A,
                  str what="fun") except -1:
    """Finite-difference (forward/central) or complex-step columns into A (column-major).

    ``h[j]`` is the step of column j (already the step actually representable);
    ``central[j]`` selects ``(f(x+h) - f(x-h)) / 2h``.
    """
    cdef Py_ssize_t i, j
    cdef double xj, hj
    cdef const double[::1] fp, fm     # read-only results of fun are fine
    cdef cnp.ndarray xa = np.empty(n, dtype=np.float64)
    cdef double[::1] xv = xa
    cdef cnp.ndarray xc
    for i in range(n):
        xv[i] = x[i]
    if cs:
        xc = xa.astype(np.complex128)
        for j in range(n):
            xc[j] = complex(x[j], h[j])
            val = np.asarray(fun(xc))
            if val.ndim == 0:
                val = val.reshape(1)
            if val.ndim != 1 or val.shape[0] != m:
                raise ValueError(f"{what} returned shape {val.shape} at a complex-step point, "
                                 f"expected ({m},)")
            fp = np.ascontiguousarray(np.imag(val), dtype=np.float64)
            for i in range(m):
                A[i + j * m] = fp[i] / h[j]
            xc[j] = x[j]
        return 0
    for j in range(n):
        xj = x[j]
        hj = h[j]
        xv[j] = xj + hj
        fp = _vec(fun(xa.copy()), m, what)
        if central[j]:
            xv[j] = xj - hj
            fm = _vec(fun(xa.copy()), m, what)
            for i in range(m):
                A[i + j * m] = (fp[i] - fm[i]) / (2.0 * hj)
        else:
            for i in range(m):
                A[i + j * m] = (fp[i] - f0[i]) / hj
        xv[j] = xj
    return 0


def fd_columns(fun, double[::1] x, double[::1] f0, double[::1] h, central, bint cs,
               str what="fun"):
    """Jacobian ``(m, n)`` by finite differences with given steps ``h`` (validated by
    the caller).  ``central`` is a bool array; ``cs`` selects the complex step;
    ``what`` names the callable in error messages."""
    cdef Py_ssize_t n = x.shape[0], m = f0.shape[0]
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] c = np.ascontiguousarray(central, dtype=np.uint8)
    cdef cnp.ndarray out = np.empty((n, m), dtype=np.float64)   # column-major (m, n)
    cdef double[:, ::1] ov = out
    cdef double[::1] xw = np.array(x, copy=True)
    if n == 0:
        return out.T
    _fd_into(fun, &xw[0], n, &f0[0], m, &h[0], <char*> &c[0], cs, &ov[0, 0], what)
    return out.T


cdef void _fd_steps(int n, const double* x, int method, const double* diff_step,
                    double* h, double eps=EPSMCH) noexcept nogil:
    """SciPy's ``approx_derivative`` step rule (see :func:`fd_steps`); ``method``:
    0 2-point, 1 3-point, 2 complex step; ``diff_step`` may be NULL; ``eps`` the
    machine epsilon of the variables' dtype."""
    cdef int j
    cdef double r = eps ** (1.0 / 3.0) if method == 1 else sqrt(eps)
    cdef double sgn, hd, hj
    for j in range(n):
        sgn = 1.0 if x[j] >= 0.0 else -1.0
        hd = r * sgn * (fabs(x[j]) if fabs(x[j]) > 1.0 else 1.0)
        hj = hd
        if diff_step != NULL:
            hj = diff_step[j] * sgn * fabs(x[j])
            if (x[j] + hj) - x[j] == 0.0:
                hj = hd
        if method != 2:
            hj = (x[j] + hj) - x[j]
        h[j] = hj


def fd_steps(double[::1] x, str method, diff_step=None, double eps=EPSMCH):
    """Steps of SciPy's ``approx_derivative`` rule: ``h = r * sign(x) * max(1, |x|)``,
    ``r = sqrt(eps)`` (2-point, cs) or ``eps**(1/3)`` (3-point), ``eps`` that of the
    variables' dtype (float64's by default); with ``diff_step``
    ``h = diff_step * sign(x) * |x|`` (falling back to the default where that is 0).
    Returned as the step actually representable, ``(x + h) - x`` (not for cs)."""
    cdef int n = x.shape[0]
    cdef double[::1] ds
    h = np.empty(n)
    cdef double[::1] hv = h
    if n == 0:
        return h
    if diff_step is not None:
        ds = np.ascontiguousarray(diff_step, dtype=np.float64)
    _fd_steps(n, &x[0], _FD_CODE[method], &ds[0] if diff_step is not None else NULL,
              &hv[0], eps)
    return h


_FD_CODE = {"2-point": 0, "3-point": 1, "cs": 2}


# ---------------------------------------------------------------------------
# The Levenberg-Marquardt loop
# ---------------------------------------------------------------------------
def lm_solve(fun, jac, double[::1] x0, double[::1] f0, double ftol, double xtol,
             double gtol, Py_ssize_t max_nfev, diag0, double factor, fd_method,
             diff_step, callback, J0=None):
    """Levenberg-Marquardt (Moré 1978; the iteration of MINPACK's ``lmder``) from
    ``x0`` with residuals ``f0 = fun(x0)``.

    Parameters
    ----------
    fun : callable ``fun(x) -> (m,)``
    jac : callable ``jac(x) -> (m, n)`` or None (finite differences, ``fd_method``)
    diag0 : ndarray (n,) or None
        ``1 / x_scale``; None means Moré's Jacobian scaling (``x_scale="jac"``).
    factor : float
        Initial step bound ``factor * ||D x0||`` (``factor`` if that is 0).
    diff_step : ndarray (n,) or None
        Relative finite-difference steps (``jac`` None only).
    callback : callable ``callback(x, f) -> bool`` or None; True stops.
    J0 : ndarray (m, n), optional
        The Jacobian at ``x0`` when the caller already evaluated (and validated) it;
        it is used instead of a first call of ``jac`` (counted in ``njev``).

    Returns
    -------
    x, f, info, nfev, njev, nit, J
        ``info`` is MINPACK's: 1 ftol, 2 xtol, 3 both, 4 gtol, 5 max_nfev,
        6/7/8 the tolerances are too small for machine precision, -2 callback.
        ``nfev`` counts the calls of ``fun`` at trial points plus the one at ``x0``
        (as MINPACK's), not those for finite differences.  ``J`` is the Jacobian
        at ``x`` when the last one evaluated was there (the final steps were
        rejected, the usual end), else None.
    """
    cdef int n = x0.shape[0], m = f0.shape[0]
    cdef int i, j, l, info = 0, it = 1
    cdef Py_ssize_t nfev = 1, njev = 0
    cdef bint scale_jac = diag0 is None
    cdef double fnorm, fnorm1, xnorm = 0.0, delta = 0.0, par = 0.0, pnorm, gnorm, acc
    cdef double actred, prered, dirder, ratio, t, temp1, temp2
    cdef bint accepted, same
    cdef int fd_code = _FD_CODE.get(fd_method, 0)
    cdef const double* dsp = NULL

    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    # one work block: A (m (n + 1): the Jacobian, then f to become Q^T f), wa4 (m),
    # S (n n), 13 vectors of n
    work_arr = np.empty(m * (n + 1) + m + n * n + 13 * n)
    cdef double* A = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* fw = A + m * n
    cdef double* wa4 = fw + m
    cdef double* S = wa4 + m
    cdef double* diag = S + n * n
    cdef double* acnorm = diag + n
    cdef double* rdiag = acnorm + n
    cdef double* qtf = rdiag + n
    cdef double* wa1 = qtf + n
    cdef double* wa2 = wa1 + n
    cdef double* wa3 = wa2 + n
    cdef double* wa5 = wa3 + n
    cdef double* sdiag = wa5 + n
    cdef double* qwork = sdiag + n
    cdef double* hsteps = qwork + n
    cdef double* ds_copy = hsteps + n
    cdef double* xlast = ds_copy + n
    ipvt_arr = np.empty(n, dtype=np.intc)
    cdef int* ipvt = <int*> cnp.PyArray_DATA(ipvt_arr)
    central_arr = np.full(n, 1 if fd_code == 1 else 0, dtype=np.uint8)
    cdef char* central = <char*> cnp.PyArray_DATA(central_arr)
    cdef double[::1] dtmp

    if scale_jac:
        for j in range(n):
            diag[j] = 1.0
    else:
        dtmp = np.ascontiguousarray(diag0, dtype=np.float64)
        for j in range(n):
            diag[j] = dtmp[j]
    if diff_step is not None:
        dtmp = np.ascontiguousarray(diff_step, dtype=np.float64)
        for j in range(n):
            ds_copy[j] = dtmp[j]
        dsp = ds_copy

    if not _all_finite(m, f):
        raise ValueError("fun: residuals at x0 are not finite")
    # the Jacobian as evaluated (before its factorization) and where
    Jkeep_arr = np.empty((n, m))
    cdef double* Jkeep = <double*> cnp.PyArray_DATA(Jkeep_arr)
    xjac_arr = np.empty(n)
    cdef double* xjac = <double*> cnp.PyArray_DATA(xjac_arr)
    memcpy(xlast, x, n * sizeof(double))    # last point where fun was evaluated ...
    memcpy(wa4, f, m * sizeof(double))      # ... and its residuals
    fnorm = enorm(m, f)
    while True:
        # ---- Jacobian and its pivoted QR
        if jac is None:
            _fd_steps(n, x, fd_code, dsp, hsteps)
            _fd_into(fun, x, n, f, m, hsteps, central, fd_code == 2, A)
            memcpy(Jkeep, A, m * n * sizeof(double))
        else:
            if J0 is not None:
                _jac_copy(J0, m, n, A, Jkeep)
                J0 = None
            else:
                _jac_into(jac, _new_vec(n, x), m, n, A, Jkeep)
            njev += 1
        memcpy(xjac, x, n * sizeof(double))
        with nogil:
            memcpy(fw, f, m * sizeof(double))
            qrfac(m, n, A, ipvt, rdiag, acnorm, qwork, 1)     # fw <- Q^T f
            for j in range(n):
                A[j + j * m] = rdiag[j]
                qtf[j] = fw[j]
            if it == 1:
                if scale_jac:
                    for j in range(n):
                        diag[j] = acnorm[j] if acnorm[j] != 0.0 else 1.0
                for j in range(n):
                    wa3[j] = diag[j] * x[j]
                xnorm = enorm(n, wa3)
                delta = factor * xnorm
                if delta == 0.0:
                    delta = factor
            # scaled gradient: max_j |cos(angle between f and column j)|
            gnorm = 0.0
            if fnorm != 0.0:
                for j in range(n):
                    l = ipvt[j]
                    if acnorm[l] != 0.0:
                        acc = 0.0
                        for i in range(j + 1):
                            acc += A[i + j * m] * (qtf[i] / fnorm)
                        t = fabs(acc / acnorm[l])
                        if t > gnorm:
                            gnorm = t
        if gnorm <= gtol:
            info = 4
            break
        if scale_jac:
            for j in range(n):
                if acnorm[j] > diag[j]:
                    diag[j] = acnorm[j]
        # ---- inner loop: find an acceptable step
        while True:
            with nogil:
                par = lmpar(n, A, m, ipvt, diag, qtf, delta, par, wa1, sdiag, S, wa2,
                            wa3, wa5)
                for j in range(n):
                    wa1[j] = -wa1[j]
                    wa2[j] = x[j] + wa1[j]
                    wa3[j] = diag[j] * wa1[j]
                pnorm = enorm(n, wa3)
                if it == 1 and pnorm < delta:
                    delta = pnorm
            # a trial point equal to the last one evaluated (the step vanished in
            # rounding) reuses its residuals, still in wa4, as SciPy's wrapper does;
            # it counts in nfev as in MINPACK
            same = True
            for j in range(n):
                if wa2[j] != xlast[j]:
                    same = False
                    break
            if not same:
                _fun_into(fun, wa2, n, m, wa4)
                memcpy(xlast, wa2, n * sizeof(double))
            nfev += 1
            with nogil:
                fnorm1 = enorm(m, wa4)
                if not isfinite(fnorm1):
                    fnorm1 = INFINITY
                actred = -1.0
                if 0.1 * fnorm1 < fnorm:
                    actred = 1.0 - (fnorm1 / fnorm) * (fnorm1 / fnorm)
                # predicted reduction: ||R P^T p||^2 + 2 par ||D p||^2, relative to ||f||^2
                for j in range(n):
                    wa3[j] = 0.0
                    t = wa1[ipvt[j]]
                    for i in range(j + 1):
                        wa3[i] += A[i + j * m] * t
                temp1 = enorm(n, wa3) / fnorm
                temp2 = sqrt(par) * pnorm / fnorm
                prered = temp1 * temp1 + temp2 * temp2 / 0.5
                dirder = -(temp1 * temp1 + temp2 * temp2)
                ratio = 0.0
                if prered != 0.0:
                    ratio = actred / prered
                # trust-region update (Moré 1978, section 4)
                if ratio <= 0.25:
                    if actred >= 0.0:
                        t = 0.5
                    else:
                        t = 0.5 * dirder / (dirder + 0.5 * actred)
                    if 0.1 * fnorm1 >= fnorm or t < 0.1:
                        t = 0.1
                    delta = t * (delta if delta < pnorm / 0.1 else pnorm / 0.1)
                    par = par / t
                elif par == 0.0 or ratio >= 0.75:
                    delta = pnorm / 0.5
                    par = 0.5 * par
                accepted = ratio >= 1e-4
                if accepted:
                    for j in range(n):
                        x[j] = wa2[j]
                        wa2[j] = diag[j] * x[j]
                    memcpy(f, wa4, m * sizeof(double))
                    xnorm = enorm(n, wa2)
                    fnorm = fnorm1
                    it += 1
                # convergence tests (MINPACK's order: a later test overrides)
                if fabs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0:
                    info = 1
                if delta <= xtol * xnorm:
                    info = 3 if info == 1 else 2
            if accepted and callback is not None and info == 0:
                if callback(_new_vec(n, x), _new_vec(m, f)):
                    info = -2
            if info != 0:
                break
            if nfev >= max_nfev:
                info = 5
            if fabs(actred) <= EPSMCH and prered <= EPSMCH and 0.5 * ratio <= 1.0:
                info = 6
            if delta <= EPSMCH * xnorm:
                info = 7
            if gnorm <= EPSMCH:
                info = 8
            if info != 0 or accepted:
                break
        if info != 0:
            break
    for j in range(n):
        if xjac[j] != x[j]:
            return x_arr, f_arr, info, nfev, njev, it - 1, None
    return x_arr, f_arr, info, nfev, njev, it - 1, Jkeep_arr.T


# ---------------------------------------------------------------------------
# The Gauss-Newton loop
# ---------------------------------------------------------------------------
cdef double _rho_rows(object rho, object f_arr, Py_ssize_t m, double* r1,
                      double* r2) except? -1.0:
    """Call the loss ``rho(f) -> (3, m)`` (rho, rho', rho''); copy rows 1 and 2 and
    return the cost ``0.5 * sum(rho)``."""
    cdef cnp.ndarray R = np.ascontiguousarray(rho(f_arr), dtype=np.float64)
    cdef const double* src
    cdef Py_ssize_t i
    cdef double acc = 0.0
    if R.ndim != 2 or R.shape[0] != 3 or R.shape[1] != m:
        raise ValueError(f"loss must return an array of shape (3, {m}), got "
                         f"{np.shape(R)}")
    src = <const double*> cnp.PyArray_DATA(R)
    for i in range(m):
        acc += src[i]
    memcpy(r1, src + m, m * sizeof(double))
    memcpy(r2, src + 2 * m, m * sizeof(double))
    return 0.5 * acc


cdef inline double _dot(Py_ssize_t n, const double* x, const double* y) noexcept nogil:
    cdef Py_ssize_t i
    cdef double acc = 0.0
    for i in range(n):
        acc += x[i] * y[i]
    return acc


def gn_solve(prob_f, prob_J, double[::1] x0, double[::1] f0, J0, rho, double ftol,
             double xtol, double gtol, Py_ssize_t max_nfev, Py_ssize_t nfev0, xscale,
             callback, int verbose, double c1):
    """Gauss-Newton with Armijo backtracking on the cost (Nocedal & Wright,
    *Numerical Optimization*, 2nd ed., sections 3.1 and 10.3), the whole loop here.

    Each iteration: IRLS rescaling of ``J, f`` by the loss (Triggs et al. 2000) when
    ``rho`` is given, gradient ``g = J_s^T f_s`` (stop when ``||g||_inf <= gtol``),
    column scaling ``d`` (``1 / ||J_s e_j||`` or ``xscale``), the step
    ``p = d argmin ||J_s d q + f_s||`` by pivoted QR with a rank cut (``-g`` if that
    is no descent direction), then halving ``t`` from 1 until
    ``cost(x + t p) <= cost + c1 t g.p``.  Python is called only for ``prob_f(x) ->
    f`` (validated residuals), ``prob_J(x, f) -> J`` (validated dense Jacobian or
    finite differences), ``rho(f) -> (3, m)`` and the callback.

    Parameters
    ----------
    prob_f, prob_J : callables of the driver (they count nfev / njev)
    J0 : ndarray (m, n), the Jacobian at ``x0``
    rho : callable or None (linear loss)
    nfev0 : evaluations already made (``f0``)
    xscale : ndarray (n,) or None (``x_scale="jac"``)
    callback : callable ``callback(x, f, cost) -> bool`` or None; True stops.

    Returns
    -------
    x, f, J, cost, status, nit, nfev
        ``J`` is the (unscaled) Jacobian at ``x``; ``status`` is SciPy's:
        0 max_nfev, 1 gtol, 2 ftol, 3 xtol, 4 ftol and xtol, -2 callback.
    """
    cdef int n = x0.shape[0], m = f0.shape[0]
    cdef Py_ssize_t i, j, nfev = nfev0
    cdef int status = -100, nit = 0, lwork, rank
    cdef bint linear = rho is None, accepted, ftol_ok, xtol_ok, finite
    cdef double cost, cost_new = 0.0, cost_old = 0.0, dF = 0.0, slope, t, gmax, pn, xn
    cdef double dxn, rcond = EPSMCH * (m if m > n else n), w, dj
    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    J_arr = np.empty((n, m))            # its buffer is J column-major (J = J_arr.T)
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    cdef double* Jc = <double*> cnp.PyArray_DATA(J_arr)
    lwork = qr_lwork(m, n)
    work_arr = np.empty(2 * m * n + 5 * m + 9 * n + lwork)
    cdef double* A = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* Js = A + m * n
    cdef double* fs = Js + m * n
    cdef double* c = fs + m
    cdef double* r1 = c + m
    cdef double* r2 = r1 + m
    cdef double* wrow = r2 + m
    cdef double* g = wrow + m
    cdef double* d = g + n
    cdef double* p = d + n
    cdef double* ps = p + n
    cdef double* z = ps + n
    cdef double* tau = z + n
    cdef double* xnew = tau + n
    cdef double* dxs = xnew + n
    cdef double* xs = dxs + n
    cdef double* qwork = xs + n
    jpvt_arr = np.zeros(max(n, 1), dtype=np.intc)
    cdef int* jpvt = <int*> cnp.PyArray_DATA(jpvt_arr)
    cdef double[::1] xsv
    cdef cnp.ndarray fn_arr
    if xscale is not None:
        xsv = np.ascontiguousarray(xscale, dtype=np.float64)
        for j in range(n):
            xs[j] = xsv[j]
    _jac_copy(J0, m, n, Jc)
    if linear:
        cost = 0.5 * _dot(m, f, f)
    else:
        cost = _rho_rows(rho, f_arr, m, r1, r2)
    while True:
        with nogil:
            # ---- IRLS rescaling, gradient (scratch row: c, rewritten below), column scaling
            _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
            gmax = 0.0
            for j in range(n):
                if fabs(g[j]) > gmax:
                    gmax = fabs(g[j])
        if gmax <= gtol:
            status = 1
            break
        with nogil:
            if xscale is None:
                enorm_cols(m, n, Js, d)
                for j in range(n):
                    d[j] = 1.0 / d[j] if d[j] != 0.0 else INFINITY
            else:
                memcpy(d, xs, n * sizeof(double))
            for j in range(n):
                dj = d[j]
                if not (isfinite(dj) and dj > 0.0):
                    d[j] = 1.0
                    dj = 1.0
                for i in range(m):
                    A[i + j * m] = Js[i + j * m] * dj
            memcpy(c, fs, m * sizeof(double))
            # ---- Gauss-Newton step (pivoted QR, rank cut)
            rank = qr_lstsq_c(m, n, A, c, jpvt, tau, qwork, lwork, z, ps, rcond)
            for j in range(n):
                p[j] = d[j] * ps[j]
            slope = _dot(n, g, p)
            if not slope < 0.0:          # not a descent direction (rank loss): use -g
                for j in range(n):
                    p[j] = -g[j]
                slope = -_dot(n, g, g)
            pn = enorm(n, p)
            xn = enorm(n, x)
        # ---- Armijo backtracking
        t = 1.0
        while True:
            for j in range(n):
                xnew[j] = x[j] + t * p[j]
            fn_arr = prob_f(_new_vec(n, xnew))
            nfev += 1
            if <Py_ssize_t> cnp.PyArray_DIMS(fn_arr)[0] != m:
                raise ValueError(f"fun returned {fn_arr.shape[0]} residuals, expected {m}")
            fn_arr = np.ascontiguousarray(fn_arr, dtype=np.float64)
            finite = _all_finite(m, <const double*> cnp.PyArray_DATA(fn_arr))
            if not finite:
                cost_new = INFINITY
            elif linear:
                cost_new = 0.5 * _dot(m, <const double*> cnp.PyArray_DATA(fn_arr),
                                      <const double*> cnp.PyArray_DATA(fn_arr))
            else:
                cost_new = _rho_rows(rho, fn_arr, m, wrow, wrow)   # rows kept below
            if cost_new <= cost + c1 * t * slope or nfev >= max_nfev:
                break
            t *= 0.5
            if t * pn <= EPSMCH * (1.0 + xn):
                break
        nit += 1
        for j in range(n):
            dxs[j] = xnew[j] - x[j]
        accepted = cost_new < cost
        if accepted:
            dF = cost - cost_new
            cost_old = cost
            memcpy(x, xnew, n * sizeof(double))
            memcpy(f, cnp.PyArray_DATA(fn_arr), m * sizeof(double))
            cost = cost_new
            if not linear:
                _rho_rows(rho, f_arr, m, r1, r2)
            _jac_copy(prob_J(_new_vec(n, x), _new_vec(m, f)), m, n, Jc)
        if verbose == 2:
            print(f"gn it {nit}: cost={cost:.6e} step={t:.3g} nfev={nfev}")
        dxn = enorm(n, dxs)
        ftol_ok = accepted and dF < ftol * cost_old
        # a line search that cannot decrease the cost has shrunk the step to rounding
        xtol_ok = (not accepted and nfev < max_nfev) \
            or dxn < xtol * (xtol + enorm(n, x))
        if ftol_ok and xtol_ok:
            status = 4
        elif ftol_ok:
            status = 2
        elif xtol_ok:
            status = 3
        elif nfev >= max_nfev:
            status = 0
        if status != -100:
            break
        if callback is not None and callback(_new_vec(n, x), _new_vec(m, f), cost):
            status = -2
            break
    return x_arr, f_arr, J_arr.T, cost, status, nit, nfev


# ---------------------------------------------------------------------------
# The trust-region reflective loop (dense Jacobians)
# ---------------------------------------------------------------------------
cdef inline void _matvec(Py_ssize_t m, Py_ssize_t n, const double* A, const double* s,
                         double* out) noexcept nogil:
    """``out = A s`` for a column-major ``m x n`` block (column by column)."""
    cdef Py_ssize_t i, j
    cdef double sj
    cdef const double* col
    for i in range(m):
        out[i] = 0.0
    for j in range(n):
        sj = s[j]
        col = A + j * m
        for i in range(m):
            out[i] += sj * col[i]


cdef double _model(Py_ssize_t m, Py_ssize_t n, const double* Jh, const double* gh,
                   const double* diag_h, const double* s, double* Js) noexcept nogil:
    """Quadratic model ``0.5 ||Jh s||^2 + 0.5 s^T diag(diag_h) s + gh^T s``."""
    cdef Py_ssize_t j
    cdef double q = 0.0, lin = 0.0
    _matvec(m, n, Jh, s, Js)
    for j in range(n):
        q += s[j] * (diag_h[j] * s[j])
        lin += gh[j] * s[j]
    return 0.5 * (_dot(m, Js, Js) + q) + lin


cdef double _step_to_bound(Py_ssize_t n, const double* x, const double* s,
                           const double* lb, const double* ub, double* hits) noexcept nogil:
    """Largest ``t >= 0`` with ``lb <= x + t s <= ub``; ``hits[j]`` is ``sign(s_j)``
    for the components that reach their bound at that ``t`` (0 elsewhere)."""
    cdef Py_ssize_t j
    cdef double tmin = INFINITY, tj
    for j in range(n):
        if s[j] > 0.0:
            tj = (ub[j] - x[j]) / s[j]
        elif s[j] < 0.0:
            tj = (lb[j] - x[j]) / s[j]
        else:
            tj = INFINITY
        hits[j] = tj
        if tj < tmin:
            tmin = tj
    for j in range(n):
        if hits[j] == tmin and s[j] != 0.0:
            hits[j] = 1.0 if s[j] > 0.0 else -1.0
        else:
            hits[j] = 0.0
    return tmin


cdef double _ball_exit(Py_ssize_t n, const double* x, const double* s,
                       double delta) noexcept nogil:
    """The ``t >= 0`` with ``||x + t s|| = delta`` (``x`` inside the ball); inf when
    ``s = 0``.  The two roots are formed as in the stable quadratic formula."""
    cdef double a = _dot(n, s, s), b, c, disc, q, t1, t2
    if a == 0.0:
        return INFINITY
    b = _dot(n, x, s)
    c = _dot(n, x, x) - delta * delta
    disc = b * b - a * c
    disc = sqrt(disc if disc > 0.0 else 0.0)
    q = -(b + copysign(disc, b))
    t1 = q / a
    t2 = c / q if q != 0.0 else 0.0
    return t1 if t1 > t2 else t2


cdef double _min_1d(double a, double b, double lo, double hi, double* value) noexcept nogil:
    """Minimizer of ``a t^2 + b t`` over ``[lo, hi]`` (the first candidate among lo,
    hi and the vertex on ties); its value goes to ``value``."""
    cdef double t = lo, best = a * lo * lo + b * lo, tc, vc
    vc = a * hi * hi + b * hi
    if vc < best:
        t, best = hi, vc
    if a > 0.0:
        tc = -b / (2.0 * a)
        if lo < tc < hi:
            vc = a * tc * tc + b * tc
            if vc < best:
                t, best = tc, vc
    value[0] = best
    return t


cdef double _select_step(Py_ssize_t m, Py_ssize_t n, const double* x, const double* Jh,
                         const double* diag_h, const double* gh, double* p, double* p_h,
                         const double* d, double delta, const double* lb,
                         const double* ub, double theta, double* r_h, double* ag_h,
                         double* w1, double* w2, double* mw1, double* mw2) noexcept nogil:
    """Branch, Coleman & Li (1999), section 3: keep the trust-region step ``p`` if it
    stays strictly inside the bounds; otherwise compare (by the quadratic model) the
    step truncated at the first bound (times ``theta``), its reflection on that bound
    (the best point along it within the ball and the bounds) and the Cauchy step
    along ``-gh``.  The chosen step is left in ``p`` (``p_h`` in the scaled
    variables); returns the predicted reduction."""
    cdef Py_ssize_t j
    cdef bint inside = True
    cdef double t, to_tr, to_bound, stride, a, b, r_t, r_value, p_value, ag_value, ag_t
    cdef double gnorm, lo, hi
    for j in range(n):
        if not (x[j] + p[j] > lb[j] and x[j] + p[j] < ub[j]):
            inside = False
            break
    if inside:
        return -_model(m, n, Jh, gh, diag_h, p_h, mw1)
    t = _step_to_bound(n, x, p, lb, ub, w1)          # w1: hits
    for j in range(n):
        r_h[j] = -p_h[j] if w1[j] != 0.0 else p_h[j]
        w2[j] = d[j] * r_h[j]                        # w2: r (unscaled reflection)
        p_h[j] = p_h[j] * t
        p[j] = p[j] * t
        w1[j] = x[j] + p[j]                          # w1: the point on the bound
    # reflected direction: from the hit point, as far as the ball and the bounds allow
    to_tr = _ball_exit(n, p_h, r_h, delta)
    to_bound = _step_to_bound(n, w1, w2, lb, ub, ag_h)
    stride = to_bound if to_bound < to_tr else to_tr
    if stride > 0.0:
        lo = (1.0 - theta) * t / stride
        hi = theta * to_bound if stride == to_bound else to_tr
    else:
        lo = 0.0
        hi = -1.0
    if lo <= hi:
        _matvec(m, n, Jh, r_h, mw1)
        _matvec(m, n, Jh, p_h, mw2)
        a = 0.0
        b = 0.0
        for j in range(n):
            a += r_h[j] * (diag_h[j] * r_h[j])
            b += p_h[j] * (diag_h[j] * r_h[j])
        a = 0.5 * (_dot(m, mw1, mw1) + a)
        b = _dot(m, mw2, mw1) + b + _dot(n, gh, r_h)
        r_t = _min_1d(a, b, lo, hi, &r_value)
        for j in range(n):
            r_h[j] = p_h[j] + r_h[j] * r_t
        r_value = _model(m, n, Jh, gh, diag_h, r_h, mw1)
    else:
        r_value = INFINITY
    for j in range(n):
        p_h[j] = p_h[j] * theta
        p[j] = p[j] * theta
    p_value = _model(m, n, Jh, gh, diag_h, p_h, mw1)
    # Cauchy step: along -gh, within the ball and the bounds
    for j in range(n):
        ag_h[j] = -gh[j]
        w2[j] = d[j] * ag_h[j]
    gnorm = enorm(n, ag_h)
    to_tr = delta / (gnorm if gnorm > 1e-300 else 1e-300)
    to_bound = _step_to_bound(n, x, w2, lb, ub, w1)
    stride = theta * to_bound if to_bound < to_tr else to_tr
    _matvec(m, n, Jh, ag_h, mw1)
    a = 0.0
    for j in range(n):
        a += ag_h[j] * (diag_h[j] * ag_h[j])
    a = 0.5 * (_dot(m, mw1, mw1) + a)
    b = _dot(n, gh, ag_h)
    ag_t = _min_1d(a, b, 0.0, stride, &ag_value)
    if p_value <= r_value and p_value <= ag_value:
        return -p_value
    if r_value <= ag_value:
        for j in range(n):
            p_h[j] = r_h[j]
            p[j] = d[j] * r_h[j]
        return -r_value
    for j in range(n):
        p_h[j] = ag_h[j] * ag_t
        p[j] = d[j] * p_h[j]
    return -ag_value


cdef inline void _cl_scaling(Py_ssize_t n, const double* x, const double* g,
                             const double* lb, const double* ub, double* v,
                             double* dv) noexcept nogil:
    """Coleman-Li vector ``v`` and its derivative ``dv`` (Branch et al. 1999, eq. 2.3):
    the distance to the bound the negative gradient points to (1 if none)."""
    cdef Py_ssize_t j
    for j in range(n):
        v[j] = 1.0
        dv[j] = 0.0
        if g[j] < 0.0 and isfinite(ub[j]):
            v[j] = ub[j] - x[j]
            dv[j] = -1.0
        if g[j] > 0.0 and isfinite(lb[j]):
            v[j] = x[j] - lb[j]
            dv[j] = 1.0


cdef inline void _make_feasible(Py_ssize_t n, double* x, const double* lb,
                                const double* ub, double rstep) noexcept nogil:
    """Move components on or beyond a bound ``rstep * max(1, |bound|)`` inside (the
    midpoint if that overshoots the other bound)."""
    cdef Py_ssize_t j
    cdef double a
    for j in range(n):
        if x[j] <= lb[j]:
            a = fabs(lb[j])
            x[j] = lb[j] + rstep * (a if a > 1.0 else 1.0)
        if x[j] >= ub[j]:
            a = fabs(ub[j])
            x[j] = ub[j] - rstep * (a if a > 1.0 else 1.0)
        if x[j] < lb[j] or x[j] > ub[j]:
            x[j] = 0.5 * (lb[j] + ub[j])


cdef inline double _irls_weight(double f, double r1, double r2) noexcept nogil:
    """Row weight of the IRLS rescaling by a robust loss,
    ``sqrt(max(rho' + 2 rho'' f^2, eps))`` (Triggs et al. 2000, as SciPy's trf)."""
    cdef double w = r1 + 2.0 * r2 * f * f
    if w < EPSMCH:
        w = EPSMCH
    return sqrt(w)


def loss_weights(const double[::1] f, const double[:, ::1] rho):
    """``(w, fs)``: the IRLS row weights and rescaled residuals ``rho' f / w`` for
    ``rho`` rows ``(rho, rho', rho'')`` at the residuals ``f`` (the rule of
    :func:`_loss_scale`, for the Python paths: sparse and operator Jacobians)."""
    cdef Py_ssize_t i, m = f.shape[0]
    if rho.shape[0] != 3 or rho.shape[1] != m:
        raise ValueError(f"rho must have shape (3, {m})")
    w = np.empty(m)
    fs = np.empty(m)
    cdef double[::1] wv = w, fv = fs
    with nogil:
        for i in range(m):
            wv[i] = _irls_weight(f[i], rho[1, i], rho[2, i])
            fv[i] = f[i] * (rho[1, i] / wv[i])
    return w, fs


cdef void _loss_scale(Py_ssize_t m, Py_ssize_t n, bint linear, const double* J,
                      const double* f, const double* r1, const double* r2, double* Js,
                      double* fs, double* g) noexcept nogil:
    """IRLS rescaling by the loss (``Js = w J``, ``fs = rho' f / w``,
    ``w = sqrt(max(rho' + 2 rho'' f^2, eps))``) and the gradient ``g = Js^T fs``."""
    cdef Py_ssize_t i, j
    cdef double w
    cdef double* wrow = fs + m          # scratch row after fs (m more doubles)
    if linear:
        memcpy(Js, J, m * n * sizeof(double))
        memcpy(fs, f, m * sizeof(double))
    else:
        for i in range(m):
            w = _irls_weight(f[i], r1[i], r2[i])
            wrow[i] = w
            fs[i] = f[i] * (r1[i] / w)
        for j in range(n):
            for i in range(m):
                Js[i + j * m] = J[i + j * m] * wrow[i]
    for j in range(n):
        g[j] = _dot(m, Js + j * m, fs)


def trf_solve(fun, jac, fdjac, double[::1] x0, double[::1] f0, J0, double[::1] lb_,
              double[::1] ub_, rho, double ftol, double xtol, double gtol,
              Py_ssize_t max_nfev, Py_ssize_t nfev0, xscale, callback, int verbose):
    """Trust-region reflective (Branch, Coleman & Li, SIAM J. Sci. Comput. 21(1),
    1999) for dense Jacobians, the whole loop here.

    Each outer iteration: loss rescaling of ``J, f`` (Triggs et al. 2000), gradient
    ``g``, Coleman-Li scaling ``v, dv``, the scaled problem ``Jh = Js diag(d)``,
    ``d = sqrt(v) / scale_inv``, ``diag_h = g dv / scale_inv``; the augmented matrix
    ``[Jh; diag(sqrt(diag_h))]`` is factored once (LAPACK ``dgeqp3``) and Moré's
    LM-parameter search (:func:`lmpar`) solves the trust-region subproblem for every
    radius the inner loop tries; with bounds the step is chosen by
    :func:`_select_step` and kept strictly feasible.  Python is called only for
    ``fun(x) -> f``, ``jac(x) -> J`` (or ``fdjac(x, f) -> J``), the loss ``rho(f) ->
    (3, m)`` and the callback.

    Parameters
    ----------
    fun : callable, the user's residuals (validated and copied here)
    jac : callable ``jac(x) -> (m, n)`` or None
    fdjac : callable ``fdjac(x, f) -> (m, n)`` (finite differences) used when ``jac``
        is None
    J0 : ndarray (m, n), the validated Jacobian at ``x0``
    lb_, ub_ : bounds (``-inf``/``inf`` where absent); ``x0`` strictly inside
    rho : callable or None (linear loss)
    nfev0 : evaluations already made
    xscale : ndarray (n,) or None (``x_scale="jac"``)
    callback : callable ``callback(x, f, cost) -> bool`` or None; True stops.

    Returns
    -------
    x, f, Js, g, cost, optimality, status, nit, nfev, njev
        ``Js`` and ``g`` are the loss-scaled Jacobian and gradient at ``x``,
        ``optimality = ||g v||_inf``; ``status`` is SciPy's (-2 callback, 0
        max_nfev, 1 gtol, 2 ftol, 3 xtol, 4 ftol and xtol).
    """
    cdef int n = x0.shape[0], m = f0.shape[0], ma = m + n, lwork
    cdef Py_ssize_t i, j, nfev = nfev0, njev = 1
    cdef int status = -100, nit = 0
    cdef bint linear = rho is None, bounded = False, jac_scale = xscale is None
    cdef bint finite, ftol_ok, xtol_ok, moved
    cdef double cost, cost_new = 0.0, delta, g_norm, theta, actual, predicted, ratio
    cdef double step_norm, dx_norm, t, par
    for j in range(n):
        if isfinite(lb_[j]) or isfinite(ub_[j]):
            bounded = True
    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    fn_arr = np.empty(m)
    J_arr = np.empty((n, m))            # buffers column-major: J = J_arr.T
    Js_arr = np.empty((n, m))
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    cdef double* fn = <double*> cnp.PyArray_DATA(fn_arr)
    cdef double* Jc = <double*> cnp.PyArray_DATA(J_arr)
    cdef double* Js = <double*> cnp.PyArray_DATA(Js_arr)
    lwork = qr_lwork(ma, n)
    work_arr = np.empty(m * n + ma * n + ma + 6 * m + n * n + 26 * n + lwork)
    cdef double* Jh = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* Aug = Jh + m * n
    cdef double* qtc = Aug + ma * n
    cdef double* fs = qtc + ma          # fs, then its scratch row (2 m)
    cdef double* r1 = fs + 2 * m
    cdef double* r2 = r1 + m
    cdef double* mw1 = r2 + m
    cdef double* mw2 = mw1 + m
    cdef double* S = mw2 + m
    cdef double* lb = S + n * n
    cdef double* ub = lb + n
    cdef double* g = ub + n
    cdef double* scale_inv = g + n
    cdef double* v = scale_inv + n
    cdef double* dv = v + n
    cdef double* d = dv + n
    cdef double* diag_h = d + n
    cdef double* gh = diag_h + n
    cdef double* ones = gh + n
    cdef double* tau = ones + n
    cdef double* p = tau + n
    cdef double* p_h = p + n
    cdef double* xnew = p_h + n
    cdef double* r_h = xnew + n
    cdef double* ag_h = r_h + n
    cdef double* w1 = ag_h + n
    cdef double* w2 = w1 + n
    cdef double* sdiag = w2 + n
    cdef double* wa1 = sdiag + n
    cdef double* wa2 = wa1 + n
    cdef double* wa3 = wa2 + n
    cdef double* xsol = wa3 + n
    cdef double* qwork = xsol + n + 3 * n
    jpvt_arr = np.zeros(max(n, 1), dtype=np.intc)
    cdef int* jpvt = <int*> cnp.PyArray_DATA(jpvt_arr)
    cdef double[::1] xsv
    cdef object Jv
    memcpy(lb, &lb_[0], n * sizeof(double))
    memcpy(ub, &ub_[0], n * sizeof(double))
    for j in range(n):
        ones[j] = 1.0
    if not jac_scale:
        xsv = np.ascontiguousarray(xscale, dtype=np.float64)
        for j in range(n):
            scale_inv[j] = 1.0 / xsv[j]
    _jac_copy(J0, m, n, Jc)
    if linear:
        cost = 0.5 * _dot(m, f, f)
    else:
        cost = _rho_rows(rho, f_arr, m, r1, r2)
    with nogil:
        _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
        if jac_scale:
            enorm_cols(m, n, Js, scale_inv)
            for j in range(n):
                if scale_inv[j] == 0.0:
                    scale_inv[j] = 1.0
        if bounded:
            _cl_scaling(n, x, g, lb, ub, v, dv)
        else:
            for j in range(n):
                v[j] = 1.0
                dv[j] = 0.0
        for j in range(n):
            if dv[j] != 0.0:
                v[j] *= scale_inv[j]
            w1[j] = x[j] * scale_inv[j] / sqrt(v[j])
        delta = enorm(n, w1)
        if delta == 0.0:
            delta = 1.0
    while True:
        with nogil:
            if bounded:
                _cl_scaling(n, x, g, lb, ub, v, dv)
            g_norm = 0.0
            for j in range(n):
                t = fabs(g[j] * v[j])
                if t > g_norm:
                    g_norm = t
        if g_norm < gtol:
            status = 1
        if nfev >= max_nfev and status == -100:
            status = 0
        if status != -100:
            break
        with nogil:
            for j in range(n):
                # the distance to a bound, in units of the variable's scale
                if dv[j] != 0.0:
                    v[j] *= scale_inv[j]
                d[j] = sqrt(v[j]) / scale_inv[j]
                diag_h[j] = g[j] * dv[j] / scale_inv[j]
                gh[j] = d[j] * g[j]
                for i in range(m):
                    Jh[i + j * m] = Js[i + j * m] * d[j]
            theta = 1.0 - g_norm
            if theta < 0.995:
                theta = 0.995
            # the augmented subproblem matrix [Jh; diag(sqrt(diag_h))] and [fs; 0],
            # factored once for every radius the inner loop tries
            for j in range(n):
                memcpy(Aug + j * ma, Jh + j * m, m * sizeof(double))
                for i in range(n):
                    Aug[m + i + j * ma] = 0.0
                Aug[m + j + j * ma] = sqrt(diag_h[j])
            memcpy(qtc, fs, m * sizeof(double))
            for i in range(n):
                qtc[m + i] = 0.0
            qr_factor(ma, n, Aug, jpvt, tau, qwork, lwork)
            apply_qt(ma, n, Aug, tau, qtc, qwork, lwork)
        actual = -1.0
        while actual <= 0.0 and nfev < max_nfev:
            with nogil:
                par = lmpar(n, Aug, ma, jpvt, ones, qtc, delta, 0.0, xsol, sdiag, S,
                            wa1, wa2, wa3)
                for j in range(n):
                    p_h[j] = -xsol[j]
                    p[j] = d[j] * p_h[j]
                if bounded:
                    predicted = _select_step(m, n, x, Jh, diag_h, gh, p, p_h, d, delta,
                                             lb, ub, theta, r_h, ag_h, w1, w2, mw1, mw2)
                else:
                    predicted = -_model(m, n, Jh, gh, diag_h, p_h, mw1)
                for j in range(n):
                    xnew[j] = x[j] + p[j]
                if bounded:
                    moved = False
                    for j in range(n):
                        if xnew[j] <= lb[j] or xnew[j] >= ub[j]:
                            moved = True
                    if moved:
                        _make_feasible(n, xnew, lb, ub, 0.0)
                    _make_feasible(n, xnew, lb, ub, 1e-10)
            _fun_into(fun, xnew, n, m, fn)
            nfev += 1
            step_norm = enorm(n, p_h)
            if not _all_finite(m, fn):
                delta = 0.25 * step_norm
                continue
            if linear:
                cost_new = 0.5 * _dot(m, fn, fn)
            else:
                cost_new = _rho_rows(rho, fn_arr, m, r1, r2)
            actual = cost - cost_new
            if predicted > 0.0:
                ratio = actual / predicted
            else:
                ratio = 1.0 if actual > 0.0 else 0.0
            if ratio < 0.25:
                delta = 0.25 * step_norm
            elif ratio > 0.75 and step_norm > 0.95 * delta:
                delta *= 2.0
            for j in range(n):
                w1[j] = xnew[j] - x[j]
            dx_norm = enorm(n, w1)
            ftol_ok = actual >= 0.0 and actual < ftol * cost and ratio > 0.25
            xtol_ok = dx_norm < xtol * (xtol + enorm(n, x))
            if ftol_ok and xtol_ok:
                status = 4
            elif ftol_ok:
                status = 2
            elif xtol_ok:
                status = 3
            if status != -100:
                break
        nit += 1
        if actual > 0.0:
            memcpy(x, xnew, n * sizeof(double))
            memcpy(f, fn, m * sizeof(double))
            cost = cost_new
            # (with a loss, r1 and r2 hold the rows of this point: the last evaluated)
            if jac is not None:
                _jac_into(jac, _new_vec(n, x), m, n, Jc)
            else:
                Jv = fdjac(_new_vec(n, x), _new_vec(m, f))
                _jac_copy(Jv, m, n, Jc)
            njev += 1
            with nogil:
                _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
                if jac_scale:
                    enorm_cols(m, n, Js, w1)
                    for j in range(n):
                        if w1[j] > scale_inv[j]:
                            scale_inv[j] = w1[j]
            if verbose == 2:
                print(f"trf it {nit}: cost={cost:.6e} nfev={nfev}")
            if status == -100 and callback is not None and \
                    callback(_new_vec(n, x), _new_vec(m, f), cost):
                status = -2
        if status != -100:
            break
        if nfev >= max_nfev:
            status = 0
            break
    if bounded:
        _cl_scaling(n, x, g, lb, ub, v, dv)
    g_norm = 0.0
    for j in range(n):
        t = fabs(g[j] * v[j])
        if t > g_norm:
            g_norm = t
    return (x_arr, f_arr, Js_arr.T, _new_vec(n, g), cost, g_norm, status, nit, nfev,
            njev)


# ---------------------------------------------------------------------------
# Helpers for the Python drivers (gn, trf) and for tests
# ---------------------------------------------------------------------------
cdef int qr_lstsq_c(int m, int n, double* A, double* c, int* jpvt, double* tau,
                    double* work, int lwork, double* z, double* p,
                    double rcond) noexcept nogil:
    """``p = argmin ||A p + c||`` by pivoted QR (A column-major, ld ``m``; A and c
    are overwritten); columns with ``|R_kk| <= rcond |R_00|`` are dropped (p = 0
    there).  Returns the rank."""
    cdef int i, j, rank = 0, k = n if n < m else m
    cdef double t
    for j in range(n):
        p[j] = 0.0
    if n == 0 or m == 0:
        return 0
    qr_factor(m, n, A, jpvt, tau, work, lwork)
    apply_qt(m, k, A, tau, c, work, lwork)
    for j in range(k):
        if fabs(A[j + j * m]) > rcond * fabs(A[0]) and A[j + j * m] != 0.0:
            rank += 1
        else:
            break
    for j in range(rank - 1, -1, -1):
        t = -c[j]
        for i in range(j + 1, rank):
            t -= A[j + i * m] * z[i]
        z[j] = t / A[j + j * m]
    for j in range(rank):
        p[jpvt[j]] = z[j]
    return rank


cdef int qr_lwork(int m, int n):
    """Workspace size for :func:`qr_lstsq_c` (dgeqp3's query, at least dormqr's)."""
    cdef int lwork = -1, info = 0
    cdef double wq = 0.0
    cdef double a1 = 0.0, tau1 = 0.0
    cdef int jp1 = 0
    if m == 0 or n == 0:
        return 1
    dgeqp3(&m, &n, &a1, &m, &jp1, &tau1, &wq, &lwork, &info)
    return max(<int> wq, n * 64 + 64)


def qr_lstsq(J, f, double rcond=-1.0):
    """Solve ``min ||J p + f||`` by pivoted QR (dgeqp3); columns with
    ``|R_kk| <= rcond * |R_00|`` are dropped (their components set to 0).

    Returns ``(p, rank)``.  ``rcond < 0`` means ``eps * max(m, n)``.
    """
    cdef cnp.ndarray Af = np.array(J, dtype=np.float64, order="F", copy=True)
    if Af.ndim != 2:
        raise ValueError(f"J must be a 2-D array, got shape {np.shape(Af)}")
    cdef int m = Af.shape[0], n = Af.shape[1], lwork, rank
    fa = np.asarray(f, dtype=np.float64)
    if fa.shape != (m,):
        raise ValueError(f"f must have shape ({m},), got {fa.shape}")
    if not (np.isfinite(Af).all() and np.isfinite(fa).all()):
        raise ValueError("J and f must be finite")
    if rcond < 0:
        rcond = EPSMCH * max(m, n)
    p = np.zeros(n)
    if n == 0 or m == 0:
        return p, 0
    cdef double[::1, :] A = Af
    cdef double[::1] c = np.array(f, dtype=np.float64, copy=True)
    cdef double[::1] tau = np.empty(max(min(m, n), 1))
    cdef int[::1] jpvt = np.zeros(max(n, 1), dtype=np.intc)
    cdef double[::1] z = np.zeros(max(n, 1))
    cdef double[::1] pv = p
    lwork = qr_lwork(m, n)
    cdef double[::1] work = np.empty(lwork)
    with nogil:
        rank = qr_lstsq_c(m, n, &A[0, 0], &c[0], &jpvt[0], &tau[0], &work[0], lwork,
                          &z[0], &pv[0], rcond)
    return p, rank


def lm_step(J, f, diag, double delta, double par0=0.0):
    """One Levenberg-Marquardt parameter search (Moré 1978, section 5).

    Returns ``(p, par)``: ``p`` solves ``(J^T J + par D^2) p = -J^T f`` with
    ``par = 0`` and ``||D p|| <= 1.1 delta``, or ``| ||D p|| - delta | <= 0.1 delta``
    (up to the 10 iterations of the search).  Requires ``m >= n`` and ``diag > 0``.
    """
    cdef cnp.ndarray Af = np.array(J, dtype=np.float64, order="F", copy=True)
    cdef int m = Af.shape[0], n = Af.shape[1], lwork, i
    cdef double wq = 0.0, par
    cdef double[::1, :] A = Af
    cdef double[::1] c = np.array(f, dtype=np.float64, copy=True)
    cdef double[::1] d = np.array(diag, dtype=np.float64, copy=True)
    cdef double[::1] tau = np.empty(n)
    cdef int[::1] jpvt = np.zeros(n, dtype=np.intc)
    x = np.empty(n)
    cdef double[::1] xv = x
    cdef double[::1] sdiag = np.empty(n), S = np.empty(n * n)
    cdef double[::1] w1 = np.empty(n), w2 = np.empty(n), w3 = np.empty(n)
    lwork = -1
    dgeqp3(&m, &n, &A[0, 0], &m, &jpvt[0], &tau[0], &wq, &lwork, &i)
    lwork = max(<int> wq, n * 64 + 64)
    cdef double[::1] work = np.empty(lwork)
    with nogil:
        qr_factor(m, n, &A[0, 0], &jpvt[0], &tau[0], &work[0], lwork)
        apply_qt(m, n, &A[0, 0], &tau[0], &c[0], &work[0], lwork)
        par = lmpar(n, &A[0, 0], m, &jpvt[0], &d[0], &c[0], delta, par0, &xv[0],
                    &sdiag[0], &S[0], &w1[0], &w2[0], &w3[0])
    return -x, par


def qrfac_py(J, Py_ssize_t repeat=1):
    """MINPACK-rule pivoted QR of ``J`` (m >= n) by :func:`qrfac` (for tests and
    timing).  Returns ``(a, ipvt, rdiag, acnorm)``: ``a`` the factored matrix
    (column-major, reflectors below the diagonal), ``ipvt`` 0-based.  ``repeat > 1``
    refactors copies of ``J`` that many times (timing only)."""
    cdef cnp.ndarray J0 = np.array(J, dtype=np.float64, order="F", copy=True)
    cdef int m = J0.shape[0], n = J0.shape[1]
    cdef Py_ssize_t r
    if J0.ndim != 2 or m < n or n == 0:
        raise ValueError("J must be a 2-D array with m >= n >= 1")
    a_arr = np.empty((m, n), order="F")
    cdef double[::1, :] a = a_arr
    cdef double[::1, :] src = J0
    cdef int[::1] ipvt = np.empty(n, dtype=np.intc)
    rdiag = np.empty(n)
    acnorm = np.empty(n)
    cdef double[::1] rd = rdiag, ac = acnorm, wa = np.empty(n)
    with nogil:
        for r in range(repeat):
            memcpy(&a[0, 0], &src[0, 0], m * n * sizeof(double))
            qrfac(m, n, &a[0, 0], &ipvt[0], &rd[0], &ac[0], &wa[0], 0)
    return a_arr, np.asarray(ipvt), rdiag, acnorm


def enorm_py(double[::1] x):
    """:func:`enorm` of ``x`` (for tests)."""
    if x.shape[0] == 0:
        return 0.0
    return enorm(x.shape[0], &x[0])
