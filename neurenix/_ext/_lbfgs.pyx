# cython: language_level=3
"""Quasi-Newton iteration loops in Cython: L-BFGS, L-BFGS-B, BFGS and CG.

One loop (:func:`run`) serves four direction rules, all followed by the
Moré–Thuente strong-Wolfe line search of :mod:`neurenix._ext._linesearch`:

- ``LBFGS``: two-loop recursion over a ring buffer of the last ``m`` pairs
  (Nocedal & Wright 2006, Algorithm 7.4), :math:`H_0 = \\gamma I`,
  :math:`\\gamma = s^Ty / y^Ty` (eq. 7.20).
- ``LBFGSB``: Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm
  for bound constrained optimization", SIAM J. Sci. Comput. 16(5): the compact
  form :math:`B = \\theta I - W M W^T`, :math:`W = [Y\\; \\theta S]`,
  :math:`M = \\begin{bmatrix}-D & L^T\\\\ L & \\theta S^TS\\end{bmatrix}^{-1}`
  (Byrd, Nocedal & Schnabel 1994), the generalized Cauchy point by the
  breakpoint search of Section 4 (Algorithm CP), and the direct primal
  subspace minimization of Section 5.1, with the projection-then-check step of
  Morales & Nocedal (2011), "Remark on Algorithm 778".
- ``BFGS``: dense inverse-Hessian update (Nocedal & Wright eq. 6.17) from
  :math:`H_0 = I`, SciPy's trial step, no restart: SciPy's iterates.
- ``CG``: Polak–Ribière+ nonlinear conjugate gradients (Nocedal & Wright
  eq. 5.45), restarted with steepest descent when the direction is not a
  sufficient descent direction.

The loop calls back into Python only to evaluate the objective (through
:class:`neurenix._ext._evaluator.Evaluator`, shared with the second-order
loops) and, when a callback/disp/maxtime is set, once per
iteration to report to the driver.  Vectors keep the dtype of ``x``
(float32/float64); inner products accumulate in double.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport fabs, sqrt, isfinite, INFINITY
from libc.stdlib cimport malloc, calloc, free
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memcmp, memset

import numpy as np

from ._evaluator cimport Evaluator
from ._linesearch cimport (MTState, mt_start, mt_iterate, mt_nonfinite, MT_FG,
                           MT_CONVERGED, MT_ERROR)

cnp.import_array()

# method codes
LBFGS = 0
BFGS = 1
CG = 2
LBFGSB = 3

# status codes (values of neurenix.optimize.Status)
cdef enum:
    S_RUNNING = -1
    S_MAXITER = 1
    S_MAXFUN = 2
    S_LINESEARCH = 3
    S_NONFINITE = 4
    S_CALLBACK = 5
    S_INTERRUPTED = 7
    S_GTOL = 8
    S_FTOL = 9
    S_PRECISION = 14


# ------------------------------------------------------------------ kernels
cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    # a . b accumulated in double over eight independent partial sums (combined
    # pairwise at the end), so the loop is not bound by the latency of one add
    # chain and vectorizes without reassociating anything (no -ffast-math).
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


cdef inline void _axpy(double a, const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    # y += a * x
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = <floating>(y[i] + a * x[i])


cdef inline double _axpy_dot(double a, const floating* x, floating* q, double scale,
                             const floating* z, Py_ssize_t n) noexcept nogil:
    """``q <- scale * (q + a x)`` (each step rounded to q's type, as ``_axpy``
    followed by a scaling), returning ``z . q`` of the new q summed exactly as
    :func:`_dot` sums it: one pass over q instead of two."""
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


cdef void _two_loop(floating* S, floating* Y, const double* rho, Py_ssize_t m,
                    Py_ssize_t n, Py_ssize_t newest, Py_ssize_t count, double gamma,
                    floating* q, double* alpha) noexcept nogil:
    """q <- H q with the L-BFGS matrix of the ``count`` newest pairs (ring buffer,
    row ``newest`` the newest) and H0 = gamma I (Nocedal & Wright Alg. 7.4).

    Each update of q is fused with the inner product the recursion needs next
    (``_axpy_dot``), so the 4 * count passes over q of the textbook loops become
    2 * count + 1; the arithmetic, and so the result, is the same."""
    cdef Py_ssize_t k, j, jn, i
    cdef double a, b, dotv
    if count == 0:
        for i in range(n):
            q[i] = <floating>(gamma * q[i])
        return
    # first loop, newest to oldest: alpha_j = rho_j s_j.q ; q -= alpha_j y_j
    j = newest
    dotv = _dot(&S[j * n], q, n)
    for k in range(count):
        a = rho[j] * dotv
        alpha[j] = a
        if k < count - 1:
            jn = j - 1 if j > 0 else m - 1
            dotv = _axpy_dot(-a, &Y[j * n], q, 1.0, &S[jn * n], n)
            j = jn
        else:
            # the oldest pair: scale by H0 = gamma I and start the second loop
            # with y_oldest . q, all in the same pass
            dotv = _axpy_dot(-a, &Y[j * n], q, gamma, &Y[j * n], n)
    # second loop, oldest to newest: beta = rho_j y_j.q ; q += (alpha_j - beta) s_j
    for k in range(count):
        b = rho[j] * dotv
        if k < count - 1:
            jn = j + 1 if j < m - 1 else 0
            dotv = _axpy_dot(alpha[j] - b, &S[j * n], q, 1.0, &Y[jn * n], n)
            j = jn
        else:
            _axpy(alpha[j] - b, &S[j * n], q, n)


def same_point(a, b):
    """True when ``a`` and ``b`` are C-contiguous ndarrays of one dtype and shape
    holding the same bytes (the objective cache's test: bitwise, so -0.0 and 0.0
    differ and a NaN matches itself); None when they are not both such arrays
    (the caller then falls back to ``np.array_equal``)."""
    cdef cnp.ndarray x, y
    if not (cnp.PyArray_CheckExact(a) and cnp.PyArray_CheckExact(b)):
        return None
    x = <cnp.ndarray>a
    y = <cnp.ndarray>b
    if (cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(y) or cnp.PyArray_NDIM(x) != 1
            or cnp.PyArray_NDIM(y) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(y)):
        return None
    if cnp.PyArray_DIM(x, 0) != cnp.PyArray_DIM(y, 0):
        return False
    return memcmp(cnp.PyArray_DATA(x), cnp.PyArray_DATA(y),
                  cnp.PyArray_NBYTES(x)) == 0


def all_finite(a):
    """True when every entry of the C-contiguous float32/float64 1-D array ``a``
    is finite; None for any other input (the caller falls back to NumPy)."""
    cdef cnp.ndarray x
    cdef Py_ssize_t i, n
    cdef const double* pd
    cdef const float* pf
    cdef double s = 0.0
    if not cnp.PyArray_Check(a):
        return None
    x = <cnp.ndarray>a
    if cnp.PyArray_NDIM(x) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(x):
        return None
    n = cnp.PyArray_DIM(x, 0)
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        pd = <const double*>cnp.PyArray_DATA(x)
        for i in range(n):
            s += pd[i] * 0.0       # NaN as soon as one entry is inf or NaN
    elif cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        pf = <const float*>cnp.PyArray_DATA(x)
        for i in range(n):
            s += <double>pf[i] * 0.0
    else:
        return None
    return s == 0.0


cdef int _finite_kind(const floating* a, Py_ssize_t n) noexcept nogil:
    # bit 0: some entry finite, bit 1: some entry not finite
    cdef int out = 0
    cdef Py_ssize_t i
    for i in range(n):
        if isfinite(a[i]):
            out |= 1
        else:
            out |= 2
        if out == 3:
            break
    return out


def bounds_kind(lb, ub):
    """0 when no bound in ``lb``/``ub`` is finite, 2 when all are, 1 otherwise
    (one pass in C for contiguous 1-D float32/float64 arrays of one dtype;
    NumPy otherwise)."""
    cdef cnp.ndarray a, b
    cdef int k
    if (cnp.PyArray_CheckExact(lb) and cnp.PyArray_CheckExact(ub)
            and cnp.PyArray_NDIM(<cnp.ndarray>lb) == 1 and cnp.PyArray_NDIM(<cnp.ndarray>ub) == 1
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>lb)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>ub)
            and cnp.PyArray_TYPE(<cnp.ndarray>lb) == cnp.PyArray_TYPE(<cnp.ndarray>ub)
            and cnp.PyArray_TYPE(<cnp.ndarray>lb) in (cnp.NPY_DOUBLE, cnp.NPY_FLOAT)):
        a = <cnp.ndarray>lb
        b = <cnp.ndarray>ub
        if cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE:
            k = (_finite_kind(<double*>cnp.PyArray_DATA(a), cnp.PyArray_DIM(a, 0))
                 | _finite_kind(<double*>cnp.PyArray_DATA(b), cnp.PyArray_DIM(b, 0)))
        else:
            k = (_finite_kind(<float*>cnp.PyArray_DATA(a), cnp.PyArray_DIM(a, 0))
                 | _finite_kind(<float*>cnp.PyArray_DATA(b), cnp.PyArray_DIM(b, 0)))
    else:
        fa = np.isfinite(lb)
        fb = np.isfinite(ub)
        k = (1 if (fa.any() or fb.any()) else 0) | (2 if not (fa.all() and fb.all()) else 0)
    return 0 if not (k & 1) else (2 if not (k & 2) else 1)


cdef int _bound_src(object v, double* tmp, const double** p, Py_ssize_t* step,
                    Py_ssize_t n):
    """Where ``prepare_box`` reads one side of the bounds from: a pointer and a
    stride in doubles.  1 for None (unbounded), 0 for a usable value, -1 when
    the value needs the general (NumPy) path."""
    cdef cnp.ndarray a
    if v is None:
        return 1
    if type(v) is float or (type(v) is int and -2**53 <= v <= 2**53):
        tmp[0] = <double>v
        p[0] = tmp
        step[0] = 0
        return 0
    if not cnp.PyArray_CheckExact(v):
        return -1
    a = <cnp.ndarray>v
    if cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE or not cnp.PyArray_IS_C_CONTIGUOUS(a):
        return -1
    if cnp.PyArray_NDIM(a) == 0 or (cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == 1):
        step[0] = 0
    elif cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == n:
        step[0] = 1
    else:
        return -1
    p[0] = <const double*>cnp.PyArray_DATA(a)
    return 0


def prepare_box(lb, ub, cnp.ndarray x0):
    """Fast path of ``minimize``'s bounds handling for the common inputs.

    ``lb``, ``ub``: None, a Python float/int, or a C-contiguous float64 array
    of shape (), (1,) or (n,); ``x0``: the validated contiguous 1-D
    float32/float64 start (modified in place: projected into the bounds).
    Returns ``(lo, hi, projected)`` (new arrays of x0's dtype, and whether
    x0 was outside), or None when an input needs the general NumPy path.
    Raises ``ValueError`` (naming ``bounds``) for a NaN bound or ``lo > hi``,
    checked on the float64 values as the general path does."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(x0, 0), i, sa = 0, sb = 0
    cdef double ta = -INFINITY, tb = INFINITY, a, b
    cdef const double* pa = &ta
    cdef const double* pb = &tb
    cdef int ka, kb, typenum = cnp.PyArray_TYPE(x0), out = 0
    cdef cnp.ndarray lo, hi
    cdef double* xd
    cdef float* xf
    cdef double* lod
    cdef double* hid
    cdef float* lof
    cdef float* hif
    ka = _bound_src(lb, &ta, &pa, &sa, n)
    kb = _bound_src(ub, &tb, &pb, &sb, n)
    if ka < 0 or kb < 0 or cnp.PyArray_NDIM(x0) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(x0):
        return None
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        return None
    for i in range(n):
        a = pa[i * sa]
        b = pb[i * sb]
        if a != a or b != b:
            raise ValueError("bounds must not contain NaN")
    for i in range(n):
        a = pa[i * sa]
        b = pb[i * sb]
        if a > b:
            raise ValueError(f"bounds: lower bound {a} > upper bound {b} for variable {i}")
    lo = cnp.PyArray_EMPTY(1, [n], typenum, 0)
    hi = cnp.PyArray_EMPTY(1, [n], typenum, 0)
    if typenum == cnp.NPY_DOUBLE:
        xd = <double*>cnp.PyArray_DATA(x0)
        lod = <double*>cnp.PyArray_DATA(lo)
        hid = <double*>cnp.PyArray_DATA(hi)
        for i in range(n):
            a = pa[i * sa]
            b = pb[i * sb]
            lod[i] = a
            hid[i] = b
            if xd[i] < a:
                xd[i] = a
                out = 1
            elif xd[i] > b:
                xd[i] = b
                out = 1
    else:
        # bounds rounded to float32 first, x0 compared with (and clipped to) those
        xf = <float*>cnp.PyArray_DATA(x0)
        lof = <float*>cnp.PyArray_DATA(lo)
        hif = <float*>cnp.PyArray_DATA(hi)
        for i in range(n):
            lof[i] = <float>pa[i * sa]
            hif[i] = <float>pb[i * sb]
            if xf[i] < lof[i]:
                xf[i] = lof[i]
                out = 1
            elif xf[i] > hif[i]:
                xf[i] = hif[i]
                out = 1
    return lo, hi, bool(out)


def two_loop(floating[:, ::1] S, floating[:, ::1] Y, const double[::1] rho,
             Py_ssize_t newest, Py_ssize_t count, double gamma, floating[::1] q):
    """In place ``q <- H q``: the L-BFGS inverse-Hessian product (two-loop recursion).

    ``S``, ``Y``: ring buffers of shape (m, n), row ``newest`` the newest pair,
    ``count`` pairs valid; ``rho[j] = 1 / (s_j . y_j)``; ``H0 = gamma I``.
    Validated by the callers (shapes, count <= m, newest < m).
    """
    cdef Py_ssize_t m = S.shape[0], n = S.shape[1]
    if Y.shape[0] != m or Y.shape[1] != n or rho.shape[0] < m or q.shape[0] != n:
        raise ValueError("two_loop: inconsistent shapes")
    if count < 0 or count > m or (count > 0 and not 0 <= newest < m):
        raise ValueError("two_loop: bad newest/count")
    if n == 0:
        return
    cdef double* alpha = <double*>malloc(max(m, 1) * sizeof(double))
    if alpha == NULL:
        raise MemoryError()
    with nogil:
        _two_loop(&S[0, 0] if m > 0 else NULL, &Y[0, 0] if m > 0 else NULL, &rho[0], m, n,
                  newest, count, gamma, &q[0], alpha)
    free(alpha)


# ------------------------------------------------------------------ the loop
cdef struct Cfg:
    int method
    Py_ssize_t m        # pairs kept (L-BFGS[-B])
    Py_ssize_t R        # ring slots: m + 1
    double gtol, ftol
    Py_ssize_t maxiter, maxfun
    int maxls
    double c1, c2, xtol
    int report          # call the driver each iteration
    int has_bounds
    int boxed
    double eps          # dtype machine epsilon


cdef struct Out:
    int status
    Py_ssize_t nit
    double f
    Py_ssize_t count, newest
    double gamma
    int fresh


ctypedef struct BP:
    double t
    Py_ssize_t i


cdef inline Py_ssize_t _slot(Py_ssize_t k, Py_ssize_t newest, Py_ssize_t count,
                             Py_ssize_t m) noexcept nogil:
    """Ring slot of the k-th pair, oldest first."""
    return (newest - count + 1 + k + m) % m


cdef double _absmax(const floating* g, Py_ssize_t n) noexcept nogil:
    """max |g_i|, inf when g has a NaN.

    Computed on the bit patterns: with the sign bit cleared, IEEE doubles
    (floats) order like their unsigned-integer patterns, and NaN patterns lie
    above inf.  An unsigned max reduction vectorizes where a floating-point one
    does not (without -ffast-math)."""
    cdef uint64_t r8 = 0, v8
    cdef uint32_t r4 = 0, v4
    cdef double out
    cdef float outf
    cdef Py_ssize_t i
    if floating is double:
        for i in range(n):
            memcpy(&v8, &g[i], 8)
            v8 &= 0x7fffffffffffffffULL
            r8 = v8 if v8 > r8 else r8
        memcpy(&out, &r8, 8)
    else:
        for i in range(n):
            memcpy(&v4, &g[i], 4)
            v4 &= 0x7fffffffU
            r4 = v4 if v4 > r4 else r4
        memcpy(&outf, &r4, 4)
        out = outf
    return out if out == out else INFINITY


cdef double _pgnorm(floating* x, floating* g, floating* lo, floating* hi, Py_ssize_t n,
                    int has_bounds) noexcept nogil:
    """Infinity norm of the projected gradient (of g when unbounded); inf if g has a NaN."""
    cdef double gi, a, b, out
    cdef uint64_t r8 = 0, v8
    cdef Py_ssize_t i
    if not has_bounds:
        return _absmax(g, n)
    # branch-free so that it vectorizes: an infinite bound gives x - hi = -inf
    # (or x - lo = +inf), which never replaces gi, so no test for it is needed;
    # the largest |gi| is an integer max over the bit patterns (as _absmax; a NaN
    # has a larger pattern than inf and turns the result into inf)
    for i in range(n):
        gi = g[i]
        a = x[i] - hi[i]
        b = x[i] - lo[i]
        if gi < 0.0:
            gi = a if a > gi else gi
        else:
            gi = b if b < gi else gi
        memcpy(&v8, &gi, 8)
        v8 &= 0x7fffffffffffffffULL
        r8 = v8 if v8 > r8 else r8
    memcpy(&out, &r8, 8)
    return out if out == out else INFINITY


# ------------------------------------------------ L-BFGS-B: compact form pieces
cdef inline double _dotd(const floating* a, const double* b, Py_ssize_t n) noexcept nogil:
    # a . b for a double b, eight partial sums as in _dot
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef double s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        s0 += <double>a[i] * b[i]
        s1 += <double>a[i + 1] * b[i + 1]
        s2 += <double>a[i + 2] * b[i + 2]
        s3 += <double>a[i + 3] * b[i + 3]
        s4 += <double>a[i + 4] * b[i + 4]
        s5 += <double>a[i + 5] * b[i + 5]
        s6 += <double>a[i + 6] * b[i + 6]
        s7 += <double>a[i + 7] * b[i + 7]
        i += 8
    while i < n:
        s0 += <double>a[i] * b[i]
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


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
       summed exactly as _dotd sums it (eight lanes, lane j taking the elements
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
    slots ``sl``, oldest first), each product summed as :func:`_dotd` sums it.
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
            out[k] = _dotd(&Y[sk * n], d, n)
            out[c + k] = theta * _dotd(&S[sk * n], d, n)
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


cdef int _chol(double* A, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
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


cdef int _schur(double* X, double* C, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
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


cdef int _schur_su(double* X, double* C, Py_ssize_t c, Py_ssize_t ld) noexcept nogil:
    """:func:`_schur` for a strictly upper triangular ``X`` (``X[i, k] == 0`` for
    ``k <= i``, as ``KE`` of the Cauchy step): the products with its zeros are
    skipped, c^3/6 multiply-adds instead of c^3/2; the remaining terms are added
    to each entry in the same order, so the factor is the same.  (Blocks of
    four columns, as in :func:`_schur`: the terms added left of column
    ``i + 1`` are products with X's exact zeros, which leave an entry as it is.)"""
    nx_syrk_lower(C, X, c, ld, 1)
    return _chol(C, c, ld)


cdef void _msolve(const double* L1, int diag, const double* X, const double* L2,
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


cdef inline void _sift_down(BP* h, Py_ssize_t k, Py_ssize_t nh) noexcept nogil:
    # restore the min-heap order (on t) below position k
    cdef BP x = h[k]
    cdef Py_ssize_t ch
    while True:
        ch = 2 * k + 1
        if ch >= nh:
            break
        if ch + 1 < nh and h[ch + 1].t < h[ch].t:
            ch += 1
        if not h[ch].t < x.t:
            break
        h[k] = h[ch]
        k = ch
    h[k] = x


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


cdef void _block_flags(BState* b, Py_ssize_t n) noexcept nogil:
    """``b.bt`` and ``b.sk8`` from the free flags ``b.fr``."""
    cdef Py_ssize_t j
    cdef int k
    cdef const char* fr = b.fr
    for j in range(n // 4):
        k = fr[4 * j] + fr[4 * j + 1] + fr[4 * j + 2] + fr[4 * j + 3]
        b.bt[j] = 1 if k == 4 else (2 if k == 0 else 0)
    for j in range(n // 8):
        b.sk8[j] = b.bt[2 * j] == 2 and b.bt[2 * j + 1] == 2


cdef void _gram_shift(BState* b, Py_ssize_t c) noexcept nogil:
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


cdef void _gram_new_pair(BState* b, floating* S, floating* Y, floating* wf, floating* wa,
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


cdef void _gram_toggle(BState* b, floating* S, floating* Y, Py_ssize_t n, Py_ssize_t i,
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


ctypedef fused _dirtype:
    float
    double


cdef double _box_step(const floating* x, const _dirtype* d, const floating* lo,
                      const floating* hi, const char* mask, Py_ssize_t n,
                      double amax) noexcept nogil:
    """Largest a <= amax with lo <= x + a d <= hi (coordinates with mask[i] == 0, or
    d[i] == 0, or an infinite bound in the direction of d[i], do not limit it)."""
    cdef Py_ssize_t i
    cdef double a
    for i in range(n):
        if mask != NULL and not mask[i]:
            continue
        if d[i] < 0.0 and lo[i] > -INFINITY:
            a = (lo[i] - x[i]) / d[i]
            if a < amax:
                amax = a
        elif d[i] > 0.0 and hi[i] < INFINITY:
            a = (hi[i] - x[i]) / d[i]
            if a < amax:
                amax = a
    return amax


cdef double _step_max(const floating* x, const floating* d, const floating* lo,
                      const floating* hi, Py_ssize_t n, double amax) noexcept nogil:
    """:func:`_box_step` without a mask, for a feasible ``x`` and ``amax > 0``,
    branch-free so that it vectorizes: each candidate step is the same quotient
    (``>= 0``: ``x`` is inside the box); the smallest is found as the
    unsigned minimum of the bit patterns with the sign cleared (``-0``
    counts as ``+0``, the only difference from the ordered loop, which keeps
    the first zero it meets)."""
    cdef Py_ssize_t i
    cdef double a
    cdef floating di, num
    cdef uint64_t r8, v8
    cdef bint ok
    memcpy(&r8, &amax, 8)
    for i in range(n):
        di = d[i]
        num = (lo[i] if di < 0.0 else hi[i]) - x[i]
        a = num / di
        ok = (di < 0.0 and lo[i] > -INFINITY) or (di > 0.0 and hi[i] < INFINITY)
        a = a if ok else INFINITY
        memcpy(&v8, &a, 8)
        v8 &= 0x7fffffffffffffffULL
        r8 = v8 if v8 < r8 else r8
    memcpy(&a, &r8, 8)
    return a


cdef int _cauchy_subspace(floating* x, floating* g, floating* lo, floating* hi,
                          floating* S, floating* Y, floating* wf, floating* wa, BState* b,
                          Py_ssize_t m, Py_ssize_t n, Py_ssize_t newest, Py_ssize_t c,
                          double theta, floating* xbar, double eps) noexcept nogil:
    """L-BFGS-B step: generalized Cauchy point then subspace minimization.

    Writes the new trial point into ``xbar``.  Returns 0, or 1 when a middle
    matrix is singular (the caller resets the memory).  Updates the free set
    ``b.fr`` (and its masks ``wf``, ``wa`` and Gram matrices) to the new
    Cauchy point's.
    """
    cdef Py_ssize_t i, j, k, sk, nbp, nfree, nchg, R = b.R, ld = b.ld, w = _width(c)
    cdef int fb
    cdef Py_ssize_t* sl = b.sl
    cdef double* p = b.wrk
    cdef double* cc = b.wrk + 2 * c
    cdef double* v = b.wrk + 4 * c
    cdef double* wb = b.wrk + 6 * c
    cdef double* dcp = b.dcp
    cdef double* tmp = b.tmp
    cdef BP* bps = b.bps
    cdef char* fr = b.fr
    cdef double f1, f2, f2_org, dtm, tsum, tj, dt, gb, zb, ti, a, a2, s1, s2
    cdef double tmin = INFINITY
    cdef double alpha, dd
    cdef char fi
    for k in range(c):
        sl[k] = _slot(k, newest, c, R)
    # ---- middle matrix of the Cauchy step, K = [[-D, L^T], [L, theta S^T S]]:
    # K1 = D^{-1/2} (reciprocals), KE = (L D^{-1/2})^T, K2 K2^T = theta S^T S + L D^{-1} L^T
    for j in range(c):
        b.K1[j] = 1.0 / sqrt(b.YS[j * ld + j])
    # (whole padded rows: the row updates of _schur_su reach right of the
    # diagonal; plain loops over the parts of each row, so that they vectorize)
    for k in range(c):
        a = b.K1[k]
        for j in range(k + 1):
            b.KE[k * ld + j] = 0.0
        for j in range(k + 1, c):
            b.KE[k * ld + j] = b.YS[k * ld + j] * a
        for j in range(c, w):
            b.KE[k * ld + j] = 0.0
    for j in range(c):
        for k in range(j + 1):
            b.K2[j * ld + k] = theta * b.SS[j * ld + k]
        for k in range(j + 1, w):
            b.K2[j * ld + k] = 0.0
    if _schur_su(b.KE, b.K2, c, ld):
        return 1
    # ---- breakpoints and the initial direction
    nbp = 0
    f1 = 0.0
    for i in range(n):
        xbar[i] = x[i]
        ti = INFINITY
        if lo[i] == hi[i]:
            ti = 0.0
        elif g[i] < 0.0 and hi[i] < INFINITY:
            ti = (x[i] - hi[i]) / g[i]
        elif g[i] > 0.0 and lo[i] > -INFINITY:
            ti = (x[i] - lo[i]) / g[i]
        if ti <= 0.0:
            dcp[i] = 0.0
        else:
            dcp[i] = -g[i]
            f1 -= dcp[i] * dcp[i]
            if ti < INFINITY:
                bps[nbp].t = ti
                bps[nbp].i = i
                nbp += 1
                if ti < tmin:
                    tmin = ti
    _wdots(S, Y, sl, c, n, theta, dcp, p, NULL)
    for k in range(c):
        cc[k] = 0.0
        cc[c + k] = 0.0
    if f1 < 0.0:
        for k in range(2 * c):
            v[k] = p[k]
        _msolve(b.K1, 1, b.KE, b.K2, c, ld, v)
        f2 = -theta * f1
        for k in range(2 * c):
            f2 -= p[k] * v[k]
        f2_org = f2
        if f2 <= 0.0:
            f2 = eps * fabs(f2_org) if f2_org != 0.0 else eps
        dtm = -f1 / f2
        tsum = 0.0
        # the breakpoints in increasing order from a heap (usually only the
        # first few are passed before the minimizer along the path, often none:
        # the heap is built only when the first one, the smallest, is passed)
        if nbp > 0 and not dtm < tmin - tsum:
            for k in range(nbp // 2 - 1, -1, -1):
                _sift_down(bps, k, nbp)
        else:
            nbp = 0
        while nbp > 0:
            tj = bps[0].t
            dt = tj - tsum
            if dtm < dt:
                break
            i = bps[0].i
            nbp -= 1
            bps[0] = bps[nbp]
            _sift_down(bps, 0, nbp)
            xbar[i] = hi[i] if dcp[i] > 0.0 else lo[i]
            zb = xbar[i] - x[i]
            gb = g[i]
            s1 = 0.0
            s2 = 0.0
            a = 0.0
            if c > 0:
                # w_b: row i of W = [Y, theta S]
                for k in range(c):
                    sk = sl[k]
                    cc[k] += dt * p[k]
                    cc[c + k] += dt * p[c + k]
                    wb[k] = Y[sk * n + i]
                    wb[c + k] = theta * S[sk * n + i]
                    v[k] = wb[k]
                    v[c + k] = wb[c + k]
                # one product v = M w_b gives w_b'M c, w_b'M p and w_b'M w_b (M symmetric)
                _msolve(b.K1, 1, b.KE, b.K2, c, ld, v)
                for k in range(2 * c):
                    s1 += v[k] * cc[k]
                    s2 += v[k] * p[k]
                    a += v[k] * wb[k]
            f1 = f1 + dt * f2 + gb * gb + theta * gb * zb - gb * s1
            f2 = f2 - theta * gb * gb - 2.0 * gb * s2 - gb * gb * a
            if f2 < eps * f2_org:
                f2 = eps * f2_org
            for k in range(2 * c):
                p[k] += gb * wb[k]
            dcp[i] = 0.0
            dtm = -f1 / f2
            tsum = tj
        if dtm < 0.0:
            dtm = 0.0
        tsum += dtm
        for i in range(n):
            if dcp[i] != 0.0:
                xbar[i] = <floating>(x[i] + tsum * dcp[i])
        for k in range(2 * c):
            cc[k] += dtm * p[k]
    # ---- the free set at the Cauchy point; Gram matrices follow its changes
    # a branch-free counting pass first (it vectorizes; the set rarely changes),
    # then the toggles only where the set did change
    nfree = 0
    nchg = 0
    for i in range(n):
        fb = (xbar[i] != lo[i]) & (xbar[i] != hi[i])
        nfree += fb
        nchg += fb ^ fr[i]
    if nchg:
        for i in range(n):
            fi = xbar[i] != lo[i] and xbar[i] != hi[i]
            if fi != fr[i]:
                if c > 0:
                    _gram_toggle(b, S, Y, n, i, c, 1.0 if fi else -1.0, wb)
                fr[i] = fi
                wf[i] = 1.0 if fi else 0.0
                wa[i] = 0.0 if fi else 1.0
        _block_flags(b, n)
    if nfree == 0:
        return 0
    # ---- subspace minimization over the free variables (direct primal method)
    # r = Z^T (g + theta (xcp - x) - W M c), in dcp
    for i in range(n):
        dcp[i] = g[i] + theta * (xbar[i] - x[i])
    if c > 0:
        # M c by one solve with the middle matrix.  (Accumulating M c along the
        # Cauchy path from M p and the M w_b saves that solve, ~0.15 us, but
        # changes the rounding and with it nit/nfev on long bounded runs, e.g.
        # rosen_chained box n=100 701 -> 712 nfev against SciPy's 705: not done.)
        _msolve(b.K1, 1, b.KE, b.K2, c, ld, cc)
        _wcomb(S, Y, sl, c, n, theta, cc, wb, dcp, True, b.sk8)
    for i in range(n):
        if not fr[i]:
            dcp[i] = 0.0
    if c > 0:
        # N = K - W_F^T W_F / theta = [[-(D + Y'ZZ'Y/theta), B^T], [B, theta S'AA'S]],
        # B = L - S'ZZ'Y: N1 N1^T = D + Y'ZZ'Y/theta, NE = B N1^{-T},
        # N2 N2^T = theta S'AA'S + NE NE^T
        for j in range(c):
            for k in range(j + 1):
                b.N1[j * ld + k] = b.FYY[j * ld + k] / theta
            b.N1[j * ld + j] += b.YS[j * ld + j]
        if _chol(b.N1, c, ld):
            return 1
        # NE = N1^{-1} B^T, B[j, k] = (s_j.y_k if k < j) - (s_j.y_k over the free set):
        # forward substitution for all c right-hand sides at once (rows of NE,
        # whole padded rows; the padding stays zero)
        for i in range(c):
            for j in range(i + 1):
                b.NE[i * ld + j] = 0.0 - b.FYS[i * ld + j]
            for j in range(i + 1, c):
                b.NE[i * ld + j] = b.YS[i * ld + j] - b.FYS[i * ld + j]
            for j in range(c, w):
                b.NE[i * ld + j] = 0.0
        nx_fwd_rows(b.NE, b.N1, c, ld, w)
        for j in range(c):
            for k in range(j + 1):
                b.N2[j * ld + k] = theta * b.ASS[j * ld + k]
            for k in range(j + 1, w):
                b.N2[j * ld + k] = 0.0
        if _schur(b.NE, b.N2, c, ld):
            return 1
        # v = N^{-1} W^T Z r
        _wdots(S, Y, sl, c, n, theta, dcp, v, b.sk8)
        _msolve(b.N1, 0, b.NE, b.N2, c, ld, v)
        # du = -(1/theta) r - (1/theta^2) Z^T W v ; stored in dcp
        _wcomb(S, Y, sl, c, n, theta, v, wb, tmp, False, b.sk8)
        for i in range(n):
            dcp[i] = -dcp[i] / theta - tmp[i] / (theta * theta)
    else:
        for i in range(n):
            dcp[i] = -dcp[i] / theta
    # projection, kept when it gives a descent direction (Morales & Nocedal 2011) ...
    dd = 0.0
    for i in range(n):
        if fr[i]:
            a = xbar[i] + dcp[i]
            if a < lo[i]:
                a = lo[i]
            elif a > hi[i]:
                a = hi[i]
        else:
            a = xbar[i]
        dd += (a - x[i]) * g[i]
    if dd < 0.0:
        for i in range(n):
            if fr[i]:
                a = xbar[i] + dcp[i]
                if a < lo[i]:
                    a = lo[i]
                elif a > hi[i]:
                    a = hi[i]
                xbar[i] = <floating>a
        return 0
    # ... otherwise truncate the step to the box (Byrd et al. 1995, Sec. 5.1)
    alpha = _box_step(xbar, dcp, lo, hi, fr, n, 1.0)
    if alpha < 0.0:
        alpha = 0.0
    for i in range(n):
        if fr[i]:
            xbar[i] = <floating>(xbar[i] + alpha * dcp[i])
    return 0


cdef inline bint _restart(int method, Py_ssize_t* count, int* bfgs_fresh,
                          int* cg_restart) noexcept nogil:
    """After a failed direction or line search: drop the quasi-Newton information and
    say so (the caller retries along the steepest-descent direction), or return False
    when it was already dropped (the failure is final).  L-BFGS(-B) (methods 0, 3)
    forgets its pairs, CG (2) restarts.  BFGS (1) never restarts: a failed line
    search ends the run (precision loss), as in SciPy's BFGS."""
    if (method == 0 or method == 3) and count[0] > 0:
        count[0] = 0
        return True
    if method == 2 and not cg_restart[0]:
        cg_restart[0] = 1
        return True
    return False


cdef int _run(floating* px, floating* pg, cnp.ndarray xa, cnp.ndarray ga, Py_ssize_t n,
              Evaluator ev, Cfg* cfg, Out* out, double f,
              floating* S, floating* Y, double* rho, floating* plo, floating* phi,
              floating* H, object driver) except -1:
    """The iteration loop on raw buffers: ``px``/``pg`` are the data of ``xa``/``ga``
    (updated in place), ``S``/``Y`` the (R, n) ring buffers and ``rho`` (R,)
    (returned as the memory; ``R = cfg.R``, one slot more than the ``m`` pairs
    kept, so that a new pair is written into a free slot and a rejected one
    never overwrites the oldest), ``H`` the (n, n) BFGS matrix (BFGS only),
    ``plo``/``phi`` the bounds (NULL when unbounded).  The work vectors are
    allocated here with malloc and freed on every exit."""
    cdef Py_ssize_t m = cfg.m, R = cfg.R, i, k, sk, nls
    cdef Py_ssize_t count = 0, newest = R - 1, nit = 0, slot
    cdef int method = cfg.method, status = S_RUNNING, task, lsfail, nonfinite
    cdef double fold = f, fprev = f + 0.0, dg, dgt = 0.0, stp = 1.0, stpmax, dnorm = 0.0
    cdef double gnorm, sy, yy
    cdef double gamma = 1.0, theta, beta, a, rho_k, yhy
    cdef int bfgs_fresh = 1, cg_restart = 1
    cdef MTState ls
    cdef double* alpha = NULL
    cdef floating* xold = NULL
    cdef floating* gold = NULL
    cdef floating* d = NULL
    cdef floating* xbar = NULL
    cdef floating* wf = NULL
    cdef floating* wa = NULL
    cdef BState bs
    cdef double* mem = NULL
    cdef size_t nmem = R, nmat = 0
    bs.R = R
    bs.ld = _width(m)
    if cfg.has_bounds:
        # one block of doubles for alpha and the L-BFGS-B memory: the matrices
        # (zeroed), then dcp and tmp (2n), the breakpoint heap (BP: 16 bytes,
        # 2n), the slots (m) and the free flags (n chars)
        nmat = 11 * m * bs.ld + 12 * m + 1
        nmem += nmat + 4 * n + m + (n + 7) // 8 + (n // 4 + n // 8 + 7) // 8
    mem = <double*>malloc(nmem * sizeof(double))
    xold = <floating*>malloc((6 if cfg.has_bounds else 4) * n * sizeof(floating))
    if mem == NULL or xold == NULL:
        free(mem); free(xold)
        raise MemoryError()
    alpha = mem
    gold = xold + n
    d = xold + 2 * n
    xbar = xold + 3 * n
    if cfg.has_bounds:
        wf = xold + 4 * n
        wa = xold + 5 * n
        bs.SS = mem + R
        memset(bs.SS, 0, nmat * sizeof(double))
        bs.dcp = bs.SS + nmat
        bs.bps = <BP*>(bs.dcp + 2 * n)
        bs.sl = <Py_ssize_t*>(bs.dcp + 4 * n)
        bs.fr = <char*>(bs.dcp + 4 * n + m)
        bs.bt = bs.fr + n
        bs.sk8 = bs.bt + n // 4
        bs.YS = bs.SS + m * bs.ld
        bs.FYY = bs.SS + 2 * m * bs.ld
        bs.FYS = bs.SS + 3 * m * bs.ld
        bs.ASS = bs.SS + 4 * m * bs.ld
        bs.K1 = bs.SS + 5 * m * bs.ld
        bs.KE = bs.K1 + m * bs.ld
        bs.K2 = bs.K1 + 2 * m * bs.ld
        bs.N1 = bs.K1 + 3 * m * bs.ld
        bs.NE = bs.K1 + 4 * m * bs.ld
        bs.N2 = bs.K1 + 5 * m * bs.ld
        bs.wrk = bs.K1 + 6 * m * bs.ld
        bs.tmp = bs.dcp + n
        # before the first Cauchy point every variable counts as free
        for i in range(n):
            bs.fr[i] = 1
            wf[i] = 1.0
            wa[i] = 0.0
            bs.tmp[i] = 0.0     # (entries of blocks skipped by _wcomb stay finite)
        _block_flags(&bs, n)
    fprev = f + 0.5 * sqrt(_dot(pg, pg, n))   # SciPy's first-step heuristic (BFGS/CG)
    try:
        gnorm = _pgnorm(px, pg, plo, phi, n, cfg.has_bounds)
        if gnorm <= cfg.gtol:
            status = S_GTOL
        elif cfg.maxiter == 0:
            status = S_MAXITER
        while status == S_RUNNING:
            # ---------------------------------------------------- direction
            if method == 0:         # L-BFGS two-loop
                for i in range(n):
                    d[i] = -pg[i]
                if count > 0:
                    _two_loop(S, Y, rho, R, n, newest, count, gamma, d, alpha)
            elif method == 1:       # BFGS: d = -H g
                if bfgs_fresh:
                    for i in range(n):
                        d[i] = -pg[i]
                else:
                    for i in range(n):
                        d[i] = <floating>(-_dot(&H[i * n], pg, n))
            elif method == 2:       # CG, Polak-Ribiere+
                if cg_restart:
                    for i in range(n):
                        d[i] = -pg[i]
                else:
                    a = _dot(gold, gold, n)
                    beta = 0.0
                    for i in range(n):
                        beta += <double>pg[i] * (<double>pg[i] - gold[i])
                    beta = beta / a if a > 0.0 else 0.0
                    if beta < 0.0:
                        beta = 0.0
                    for i in range(n):
                        d[i] = <floating>(-pg[i] + beta * d[i])
                    if _dot(d, pg, n) > -0.01 * _dot(pg, pg, n):
                        for i in range(n):
                            d[i] = -pg[i]
                        cg_restart = 1
            else:                   # L-BFGS-B
                theta = 1.0 / gamma if count > 0 else 1.0
                if _cauchy_subspace(px, pg, plo, phi, S, Y, wf, wa, &bs, m, n, newest, count,
                                    theta, xbar, cfg.eps):
                    count = 0
                    continue
                for i in range(n):
                    d[i] = xbar[i] - px[i]
            dg = _dot(d, pg, n)
            dnorm = sqrt(_dot(d, d, n))
            if not dg < 0.0:
                if _restart(method, &count, &bfgs_fresh, &cg_restart):
                    continue
                status = S_GTOL if dg == 0.0 and gnorm <= cfg.gtol else S_LINESEARCH
                break
            # ---------------------------------------------------- step bounds
            stpmax = 1e10 if method in (0, 3) else 1e100
            if cfg.has_bounds:
                if nit == 0:
                    stpmax = 1.0
                else:
                    # (only the value when it is >= 1 matters: the sign of a zero
                    # does not; _step_max may differ from _box_step only there)
                    stpmax = _step_max(px, d, plo, phi, n, stpmax)
                    if stpmax < 1.0:
                        stpmax = 1.0   # xbar is feasible: the unit step always is
            if method == 0 or method == 3:
                if count == 0 and not cfg.boxed:
                    stp = min(1.0 / dnorm, stpmax)
                else:
                    stp = min(1.0, stpmax)
            else:
                # BFGS and CG: SciPy's first trial step (line_search_wolfe1),
                # min(1, 1.01 * 2 (f_k - f_{k-1}) / g.d), 1 when that is not positive
                stp = 1.01 * 2.0 * (f - fprev) / dg
                if not (stp > 0.0) or stp > 1.0:
                    stp = 1.0
            # ---------------------------------------------------- line search
            memcpy(xold, px, n * sizeof(floating))
            memcpy(gold, pg, n * sizeof(floating))
            fold = f
            task = mt_start(&ls, f, dg, &stp, cfg.c1, cfg.c2, cfg.xtol, 0.0, stpmax)
            lsfail = 0
            nonfinite = 0
            nls = 0
            while True:
                if task == MT_ERROR:
                    lsfail = 1
                    break
                for i in range(n):
                    px[i] = <floating>(xold[i] + stp * d[i])
                if cfg.has_bounds:
                    for i in range(n):
                        if px[i] < plo[i]:
                            px[i] = plo[i]
                        elif px[i] > phi[i]:
                            px[i] = phi[i]
                try:
                    f = ev.evaluate(xa, ga)
                except KeyboardInterrupt:
                    status = S_INTERRUPTED
                    lsfail = 1
                    break
                nls += 1
                # g . d is non-finite whenever g has an inf or a NaN (inf * 0 is NaN),
                # so one pass gives both the slope and the finiteness test
                dgt = _dot(pg, d, n)
                if not (isfinite(f) and isfinite(dgt)):
                    nonfinite = 1
                    if nls >= cfg.maxls or ev.nfev >= cfg.maxfun:
                        lsfail = 1
                        break
                    mt_nonfinite(&ls, &stp)
                    continue
                task = mt_iterate(&ls, &stp, f, dgt)
                if task == MT_CONVERGED:
                    break
                if task != MT_FG:
                    # a warning: accept the last trial when it decreased f enough;
                    # BFGS fails, as SciPy's line_search_wolfe1 (its stp is None)
                    if method == 1 or not (f <= fold + cfg.c1 * stp * dg) \
                            or not (f <= fold):
                        lsfail = 1
                    break
                if ev.nfev >= cfg.maxfun:
                    if not f < fold:
                        lsfail = 1
                    status = S_MAXFUN
                    break
                if nls >= cfg.maxls:
                    lsfail = 1
                    break
            if lsfail:
                memcpy(px, xold, n * sizeof(floating))
                memcpy(pg, gold, n * sizeof(floating))
                f = fold
                if status != S_RUNNING:
                    break
                if _restart(method, &count, &bfgs_fresh, &cg_restart):
                    continue
                if nonfinite:
                    status = S_NONFINITE
                elif method == 0 or method == 3:
                    status = S_LINESEARCH
                else:
                    status = S_PRECISION
                break
            # ---------------------------------------------------- update
            nit += 1
            cg_restart = 0
            fprev = fold
            if method == 0 or method == 3:
                slot = newest + 1 if newest + 1 < R else 0
                for i in range(n):
                    S[slot * n + i] = px[i] - xold[i]
                    Y[slot * n + i] = pg[i] - gold[i]
                # (separate passes: a fused loop with these reductions does not vectorize)
                sy = _dot(&S[slot * n], &Y[slot * n], n)
                yy = _dot(&Y[slot * n], &Y[slot * n], n)
                if sy > cfg.eps * yy and yy > 0.0:
                    rho[slot] = 1.0 / sy
                    gamma = sy / yy
                    newest = slot
                    if count < m:
                        count += 1
                    elif method == 3:
                        _gram_shift(&bs, count)     # the oldest pair leaves the memory
                    if method == 3:
                        _gram_new_pair(&bs, S, Y, wf, wa, n, slot, newest, count)
            elif method == 1:
                # s -> xbar, y -> d (d is recomputed next iteration)
                for i in range(n):
                    xbar[i] = px[i] - xold[i]
                    d[i] = pg[i] - gold[i]
                sy = _dot(xbar, d, n)
                yy = _dot(d, d, n)
                if sy > cfg.eps * yy and yy > 0.0:
                    if bfgs_fresh:
                        a = 1.0         # H0 = I, as SciPy's BFGS (no eq. 6.20 scaling)
                        for i in range(n):
                            for k in range(n):
                                H[i * n + k] = 0.0
                            H[i * n + i] = <floating>a
                        bfgs_fresh = 0
                    rho_k = 1.0 / sy
                    # gold <- H y (gold is free until the next line search)
                    for i in range(n):
                        gold[i] = <floating>_dot(&H[i * n], d, n)
                    yhy = _dot(gold, d, n)
                    a = rho_k * rho_k * yhy + rho_k
                    for i in range(n):
                        for k in range(n):
                            H[i * n + k] = <floating>(H[i * n + k] - rho_k * (gold[i] * xbar[k]
                                                      + xbar[i] * gold[k]) + a * xbar[i] * xbar[k])
            # ---------------------------------------------------- report, tests
            if cfg.report:
                ev.sync()
                try:
                    st = driver.iteration(nit, xa, f, ga, stp * dnorm)
                except KeyboardInterrupt:
                    status = S_INTERRUPTED
                    break
                if st is not None:
                    status = int(st)
                    break
            if status != S_RUNNING:
                break
            gnorm = _pgnorm(px, pg, plo, phi, n, cfg.has_bounds)
            if gnorm <= cfg.gtol:
                status = S_GTOL
            elif (method == 0 or method == 3) and \
                    (fold - f) <= cfg.ftol * max(fabs(fold), fabs(f), 1.0):
                status = S_FTOL
            elif nit >= cfg.maxiter:
                status = S_MAXITER
            elif ev.nfev >= cfg.maxfun:
                status = S_MAXFUN
    finally:
        ev.sync()
        free(mem); free(xold)
    out.status = status
    out.nit = nit
    out.f = f
    out.count = count
    out.newest = newest
    out.gamma = gamma
    out.fresh = bfgs_fresh
    return 0


cdef object _ordered_rows(cnp.ndarray R, Py_ssize_t count, Py_ssize_t newest, Py_ssize_t m):
    """Copy of the ``count`` valid rows of ring buffer ``R`` (m, n or m,), oldest first."""
    cdef Py_ssize_t k, row = R.strides[0] if R.ndim == 2 else R.itemsize
    cdef cnp.npy_intp dims[2]
    dims[0] = count
    dims[1] = R.shape[1] if R.ndim == 2 else 0
    # PyArray_EMPTY, not np.empty: no Python-level call (a small run feels it)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(R.ndim, dims, cnp.PyArray_TYPE(R), 0)
    cdef char* src = <char*>cnp.PyArray_DATA(R)
    cdef char* dst = <char*>cnp.PyArray_DATA(out)
    for k in range(count):
        memcpy(dst + k * row, src + _slot(k, newest, count, m) * row, row)
    return out


def run(Evaluator ev, cnp.ndarray xa, cnp.ndarray ga, double f, int method, *,
        Py_ssize_t m=10, double gtol=1e-5, double ftol=0.0, Py_ssize_t maxiter=1000,
        Py_ssize_t maxfun=10**9, int maxls=20, double c1=1e-4, double c2=0.9,
        double xtol=1e-14, lo=None, hi=None, driver=None, bint report=False, int boxed=-1):
    """Run the loop from ``xa`` (updated in place, with its gradient ``ga``).

    Returns ``(status, nit, f, state)``; ``state`` holds the memory for the
    inverse-Hessian operator: ``sk, yk`` (the stored pairs, oldest first),
    ``rho`` (``1 / s.y`` of each) and ``gamma`` (L-BFGS[-B]), or ``H`` (BFGS).
    Everything is validated by the Python front ends.
    """
    cdef Py_ssize_t n = xa.shape[0]
    cdef Cfg cfg
    cdef Out out
    cdef cnp.ndarray S, Y, rho, H, alo, ahi
    cdef int typenum = cnp.PyArray_TYPE(xa)
    if (cnp.PyArray_TYPE(ga) != typenum or ga.shape[0] != n or xa.ndim != 1 or ga.ndim != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(xa) or not cnp.PyArray_IS_C_CONTIGUOUS(ga)):
        raise ValueError("run: x and g must be contiguous 1-D arrays of one dtype and length")
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        raise TypeError(f"run: unsupported dtype {xa.dtype}")
    if method not in (0, 1, 2, 3):
        raise ValueError("run: unknown method code")
    if n == 0:
        raise ValueError("run: x must not be empty")
    mm = max(m, 1) if method in (0, 3) else 1
    cfg.method = method
    cfg.m = mm
    rr = mm + 1 if method in (0, 3) else 1
    cfg.R = rr
    cfg.gtol = gtol
    cfg.ftol = ftol
    cfg.maxiter = maxiter
    cfg.maxfun = maxfun
    cfg.maxls = max(maxls, 1)
    cfg.c1 = c1
    cfg.c2 = c2
    cfg.xtol = xtol
    cfg.report = report
    cfg.eps = 2.220446049250313e-16 if typenum == cnp.NPY_DOUBLE else 1.1920928955078125e-07
    S = cnp.PyArray_EMPTY(2, [rr, n], typenum, 0)
    Y = cnp.PyArray_EMPTY(2, [rr, n], typenum, 0)
    rho = cnp.PyArray_ZEROS(1, [rr], cnp.NPY_DOUBLE, 0)
    H = cnp.PyArray_EMPTY(2, [n, n], typenum, 0) if method == 1 else None
    cfg.has_bounds = lo is not None
    cfg.boxed = 0
    alo = ahi = None
    if lo is not None:
        if (cnp.PyArray_CheckExact(lo) and cnp.PyArray_TYPE(<cnp.ndarray>lo) == typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>lo)):
            alo = <cnp.ndarray>lo           # the common case: no NumPy call
        else:
            alo = np.ascontiguousarray(lo, dtype=xa.dtype)
        if (cnp.PyArray_CheckExact(hi) and cnp.PyArray_TYPE(<cnp.ndarray>hi) == typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>hi)):
            ahi = <cnp.ndarray>hi
        else:
            ahi = np.ascontiguousarray(hi, dtype=xa.dtype)
        if alo.ndim != 1 or ahi.ndim != 1 or alo.shape[0] != n or ahi.shape[0] != n:
            raise ValueError("run: bounds of the wrong length")
        cfg.boxed = (bounds_kind(alo, ahi) == 2) if boxed < 0 else boxed
    if typenum == cnp.NPY_DOUBLE:
        _run[double](<double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(ga), xa, ga, n,
                     ev, &cfg, &out, f, <double*>cnp.PyArray_DATA(S),
                     <double*>cnp.PyArray_DATA(Y), <double*>cnp.PyArray_DATA(rho),
                     <double*>cnp.PyArray_DATA(alo) if alo is not None else NULL,
                     <double*>cnp.PyArray_DATA(ahi) if ahi is not None else NULL,
                     <double*>cnp.PyArray_DATA(H) if H is not None else NULL, driver)
    else:
        _run[float](<float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(ga), xa, ga, n,
                    ev, &cfg, &out, f, <float*>cnp.PyArray_DATA(S),
                    <float*>cnp.PyArray_DATA(Y), <double*>cnp.PyArray_DATA(rho),
                    <float*>cnp.PyArray_DATA(alo) if alo is not None else NULL,
                    <float*>cnp.PyArray_DATA(ahi) if ahi is not None else NULL,
                    <float*>cnp.PyArray_DATA(H) if H is not None else NULL, driver)
    state = {"count": out.count, "newest": out.newest, "gamma": out.gamma}
    if method in (0, 3):
        state["sk"] = _ordered_rows(S, out.count, out.newest, rr)
        state["yk"] = _ordered_rows(Y, out.count, out.newest, rr)
        state["rho"] = _ordered_rows(rho, out.count, out.newest, rr)
    elif method == 1:
        state["H"] = np.eye(n, dtype=xa.dtype) if out.fresh else H
    return out.status, out.nit, out.f, state
