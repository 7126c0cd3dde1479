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
- ``BFGS``: dense inverse-Hessian update (Nocedal & Wright eq. 6.17), scaled
  by eq. 6.20 before the first update.
- ``CG``: Polak–Ribière+ nonlinear conjugate gradients (Nocedal & Wright
  eq. 5.45), restarted with steepest descent when the direction is not a
  sufficient descent direction.

The loop calls back into Python only to evaluate the objective (through
:class:`Evaluator`) and, when a callback/disp/maxtime is set, once per
iteration to report to the driver.  Vectors keep the dtype of ``x``
(float32/float64); inner products accumulate in double.
"""
cimport numpy as cnp
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cython cimport floating
from libc.math cimport fabs, sqrt, isfinite, INFINITY
from libc.stdlib cimport malloc, calloc, free, qsort
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memcmp

import numpy as np

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


# ---------------------------------------------------- small dense LU (2m x 2m)
cdef int _lu(double* A, int* piv, int N) noexcept nogil:
    """In-place LU with partial pivoting; 1 when a pivot is (numerically) zero."""
    cdef int i, j, k, p
    cdef double mx, t, scale = 0.0
    for i in range(N * N):
        if fabs(A[i]) > scale:
            scale = fabs(A[i])
    for k in range(N):
        p = k
        mx = fabs(A[k * N + k])
        for i in range(k + 1, N):
            if fabs(A[i * N + k]) > mx:
                mx = fabs(A[i * N + k])
                p = i
        piv[k] = p
        if mx <= 1e-300 or mx <= 1e-14 * scale:
            return 1
        if p != k:
            for j in range(N):
                t = A[k * N + j]
                A[k * N + j] = A[p * N + j]
                A[p * N + j] = t
        for i in range(k + 1, N):
            A[i * N + k] /= A[k * N + k]
            t = A[i * N + k]
            if t != 0.0:
                for j in range(k + 1, N):
                    A[i * N + j] -= t * A[k * N + j]
    return 0


cdef void _lu_solve(const double* A, const int* piv, double* b, int N) noexcept nogil:
    cdef int i, j
    cdef double t
    for i in range(N):
        if piv[i] != i:
            t = b[i]
            b[i] = b[piv[i]]
            b[piv[i]] = t
    for i in range(N):
        for j in range(i):
            b[i] -= A[i * N + j] * b[j]
    for i in range(N - 1, -1, -1):
        for j in range(i + 1, N):
            b[i] -= A[i * N + j] * b[j]
        b[i] /= A[i * N + i]


# ----------------------------------------------------------------- evaluation
cdef class Evaluator:
    """Evaluates f and g for the compiled loop and counts the calls.

    ``mode`` 0: ``fun`` returns ``(f, g)``; 1: separate ``fun`` and ``jac``;
    2: ``obj.fun_and_grad`` (finite differences).  Every call receives a fresh
    copy of x, as SciPy's wrappers pass ``np.copy(x)``: a user function that
    keeps (or modifies) its argument never sees the loop's own buffer change.
    Returned values are validated: a real scalar and an array of x's shape
    (the wrapper's checks, with a fast path for a Python/NumPy float and a
    contiguous array of x's dtype).

    The counters ``nfev``/``njev`` are C integers while the loop runs;
    :meth:`sync` writes them back to ``obj`` (the loop calls it before it
    reports to the driver and when it returns or raises).
    """

    cdef object obj, fun, jac, args, scalar
    cdef int mode, typenum, noargs
    cdef Py_ssize_t n
    cdef public Py_ssize_t nfev, njev

    def __init__(self, obj, int mode, fun, jac, tuple args, int typenum, Py_ssize_t n):
        from neurenix.optimize._objective import _scalar
        self.obj = obj
        self.mode = mode
        self.fun = fun
        self.jac = jac
        self.args = args
        self.noargs = len(args) == 0
        self.scalar = _scalar
        self.typenum = typenum
        self.n = n
        self.nfev = obj.nfev
        self.njev = obj.njev

    cpdef sync(self):
        """Write the counters back to the objective wrapper."""
        if self.mode != 2:
            self.obj.nfev = self.nfev
            self.obj.njev = self.njev

    cdef double _f(self, fo) except? -1.0:
        if PyFloat_Check(fo):           # float and numpy.float64
            return PyFloat_AS_DOUBLE(fo)
        return self.scalar(fo, None, "fun")

    cdef int _g(self, go, cnp.ndarray ga) except -1:
        cdef cnp.ndarray a
        if cnp.PyArray_Check(go):
            a = <cnp.ndarray>go
            if (cnp.PyArray_TYPE(a) == self.typenum and cnp.PyArray_NDIM(a) == 1
                    and cnp.PyArray_DIM(a, 0) == self.n and cnp.PyArray_IS_C_CONTIGUOUS(a)):
                memcpy(cnp.PyArray_DATA(ga), cnp.PyArray_DATA(a), self.n * cnp.PyArray_ITEMSIZE(ga))
                return 0
        a = self.obj._check_grad(go)
        memcpy(cnp.PyArray_DATA(ga), cnp.PyArray_DATA(a), self.n * cnp.PyArray_ITEMSIZE(ga))
        return 0

    cdef double evaluate(self, cnp.ndarray xa, cnp.ndarray ga) except? -1.0:
        cdef double f
        xc = cnp.PyArray_NewCopy(xa, cnp.NPY_CORDER)
        if self.mode == 0:
            out = self.fun(xc) if self.noargs else self.fun(xc, *self.args)
            self.nfev += 1
            try:
                fo, go = out
            except (TypeError, ValueError):
                raise TypeError("fun must return a pair (f, g) when jac is True") from None
            f = self._f(fo)
            self._g(go, ga)
            self.njev += 1
        elif self.mode == 1:
            fo = self.fun(xc) if self.noargs else self.fun(xc, *self.args)
            self.nfev += 1
            f = self._f(fo)
            xc = cnp.PyArray_NewCopy(xa, cnp.NPY_CORDER)     # jac gets its own copy too
            go = self.jac(xc) if self.noargs else self.jac(xc, *self.args)
            self._g(go, ga)
            self.njev += 1
        else:
            obj = self.obj
            fo, go = obj.fun_and_grad(xc)
            self.nfev = obj.nfev
            self.njev = obj.njev
            f = fo
            self._g(go, ga)
        return f


# ------------------------------------------------------------------ the loop
cdef struct Cfg:
    int method
    Py_ssize_t m
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


cdef int _cmp_bp(const void* a, const void* b) noexcept nogil:
    cdef double ta = (<BP*>a).t, tb = (<BP*>b).t
    return -1 if ta < tb else (1 if ta > tb else 0)


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
    cdef double r = 0.0, gi
    cdef Py_ssize_t i
    if not has_bounds:
        return _absmax(g, n)
    for i in range(n):
        gi = g[i]
        if gi < 0.0:
            if hi[i] < INFINITY and x[i] - hi[i] > gi:
                gi = x[i] - hi[i]
        else:
            if lo[i] > -INFINITY and x[i] - lo[i] < gi:
                gi = x[i] - lo[i]
        if fabs(gi) > r or gi != gi:
            r = fabs(gi) if gi == gi else INFINITY
    return r


cdef int _cauchy_subspace(floating* x, floating* g, floating* lo, floating* hi,
                          floating* S, floating* Y, double* SS, double* SY,
                          double* YY, Py_ssize_t m, Py_ssize_t n,
                          Py_ssize_t newest, Py_ssize_t c, double theta,
                          floating* xbar, double* dcp, char* free_, BP* bps,
                          double* K, double* N, int* piv, int* piv2, double* wrk,
                          double eps, Py_ssize_t* sl) noexcept nogil:
    """L-BFGS-B step: generalized Cauchy point then subspace minimization.

    Writes the new trial point into ``xbar``.  Returns 0, or 1 when the middle
    matrix is singular (the caller resets the memory).  ``sl`` (length >= c)
    receives the ring slot of each pair, oldest first, so that the loops over
    the n variables never recompute it.
    """
    cdef Py_ssize_t i, j, k, kk, sj, sk, nbp, nfree, nb
    cdef int c2 = <int>(2 * c)
    cdef double* p = wrk
    cdef double* cc = wrk + c2
    cdef double* Mv = wrk + 2 * c2
    cdef double* wb = wrk + 3 * c2
    cdef double* v = wrk + 4 * c2
    cdef double* Mc = wrk + 5 * c2
    cdef double f1, f2, f2_org, dtm, tsum, tj, dt, gb, zb, ti, a, s1, s2
    cdef double alpha, dd
    for k in range(c):
        sl[k] = _slot(k, newest, c, m)
    # ---- middle matrix K = [[-D, L^T], [L, theta S^T S]] (oldest first), LU-factored
    for j in range(c):
        sj = sl[j]
        for k in range(c):
            sk = sl[k]
            K[j * c2 + k] = -SY[sj * m + sj] if j == k else 0.0           # -D
            K[j * c2 + c + k] = SY[sk * m + sj] if k > j else 0.0         # L^T
            K[(c + j) * c2 + k] = SY[sj * m + sk] if j > k else 0.0       # L
            K[(c + j) * c2 + c + k] = theta * SS[sj * m + sk]             # theta S^T S
    if c > 0 and _lu(K, piv, c2):
        return 1
    # ---- breakpoints and the initial direction
    nbp = 0
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
            if ti < INFINITY:
                bps[nbp].t = ti
                bps[nbp].i = i
                nbp += 1
    for k in range(c2):
        p[k] = 0.0
        cc[k] = 0.0
    f1 = 0.0
    for i in range(n):
        if dcp[i] != 0.0:
            f1 -= dcp[i] * dcp[i]
            for k in range(c):
                sk = sl[k]
                p[k] += Y[sk * n + i] * dcp[i]
                p[c + k] += theta * S[sk * n + i] * dcp[i]
    if f1 < 0.0:
        for k in range(c2):
            Mv[k] = p[k]
        if c > 0:
            _lu_solve(K, piv, Mv, c2)
        f2 = -theta * f1
        for k in range(c2):
            f2 -= p[k] * Mv[k]
        f2_org = f2
        if f2 <= 0.0:
            f2 = eps * fabs(f2_org) if f2_org != 0.0 else eps
        dtm = -f1 / f2
        tsum = 0.0
        qsort(bps, nbp, sizeof(BP), _cmp_bp)
        kk = 0
        while kk < nbp:
            tj = bps[kk].t
            dt = tj - tsum
            if dtm < dt:
                break
            i = bps[kk].i
            kk += 1
            xbar[i] = hi[i] if dcp[i] > 0.0 else lo[i]
            zb = xbar[i] - x[i]
            for k in range(c2):
                cc[k] += dt * p[k]
            gb = g[i]
            for k in range(c):
                sk = sl[k]
                wb[k] = Y[sk * n + i]
                wb[c + k] = theta * S[sk * n + i]
            # M c, M p, M w_b
            s1 = 0.0
            s2 = 0.0
            a = 0.0
            if c > 0:
                for k in range(c2):
                    Mv[k] = cc[k]
                _lu_solve(K, piv, Mv, c2)
                for k in range(c2):
                    s1 += wb[k] * Mv[k]
                for k in range(c2):
                    Mv[k] = p[k]
                _lu_solve(K, piv, Mv, c2)
                for k in range(c2):
                    s2 += wb[k] * Mv[k]
                for k in range(c2):
                    Mv[k] = wb[k]
                _lu_solve(K, piv, Mv, c2)
                for k in range(c2):
                    a += wb[k] * Mv[k]
            f1 = f1 + dt * f2 + gb * gb + theta * gb * zb - gb * s1
            f2 = f2 - theta * gb * gb - 2.0 * gb * s2 - gb * gb * a
            if f2 < eps * f2_org:
                f2 = eps * f2_org
            for k in range(c2):
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
        for k in range(c2):
            cc[k] += dtm * p[k]
    # ---- subspace minimization over the free variables at the Cauchy point
    nfree = 0
    for i in range(n):
        free_[i] = (xbar[i] != lo[i] and xbar[i] != hi[i])
        nfree += free_[i]
    if nfree == 0:
        return 0
    # Mc = M c
    for k in range(c2):
        Mc[k] = cc[k]
    if c > 0:
        _lu_solve(K, piv, Mc, c2)
    # r = Z^T (g + theta (xcp - x) - W M c), stored in dcp; v = W^T Z r
    for k in range(c2):
        v[k] = 0.0
    for i in range(n):
        if not free_[i]:
            dcp[i] = 0.0
            continue
        a = g[i] + theta * (xbar[i] - x[i])
        for k in range(c):
            sk = sl[k]
            a -= Y[sk * n + i] * Mc[k] + theta * S[sk * n + i] * Mc[c + k]
        dcp[i] = a
        for k in range(c):
            sk = sl[k]
            v[k] += Y[sk * n + i] * a
            v[c + k] += theta * S[sk * n + i] * a
    if c > 0:
        # N = K - A / theta, A = W_F^T W_F (from W^T W minus the bound rows when cheaper)
        nb = n - nfree
        for j in range(c):
            sj = sl[j]
            for k in range(c):
                sk = sl[k]
                if nb < nfree:
                    N[j * c2 + k] = YY[sj * m + sk]
                    N[j * c2 + c + k] = theta * SY[sk * m + sj]
                    N[(c + j) * c2 + k] = theta * SY[sj * m + sk]
                    N[(c + j) * c2 + c + k] = theta * theta * SS[sj * m + sk]
                else:
                    N[j * c2 + k] = 0.0
                    N[j * c2 + c + k] = 0.0
                    N[(c + j) * c2 + k] = 0.0
                    N[(c + j) * c2 + c + k] = 0.0
        for i in range(n):
            if (nb < nfree) == (free_[i] != 0):
                continue
            a = -1.0 if nb < nfree else 1.0
            for j in range(c):
                sj = sl[j]
                for k in range(c):
                    sk = sl[k]
                    N[j * c2 + k] += a * Y[sj * n + i] * Y[sk * n + i]
                    N[j * c2 + c + k] += a * theta * Y[sj * n + i] * S[sk * n + i]
                    N[(c + j) * c2 + k] += a * theta * S[sj * n + i] * Y[sk * n + i]
                    N[(c + j) * c2 + c + k] += a * theta * theta * S[sj * n + i] * S[sk * n + i]
        # rebuild K unfactored into N: N = K - A/theta
        for j in range(c):
            sj = sl[j]
            for k in range(c):
                sk = sl[k]
                N[j * c2 + k] = (-SY[sj * m + sj] if j == k else 0.0) - N[j * c2 + k] / theta
                N[j * c2 + c + k] = (SY[sk * m + sj] if k > j else 0.0) - N[j * c2 + c + k] / theta
                N[(c + j) * c2 + k] = (SY[sj * m + sk] if j > k else 0.0) - N[(c + j) * c2 + k] / theta
                N[(c + j) * c2 + c + k] = theta * SS[sj * m + sk] - N[(c + j) * c2 + c + k] / theta
        if _lu(N, piv2, c2):
            return 1
        _lu_solve(N, piv2, v, c2)
    # du = -(1/theta) r - (1/theta^2) Z^T W N^{-1} W^T Z r ; stored in dcp
    for i in range(n):
        if not free_[i]:
            continue
        a = 0.0
        for k in range(c):
            sk = sl[k]
            a += Y[sk * n + i] * v[k] + theta * S[sk * n + i] * v[c + k]
        dcp[i] = -dcp[i] / theta - a / (theta * theta)
    # projection, kept when it gives a descent direction (Morales & Nocedal 2011) ...
    dd = 0.0
    for i in range(n):
        if free_[i]:
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
            if free_[i]:
                a = xbar[i] + dcp[i]
                if a < lo[i]:
                    a = lo[i]
                elif a > hi[i]:
                    a = hi[i]
                xbar[i] = <floating>a
        return 0
    # ... otherwise truncate the step to the box (Byrd et al. 1995, Sec. 5.1)
    alpha = 1.0
    for i in range(n):
        if free_[i] and dcp[i] != 0.0:
            if dcp[i] < 0.0 and lo[i] > -INFINITY:
                a = (lo[i] - xbar[i]) / dcp[i]
                if a < alpha:
                    alpha = a
            elif dcp[i] > 0.0 and hi[i] < INFINITY:
                a = (hi[i] - xbar[i]) / dcp[i]
                if a < alpha:
                    alpha = a
    if alpha < 0.0:
        alpha = 0.0
    for i in range(n):
        if free_[i]:
            xbar[i] = <floating>(xbar[i] + alpha * dcp[i])
    return 0


cdef int _run(floating* px, floating* pg, cnp.ndarray xa, cnp.ndarray ga, Py_ssize_t n,
              Evaluator ev, Cfg* cfg, Out* out, double f,
              floating* S, floating* Y, double* rho, floating* plo, floating* phi,
              floating* H, object driver) except -1:
    """The iteration loop on raw buffers: ``px``/``pg`` are the data of ``xa``/``ga``
    (updated in place), ``S``/``Y`` the (m, n) ring buffers and ``rho`` (m,)
    (returned as the memory), ``H`` the (n, n) BFGS matrix (BFGS only),
    ``plo``/``phi`` the bounds (NULL when unbounded).  The work vectors are
    allocated here with malloc and freed on every exit."""
    cdef Py_ssize_t m = cfg.m, i, k, sk, nls
    cdef Py_ssize_t count = 0, newest = m - 1, nit = 0, slot
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
    cdef double* SS = NULL
    cdef double* SY = NULL
    cdef double* YY = NULL
    cdef double* dcp = NULL
    cdef char* free_ = NULL
    cdef BP* bps = NULL
    cdef double* K = NULL
    cdef double* N = NULL
    cdef double* wrk = NULL
    cdef int* piv = NULL
    cdef int* piv2 = NULL
    cdef Py_ssize_t* slots = NULL
    alpha = <double*>malloc(m * sizeof(double))
    xold = <floating*>malloc(4 * n * sizeof(floating))
    if alpha == NULL or xold == NULL:
        free(alpha); free(xold)
        raise MemoryError()
    gold = xold + n
    d = xold + 2 * n
    xbar = xold + 3 * n
    if cfg.has_bounds:
        SS = <double*>calloc(3 * m * m, sizeof(double))
        SY = SS + m * m
        YY = SS + 2 * m * m
        dcp = <double*>malloc(n * sizeof(double))
        free_ = <char*>malloc(n * sizeof(char))
        bps = <BP*>malloc(n * sizeof(BP))
        K = <double*>malloc(4 * m * m * sizeof(double) + 1)
        N = <double*>malloc(4 * m * m * sizeof(double) + 1)
        wrk = <double*>malloc(12 * m * sizeof(double) + 1)
        piv = <int*>malloc(2 * m * sizeof(int) + 1)
        piv2 = <int*>malloc(2 * m * sizeof(int) + 1)
        slots = <Py_ssize_t*>malloc(m * sizeof(Py_ssize_t))
        if (SS == NULL or slots == NULL or dcp == NULL or free_ == NULL or bps == NULL or K == NULL or N == NULL
                or wrk == NULL or piv == NULL or piv2 == NULL):
            free(alpha); free(xold); free(SS); free(slots)
            free(dcp); free(free_); free(bps); free(K); free(N); free(wrk); free(piv); free(piv2)
            raise MemoryError()
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
                    _two_loop(S, Y, rho, m, n, newest, count, gamma, d, alpha)
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
                if _cauchy_subspace(px, pg, plo, phi, S, Y, SS, SY, YY, m, n, newest, count,
                                    theta, xbar, dcp, free_, bps, K, N, piv, piv2, wrk,
                                    cfg.eps, slots):
                    count = 0
                    continue
                for i in range(n):
                    d[i] = xbar[i] - px[i]
            dg = _dot(d, pg, n)
            dnorm = sqrt(_dot(d, d, n))
            if not dg < 0.0:
                if (method == 0 or method == 3) and count > 0:
                    count = 0
                    continue
                if method == 1 and not bfgs_fresh:
                    bfgs_fresh = 1
                    continue
                if method == 2 and not cg_restart:
                    cg_restart = 1
                    continue
                status = S_GTOL if dg == 0.0 and gnorm <= cfg.gtol else S_LINESEARCH
                break
            # ---------------------------------------------------- step bounds
            stpmax = 1e10 if method in (0, 3) else 1e100
            if cfg.has_bounds:
                if nit == 0:
                    stpmax = 1.0
                else:
                    for i in range(n):
                        if d[i] < 0.0 and plo[i] > -INFINITY:
                            a = (plo[i] - px[i]) / d[i]
                            if a < stpmax:
                                stpmax = a
                        elif d[i] > 0.0 and phi[i] < INFINITY:
                            a = (phi[i] - px[i]) / d[i]
                            if a < stpmax:
                                stpmax = a
                    if stpmax < 1.0:
                        stpmax = 1.0   # xbar is feasible: the unit step always is
            if method == 0 or method == 3:
                if count == 0 and not cfg.boxed:
                    stp = min(1.0 / dnorm, stpmax)
                else:
                    stp = min(1.0, stpmax)
            elif method == 1 and not bfgs_fresh:
                stp = 1.0
            else:
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
                    # a warning: accept the last trial when it decreased f enough
                    if not (f <= fold + cfg.c1 * stp * dg) or not (f <= fold):
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
                if (method == 0 or method == 3) and count > 0:
                    count = 0
                    continue
                if method == 1 and not bfgs_fresh:
                    bfgs_fresh = 1
                    continue
                if method == 2 and not cg_restart:
                    cg_restart = 1
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
                slot = newest + 1 if newest + 1 < m else 0
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
                    if method == 3:
                        for k in range(count):
                            sk = _slot(k, newest, count, m)
                            SS[slot * m + sk] = _dot(&S[slot * n], &S[sk * n], n)
                            SS[sk * m + slot] = SS[slot * m + sk]
                            YY[slot * m + sk] = _dot(&Y[slot * n], &Y[sk * n], n)
                            YY[sk * m + slot] = YY[slot * m + sk]
                            SY[slot * m + sk] = _dot(&S[slot * n], &Y[sk * n], n)
                            SY[sk * m + slot] = _dot(&S[sk * n], &Y[slot * n], n)
            elif method == 1:
                # s -> xbar, y -> d (d is recomputed next iteration)
                for i in range(n):
                    xbar[i] = px[i] - xold[i]
                    d[i] = pg[i] - gold[i]
                sy = _dot(xbar, d, n)
                yy = _dot(d, d, n)
                if sy > cfg.eps * yy and yy > 0.0:
                    if bfgs_fresh:
                        a = sy / yy     # H0 = (s.y / y.y) I  (Nocedal & Wright eq. 6.20)
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
        free(alpha); free(xold); free(SS); free(slots)
        free(dcp); free(free_); free(bps); free(K); free(N); free(wrk); free(piv); free(piv2)
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
    if R.ndim == 2:
        out = np.empty((count, R.shape[1]), dtype=R.dtype)
    else:
        out = np.empty(count, dtype=R.dtype)
    cdef char* src = <char*>cnp.PyArray_DATA(R)
    cdef char* dst = <char*>cnp.PyArray_DATA(out)
    for k in range(count):
        memcpy(dst + k * row, src + _slot(k, newest, count, m) * row, row)
    return out


def run(Evaluator ev, cnp.ndarray xa, cnp.ndarray ga, double f, int method, *,
        Py_ssize_t m=10, double gtol=1e-5, double ftol=0.0, Py_ssize_t maxiter=1000,
        Py_ssize_t maxfun=10**9, int maxls=20, double c1=1e-4, double c2=0.9,
        double xtol=1e-14, lo=None, hi=None, driver=None, bint report=False):
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
    S = cnp.PyArray_EMPTY(2, [mm, n], typenum, 0)
    Y = cnp.PyArray_EMPTY(2, [mm, n], typenum, 0)
    rho = cnp.PyArray_ZEROS(1, [mm], cnp.NPY_DOUBLE, 0)
    cdef cnp.npy_intp hn = n if method == 1 else 1
    H = cnp.PyArray_EMPTY(2, [hn, hn], typenum, 0)
    cfg.has_bounds = lo is not None
    cfg.boxed = 0
    alo = ahi = None
    if lo is not None:
        alo = np.ascontiguousarray(lo, dtype=xa.dtype)
        ahi = np.ascontiguousarray(hi, dtype=xa.dtype)
        if alo.ndim != 1 or ahi.ndim != 1 or alo.shape[0] != n or ahi.shape[0] != n:
            raise ValueError("run: bounds of the wrong length")
        cfg.boxed = bool(np.all(np.isfinite(alo)) and np.all(np.isfinite(ahi)))
    if typenum == cnp.NPY_DOUBLE:
        _run[double](<double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(ga), xa, ga, n,
                     ev, &cfg, &out, f, <double*>cnp.PyArray_DATA(S),
                     <double*>cnp.PyArray_DATA(Y), <double*>cnp.PyArray_DATA(rho),
                     <double*>cnp.PyArray_DATA(alo) if alo is not None else NULL,
                     <double*>cnp.PyArray_DATA(ahi) if ahi is not None else NULL,
                     <double*>cnp.PyArray_DATA(H), driver)
    else:
        _run[float](<float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(ga), xa, ga, n,
                    ev, &cfg, &out, f, <float*>cnp.PyArray_DATA(S),
                    <float*>cnp.PyArray_DATA(Y), <double*>cnp.PyArray_DATA(rho),
                    <float*>cnp.PyArray_DATA(alo) if alo is not None else NULL,
                    <float*>cnp.PyArray_DATA(ahi) if ahi is not None else NULL,
                    <float*>cnp.PyArray_DATA(H), driver)
    state = {"count": out.count, "newest": out.newest, "gamma": out.gamma}
    if method in (0, 3):
        state["sk"] = _ordered_rows(S, out.count, out.newest, mm)
        state["yk"] = _ordered_rows(Y, out.count, out.newest, mm)
        state["rho"] = _ordered_rows(rho, out.count, out.newest, mm)
    elif method == 1:
        state["H"] = np.eye(n, dtype=xa.dtype) if out.fresh else H
    return out.status, out.nit, out.f, state
