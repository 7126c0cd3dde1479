# cython: language_level=3
"""Kernels of the L-BFGS-B compact form (Byrd, Nocedal & Schnabel 1994; Byrd, Lu,
Nocedal & Zhu 1995): products of a vector with ``W = [Y, theta S]`` and of ``W``
with a vector over the stored pairs (ring buffer), the Gram matrices of the pairs
kept up to date pair by pair and variable by variable (:c:type:`BState`), and
the Cholesky factorizations, Schur complements and triangular solves of the small
(m x m) middle matrices.

``cdef inline`` on raw pointers, fused ``floating``, no Python object: compiled
into :mod:`neurenix._ext._lbfgs`, the one module that uses them, as when they
were private to it.  The sums are the ones the loop's iterates are pinned to:
``lanes8`` (``_vec.pxd``) for the products with ``W``, the orders stated at each
kernel elsewhere.
"""
from cython cimport floating
from libc.math cimport fabs, sqrt, isfinite, INFINITY
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from ._vec cimport dot_lanes8


# a breakpoint of the Cauchy search: the step t at which variable i reaches its bound
ctypedef struct BP:
    double t
    Py_ssize_t i


cdef inline Py_ssize_t _slot(Py_ssize_t k, Py_ssize_t newest, Py_ssize_t count,
                             Py_ssize_t m) noexcept nogil:
    """Ring slot of the k-th pair, oldest first."""
    return (newest - count + 1 + k + m) % m


# ------------------------------------------------ L-BFGS-B: compact form pieces
cdef extern from *:
    """
    /* _gram4 for float64 with GCC vector extensions: four lanes, lane j holds
       the partial sum of the elements i = j mod 4 (GCC does not vectorize
       the scalar form; sums and order are the same) */
    #if defined(__GNUC__) || defined(__clang__)
    typedef double nx_v4d __attribute__((vector_size(32)));
    /* bt[i / 4]: what the masks hold on the block of four at i: 1 all free
       (wf = 1, wa = 0), 2 all active (wf = 0, wa = 1), 0 mixed.  On a pure
       block a product with a mask of 1 is the product itself and one with a
       mask of 0 is a zero, which leaves a sum as it is (a sum that starts at
       +0 never becomes -0): those multiplications and additions are skipped,
       and the sums are bitwise those of the masked loop.  (out[4] is the
       whole-vector sk.y, which the caller reads only on the diagonal, where
       it is s.y = out[2]: not summed separately.) */
    static inline void nx_gram4d(const double* s, const double* y, const double* sk,
                                 const double* yk, const double* wf, const double* wa,
                                 Py_ssize_t n, const char* bt, double* out) {
        nx_v4d a = {0,0,0,0}, b = a, c = a, d = a, f = a, g = a;
        nx_v4d vs, vy, vsk, vyk, vf, va, p, q, r, t;
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            __builtin_memcpy(&vs, s + i, 32); __builtin_memcpy(&vsk, sk + i, 32);
            __builtin_memcpy(&vyk, yk + i, 32);
            p = vs * vsk; q = vs * vyk;
            a += p; c += q;
            char k = bt[i >> 2];
            if (k == 2) { b += p; continue; }
            __builtin_memcpy(&vy, y + i, 32);
            r = vsk * vy; t = vy * vyk;
            if (k == 1) { d += q; f += r; g += t; continue; }
            __builtin_memcpy(&vf, wf + i, 32); __builtin_memcpy(&va, wa + i, 32);
            b += p * va; d += q * vf; f += r * vf; g += t * vf;
        }
        for (; i < n; i++) {
            double pp = s[i] * sk[i], qq = s[i] * yk[i], rr = sk[i] * y[i], tt = y[i] * yk[i];
            a[0] += pp; b[0] += pp * wa[i]; c[0] += qq; d[0] += qq * wf[i];
            f[0] += rr * wf[i]; g[0] += tt * wf[i];
        }
        out[0] = (a[0] + a[1]) + (a[2] + a[3]);
        out[1] = (b[0] + b[1]) + (b[2] + b[3]);
        out[2] = (c[0] + c[1]) + (c[2] + c[3]);
        out[3] = (d[0] + d[1]) + (d[2] + d[3]);
        out[4] = out[2];
        out[5] = (f[0] + f[1]) + (f[2] + f[3]);
        out[6] = (g[0] + g[1]) + (g[2] + g[3]);
    }
    #define NX_HAVE_GRAM4D 1
    #else
    #define NX_HAVE_GRAM4D 0
    static inline void nx_gram4d(const double* s, const double* y, const double* sk,
                                 const double* yk, const double* wf, const double* wa,
                                 Py_ssize_t n, const char* bt, double* out) {}
    #endif
    """
    enum: NX_HAVE_GRAM4D
    void nx_gram4d(const double* s, const double* y, const double* sk, const double* yk,
                   const double* wf, const double* wa, Py_ssize_t n, const char* bt,
                   double* out) nogil


cdef extern from *:
    """
    /* Two dot products with one vector, a0 . b and a1 . b, for float64: each
       summed exactly as dot_lanes8 sums it (eight lanes, lane j taking the elements
       i = j mod 8, the tail going to lane 0, combined pairwise), in one pass
       that loads b once and keeps two independent sums in flight. */
    #if defined(__GNUC__) || defined(__clang__)
    typedef double nx_v8d __attribute__((vector_size(64)));
    static inline void nx_dots2(const double* a0, const double* a1, const double* b,
                                Py_ssize_t n, const char* skip, double* out) {
        nx_v8d s = {0, 0, 0, 0, 0, 0, 0, 0}, t = s, va, vc, vb;
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            if (skip && skip[i >> 3]) continue;
            __builtin_memcpy(&vb, b + i, 64);
            __builtin_memcpy(&va, a0 + i, 64); __builtin_memcpy(&vc, a1 + i, 64);
            s += va * vb; t += vc * vb;
        }
        for (; i < n; i++) { s[0] += a0[i] * b[i]; t[0] += a1[i] * b[i]; }
        out[0] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        out[1] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    }
    /* the same for four rows (four sums in flight) */
    static inline void nx_dots4(const double* a0, const double* a1, const double* a2,
                                const double* a3, const double* b, Py_ssize_t n,
                                const char* skip, double* out) {
        nx_v8d s = {0, 0, 0, 0, 0, 0, 0, 0}, t = s, u = s, w = s, va, vb;
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            if (skip && skip[i >> 3]) continue;
            __builtin_memcpy(&vb, b + i, 64);
            __builtin_memcpy(&va, a0 + i, 64); s += va * vb;
            __builtin_memcpy(&va, a1 + i, 64); t += va * vb;
            __builtin_memcpy(&va, a2 + i, 64); u += va * vb;
            __builtin_memcpy(&va, a3 + i, 64); w += va * vb;
        }
        for (; i < n; i++) {
            s[0] += a0[i] * b[i]; t[0] += a1[i] * b[i];
            u[0] += a2[i] * b[i]; w[0] += a3[i] * b[i];
        }
        out[0] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        out[1] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        out[2] = ((u[0] + u[1]) + (u[2] + u[3])) + ((u[4] + u[5]) + (u[6] + u[7]));
        out[3] = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
    }
    /* Combinations of the stored pairs, W-products by rows: for k = 0..c-1 in
       order, d[i] <- d[i] - (Y_k[i] a[k] + S_k[i] a2[k]) (nx_wsub), or
       d[i] <- d[i] + (...) starting from d[i] = 0 (nx_wsum); row k of S and Y
       at slot sl[k].  Eight entries at a time kept in registers over the k
       loop (the scalar loops stored and reloaded them c times); per entry the
       same operations in the same order.  Blocks of eight with skip[i / 8]
       set are left as they are (entries nobody reads). */
    static void nx_wcomb(double* d, const double* S, const double* Y, const Py_ssize_t* sl,
                         Py_ssize_t c, Py_ssize_t n, const double* a, const double* a2,
                         int sub, const char* skip) {
        typedef double v4 __attribute__((vector_size(32)));
        Py_ssize_t i = 0, k;
        for (; i + 8 <= n; i += 8) {
            v4 x0 = {0, 0, 0, 0}, x1 = x0, y0, y1, s0, s1;
            if (skip && skip[i >> 3]) continue;
            if (sub) { __builtin_memcpy(&x0, d + i, 32); __builtin_memcpy(&x1, d + i + 4, 32); }
            for (k = 0; k < c; k++) {
                const double* yk = Y + sl[k] * n + i;
                const double* sk = S + sl[k] * n + i;
                double ak = a[k], bk = a2[k];
                v4 va = {ak, ak, ak, ak}, vb = {bk, bk, bk, bk};
                __builtin_memcpy(&y0, yk, 32); __builtin_memcpy(&y1, yk + 4, 32);
                __builtin_memcpy(&s0, sk, 32); __builtin_memcpy(&s1, sk + 4, 32);
                if (sub) { x0 = x0 - (y0 * va + s0 * vb); x1 = x1 - (y1 * va + s1 * vb); }
                else { x0 = x0 + (y0 * va + s0 * vb); x1 = x1 + (y1 * va + s1 * vb); }
            }
            __builtin_memcpy(d + i, &x0, 32); __builtin_memcpy(d + i + 4, &x1, 32);
        }
        for (; i < n; i++) {
            double x = sub ? d[i] : 0.0;
            for (k = 0; k < c; k++) {
                double t = Y[sl[k] * n + i] * a[k] + S[sl[k] * n + i] * a2[k];
                x = sub ? x - t : x + t;
            }
            d[i] = x;
        }
    }
    #define NX_HAVE_DOTS2 1
    #else
    #define NX_HAVE_DOTS2 0
    static inline void nx_dots2(const double* a0, const double* a1, const double* b,
                                Py_ssize_t n, const char* skip, double* out) {}
    static inline void nx_dots4(const double* a0, const double* a1, const double* a2,
                                const double* a3, const double* b, Py_ssize_t n,
                                const char* skip, double* out) {}
    static void nx_wcomb(double* d, const double* S, const double* Y, const Py_ssize_t* sl,
                         Py_ssize_t c, Py_ssize_t n, const double* a, const double* a2,
                         int sub, const char* skip) {}
    #endif
    """
    enum: NX_HAVE_DOTS2
    void nx_dots2(const double* a0, const double* a1, const double* b, Py_ssize_t n,
                  const char* skip, double* out) nogil
    void nx_dots4(const double* a0, const double* a1, const double* a2, const double* a3,
                  const double* b, Py_ssize_t n, const char* skip, double* out) nogil
    void nx_wcomb(double* d, const double* S, const double* Y, const Py_ssize_t* sl,
                  Py_ssize_t c, Py_ssize_t n, const double* a, const double* a2, int sub,
                  const char* skip) nogil


cdef inline void _wcomb(const floating* S, const floating* Y, const Py_ssize_t* sl,
                        Py_ssize_t c, Py_ssize_t n, double theta, const double* coef,
                        double* wb, double* d, bint sub, const char* skip) noexcept nogil:
    """``d -= W coef`` (``sub``) or ``d = W coef``, ``W = [Y, theta S]`` over the ``c``
    stored pairs (ring slots ``sl``, oldest first), pair by pair in that order;
    ``wb`` (c entries) is scratch for the ``theta``-scaled coefficients.  For
    float64, the blocks of eight entries flagged in ``skip`` (may be NULL) are
    left as they are (the caller reads none of them)."""
    cdef Py_ssize_t i, k, sk
    cdef double a, a2, t
    for k in range(c):
        wb[k] = theta * coef[c + k]
    if floating is double and NX_HAVE_DOTS2:
        nx_wcomb(d, S, Y, sl, c, n, coef, wb, 1 if sub else 0, skip)
        return
    if not sub:
        for i in range(n):
            d[i] = 0.0
    for k in range(c):
        sk = sl[k]
        a = coef[k]
        a2 = wb[k]
        for i in range(n):
            t = Y[sk * n + i] * a + S[sk * n + i] * a2
            d[i] = d[i] - t if sub else d[i] + t


cdef inline void _wdots(const floating* S, const floating* Y, const Py_ssize_t* sl,
                        Py_ssize_t c, Py_ssize_t n, double theta, const double* d,
                        double* out, const char* skip) noexcept nogil:
    """``out = W^T d = [Y^T d, theta S^T d]`` over the ``c`` stored pairs (ring
    slots ``sl``, oldest first), each product summed as :func:`dot_lanes8` sums it.
    For float64, the blocks of eight entries flagged in ``skip`` (may be NULL),
    where ``d`` is zero, are passed over: their products are zeros, which leave
    the sums as they are (a sum that starts at +0 never becomes -0, and adding
    a zero to anything else changes nothing)."""
    cdef Py_ssize_t k = 0, sk, sk1
    cdef double w[4]
    if floating is double and NX_HAVE_DOTS2:
        while k + 2 <= c:
            sk = sl[k]
            sk1 = sl[k + 1]
            nx_dots4(&Y[sk * n], &S[sk * n], &Y[sk1 * n], &S[sk1 * n], d, n, skip, w)
            out[k] = w[0]
            out[c + k] = theta * w[1]
            out[k + 1] = w[2]
            out[c + k + 1] = theta * w[3]
            k += 2
    while k < c:
        sk = sl[k]
        if floating is double and NX_HAVE_DOTS2:
            nx_dots2(&Y[sk * n], &S[sk * n], d, n, skip, w)
            out[k] = w[0]
            out[c + k] = theta * w[1]
        else:
            out[k] = dot_lanes8(&Y[sk * n], d, n)
            out[c + k] = theta * dot_lanes8(&S[sk * n], d, n)
        k += 1


cdef extern from *:
    """
    /* Kernels of the small (m x m) matrices of L-BFGS-B, four columns at a
       time (rows padded to a multiple of 4), each block of four summed in a
       register (no store and reload between the terms).  Each entry goes
       through the same IEEE operations in the same order as the scalar loops
       of the #else branch: a product, then the sum, term after term. */
    #if defined(__GNUC__) || defined(__clang__)
    typedef double nx_r4d __attribute__((vector_size(32)));
    /* d[0:w] = s[0:w] (w a multiple of 4), block by block in increasing order:
       safe for overlapping rows when s lies at least four places after d */
    static inline void nx_copy_fwd(double* d, const double* s, Py_ssize_t w) {
        nx_r4d t;
        for (Py_ssize_t j = 0; j < w; j += 4) {
            __builtin_memcpy(&t, s + j, 32);
            __builtin_memcpy(d + j, &t, 32);
        }
    }
    /* C[j, k] += sum_i X[i, j] X[i, k] for k <= j (i ascending; only i < j when
       X is strictly upper triangular, su), over the column blocks that reach
       the diagonal (the entries right of it in those blocks take the same
       kind of terms; nobody reads them). */
    static void nx_syrk_lower(double* C, const double* X, Py_ssize_t c, Py_ssize_t ld,
                              int su) {
        for (Py_ssize_t j = 0; j < c; j++) {
            Py_ssize_t ni = su ? j : c;
            for (Py_ssize_t jb = 0; jb <= j; jb += 4) {
                nx_r4d acc, vx;
                __builtin_memcpy(&acc, C + j * ld + jb, 32);
                for (Py_ssize_t i = 0; i < ni; i++) {
                    double a = X[i * ld + j];
                    nx_r4d va = {a, a, a, a};
                    __builtin_memcpy(&vx, X + i * ld + jb, 32);
                    acc = acc + va * vx;
                }
                __builtin_memcpy(C + j * ld + jb, &acc, 32);
            }
        }
    }
    /* Rows of L^{-1} E for lower triangular L with reciprocal diagonal (as
       _chol leaves it): E[i, :] = (E[i, :] - sum_{k<i} L[i, k] E[k, :]) * L[i, i],
       k ascending, over w columns (a multiple of 4). */
    static void nx_fwd_rows(double* E, const double* L, Py_ssize_t c, Py_ssize_t ld,
                            Py_ssize_t w) {
        for (Py_ssize_t i = 0; i < c; i++) {
            const double* Li = L + i * ld;
            double di = Li[i];
            nx_r4d vd = {di, di, di, di};
            for (Py_ssize_t jb = 0; jb < w; jb += 4) {
                nx_r4d acc, ve;
                __builtin_memcpy(&acc, E + i * ld + jb, 32);
                for (Py_ssize_t k = 0; k < i; k++) {
                    double a = Li[k];
                    nx_r4d va = {a, a, a, a};
                    __builtin_memcpy(&ve, E + k * ld + jb, 32);
                    acc = acc - va * ve;
                }
                acc = acc * vd;
                __builtin_memcpy(E + i * ld + jb, &acc, 32);
            }
        }
    }
    #else
    static inline void nx_copy_fwd(double* d, const double* s, Py_ssize_t w) {
        for (Py_ssize_t j = 0; j < w; j++) d[j] = s[j];
    }
    static void nx_syrk_lower(double* C, const double* X, Py_ssize_t c, Py_ssize_t ld,
                              int su) {
        for (Py_ssize_t j = 0; j < c; j++)
            for (Py_ssize_t k = 0; k <= j; k++)
                for (Py_ssize_t i = 0; i < (su ? j : c); i++)
                    C[j * ld + k] = C[j * ld + k] + X[i * ld + j] * X[i * ld + k];
    }
    static void nx_fwd_rows(double* E, const double* L, Py_ssize_t c, Py_ssize_t ld,
                            Py_ssize_t w) {
        for (Py_ssize_t i = 0; i < c; i++)
            for (Py_ssize_t j = 0; j < w; j++) {
                double t = E[i * ld + j];
                for (Py_ssize_t k = 0; k < i; k++) t = t - L[i * ld + k] * E[k * ld + j];
                E[i * ld + j] = t * L[i * ld + i];
            }
    }
    #endif
    """
    void nx_syrk_lower(double* C, const double* X, Py_ssize_t c, Py_ssize_t ld, int su) nogil
    void nx_copy_fwd(double* d, const double* s, Py_ssize_t w) nogil
    void nx_fwd_rows(double* E, const double* L, Py_ssize_t c, Py_ssize_t ld,
                     Py_ssize_t w) nogil


cdef inline Py_ssize_t _width(Py_ssize_t c) noexcept nogil:
    # row length the vector kernels run over: c rounded up to a multiple of 4
    return (c + 3) & ~(<Py_ssize_t>3)


cdef inline void _gram4(const floating* s, const floating* y, const floating* sk,
                        const floating* yk, const floating* wf, const floating* wa,
                        Py_ssize_t n, double* out) noexcept nogil:
    """The seven products a new pair ``(s, y)`` needs with a stored pair
    ``(sk, yk)``, in one pass over the six vectors: ``out = [s.sk, (s.sk)_A,
    s.yk, (s.yk)_F, sk.y, (sk.y)_F, (y.yk)_F]`` (``_F``/``_A``: weighted by the
    0/1 masks ``wf``/``wa``).  Each sum has its own four partial sums (lane
    ``j`` takes the elements ``i = j mod 4``, the tail goes to lane 0),
    combined as ``(l0 + l1) + (l2 + l3)``: bitwise the values of the four
    separate masked dot products the loop used before.  For float64 the
    vector-extension twin ``nx_gram4d`` (same lanes, same order) runs."""
    cdef double acc[28]
    cdef double p, q, r, t
    cdef Py_ssize_t i = 0, j
    for j in range(28):
        acc[j] = 0.0
    while i + 4 <= n:
        for j in range(4):
            p = <double>s[i + j] * <double>sk[i + j]
            q = <double>s[i + j] * <double>yk[i + j]
            r = <double>sk[i + j] * <double>y[i + j]
            t = <double>y[i + j] * <double>yk[i + j]
            acc[j] += p
            acc[4 + j] += p * <double>wa[i + j]
            acc[8 + j] += q
            acc[12 + j] += q * <double>wf[i + j]
            acc[16 + j] += r
            acc[20 + j] += r * <double>wf[i + j]
            acc[24 + j] += t * <double>wf[i + j]
        i += 4
    while i < n:
        p = <double>s[i] * <double>sk[i]
        q = <double>s[i] * <double>yk[i]
        r = <double>sk[i] * <double>y[i]
        t = <double>y[i] * <double>yk[i]
        acc[0] += p
        acc[4] += p * <double>wa[i]
        acc[8] += q
        acc[12] += q * <double>wf[i]
        acc[16] += r
        acc[20] += r * <double>wf[i]
        acc[24] += t * <double>wf[i]
        i += 1
    for j in range(7):
        out[j] = (acc[4 * j] + acc[4 * j + 1]) + (acc[4 * j + 2] + acc[4 * j + 3])


cdef inline int _chol(double* A, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
    """In-place lower Cholesky factor of the leading c x c block of the row-major
    ``A`` (leading dimension ``ld``; only the lower triangle is read), with the
    *reciprocals* of the diagonal entries stored on the diagonal (the solves
    multiply instead of divide).  Returns 1 when a pivot is not positive
    relative to its diagonal entry (singular to working precision, or not
    positive definite)."""
    cdef Py_ssize_t i, j, k
    cdef double s, t, r
    for j in range(c):
        s = A[j * ld + j]
        t = s
        for k in range(j):
            s -= A[j * ld + k] * A[j * ld + k]
        if not (s > 1e-14 * t) or not (s > 1e-300):
            return 1
        r = 1.0 / sqrt(s)
        A[j * ld + j] = r
        for i in range(j + 1, c):
            t = A[i * ld + j]
            for k in range(j):
                t -= A[i * ld + k] * A[j * ld + k]
            A[i * ld + j] = t * r
    return 0


cdef inline void _lsolve(const double* L, Py_ssize_t c, Py_ssize_t ld, double* b) noexcept nogil:
    # b <- L^{-1} b (L from _chol: lower triangular, reciprocal diagonal)
    cdef Py_ssize_t i, k
    cdef double t
    for i in range(c):
        t = b[i]
        for k in range(i):
            t -= L[i * ld + k] * b[k]
        b[i] = t * L[i * ld + i]


cdef inline void _ltsolve(const double* L, Py_ssize_t c, Py_ssize_t ld, double* b) noexcept nogil:
    # b <- L^{-T} b (L from _chol)
    cdef Py_ssize_t i, k
    cdef double t
    for i in range(c - 1, -1, -1):
        b[i] *= L[i * ld + i]
        t = b[i]
        for k in range(i):
            b[k] -= L[i * ld + k] * t


cdef inline int _schur(double* X, double* C, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
    """``C <- chol(C + X^T X)`` (X, C: c x c, row-major, leading dimension ld;
    C's lower triangle), the factor of the Schur complement of the middle
    matrix; rank-one updates by the rows of X so the inner loops run over
    contiguous memory.  Returns 1 when it is singular.

    The sums run four columns at a time (``nx_syrk_lower``) over the blocks
    that reach the diagonal: the entries right of it in those blocks, which
    the factorization never reads, take the same kind of terms, and every
    entry of the lower triangle gets its terms in the same order as a loop over
    ``i`` gives them.  ``X``'s padding columns must be finite."""
    nx_syrk_lower(C, X, c, ld, 0)
    return _chol(C, c, ld)


cdef inline int _schur_su(double* X, double* C, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
    """:func:`_schur` for a strictly upper triangular ``X`` (``X[i, k] == 0`` for
    ``k <= i``, as ``KE`` of the Cauchy step): the products with its zeros are
    skipped, c^3/6 multiply-adds instead of c^3/2; the remaining terms are added
    to each entry in the same order, so the factor is the same.  (Blocks of
    four columns, as in :func:`_schur`: the terms added left of column
    ``i + 1`` are products with X's exact zeros, which leave an entry as it is.)"""
    nx_syrk_lower(C, X, c, ld, 1)
    return _chol(C, c, ld)


cdef inline void _msolve(const double* L1, int diag, const double* X, const double* L2,
                         Py_ssize_t c, Py_ssize_t ld, double* u) noexcept nogil:
    """``u <- N^{-1} u`` for a 2c x 2c symmetric matrix ``N = [[N11, B^T], [B, C]]``
    with ``N11 = -L1 L1^T`` negative definite, given in factored form:
    ``X = E^T = L1^{-1} B^T`` and ``L2 L2^T = C + E E^T`` (the block LDL^T used
    by Byrd, Lu, Nocedal & Zhu 1995, Sec. 3 and 5.1: two c x c Cholesky factors
    instead of an LU of the 2c x 2c matrix).  ``diag``: ``L1`` is diagonal,
    stored as the c reciprocals of its entries; otherwise ``L1`` comes from
    :func:`_chol`.  Cost: four triangular solves and two products, O(c^2)."""
    cdef double* u1 = u
    cdef double* u2 = u + c
    cdef Py_ssize_t j, k
    cdef double t
    # t = L1^{-1} u1
    if diag:
        for j in range(c):
            u1[j] = u1[j] * L1[j]
    else:
        _lsolve(L1, c, ld, u1)
    # z2 = u2 + E t = u2 + X^T t ; v2 = (L2 L2^T)^{-1} z2
    # (with a diagonal L1, X = KE is strictly upper triangular: the products
    # with its zeros, which would leave the sums as they are, are skipped)
    # (each u2[j] summed in a register, the terms taken for k ascending)
    for j in range(c):
        t = u2[j]
        for k in range(j if diag else c):
            t += X[k * ld + j] * u1[k]
        u2[j] = t
    _lsolve(L2, c, ld, u2)
    _ltsolve(L2, c, ld, u2)
    # v1 = -L1^{-T} (t - E^T v2) = -L1^{-T} (t - X v2)
    for k in range(c):
        t = u1[k]
        for j in range(k + 1 if diag else 0, c):
            t -= X[k * ld + j] * u2[j]
        u1[k] = t
    if diag:
        for j in range(c):
            u1[j] = -u1[j] * L1[j]
    else:
        _ltsolve(L1, c, ld, u1)
        for j in range(c):
            u1[j] = -u1[j]




cdef struct BState:
    # L-BFGS-B memory beside S, Y: the Gram matrices of the pairs, kept up to
    # date at O(m n) per new pair, and the free set of the last generalized
    # Cauchy point with the Gram matrices over it, updated when variables enter
    # or leave it (Byrd, Lu, Nocedal & Zhu 1995, Sec. 5.1).  Every matrix is
    # position-indexed (pair 0 the oldest; entry [a * ld + b]), m x ld with
    # ld = _width(m), so that the middle matrices are built from contiguous
    # rows; dropping the oldest pair shifts the Gram matrices (_gram_shift).
    Py_ssize_t R         # ring size
    Py_ssize_t ld        # leading dimension of every matrix here
    double* SS           # s_a . s_b
    double* YS           # y_a . s_b
    double* FYY          # sum over free i of y_a[i] y_b[i]
    double* FYS          # sum over free i of y_a[i] s_b[i]
    double* ASS          # sum over active (not free) i of s_a[i] s_b[i]
    # factors of the two middle matrices (see _msolve); Cholesky factors as
    # _chol leaves them; KE's and NE's padding columns are kept at zero
    double* K1           # D^{-1/2} (diagonal, reciprocals)
    double* KE           # (L D^{-1/2})^T
    double* K2           # chol(theta S^T S + L D^{-1} L^T)
    double* N1           # chol(D + Y^T Z Z^T Y / theta)
    double* NE           # N1^{-1} (L - S^T Z Z^T Y)^T
    double* N2           # chol(theta S^T A A^T S + NE^T NE)
    double* wrk          # 8 * m used (12 * m allocated)
    double* dcp          # n: Cauchy direction, then the reduced gradient r
    double* tmp          # n
    BP* bps              # n: breakpoint heap
    char* fr             # n: free at the last Cauchy point
    char* bt             # n // 4: per block of four of fr: 1 all free, 2 none, 0 mixed
    char* sk8            # n // 8: per block of eight of fr: 1 when none is free
    Py_ssize_t* sl       # m: ring slot of each pair, oldest first


cdef inline void _block_flags(BState* b, Py_ssize_t n) noexcept nogil:
    """``b.bt`` and ``b.sk8`` from the free flags ``b.fr``."""
    cdef Py_ssize_t j
    cdef int k
    cdef const char* fr = b.fr
    for j in range(n // 4):
        k = fr[4 * j] + fr[4 * j + 1] + fr[4 * j + 2] + fr[4 * j + 3]
        b.bt[j] = 1 if k == 4 else (2 if k == 0 else 0)
    for j in range(n // 8):
        b.sk8[j] = b.bt[2 * j] == 2 and b.bt[2 * j + 1] == 2


cdef inline void _gram_shift(BState* b, Py_ssize_t c) noexcept nogil:
    """Drop the oldest of ``c`` pairs from the Gram matrices: entry [a, b]
    takes [a + 1, b + 1] (the five matrices lie one after the other).  Whole
    padded rows are copied, four entries at a time, in increasing address
    order: every source entry lies ld + 1 places after its destination, so
    it is read before anything overwrites it."""
    cdef Py_ssize_t g, j, ld = b.ld, w = _width(c - 1)
    cdef double* G
    for g in range(5):
        G = b.SS + g * (b.YS - b.SS)
        for j in range(c - 1):
            nx_copy_fwd(&G[j * ld], &G[(j + 1) * ld + 1], w)


cdef inline void _gram_new_pair(BState* b, floating* S, floating* Y, floating* wf, floating* wa,
                                Py_ssize_t n, Py_ssize_t slot, Py_ssize_t newest,
                                Py_ssize_t count) noexcept nogil:
    """Row and column ``count - 1`` of the Gram matrices: the pair just stored
    in ``slot`` (whole-vector products and those over the free/active sets of
    the last Cauchy point, masks ``wf``/``wa``): O(count n)."""
    cdef Py_ssize_t k, sk, R = b.R, ld = b.ld, q = count - 1
    cdef double w[7]
    cdef floating* s = &S[slot * n]
    cdef floating* y = &Y[slot * n]
    for k in range(count):
        sk = _slot(k, newest, count, R)
        if floating is double and NX_HAVE_GRAM4D:
            nx_gram4d(s, y, &S[sk * n], &Y[sk * n], wf, wa, n, b.bt, w)
        else:
            _gram4(s, y, &S[sk * n], &Y[sk * n], wf, wa, n, w)
        b.SS[q * ld + k] = w[0]
        b.SS[k * ld + q] = w[0]
        b.ASS[q * ld + k] = w[1]
        b.ASS[k * ld + q] = w[1]
        b.YS[k * ld + q] = w[2]
        b.FYS[k * ld + q] = w[3]
        b.YS[q * ld + k] = w[4]
        b.FYS[q * ld + k] = w[5]
        b.FYY[q * ld + k] = w[6]
        b.FYY[k * ld + q] = w[6]


cdef inline void _gram_toggle(BState* b, floating* S, floating* Y, Py_ssize_t n, Py_ssize_t i,
                              Py_ssize_t c, double sign, double* ys) noexcept nogil:
    """Variable ``i`` enters (sign +1) or leaves (-1) the free set: add its
    contribution to the free-set Gram matrices and remove it from the active-set
    one, O(c^2).  (``sign`` is +-1: ``sign * v`` is exact.)"""
    cdef Py_ssize_t j, k, sk, ld = b.ld
    cdef double* ss = ys + c
    cdef double yj, sv
    for k in range(c):
        sk = b.sl[k]
        ys[k] = Y[sk * n + i]
        ss[k] = S[sk * n + i]
    for j in range(c):
        yj = sign * ys[j]
        sv = sign * ss[j]
        for k in range(c):
            b.FYY[j * ld + k] += yj * ys[k]
            b.FYS[j * ld + k] += (sign * ss[k]) * ys[j]
            b.ASS[j * ld + k] -= sv * ss[k]
