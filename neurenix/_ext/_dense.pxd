# cython: language_level=3
"""Dense and band kernels of the dense trust-region subproblems (``trust-exact``'s
Moré-Sorensen and ``dogleg``, in :mod:`neurenix._ext._subproblems`): the
bandwidth of a Hessian, LAPACK's ``?potrf`` (``scipy.linalg.cython_lapack``) and a
typed band Cholesky, triangular solves, the bounds of ``H`` (Gershgorin, norms,
Moré & Sorensen 1983, section 3; Conn, Gould & Toint 2000, section 7.3.8), the
condition estimator of Cline, Moler, Stewart & Wilkinson (1979) and the symmetry
test.

``cdef inline`` on raw pointers, fused ``floating``, no Python object: compiled
into the module that cimports them, as when they were private to ``_krylov.pyx``.
"""
from cython cimport floating
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.string cimport memcpy
from scipy.linalg.cython_lapack cimport dpotrf, spotrf

from ._vec cimport (LANES16, fold16, dot_lanes16, nrm2sq_lanes16, asum_lanes16,
                    asum_sq_lanes16)


# the dense subproblems take the band path when H has at most n // BAND_RATIO
# sub-diagonals (then the band factorization is cheaper than LAPACK's dense one)
cdef enum:
    BAND_RATIO = 8


cdef struct DenseState:
    # bounds of the Hessian at the point (Moré & Sorensen 1983, section 3;
    # Conn, Gould & Toint 2000, section 7.3.8)
    double gnorm, glo, ghi, hfro, hinf, mindiag, close0
    double k_easy, k_hard, theta
    Py_ssize_t maxiter
    # storage of the factor: band (kd sub-diagonals, LAPACK's lower band layout,
    # L(i, j) = L[j * cs + i] for j <= i <= j + kd, cs = kd) or dense (column-major,
    # cs = n, kd = n - 1); ``allow_band`` False forces the dense path
    bint band, allow_band
    Py_ssize_t kd, cs
    double* rdiag           # band path: 1 / L_jj (the solves multiply, as ?pbtf2 scales)
    # state kept between solves at one point (a rejected step shrinks the radius)
    double prev_radius, lam_lb, lam
    Py_ssize_t niter
    Py_ssize_t nfact        # factorizations of H + lam I made (all points, all solves)
    # dogleg: Newton point (0 not yet, 1 computed, -1 H not positive definite),
    # Cauchy data (0 not yet, 1 computed, -1 g^T H g <= 0)
    int newton, cauchy
    double nb, gHg


cdef inline bint _any_nonzero(const floating* a, Py_ssize_t m) noexcept nogil:
    """True when some a_i is not +-0 (NaN and inf count as nonzero): an OR of the bits
    without the sign bit, in 32 lanes of integers (four vector registers; no branch
    per entry)."""
    cdef unsigned long long u[32]
    cdef unsigned int v[32]
    cdef unsigned long long acc = 0
    cdef const unsigned long long* wa
    cdef const unsigned int* va
    cdef Py_ssize_t i, q = m - m % 32
    cdef int j
    if floating is double:
        wa = <const unsigned long long*>a
        for j in range(32):
            u[j] = 0
        for i in range(0, q, 32):
            for j in range(32):
                u[j] |= wa[i + j]
        for i in range(q, m):
            acc |= wa[i]
        for j in range(32):
            acc |= u[j]
        return (acc & 0x7fffffffffffffffULL) != 0
    else:
        va = <const unsigned int*>a
        for j in range(32):
            v[j] = 0
        for i in range(0, q, 32):
            for j in range(32):
                v[j] |= va[i + j]
        for i in range(q, m):
            acc |= va[i]
        for j in range(32):
            acc |= v[j]
        return (acc & 0x7fffffffULL) != 0


cdef inline Py_ssize_t _bandwidth(const floating* H, Py_ssize_t n, Py_ssize_t kmax) noexcept nogil:
    """The bandwidth ``max |i - j|`` over the entries ``H_ij != 0`` (NaN counts as
    nonzero) of the (n, n) C-ordered ``H``, both triangles; ``kmax + 1`` as soon as it
    exceeds ``kmax``.  Only entries outside the band found so far are read: the gap
    between the band of row i and that of row i + 1 is contiguous in memory (the end
    of row i, the start of row i + 1), so one bit test per gap; a dense matrix exits
    in its first gap (O(n)), a band one costs one pass over its zeros."""
    cdef Py_ssize_t i, j, kd = 0, a, b
    for i in range(n - 1):
        # row i, columns i + kd + 1 .. n - 1, then row i + 1, columns 0 .. i - kd
        a = i * n + (i + kd + 1 if i + kd + 1 < n else n)
        b = (i + 1) * n + (i + 1 - kd if i + 1 > kd else 0)
        if a < b and _any_nonzero(&H[a], b - a):
            # the farthest nonzero of row i (right of its diagonal) and the first
            # of row i + 1 (left of its diagonal)
            j = n - 1
            while j > i + kd and H[i * n + j] == 0:
                j -= 1
            if j - i > kd:
                kd = j - i
            j = 0
            while j < i + 1 - kd and H[(i + 1) * n + j] == 0:
                j += 1
            if i + 1 - j > kd:
                kd = i + 1 - j
            if kd > kmax:
                return kmax + 1
    return kd


cdef inline int _potrf(floating* L, int n) noexcept nogil:
    cdef int info = 0
    if floating is double:
        dpotrf(b"L", &n, L, &n, &info)
    else:
        spotrf(b"L", &n, L, &n, &info)
    return info


cdef inline int _pbtrf(floating* L, Py_ssize_t n, Py_ssize_t kd, double* rdiag) noexcept nogil:
    """Cholesky factorization in place of a band matrix in LAPACK's lower band layout
    (``L[j * kd + i]`` holds ``A(i, j)``, ``j <= i <= j + kd``), column by column as
    LAPACK's unblocked ``?pbtf2``, typed (for the narrow bands it serves, a BLAS call
    per column would cost more than its arithmetic); ``rdiag[j] = 1 / L_jj``.  The
    trailing update ``A_rc -= l_r l_c`` is made as ``A_rc -= a_r (a_c / d)`` (``a``
    the column before scaling, ``d`` its pivot), which keeps the square root out of
    the chain of dependent operations from one pivot to the next.  Returns 0, or the
    order ``k`` (1-based) of the first leading minor that is not positive definite
    (columns before it hold the factor), as ``?potrf``."""
    cdef Py_ssize_t j, r, c, m
    cdef floating* col
    cdef floating* nxt
    cdef double d, rs, uc
    for j in range(n):
        col = &L[j * (kd + 1)]
        d = <double>col[0]
        if not d > 0.0:
            return <int>(j + 1)
        m = kd if kd < n - 1 - j else n - 1 - j
        # A(j+1:j+m, j+1:j+m) -= a a^T / d (lower part), a = A(j+1:j+m, j)
        for c in range(1, m + 1):
            uc = <double>col[c] / d
            nxt = &L[(j + c) * (kd + 1)]       # column j + c, from its diagonal
            for r in range(c, m + 1):
                nxt[r - c] = <floating>(nxt[r - c] - col[r] * uc)
        rs = 1.0 / sqrt(d)
        rdiag[j] = rs
        col[0] = <floating>(d * rs)
        for r in range(1, m + 1):
            col[r] = <floating>(col[r] * rs)
    return 0


cdef inline void _tbsv(const floating* L, const double* rdiag, Py_ssize_t m, Py_ssize_t kd,
                       bint trans, floating* b) noexcept nogil:
    """b <- L^{-1} b (or L^{-T} b) for the leading m x m block of the band factor L
    (lower band layout, ``kd`` sub-diagonals, ``rdiag = 1 / diag(L)``): forward /
    backward substitution."""
    cdef Py_ssize_t j, r, q
    cdef const floating* col
    cdef double t
    if not trans:
        for j in range(m):
            col = &L[j * (kd + 1)]
            t = <double>b[j] * rdiag[j]
            b[j] = <floating>t
            q = kd if kd < m - 1 - j else m - 1 - j
            for r in range(1, q + 1):
                b[j + r] = <floating>(b[j + r] - col[r] * t)
    else:
        for j in range(m - 1, -1, -1):
            col = &L[j * (kd + 1)]
            q = kd if kd < m - 1 - j else m - 1 - j
            t = <double>b[j]
            for r in range(1, q + 1):
                t -= <double>col[r] * <double>b[j + r]
            b[j] = <floating>(t * rdiag[j])


cdef extern from *:
    """
    /* Four dot products of columns c0..c3 with one vector b over [i, m), summed
       in double in eight lanes (lane q takes the elements i + q mod 8, the tail
       goes to lanes 0, 1, ...; combined pairwise): one pass that loads b once. */
    #if defined(__GNUC__) || defined(__clang__)
    typedef double nxk_v8d __attribute__((vector_size(64)));
    typedef float nxk_v8f __attribute__((vector_size(32)));
    #define NXK_FOLD8(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
    #define NXK_DOTS4(NAME, T, LOAD) \
    static inline void NAME(const T* c0, const T* c1, const T* c2, const T* c3, const T* b, \
                            Py_ssize_t i, Py_ssize_t m, double* out) { \
        nxk_v8d s0 = {0, 0, 0, 0, 0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0, vb, v; \
        Py_ssize_t q; \
        for (; i + 8 <= m; i += 8) { \
            LOAD(vb, b + i); \
            LOAD(v, c0 + i); s0 += v * vb; \
            LOAD(v, c1 + i); s1 += v * vb; \
            LOAD(v, c2 + i); s2 += v * vb; \
            LOAD(v, c3 + i); s3 += v * vb; \
        } \
        for (q = 0; i < m; i++, q++) { \
            double x = (double)b[i]; \
            s0[q] += (double)c0[i] * x; s1[q] += (double)c1[i] * x; \
            s2[q] += (double)c2[i] * x; s3[q] += (double)c3[i] * x; \
        } \
        out[0] = NXK_FOLD8(s0); out[1] = NXK_FOLD8(s1); \
        out[2] = NXK_FOLD8(s2); out[3] = NXK_FOLD8(s3); \
    }
    #define NXK_LOAD_D(v, p) __builtin_memcpy(&(v), (p), 64)
    #define NXK_LOAD_F(v, p) do { nxk_v8f f_; __builtin_memcpy(&f_, (p), 32); \
                                  (v) = __builtin_convertvector(f_, nxk_v8d); } while (0)
    #else
    /* other compilers: the same lanes as plain arrays (the same sums) */
    #define NXK_FOLD8(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
    #define NXK_DOTS4(NAME, T, LOAD) \
    static void NAME(const T* c0, const T* c1, const T* c2, const T* c3, const T* b, \
                     Py_ssize_t i, Py_ssize_t m, double* out) { \
        double s0[8] = {0}, s1[8] = {0}, s2[8] = {0}, s3[8] = {0}; \
        Py_ssize_t q; \
        for (; i + 8 <= m; i += 8) \
            for (q = 0; q < 8; q++) { \
                double x = (double)b[i + q]; \
                s0[q] += (double)c0[i + q] * x; s1[q] += (double)c1[i + q] * x; \
                s2[q] += (double)c2[i + q] * x; s3[q] += (double)c3[i + q] * x; \
            } \
        for (q = 0; i < m; i++, q++) { \
            double x = (double)b[i]; \
            s0[q] += (double)c0[i] * x; s1[q] += (double)c1[i] * x; \
            s2[q] += (double)c2[i] * x; s3[q] += (double)c3[i] * x; \
        } \
        out[0] = NXK_FOLD8(s0); out[1] = NXK_FOLD8(s1); \
        out[2] = NXK_FOLD8(s2); out[3] = NXK_FOLD8(s3); \
    }
    #endif
    NXK_DOTS4(nxk_dots4_d, double, NXK_LOAD_D)
    NXK_DOTS4(nxk_dots4_f, float, NXK_LOAD_F)
    """
    void nxk_dots4_d(const double* c0, const double* c1, const double* c2, const double* c3,
                     const double* b, Py_ssize_t i, Py_ssize_t m, double* out) noexcept nogil
    void nxk_dots4_f(const float* c0, const float* c1, const float* c2, const float* c3,
                     const float* b, Py_ssize_t i, Py_ssize_t m, double* out) noexcept nogil


cdef inline void _trsv_dense(const floating* L, const double* rdiag, Py_ssize_t m, Py_ssize_t cs,
                             bint trans, floating* b) noexcept nogil:
    """b <- L^{-1} b (or L^{-T} b) for the leading m x m block of the dense factor
    (column-major, leading dimension ``cs``, ``rdiag = 1 / diag(L)``), four columns
    per pass so that b is loaded once per four columns instead of once per column.
    Forward substitution: columns j..j+3 are applied to each b[i] below the block in
    column order (the same operations, in the same order, as one column at a time).
    Backward substitution: the four dot products of columns j..j+3 with the solved
    part of b below the block are summed together (:c:func:`nxk_dots4_d`, in double),
    then the 4 x 4 triangle.  At n = 100 this is about twice as fast as one column
    per pass (measured), which was itself faster than BLAS ``?trsv`` there."""
    cdef Py_ssize_t j, i, q, e
    cdef const floating* c0
    cdef const floating* c1
    cdef const floating* c2
    cdef const floating* c3
    cdef double t0, t1, t2, t3
    cdef double s0[4]
    cdef double x
    cdef floating v
    if not trans:
        j = 0
        while j + 4 <= m:
            c0 = &L[j * cs]; c1 = &L[(j + 1) * cs]; c2 = &L[(j + 2) * cs]; c3 = &L[(j + 3) * cs]
            t0 = <double>b[j] * rdiag[j]
            b[j] = <floating>t0
            v = <floating>(b[j + 1] - c0[j + 1] * t0)
            t1 = <double>v * rdiag[j + 1]
            b[j + 1] = <floating>t1
            v = <floating>(b[j + 2] - c0[j + 2] * t0)
            v = <floating>(v - c1[j + 2] * t1)
            t2 = <double>v * rdiag[j + 2]
            b[j + 2] = <floating>t2
            v = <floating>(b[j + 3] - c0[j + 3] * t0)
            v = <floating>(v - c1[j + 3] * t1)
            v = <floating>(v - c2[j + 3] * t2)
            t3 = <double>v * rdiag[j + 3]
            b[j + 3] = <floating>t3
            for i in range(j + 4, m):
                v = <floating>(b[i] - c0[i] * t0)
                v = <floating>(v - c1[i] * t1)
                v = <floating>(v - c2[i] * t2)
                b[i] = <floating>(v - c3[i] * t3)
            j += 4
        while j < m:
            c0 = &L[j * cs]
            t0 = <double>b[j] * rdiag[j]
            b[j] = <floating>t0
            for i in range(j + 1, m):
                b[i] = <floating>(b[i] - c0[i] * t0)
            j += 1
    else:
        # rows from the bottom in blocks of four: the dots below the block share
        # the loads of b, then the 4 x 4 triangle
        e = m
        while e >= 4:
            j = e - 4
            c0 = &L[j * cs]; c1 = &L[(j + 1) * cs]; c2 = &L[(j + 2) * cs]; c3 = &L[(j + 3) * cs]
            if floating is double:
                nxk_dots4_d(c0, c1, c2, c3, b, e, m, s0)
            else:
                nxk_dots4_f(c0, c1, c2, c3, b, e, m, s0)
            t0 = s0[0]; t1 = s0[1]; t2 = s0[2]; t3 = s0[3]
            x = (<double>b[j + 3] - t3) * rdiag[j + 3]
            b[j + 3] = <floating>x
            t2 += <double>c2[j + 3] * <double>b[j + 3]
            t1 += <double>c1[j + 3] * <double>b[j + 3]
            t0 += <double>c0[j + 3] * <double>b[j + 3]
            x = (<double>b[j + 2] - t2) * rdiag[j + 2]
            b[j + 2] = <floating>x
            t1 += <double>c1[j + 2] * <double>b[j + 2]
            t0 += <double>c0[j + 2] * <double>b[j + 2]
            x = (<double>b[j + 1] - t1) * rdiag[j + 1]
            b[j + 1] = <floating>x
            t0 += <double>c0[j + 1] * <double>b[j + 1]
            b[j] = <floating>((<double>b[j] - t0) * rdiag[j])
            e -= 4
        while e > 0:
            e -= 1
            c0 = &L[e * cs]
            t0 = 0.0
            for i in range(e + 1, m):
                t0 += <double>c0[i] * <double>b[i]
            b[e] = <floating>((<double>b[e] - t0) * rdiag[e])


cdef inline void _lsolve(const DenseState* s, const floating* L, Py_ssize_t m, bint trans,
                         floating* b) noexcept nogil:
    """b <- L^{-1} b (or L^{-T} b), leading m x m block of the factor (band or dense)."""
    if s.band:
        _tbsv(L, s.rdiag, m, s.kd, trans, b)
    else:
        _trsv_dense(L, s.rdiag, m, s.cs, trans, b)


cdef inline void _potrs(const DenseState* s, const floating* L, Py_ssize_t n,
                        floating* b) noexcept nogil:
    """b <- (L L^T)^{-1} b: two triangular solves."""
    _lsolve(s, L, n, False, b)
    _lsolve(s, L, n, True, b)


cdef inline int _factor_shifted(const DenseState* s, const floating* H, floating* L,
                                Py_ssize_t n, double lam) noexcept nogil:
    """L <- cholesky(H + lam I), lower: the band factor (``s.band``) or LAPACK
    ``?potrf`` (column-major).  Column j of the lower triangle of the symmetric H is
    row j of the C-ordered H from j on (its first ``kd + 1`` entries for a band)."""
    cdef Py_ssize_t i, j, m, cs = s.cs
    cdef int info
    if s.band:
        for j in range(n):
            m = n - j if n - j < s.kd + 1 else s.kd + 1
            for i in range(m):
                L[j * cs + j + i] = H[j * n + j + i]
            L[j * cs + j] = <floating>(L[j * cs + j] + lam)
        return _pbtrf(L, n, s.kd, s.rdiag)
    for j in range(n):
        memcpy(&L[j * cs + j], &H[j * n + j], (n - j) * sizeof(floating))
        L[j * cs + j] = <floating>(L[j * cs + j] + lam)
    info = _potrf(L, <int>n)
    # reciprocals of the factored diagonal (the leading block on a failure) for the
    # solves, which multiply
    m = n if info == 0 else info - 1
    for j in range(m):
        s.rdiag[j] = 1.0 / <double>L[j * cs + j]
    return info


cdef inline void _row_range(const DenseState* s, Py_ssize_t i, Py_ssize_t n,
                            Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Columns [lo, hi) of row i that can hold nonzeros (all for the dense path)."""
    if s.band:
        lo[0] = i - s.kd if i > s.kd else 0
        hi[0] = i + s.kd + 1 if i + s.kd + 1 < n else n
    else:
        lo[0] = 0
        hi[0] = n


cdef inline double _row_dot(const DenseState* s, const floating* H, const floating* p,
                            Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """(H p)_i over the columns of row i that can hold nonzeros (a plain sum for a
    short band row: the 16-lane reduction costs more than it saves there)."""
    cdef Py_ssize_t lo, hi, j
    cdef double t = 0.0
    _row_range(s, i, n, &lo, &hi)
    if hi - lo >= LANES16:
        return dot_lanes16(&H[i * n + lo], &p[lo], hi - lo)
    for j in range(lo, hi):
        t += <double>H[i * n + j] * <double>p[j]
    return t


cdef inline double _quad_form(const DenseState* s, const floating* H, const floating* p,
                              Py_ssize_t n) noexcept nogil:
    """p^T H p (rows of the C-ordered H; the band only, for a band H)."""
    cdef Py_ssize_t i
    cdef double t = 0.0
    for i in range(n):
        t += <double>p[i] * _row_dot(s, H, p, i, n)
    return t


cdef inline void _gersh_row(double r, double dg, double* rmax, double* glo, double* ghi,
                            double* mind) noexcept nogil:
    """Fold row i (absolute row sum ``r``, diagonal ``dg``) into the infinity norm, the
    Gershgorin interval and the smallest diagonal entry."""
    if r > rmax[0]:
        rmax[0] = r
    r -= fabs(dg)
    if dg - r < glo[0]:
        glo[0] = dg - r
    if dg + r > ghi[0]:
        ghi[0] = dg + r
    if dg < mind[0]:
        mind[0] = dg


cdef inline void _dense_bounds(const floating* H, Py_ssize_t n, DenseState* s,
                               double* work) noexcept nogil:
    """Gershgorin bounds ``glo <= lambda_min``, ``ghi >= lambda_max``, ``||H||_F``,
    ``||H||_inf`` (max absolute row sum) and the smallest diagonal entry, in one pass
    (over the band only, for a band H: the other entries are zero).  On the dense
    path with ``work`` (2n doubles) the absolute sums are accumulated down the
    columns -- a pass of plain vector adds, no reduction per row -- and read as the
    row sums (equal for the symmetric H; for any H they are the Gershgorin discs of
    H^T, which has the same eigenvalues)."""
    cdef Py_ssize_t i, j, lo, hi
    cdef double glo = INFINITY, ghi = -INFINITY, fro = 0.0, rmax = 0.0, mind = INFINITY
    cdef double r, v, dg
    cdef double* csum
    cdef double* csq
    cdef const floating* row
    if work != NULL and not s.band:
        csum = work
        csq = work + n
        for j in range(n):
            csum[j] = 0.0
            csq[j] = 0.0
        for i in range(n):
            row = &H[i * n]
            for j in range(n):
                v = fabs(<double>row[j])
                csum[j] += v
                csq[j] += v * v
        fro = asum_lanes16(csq, n)
        for i in range(n):
            _gersh_row(csum[i], H[i * n + i], &rmax, &glo, &ghi, &mind)
        s.glo = glo
        s.ghi = ghi
        s.hfro = sqrt(fro)
        s.hinf = rmax
        s.mindiag = mind
        return
    for i in range(n):
        _row_range(s, i, n, &lo, &hi)
        if hi - lo >= LANES16:
            r = asum_sq_lanes16(&H[i * n + lo], hi - lo, &v)
        else:
            r = 0.0
            v = 0.0
            for j in range(lo, hi):
                dg = <double>H[i * n + j]
                r += fabs(dg)
                v += dg * dg
        fro += v
        _gersh_row(r, H[i * n + i], &rmax, &glo, &ghi, &mind)
    s.glo = glo
    s.ghi = ghi
    s.hfro = sqrt(fro)
    s.hinf = rmax
    s.mindiag = mind


cdef inline double _smallest_sv(const DenseState* s, const floating* L, Py_ssize_t n, floating* w,
                                floating* z, double* acc) noexcept nogil:
    """Estimate of the smallest singular value of the Cholesky factor L (A = L L^T)
    and its right singular vector ``z`` (unit), in O(n^2) (O(n kd) for a band): the
    condition estimator of Cline, Moler, Stewart & Wilkinson (SIAM J. Numer. Anal.
    16(2), 1979; Golub & Van Loan, Matrix Computations, 4th ed., Alg. 3.5.1).
    ``L w = e`` is solved by forward substitution with ``e_k = +-1`` chosen greedily
    to make ``w`` large (look-ahead on the 1-norm of the updated partial sums), then
    ``L^T v = w``; ``s = ||w|| / ||v||`` and ``z = v / ||v||``, so that ``z^T A z =
    s^2``.  For a band L the look-ahead runs over the band: below it ``L_ik`` and
    the partial sums are zero, so the sums and the choices are the dense ones."""
    cdef Py_ssize_t i, k, hi, cs = s.cs
    cdef double lkk, wp, wm, sp, sm, wk, t, wn, vn
    cdef double sps[LANES16]
    cdef double sms[LANES16]
    cdef int q
    cdef const floating* col
    for i in range(n):
        acc[i] = 0.0
    for k in range(n):
        col = &L[k * cs]                # col[i] = L(i, k)
        hi = k + s.kd + 1 if k + s.kd + 1 < n else n
        lkk = col[k]
        wp = (1.0 - acc[k]) / lkk
        wm = (-1.0 - acc[k]) / lkk
        # the two look-ahead sums in LANES16 partial sums each (one vectorized pass;
        # the sums only decide the sign e_k)
        for q in range(LANES16):
            sps[q] = 0.0
            sms[q] = 0.0
        i = k + 1
        while i + LANES16 <= hi:
            for q in range(LANES16):
                t = <double>col[i + q]
                sps[q] += fabs(acc[i + q] + t * wp)
                sms[q] += fabs(acc[i + q] + t * wm)
            i += LANES16
        while i < hi:
            t = <double>col[i]
            sps[0] += fabs(acc[i] + t * wp)
            sms[0] += fabs(acc[i] + t * wm)
            i += 1
        sp = fabs(wp) + fold16(sps)
        sm = fabs(wm) + fold16(sms)
        wk = wp if sp >= sm else wm
        w[k] = <floating>wk
        for i in range(k + 1, hi):
            acc[i] += <double>col[i] * wk
    memcpy(z, w, n * sizeof(floating))
    _lsolve(s, L, n, True, z)
    wn = sqrt(nrm2sq_lanes16(w, n))
    vn = sqrt(nrm2sq_lanes16(z, n))
    for i in range(n):
        z[i] = <floating>(z[i] / vn)
    return wn / vn


cdef inline double _leading_singular_shift(const DenseState* s, const floating* H,
                                           const floating* L, Py_ssize_t n, int k, double lam,
                                           floating* v) noexcept nogil:
    """After the factorization failed at pivot ``k`` (1-based) on ``A = H + lam I``:
    ``delta`` such that the leading k x k block of ``A + delta e_k e_k^T`` is
    singular, and ``v`` (``v_k = 1``, zero below) with ``v^T (A + delta e_k e_k^T) v
    = 0``; returns ``delta / ||v||^2`` (Moré & Sorensen 1983, section 3: ``lam +
    delta/||v||^2`` is a lower bound of ``-lambda_min(H)``).  The row ``l = L_11^{-1}
    a_{1:k-1,k}`` is recomputed from H and the valid leading factor."""
    cdef Py_ssize_t i, km = k - 1
    cdef double delta
    for i in range(n):
        v[i] = 0
    # l = L11^{-1} A[0:km, km]  (A's off-diagonal entries are H's; zero off the band)
    for i in range(km):
        v[i] = H[km * n + i]
    _lsolve(s, L, km, False, v)
    delta = nrm2sq_lanes16(v, km) - (<double>H[km * n + km] + lam)
    # v[0:km] = -L11^{-T} l, v[km] = 1
    for i in range(km):
        v[i] = -v[i]
    _lsolve(s, L, km, True, v)
    v[km] = 1
    return delta / nrm2sq_lanes16(v, n)


cdef inline double _safeguard(double lo, double hi, double theta) noexcept nogil:
    """A multiplier inside [lo, hi] (Conn, Gould & Toint 2000, eq. 7.3.14)."""
    cdef double a = sqrt(fabs(lo * hi)), b = lo + theta * (hi - lo)
    return a if a > b else b


cdef inline double _asym(const floating* H, Py_ssize_t n, Py_ssize_t kd,
                         double* amax) noexcept nogil:
    """max_ij |H_ij - H_ji| (returned) and max_ij |H_ij| (in ``amax``) over the band
    |i - j| <= kd (every entry when kd = n - 1); NaN entries are skipped (the
    finiteness test is made elsewhere)."""
    cdef Py_ssize_t i, j, lo, hi
    cdef double d, s = 0.0, m = 0.0, v
    for i in range(n):
        lo = i - kd if i > kd else 0
        hi = i + kd + 1 if i + kd + 1 < n else n
        for j in range(lo, hi):
            v = fabs(<double>H[i * n + j])
            m = v if v > m else m
        for j in range(lo, i):
            d = fabs(<double>H[i * n + j] - <double>H[j * n + i])
            s = d if d > s else s
    amax[0] = m
    return s


cdef extern from *:
    """
    /* max |H_ij - H_ji| (returned) and max |H_ij| (in *amax) over a dense n x n
       C-ordered H, by 16 x 16 tiles: the mirror tile is transposed into a local
       buffer, so both operands are read along rows and the max reductions
       vectorize (NaN entries: as in _asym,
       the lanes' maxima skip them; finiteness is tested elsewhere). */
    #if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
    #define NXK_SIMD_MAX _Pragma("omp simd reduction(max:s, m)")
    #else
    #define NXK_SIMD_MAX
    #endif
    #define NXK_ASYM(NAME, T) \
    static double NAME(const T* H, Py_ssize_t n, double* amax) { \
        double buf[256], s = 0.0, m = 0.0; \
        Py_ssize_t ib, jb, ie, je, i, j; \
        for (ib = 0; ib < n; ib += 16) { \
            ie = ib + 16 < n ? ib + 16 : n; \
            for (jb = 0; jb <= ib; jb += 16) { \
                je = jb + 16 < n ? jb + 16 : n; \
                for (j = jb; j < je; j++) \
                    for (i = ib; i < ie; i++) \
                        buf[(i - ib) * 16 + (j - jb)] = (double)H[j * n + i]; \
                for (i = ib; i < ie; i++) { \
                    const T* row = H + i * n; \
                    const double* bt = buf + (i - ib) * 16 - jb; \
                    NXK_SIMD_MAX \
                    for (j = jb; j < je; j++) { \
                        double v = fabs((double)row[j]), w = fabs(bt[j]); \
                        double d = fabs((double)row[j] - bt[j]); \
                        m = v > m ? v : m; m = w > m ? w : m; s = d > s ? d : s; \
                    } \
                } \
            } \
        } \
        *amax = m; \
        return s; \
    }
    NXK_ASYM(nxk_asym_d, double)
    NXK_ASYM(nxk_asym_f, float)
    """
    double nxk_asym_d(const double* H, Py_ssize_t n, double* amax) noexcept nogil
    double nxk_asym_f(const float* H, Py_ssize_t n, double* amax) noexcept nogil
