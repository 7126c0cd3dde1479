# cython: language_level=3
"""Quasi-Newton iteration loops in Cython: L-BFGS-B, BFGS and CG.

Two loops.  :func:`_run_b` is L-BFGS-B: Byrd, Lu, Nocedal & Zhu (1995), "A
limited memory algorithm for bound constrained optimization", SIAM J. Sci.
Comput. 16(5), as L-BFGS-B 3.0 (Morales & Nocedal 2011, "Remark on Algorithm
778") that SciPy runs, step for step with the kernels of ``_compact_seq.pxd``
in its order of operations (BLAS/LAPACK where it calls them), so that the
iterates are SciPy's bit for bit: the compact form
:math:`B = \\theta I - W M W^T` (Byrd, Nocedal & Schnabel 1994), the
generalized Cauchy point, the direct primal subspace minimization and the
Moré–Thuente search of :mod:`neurenix._ext._linesearch`, with or without
bounds.  It always iterates in float64; for a float32 x, as SciPy does, the
objective is evaluated at the float32 cast of each iterate (the point
remembered for SciPy's same-point test is that cast, :func:`_request`), the
gradient is used in float64 as the objective gives it, and the final iterate
is cast back into the float32 ``x``.

:func:`_run_qn` is SciPy's ``_minimize_bfgs`` / ``_minimize_cg`` (SciPy 1.17),
step for step, so that iterates and counts are SciPy's up to rounding:

- ``BFGS``: dense inverse-Hessian update (Nocedal & Wright eq. 6.17) from
  :math:`H_0 = I`, always applied (:math:`\\rho = 1/y^Ts`, 1000 when
  :math:`y^Ts = 0`), after the convergence tests.
- ``CG``: Polak–Ribière+ nonlinear conjugate gradients (Nocedal & Wright
  eq. 5.45), never restarted; a step is accepted only where the next
  direction is a sufficient descent direction (Gilbert & Nocedal 1992).
- Line search: Moré–Thuente (SciPy's ``line_search_wolfe1``) from SciPy's
  trial step, and when it fails (or its CG step fails the descent test) the
  bracketing/zoom search of Nocedal & Wright Algorithms 3.5/3.6 (SciPy's
  ``line_search_wolfe2``, the reverse-communication kernel ``w2_*`` of
  :mod:`._linesearch`) from the same point; both failing ends the run.
  Vectors keep the dtype of ``x`` (float32/float64); inner products accumulate
  in double.

Evaluations are counted as SciPy's ``ScalarFunction`` counts them
(:func:`_request`, both loops).  The loops call back into Python only to
evaluate the objective (through :class:`neurenix._ext._evaluator.Evaluator`,
shared with the second-order loops; :func:`_evaluate` is the one place that
turns Ctrl-C and ``maxtime`` into a status) and, when a callback/disp/maxtime
is set, once per iteration to report to the driver (:func:`_report`).

:func:`two_loop` is the L-BFGS two-loop recursion (Nocedal & Wright 2006,
Algorithm 7.4; ``_qn_steps.pxd``), the product of ``LbfgsInvHessProduct``
and of ``neurenix.optim.LBFGS``.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport fabs, fmax, fmin, sqrt, isfinite, pow, INFINITY
from libc.stdlib cimport malloc, calloc, free
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memcmp, memset
from scipy.linalg.cython_blas cimport dgemv, dgemm

import numpy as np

from ._evaluator cimport Evaluator
from ._evaluator import MaxTimeExceeded
from ._vec cimport dot_lanes8, dot_blas, sum_pairwise, absmax, all_finite as _all_finite
from ._qn_steps cimport _two_loop
from ._compact_seq cimport (CF, cf_reset, cf_cauchy, cf_freev, cf_formk, cf_cmprlb, cf_subsm,
                           cf_matupd, cf_formt, cf_dot, cf_nrm2, cf_scal, cf_place, cf_grow)
from ._linesearch cimport (MTState, mt_start, mt_iterate, mt_nonfinite, MT_FG,
                           MT_CONVERGED, MT_ERROR, W2State, w2_start, w2_phi, w2_dphi,
                           w2_extra, first_step, W2_F, W2_G, W2_EXTRA, W2_DONE, W2_DONE_NOG)

cnp.import_array()

# method codes
LBFGS = 0
BFGS = 1
CG = 2
LBFGSB = 3

# status codes: the one compiled table (values of neurenix.optimize.Status)
from ._status cimport *



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
    if not cnp.PyArray_Check(a):
        return None
    x = <cnp.ndarray>a
    if cnp.PyArray_NDIM(x) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(x):
        return None
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        return _all_finite(<const double*>cnp.PyArray_DATA(x), cnp.PyArray_DIM(x, 0))
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        return _all_finite(<const float*>cnp.PyArray_DATA(x), cnp.PyArray_DIM(x, 0))
    return None


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


cdef cnp.ndarray _bfgs_matrix(Py_ssize_t n, int typenum):
    """The dense (n, n) inverse-Hessian approximation of BFGS, or a MemoryError
    that says how large it is and what to use instead."""
    try:
        return cnp.PyArray_EMPTY(2, [n, n], typenum, 0)
    except MemoryError:
        size = float(n) * n * (8 if typenum == cnp.NPY_DOUBLE else 4) / 2.0 ** 30
        raise MemoryError(
            f"method BFGS stores a dense n x n inverse-Hessian matrix: n = {n} needs "
            f"{size:.3g} GiB, which cannot be allocated; use method='L-BFGS-B', whose "
            "memory grows linearly with n") from None


def _infinite_bound_msg(a, b, i):
    """The message for a bound pair that leaves no finite point (lb = +inf or ub = -inf)."""
    which = f"lower bound is {a}" if a == INFINITY else f"upper bound is {b}"
    return (f"bounds: invalid bounds for variable {i}: its {which}; a lower bound must be "
            "< +inf and an upper bound > -inf")


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
        if a == INFINITY or b == -INFINITY:
            raise ValueError(_infinite_bound_msg(a, b, i))
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
    Py_ssize_t m        # pairs kept (L-BFGS-B)
    double gtol, ftol
    Py_ssize_t maxiter, maxfun
    int maxls
    double c1, c2, xtol
    double xrtol        # BFGS: stop when the step <= xrtol * (xrtol + ||x||)
    double norm         # BFGS/CG: the order of the gradient norm tested against gtol
    int h_given         # BFGS: H holds the caller's H0 (else H0 = I)
    int report          # call the driver each iteration
    double eps          # machine epsilon (L-BFGS-B: float64's)


cdef struct Out:
    int status
    Py_ssize_t nit
    double f
    Py_ssize_t count, newest
    double gamma



cdef double _pgnorm(floating* x, floating* g, floating* lo, floating* hi, Py_ssize_t n,
                    int has_bounds) noexcept nogil:
    """Infinity norm of the projected gradient (of g when unbounded); inf if g has a NaN."""
    cdef double gi, a, b, out
    cdef uint64_t r8 = 0, v8
    cdef Py_ssize_t i
    if not has_bounds:
        return absmax(g, n)
    # branch-free so that it vectorizes: an infinite bound gives x - hi = -inf
    # (or x - lo = +inf), which never replaces gi, so no test for it is needed;
    # the largest |gi| is an integer max over the bit patterns (as absmax; a NaN
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


cdef int _evaluate(Evaluator ev, cnp.ndarray xa, cnp.ndarray ga, int what, double* f,
                   bint* got) except -2:
    """The loops' one call of the objective at ``xa``: ``what`` 0 f and g (into
    ``ga``), 1 f (and, when the objective returns both, g: ``got``), 2 g.  Returns
    ``S_RUNNING``, or ``S_INTERRUPTED`` / ``S_MAXTIME`` when the user pressed Ctrl-C
    or the run's ``maxtime`` passed during the call (the caller returns its best
    point); any other exception propagates."""
    try:
        if what == 0:
            f[0] = ev.evaluate(xa, ga)
        elif what == 1:
            f[0] = ev.f_at(xa, ga, got)
        else:
            ev.g_at(xa, ga)
    except KeyboardInterrupt:
        return S_INTERRUPTED
    except MaxTimeExceeded:
        return S_MAXTIME
    return S_RUNNING


cdef int _report(Evaluator ev, object driver, Py_ssize_t nit, cnp.ndarray xa, double f,
                 cnp.ndarray ga, double step) except -2:
    """Report an iteration to the driver (callback, disp, maxtime): ``S_RUNNING``, or
    the status that ends the run."""
    ev.sync()
    try:
        st = driver.iteration(nit, xa, f, ga, step)
    except KeyboardInterrupt:
        return S_INTERRUPTED
    return S_RUNNING if st is None else int(st)


cdef int _run_b(double* px, double* pg, cnp.ndarray xa, cnp.ndarray ga, Py_ssize_t n,
                Evaluator ev, Cfg* cfg, Out* out, double f,
                double* S, double* Y, double* rho, double* plo, double* phi,
                object driver, cnp.ndarray xr, float* x32) except -1:
    """L-BFGS-B for float64, bounded or not (``plo``/``phi`` NULL: every variable
    free), step for step as the driver of L-BFGS-B 3.0 (Morales & Nocedal 2011)
    that SciPy runs, with the kernels of :mod:`._compact_seq` in its order of
    operations, so that the iterates are SciPy's bit for bit: the generalized
    Cauchy point (skipped when no variable has a bound and pairs are stored),
    the direct subspace step, the Moré–Thuente search from ``1/||d||`` on the
    first iteration (unless every variable is boxed), else from 1, along
    ``d = xbar - x`` (the unit trial is ``xbar`` itself), and the pair of the
    step kept when ``s'y > eps * (-stp g'd)``.  ``S``/``Y`` hold the ring of the
    compact form (``m`` rows used; ``rho[k] = 1 / s_k'y_k``).  ``xr`` is the
    array of ``px`` (reported to the driver); ``xa`` the one the objective is
    evaluated at: ``xr`` itself for float64, or, for a float32 x0 (``x32``, its
    data), the float32 cast of ``px`` (:func:`_request`), the gradient ``ga``
    (``pg``) in float64 either way, as SciPy runs a float32 x0."""
    cdef int m = <int>cfg.m, nn = <int>n, info, wrk = 0, iword = 0, cnstnd = 0, boxed = 1
    cdef int status = S_RUNNING, task, lsfail, nonfinite
    cdef Py_ssize_t nit = 0, nls, i
    cdef double fold = f, gd = 0.0, gdold = 0.0, stp = 1.0, stpmx, dnorm = 0.0, dtd
    cdef double sbgnrm, rr, dr, ddum, a1, a2
    cdef Memo mo
    cdef MTState ls
    cdef CF c
    cdef double* buf = NULL
    cdef double* mat = NULL
    cdef double* mat2 = NULL
    cdef int* ibuf = NULL
    cdef int ma = m if m <= 32 else 32    # pairs the matrices are laid out for (grown
                                          # by doubling: a huge maxcor costs only what is used)
    cdef double* z
    cdef double* r
    cdef double* d
    cdef double* t
    cdef double* xp
    cdef double* xm
    cdef const double* l = plo if plo != NULL else px     # (read only where nbd says)
    cdef const double* u = phi if phi != NULL else px
    buf = <double*>calloc(6 * n, sizeof(double))
    mat = <double*>calloc(11 * ma * ma + 12 * ma, sizeof(double))
    ibuf = <int*>calloc(4 * n + m, sizeof(int))
    if buf == NULL or ibuf == NULL or mat == NULL:
        free(buf); free(ibuf); free(mat)
        raise MemoryError()
    c.n = nn
    c.ws = S
    c.wy = Y
    cf_place(&c, mat, ma)
    z = buf
    r = z + n
    d = z + 2 * n
    t = z + 3 * n
    xp = z + 4 * n
    xm = z + 5 * n
    c.nbd = ibuf
    c.iwhere = ibuf + n
    c.index = ibuf + 2 * n
    c.indx2 = ibuf + 3 * n
    c.rp = ibuf + 4 * n
    cf_reset(&c)
    c.itail = 0
    c.nfree = nn
    c.nenter = 0
    c.ileave = 0
    # bound types and the initial status of each variable (x0 is already in the box)
    for i in range(n):
        if plo == NULL:
            c.nbd[i] = 0
        elif isfinite(plo[i]):
            c.nbd[i] = 2 if isfinite(phi[i]) else 1
        else:
            c.nbd[i] = 3 if isfinite(phi[i]) else 0
        if c.nbd[i] != 2:
            boxed = 0
        if c.nbd[i] == 0:
            c.iwhere[i] = -1
        else:
            cnstnd = 1
            c.iwhere[i] = 3 if (c.nbd[i] == 2 and u[i] - l[i] <= 0.0) else 0
    memcpy(xm, px, n * sizeof(double))
    mo.f = f
    mo.f_ok = mo.g_ok = mo.g_have = 1
    try:
        sbgnrm = _pgnorm(px, pg, plo, phi, n, plo != NULL)
        if sbgnrm <= cfg.gtol:
            status = S_GTOL
        elif cfg.maxiter == 0:
            status = S_MAXITER
        while status == S_RUNNING:
            # ---------------------------------------------------- direction
            iword = -1
            if not cnstnd and c.col > 0:
                memcpy(z, px, n * sizeof(double))       # no bounds: xcp = x
                wrk = c.updatd
            else:
                if cf_cauchy(&c, px, l, u, pg, t, d, z, sbgnrm) != 0:
                    cf_reset(&c)                        # singular: start again from B = I
                    continue
                cf_freev(&c, <int>nit, cnstnd, &wrk)
            if c.nfree != 0 and c.col != 0:
                info = cf_formk(&c) if wrk else 0
                if info == 0:
                    info = cf_cmprlb(&c, px, pg, z, r, cnstnd)
                    if info == 0:
                        info = cf_subsm(&c, l, u, z, r, xp, px, pg, &iword)
                if info != 0:
                    cf_reset(&c)
                    continue
            for i in range(n):
                d[i] = z[i] - px[i]
            # ---------------------------------------------------- step bounds
            dnorm = cf_nrm2(nn, d)
            dtd = dnorm * dnorm
            stpmx = 1e10
            if cnstnd:
                if nit == 0:
                    stpmx = 1.0
                else:
                    for i in range(n):
                        a1 = d[i]
                        if c.nbd[i] == 0:
                            continue
                        if a1 < 0.0 and c.nbd[i] <= 2:
                            a2 = l[i] - px[i]
                            if a2 >= 0.0:
                                stpmx = 0.0
                            elif a1 * stpmx < a2:
                                stpmx = a2 / a1
                        elif a1 > 0.0 and c.nbd[i] >= 2:
                            a2 = u[i] - px[i]
                            if a2 <= 0.0:
                                stpmx = 0.0
                            elif a1 * stpmx > a2:
                                stpmx = a2 / a1
                    if stpmx < 1.0:
                        stpmx = 1.0     # xbar is feasible: the unit step always is
            if nit == 0 and not boxed:
                stp = min(1.0 / dnorm, stpmx)
            else:
                stp = 1.0
            # ---------------------------------------------------- line search
            memcpy(t, px, n * sizeof(double))
            memcpy(r, pg, n * sizeof(double))
            fold = f
            gd = cf_dot(nn, pg, d)
            gdold = gd
            if not gd < 0.0:
                if c.col > 0:
                    cf_reset(&c)
                    continue
                status = S_LINESEARCH
                break
            task = mt_start(&ls, f, gd, &stp, cfg.c1, cfg.c2, cfg.xtol, 0.0, stpmx)
            lsfail = 0
            nonfinite = 0
            nls = 0
            while True:
                if task == MT_ERROR:
                    lsfail = 1
                    break
                if stp == 1.0:
                    memcpy(px, z, n * sizeof(double))
                else:
                    for i in range(n):
                        a1 = stp * d[i] + t[i]
                        if c.nbd[i] == 1 or c.nbd[i] == 2:
                            a1 = fmax(a1, l[i])
                        if c.nbd[i] == 2 or c.nbd[i] == 3:
                            a1 = fmin(a1, u[i])
                        px[i] = a1
                status = _request(ev, xa, ga, px, xm, n, True, &mo, &f, x32)
                if status != S_RUNNING:
                    lsfail = 1
                    break
                nls += 1
                gd = cf_dot(nn, pg, d)
                if not (isfinite(f) and isfinite(gd)):
                    nonfinite = 1
                    if nls >= cfg.maxls or ev.nfev >= cfg.maxfun:
                        lsfail = 1
                        break
                    mt_nonfinite(&ls, &stp)
                    continue
                task = mt_iterate(&ls, &stp, f, gd)
                if task != MT_FG:
                    break
                if nls >= cfg.maxls:
                    lsfail = 1
                    break
            if lsfail:
                memcpy(px, t, n * sizeof(double))
                memcpy(pg, r, n * sizeof(double))
                f = fold
                if status != S_RUNNING:
                    break
                if c.col > 0:
                    cf_reset(&c)
                    continue
                status = S_NONFINITE if nonfinite else S_LINESEARCH
                break
            nit += 1
            # ---------------------------------------------------- report, tests
            if cfg.report:
                status = _report(ev, driver, nit, xr, f, ga, stp * dnorm)
            if status != S_RUNNING:
                break
            sbgnrm = _pgnorm(px, pg, plo, phi, n, plo != NULL)
            if nit >= cfg.maxiter:
                status = S_MAXITER
            elif ev.nfev > cfg.maxfun:
                status = S_MAXFUN
            elif sbgnrm <= cfg.gtol:
                status = S_GTOL
            elif (fold - f) <= cfg.ftol * max(fabs(fold), fabs(f), 1.0):
                status = S_FTOL
            else:
                # ------------------------------------------------ the pair
                for i in range(n):
                    r[i] = pg[i] - r[i]
                rr = cf_nrm2(nn, r)
                rr = rr * rr
                if stp == 1.0:
                    dr = gd - gdold
                    ddum = -gdold
                else:
                    dr = (gd - gdold) * stp
                    cf_scal(nn, stp, d)
                    ddum = -gdold * stp
                if dr <= cfg.eps * ddum:
                    c.updatd = 0                        # curvature too small: skipped
                else:
                    c.updatd = 1
                    c.iupdat += 1
                    if c.iupdat > c.m and c.m < m:
                        # the memory is full but may hold more pairs: grow it
                        ma = min(2 * c.m, m)
                        mat2 = <double*>calloc(11 * ma * ma + 12 * ma, sizeof(double))
                        if mat2 == NULL:
                            raise MemoryError()
                        cf_grow(&c, mat2, ma)
                        free(mat)
                        mat = mat2
                    cf_matupd(&c, d, r, stp, dtd, rr, dr)
                    rho[c.itail] = 1.0 / dr
                    if cf_formt(&c) != 0:
                        cf_reset(&c)
    finally:
        ev.sync()
        free(buf); free(ibuf); free(mat)
    out.status = status
    out.nit = nit
    out.f = f
    out.count = c.col
    out.newest = (c.head + c.col - 1) % c.m if c.col > 0 else 0
    out.gamma = 1.0 / c.theta
    return 0


# ------------------------------------------------------------------ BFGS and CG
cdef struct Memo:
    # SciPy's ScalarFunction bookkeeping of the last point asked for (held in a buffer
    # of the loop): f known there, g asked for there (counted), g already at hand
    double f
    int f_ok, g_ok, g_have


cdef int _request(Evaluator ev, cnp.ndarray xa, cnp.ndarray ga, floating* px, floating* xm,
                  Py_ssize_t n, bint need_g, Memo* mo, double* f, float* x32) except -2:
    """f (and with ``need_g`` g, into ``ga``) at ``px`` (the data of ``xa``), counted as
    SciPy's ``ScalarFunction`` counts: a point equal to the last one asked for
    (``np.array_equal``, ``xm``) is not evaluated or counted again; ``nfev`` counts
    the values computed and ``njev`` the gradients asked for, also when one call of
    a ``jac=True`` objective gave both (the gradient is kept for the request), and
    a finite-difference gradient counts in ``njev`` too (SciPy's ``ngev``).
    With ``x32`` (the float32 run of L-BFGS-B, which iterates in float64 as SciPy
    does for a float32 x0) ``xa`` is the float32 array of ``x32``: the objective is
    evaluated at ``px`` cast to float32, and the point remembered is that cast
    (SciPy's ``ScalarFunction`` keeps x in x0's dtype and compares the float64
    iterate with it, so an iterate not exactly a float32 is always evaluated).
    Returns ``S_RUNNING``, ``S_INTERRUPTED`` or ``S_MAXTIME`` (:func:`_evaluate`)."""
    cdef Py_ssize_t i, j
    cdef bint got = False
    cdef int code
    for i in range(n):
        if px[i] != xm[i]:
            if x32 != NULL:
                for j in range(n):
                    x32[j] = <float>px[j]
                    xm[j] = x32[j]
                if ev.mode == 2:
                    # a new iterate whose cast may be the point the objective cached:
                    # SciPy evaluates it again (its test compares the float64 iterate)
                    ev.obj.reset_cache()
            else:
                memcpy(xm, px, n * sizeof(floating))
            mo.f_ok = 0
            mo.g_ok = 0
            mo.g_have = 0
            break
    if not mo.f_ok:
        code = _evaluate(ev, xa, ga, 1, &mo.f, &got)
        if code != S_RUNNING:
            return code
        mo.f_ok = 1
        if got:                 # jac=True: g came with f, counted when asked for
            mo.g_have = 1
            ev.njev -= 1
    if need_g and not mo.g_ok:
        if mo.g_have:
            ev.njev += 1
        else:
            code = _evaluate(ev, xa, ga, 2, NULL, NULL)
            if code != S_RUNNING:
                return code
            if ev.mode == 2:    # finite differences through the objective
                ev.obj.njev += 1
                ev.njev += 1
            mo.g_have = 1
        mo.g_ok = 1
    f[0] = mo.f
    return S_RUNNING


cdef double _gnorm(const floating* g, Py_ssize_t n, double ord) noexcept nogil:
    """SciPy's ``vecnorm(g, ord)``: ``max |g_i|`` for ``ord = inf`` (NaN when an entry
    is NaN, as ``np.amax``), ``min |g_i|`` for ``-inf``, else
    ``np.sum(|g|**ord) ** (1/ord)`` formed as NumPy forms it for float64: the powers
    by NumPy's own kernels for ``ord`` 2, 1, 0.5 and -1 (``|g|*|g|``, ``|g|``,
    ``sqrt``, ``1/|g|``; other orders by libm ``pow``, which NumPy's power may round
    differently in the last bit), summed in NumPy's pairwise order
    (:func:`sum_pairwise`), then libm ``pow`` for the root."""
    cdef double r, t
    cdef Py_ssize_t i
    cdef double* w
    if ord == INFINITY:
        r = absmax(g, n)
        if r == INFINITY:
            for i in range(n):
                if g[i] != g[i]:
                    return g[i]
        return r
    if ord == -INFINITY:
        r = INFINITY
        for i in range(n):
            t = fabs(g[i])
            if t != t:
                return t            # (a NaN wins, as in np.amin)
            if t < r:
                r = t
        return r
    w = <double*>malloc(n * sizeof(double)) if n > 0 else NULL
    if w == NULL:
        # (no memory for the terms: one running sum, the same value up to rounding)
        r = 0.0
        for i in range(n):
            r += pow(fabs(g[i]), ord)
        return pow(r, 1.0 / ord)
    for i in range(n):
        t = fabs(g[i])
        if ord == 2.0:
            w[i] = t * t
        elif ord == 1.0:
            w[i] = t
        elif ord == 0.5:
            w[i] = sqrt(t)
        elif ord == -1.0:
            w[i] = 1.0 / t
        else:
            w[i] = pow(t, ord)
    r = sum_pairwise(w, n)
    free(w)
    return pow(r, 1.0 / ord)


def gnorm(g, double ord=INFINITY):
    """SciPy's ``vecnorm(g, ord)`` (Python face of the loops' gradient norm), for any
    array ``g`` (flattened, as float64)."""
    cdef cnp.ndarray a = np.ascontiguousarray(np.ravel(g), dtype=np.float64)
    return _gnorm(<double*>cnp.PyArray_DATA(a), a.shape[0], ord)


cdef bint _has_nan(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] != a[i]:
            return True
    return False


cdef bint _pr_step(const floating* g, const floating* gk, const floating* d, floating* dn,
                   floating* w, Py_ssize_t n, double deltak, double gtol,
                   double ord) noexcept nogil:
    """CG's next direction from a trial step with gradient ``g`` (``gk`` the gradient
    at the start of the line search, ``deltak = gk.gk``): Polak–Ribière+
    ``dn = -g + beta d``, ``beta = max(0, (g - gk).g / deltak)`` (Nocedal & Wright
    eq. 5.45; ``w`` work), and SciPy's ``descent_condition``: the step is acceptable
    when ``||g|| <= gtol`` (``ord``-norm) or ``dn.g <= -0.01 g.g`` (sufficient descent, Gilbert &
    Nocedal 1992)."""
    cdef Py_ssize_t i
    cdef double beta
    for i in range(n):
        w[i] = g[i] - gk[i]
    beta = dot_blas(w, g, n) / deltak
    if not beta > 0.0:
        beta = 0.0
    for i in range(n):
        dn[i] = <floating>(-g[i] + beta * d[i])
    if _gnorm(g, n, ord) <= gtol:
        return True
    return dot_blas(dn, g, n) <= -0.01 * dot_blas(g, g, n)


#: BFGS computes its update as SciPy does, two matrix products, up to this n
#: (O(n^3) a step; above it the O(n^2) rank-two form, equal in exact arithmetic)
cdef enum:
    BFGS_PRODUCTS_MAX_N = 200


cdef inline void _h_times(const floating* H, const floating* v, floating* out, Py_ssize_t n,
                          double sign) noexcept nogil:
    """``out = sign * (H v)`` for the row-major (n, n) ``H``: for float64 one BLAS
    ``dgemv`` on the transposed (column-major) view, the call NumPy makes for
    ``np.dot(H, v)``, so that SciPy's ``-np.dot(Hk, gfk)`` is reproduced bit for
    bit; float32 rows summed as :func:`dot_lanes8`."""
    cdef int nn = <int>n, one = 1
    cdef double alpha = 1.0, beta = 0.0
    cdef Py_ssize_t i
    if floating is double:
        dgemv("T", &nn, &nn, &alpha, <double*>H, &nn, <double*>v, &one, &beta, <double*>out, &one)
        if sign < 0.0:
            for i in range(n):
                out[i] = -out[i]
    else:
        for i in range(n):
            out[i] = <floating>(sign * dot_lanes8(&H[i * n], v, n))


cdef inline void _bfgs_update_products(double* H, const double* s, const double* y, double rho,
                                       Py_ssize_t n, double* work) noexcept nogil:
    """SciPy's BFGS update of the row-major inverse Hessian ``H`` (n, n),
    ``H <- A1 (H A2) + rho s s'`` with ``A1 = I - rho s y'``, ``A2 = I - rho y s'``
    (Nocedal & Wright eq. 6.17), each entry rounded as SciPy's NumPy expression
    rounds it (``I - s_i y_j rho``, then ``rho s_i s_j``) and the two products by
    BLAS ``dgemm`` in the argument order of NumPy's row-major ``np.dot``.  ``work``
    holds 3 n^2 doubles."""
    cdef double* A1 = work
    cdef double* A2 = work + n * n
    cdef double* T = work + 2 * n * n
    cdef int nn = <int>n
    cdef double one = 1.0, zero = 0.0
    cdef Py_ssize_t i, j
    cdef double e
    for i in range(n):
        for j in range(n):
            e = 1.0 if i == j else 0.0
            A1[i * n + j] = e - s[i] * y[j] * rho
            A2[i * n + j] = e - y[i] * s[j] * rho
    # T = H A2: row-major C = A B is column-major C' = B' A'
    dgemm("N", "N", &nn, &nn, &nn, &one, A2, &nn, H, &nn, &zero, T, &nn)
    # H = A1 T + rho s s'
    dgemm("N", "N", &nn, &nn, &nn, &one, T, &nn, A1, &nn, &zero, H, &nn)
    for i in range(n):
        e = rho * s[i]
        for j in range(n):
            H[i * n + j] = H[i * n + j] + e * s[j]


cdef int _run_qn(floating* px, floating* pg, cnp.ndarray xa, cnp.ndarray ga, Py_ssize_t n,
                 Evaluator ev, Cfg* cfg, Out* out, double f, floating* H,
                 object driver) except -1:
    """The BFGS (``cfg.method`` 1) and CG (2) loop, SciPy's ``_minimize_bfgs`` /
    ``_minimize_cg`` step for step.  Each iteration: the direction (``-H g``, or
    CG's carried one), the Moré–Thuente search (SciPy's ``line_search_wolfe1``:
    first trial :c:func:`first_step`, ``stpmin = 1e-100``, ``stpmax = 1e100``,
    ``xtol = 1e-14``, at most 100 evaluations, a warning counts as a failure)
    and, when it fails (for CG also when its step fails the descent condition of
    :c:func:`_pr_step`), the bracketing/zoom search (``line_search_wolfe2``,
    ``amax = 1e100``, 10 iterations) from the same point; both failing ends the
    run (precision loss).  BFGS then tests ``||g|| <= gtol`` (``cfg.norm``), the step against
    ``xrtol`` and a non-finite f before it updates H (SciPy's order, so H is not
    updated after the last iteration); the update is always applied, with
    ``rho = 1 / y.s`` (1000 when ``y.s == 0``).  Evaluations go through
    :func:`_request` (SciPy's counts)."""
    cdef int method = cfg.method, status = S_RUNNING, task
    cdef Py_ssize_t i, k, nit = 0, nev
    cdef double fk, fprev, fnew = f, dg, dgt, stp = 0.0, dnorm = 0.0, gnorm, deltak = 0.0
    cdef double sy, rho_k, yhy, a, xnorm
    cdef bint found = True, warn = False
    cdef MTState ls
    cdef W2State w2
    cdef Memo mo
    cdef floating* xk = <floating*>malloc(6 * n * sizeof(floating))
    cdef floating* gk
    cdef floating* d
    cdef floating* dn
    cdef floating* w
    cdef floating* xm
    cdef double* hw = NULL
    if xk == NULL:
        raise MemoryError()
    if floating is double:
        if method == 1 and n <= BFGS_PRODUCTS_MAX_N:
            hw = <double*>malloc(3 * n * n * sizeof(double))
            if hw == NULL:
                free(xk)
                raise MemoryError()
    gk = xk + n
    d = xk + 2 * n
    dn = xk + 3 * n
    w = xk + 4 * n
    xm = xk + 5 * n
    # the start: x0 evaluated (f and g), H0 = I, CG's first direction -g, and
    # SciPy's "previous value" f0 + ||g0|| / 2 for the first trial step
    memcpy(xm, px, n * sizeof(floating))
    mo.f = f
    mo.f_ok = mo.g_ok = mo.g_have = 1
    if method == 1:
        if not cfg.h_given:
            memset(H, 0, n * n * sizeof(floating))
            for i in range(n):
                H[i * n + i] = 1.0
    else:
        for i in range(n):
            d[i] = -pg[i]
    fprev = f + sqrt(dot_blas(pg, pg, n)) / 2.0
    try:
        gnorm = _gnorm(pg, n, cfg.norm)
        while gnorm > cfg.gtol and nit < cfg.maxiter:
            # ---------------------------------------------------- direction
            if method == 1:
                _h_times(H, pg, d, n, -1.0)
            else:
                deltak = dot_blas(pg, pg, n)
            dg = dot_blas(pg, d, n)
            dnorm = sqrt(dot_blas(d, d, n))
            memcpy(xk, px, n * sizeof(floating))
            memcpy(gk, pg, n * sizeof(floating))
            fk = f
            # ---------------------------------------------------- Moré–Thuente
            found = False
            stp = first_step(fk, fprev, dg)
            task = mt_start(&ls, fk, dg, &stp, cfg.c1, cfg.c2, cfg.xtol, 1e-100, 1e100)
            if task == MT_FG and isfinite(stp):
                nev = 0
                while True:
                    for i in range(n):
                        px[i] = <floating>(xk[i] + stp * d[i])
                    status = _request(ev, xa, ga, px, xm, n, True, &mo, &fnew, NULL)
                    if status != S_RUNNING:
                        break
                    nev += 1
                    if nev >= cfg.maxls:
                        break           # SciPy's DCSRCH: maxiter reached
                    task = mt_iterate(&ls, &stp, fnew, dot_blas(pg, d, n))
                    if task == MT_CONVERGED:
                        found = True
                        break
                    if task != MT_FG or not isfinite(stp):
                        break           # a warning (or error): SciPy's stp is None
                if status != S_RUNNING:
                    break               # (Ctrl-C or maxtime: back to the iterate below)
                if found and method == 2:
                    found = _pr_step(pg, gk, d, dn, w, n, deltak, cfg.gtol, cfg.norm)
            # ---------------------------------------------------- bracketing and zoom
            if not found:
                task = w2_start(&w2, fk, fprev, True, dg, cfg.c1, cfg.c2, 1e100, 10,
                                method == 2, &stp)
                while True:
                    if task == W2_F or task == W2_G:
                        for i in range(n):
                            px[i] = <floating>(xk[i] + stp * d[i])
                        status = _request(ev, xa, ga, px, xm, n, task == W2_G, &mo, &fnew, NULL)
                        if status != S_RUNNING:
                            break
                        if task == W2_F:
                            task = w2_phi(&w2, fnew, &stp)
                        else:
                            task = w2_dphi(&w2, dot_blas(pg, d, n), &stp)
                    elif task == W2_EXTRA:
                        task = w2_extra(&w2, _pr_step(pg, gk, d, dn, w, n, deltak, cfg.gtol, cfg.norm),
                                        &stp)
                    else:
                        break
                if status != S_RUNNING:
                    break
                if task == W2_DONE_NOG:
                    # the bracketing ran out: SciPy takes the last trial and asks
                    # for its gradient
                    for i in range(n):
                        px[i] = <floating>(xk[i] + stp * d[i])
                    status = _request(ev, xa, ga, px, xm, n, True, &mo, &fnew, NULL)
                    if status != S_RUNNING:
                        break
                    found = True
                elif task == W2_DONE:
                    found = True
                fnew = w2.phi
                if found and method == 2:
                    _pr_step(pg, gk, d, dn, w, n, deltak, cfg.gtol, cfg.norm)
            if not found:
                warn = True             # SciPy's _LineSearchError: precision loss
                break
            # ---------------------------------------------------- the step taken
            nit += 1
            f = fnew
            fprev = fk
            if method == 2:
                memcpy(d, dn, n * sizeof(floating))
            gnorm = _gnorm(pg, n, cfg.norm)
            if cfg.report:
                status = _report(ev, driver, nit, xa, f, ga, stp * dnorm)
                if status != S_RUNNING:
                    break
            if method == 2:
                continue
            # BFGS: the tests before the update (SciPy's order)
            if gnorm <= cfg.gtol:
                break
            xnorm = sqrt(dot_blas(px, px, n))
            if stp * dnorm <= cfg.xrtol * (cfg.xrtol + xnorm):
                break
            if not isfinite(f):
                warn = True
                break
            # s -> dn, y -> w, H y -> gk (free until the next line search)
            for i in range(n):
                dn[i] = <floating>(stp * d[i])
                w[i] = pg[i] - gk[i]
            sy = dot_blas(w, dn, n)
            rho_k = 1000.0 if sy == 0.0 else 1.0 / sy
            if floating is double and hw != NULL:
                _bfgs_update_products(H, dn, w, rho_k, n, hw)
            else:
                _h_times(H, w, gk, n, 1.0)
                yhy = dot_blas(gk, w, n)
                # H <- (I - rho s y') H (I - rho y s') + rho s s' (Nocedal & Wright
                # eq. 6.17) as a rank-two update, O(n^2)
                a = rho_k * rho_k * yhy + rho_k
                for i in range(n):
                    for k in range(n):
                        H[i * n + k] = <floating>(H[i * n + k] - rho_k * (gk[i] * dn[k]
                                                  + dn[i] * gk[k]) + a * dn[i] * dn[k])
        if not found:
            # a failed search, or Ctrl-C / maxtime inside one: the iterate, as SciPy
            # (a stop reported after the step keeps the new point)
            memcpy(px, xk, n * sizeof(floating))
            memcpy(pg, gk, n * sizeof(floating))
        if status != S_RUNNING:
            pass
        elif warn:
            status = S_PRECISION
        elif nit >= cfg.maxiter:
            status = S_MAXITER
        elif f != f or gnorm != gnorm or _has_nan(px, n):
            status = S_NONFINITE
        else:
            status = S_GTOL
    finally:
        ev.sync()
        free(xk)
        free(hw)
    out.status = status
    out.nit = nit
    out.f = f
    out.count = 0
    out.newest = 0
    out.gamma = 1.0
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
        memcpy(dst + k * row, src + ((newest - count + 1 + k + m) % m) * row, row)
    return out


def run(Evaluator ev, cnp.ndarray xa, cnp.ndarray ga, double f, int method, *,
        Py_ssize_t m=10, double gtol=1e-5, double ftol=0.0, Py_ssize_t maxiter=1000,
        Py_ssize_t maxfun=10**9, int maxls=20, double c1=1e-4, double c2=0.9,
        double xtol=1e-14, double xrtol=0.0, double norm=INFINITY, H0=None, lo=None, hi=None,
        driver=None, bint report=False):
    """Run the loop from ``xa`` (updated in place, with its gradient ``ga``):
    ``method`` 1 BFGS, 2 CG (:func:`_run_qn`), 3 L-BFGS-B (:func:`_run_b`).

    Returns ``(status, nit, f, state)``; ``state`` holds the memory for the
    inverse-Hessian operator: ``sk, yk`` (the stored pairs, oldest first),
    ``rho`` (``1 / s.y`` of each) and ``gamma`` (L-BFGS-B), or ``H`` (BFGS).
    BFGS and CG only: ``xrtol``, ``norm`` (order of the gradient norm), ``H0``
    (BFGS's initial inverse Hessian, (n, n); None: the identity).  L-BFGS-B
    iterates in float64 for a float32 ``xa`` too, as SciPy: ``ga`` may then be
    float64 (the gradient unrounded), ``sk``/``yk`` are float64, and the final
    iterate is cast back into ``xa``.
    Everything is validated by the Python front ends.
    """
    cdef Py_ssize_t n = xa.shape[0]
    cdef Cfg cfg
    cdef Out out
    cdef cnp.ndarray S, Y, rho, H, alo, ahi, xw, gw
    cdef int typenum = cnp.PyArray_TYPE(xa)
    narrow = method == 3 and typenum == cnp.NPY_FLOAT
    if ((cnp.PyArray_TYPE(ga) != typenum and not (narrow and cnp.PyArray_TYPE(ga) == cnp.NPY_DOUBLE))
            or ga.shape[0] != n or xa.ndim != 1 or ga.ndim != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(xa) or not cnp.PyArray_IS_C_CONTIGUOUS(ga)):
        raise ValueError("run: x and g must be contiguous 1-D arrays of one dtype and length")
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        raise TypeError(f"run: unsupported dtype {xa.dtype}")
    if method not in (1, 2, 3):
        raise ValueError("run: unknown method code")
    if n == 0:
        raise ValueError("run: x must not be empty")
    mm = max(m, 1) if method == 3 else 1
    if method == 3 and n * (mm + 1) >= 2**31 - 1:
        # (L-BFGS-B's workspace, as SciPy's, is sized in 32-bit ints)
        raise ValueError(f"L-BFGS-B: n * (maxcor + 1) = {n * (mm + 1)} is too large "
                         "(the BLAS/LAPACK kernels take 32-bit sizes)")
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
    cfg.xrtol = xrtol
    cfg.norm = norm
    cfg.h_given = H0 is not None
    cfg.report = report
    cfg.eps = 2.220446049250313e-16 if typenum == cnp.NPY_DOUBLE else 1.1920928955078125e-07
    if method != 3:
        H = _bfgs_matrix(n, typenum) if method == 1 else None
        if H is not None and H0 is not None:
            H[...] = H0
        if typenum == cnp.NPY_DOUBLE:
            _run_qn[double](<double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(ga), xa, ga,
                            n, ev, &cfg, &out, f,
                            <double*>cnp.PyArray_DATA(H) if H is not None else NULL, driver)
        else:
            _run_qn[float](<float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(ga), xa, ga,
                           n, ev, &cfg, &out, f,
                           <float*>cnp.PyArray_DATA(H) if H is not None else NULL, driver)
        state = {"count": out.count, "newest": out.newest, "gamma": out.gamma}
        if method == 1:
            state["H"] = H
        return out.status, out.nit, out.f, state
    # L-BFGS-B, bounded or not: the loop in L-BFGS-B 3.0's order (SciPy's iterates
    # bit for bit), in float64; for a float32 x, on float64 copies (xw, gw), the
    # objective evaluated at the float32 cast of each iterate, held in xa itself
    # (_request), and the final iterate cast back into xa (the gradient into a
    # float32 ga)
    xw, gw = xa, ga
    if narrow:
        xw = cnp.PyArray_Cast(xa, cnp.NPY_DOUBLE)
        gw = ga if cnp.PyArray_TYPE(ga) == cnp.NPY_DOUBLE else cnp.PyArray_Cast(ga, cnp.NPY_DOUBLE)
    cfg.eps = 2.220446049250313e-16     # (L-BFGS-B's epsmch: float64's)
    S = cnp.PyArray_EMPTY(2, [mm, n], cnp.NPY_DOUBLE, 0)
    Y = cnp.PyArray_EMPTY(2, [mm, n], cnp.NPY_DOUBLE, 0)
    rho = cnp.PyArray_ZEROS(1, [mm], cnp.NPY_DOUBLE, 0)
    alo = ahi = None
    if lo is not None:
        if (cnp.PyArray_CheckExact(lo) and cnp.PyArray_TYPE(<cnp.ndarray>lo) == cnp.NPY_DOUBLE
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>lo)):
            alo = <cnp.ndarray>lo           # the common case: no NumPy call
        else:
            alo = np.ascontiguousarray(lo, dtype=np.float64)
        if (cnp.PyArray_CheckExact(hi) and cnp.PyArray_TYPE(<cnp.ndarray>hi) == cnp.NPY_DOUBLE
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>hi)):
            ahi = <cnp.ndarray>hi
        else:
            ahi = np.ascontiguousarray(hi, dtype=np.float64)
        if alo.ndim != 1 or ahi.ndim != 1 or alo.shape[0] != n or ahi.shape[0] != n:
            raise ValueError("run: bounds of the wrong length")
    _run_b(<double*>cnp.PyArray_DATA(xw), <double*>cnp.PyArray_DATA(gw), xa, gw, n,
           ev, &cfg, &out, f, <double*>cnp.PyArray_DATA(S),
           <double*>cnp.PyArray_DATA(Y), <double*>cnp.PyArray_DATA(rho),
           <double*>cnp.PyArray_DATA(alo) if alo is not None else NULL,
           <double*>cnp.PyArray_DATA(ahi) if ahi is not None else NULL, driver,
           xw, <float*>cnp.PyArray_DATA(xa) if narrow else NULL)
    if narrow:
        cnp.PyArray_CopyInto(xa, xw)
        if gw is not ga:
            cnp.PyArray_CopyInto(ga, gw)
    return out.status, out.nit, out.f, {
        "count": out.count, "newest": out.newest, "gamma": out.gamma,
        "sk": _ordered_rows(S, out.count, out.newest, mm),
        "yk": _ordered_rows(Y, out.count, out.newest, mm),
        "rho": _ordered_rows(rho, out.count, out.newest, mm)}
