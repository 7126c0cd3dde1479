# cython: language_level=3
"""Compiled loops of the second-order methods (Newton-CG, trust regions).

Two levels live here.

*Outer loops* -- :func:`trust_region` (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Algorithm 4.1) and :func:`newton_cg` (N&W
Algorithm 7.1 with the Moré-Thuente strong-Wolfe search of
:mod:`neurenix._ext._linesearch`) -- run the whole iteration in C.  They call
Python only to evaluate the user's ``fun``/``jac``/``hessp``/``hess``
(through :class:`Problem` and the shared evaluator
:class:`neurenix._ext._evaluator.Evaluator`, which validate what comes back) and, when a
callback/``disp``/``maxtime`` is set, once per iteration to report to the
driver.  Work vectors are allocated once per run.

*Inner loops* -- typed kernels on raw pointers, ``noexcept nogil`` for the
vector arithmetic; the only Python call inside them is the Hessian-vector
product:

* :func:`cg_newton` -- the inner conjugate-gradient loop of line-search
  Newton-CG with negative-curvature detection (N&W Algorithm 7.1).
* :func:`steihaug_cg` -- Steihaug-Toint truncated CG for the trust-region
  subproblem (Steihaug 1983; Toint 1981; N&W Algorithm 7.2).
* :class:`Lanczos` / :func:`gltr_solve` -- the generalized Lanczos
  trust-region method (Gould, Lucidi, Roma & Toint, SIAM J. Optim. 9(2),
  1999): Lanczos tridiagonalization ``Q^T H Q = T`` and, at every step, the
  trust-region subproblem restricted to the Krylov space solved nearly exactly
  on ``T`` (:func:`tridiag_trs`).  The Krylov space is kept across solves at
  one point, so a rejected step (new radius, same point) costs no Hessian
  product unless the smaller-radius solution needs a larger space.
* :func:`tridiag_trs` -- Moré-Sorensen on a symmetric tridiagonal matrix:
  LDL^T factorizations, the smallest eigenvalue by Sturm-sequence bisection,
  safeguarded Newton on the secular equation ``1/||h(lam)|| = 1/radius``
  (Moré & Sorensen, SIAM J. Sci. Stat. Comput. 4(3), 1983), hard case included.
* :class:`DenseSubproblem` -- the dense solvers of ``trust-exact``
  (Moré-Sorensen, hard case included) and ``dogleg``, compiled: LAPACK
  ``?potrf`` (``scipy.linalg.cython_lapack``) and typed triangular solves
  under ``nogil``, all storage allocated once;
  a Hessian with at most ``n // 8`` nonzero diagonals on each side (measured
  at every point, O(n) reads for a dense one) takes a typed band Cholesky and
  band solves instead (the same factor, so the same steps to rounding).

Dot products accumulate in double for both float32 and float64 vectors.  The
vector loops do not release the GIL explicitly: between two Python calls
(``hessp``) they are a few microseconds at the sizes these methods are used
for, less than a GIL release/acquire pair would save.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.string cimport memcpy
from scipy.linalg.cython_lapack cimport dpotrf, spotrf

from ._evaluator cimport Evaluator
from ._vec cimport (LANES16, fold16, dot_lanes16, nrm2sq_lanes16, asum_lanes16,
                    asum_sq_lanes16, dot3_lanes16, absmax, all_finite)
from ._linesearch cimport (MTState, mt_start, mt_iterate, mt_nonfinite, MT_FG,
                           MT_CONVERGED, MT_ERROR)

import numpy as np

cnp.import_array()

# return codes of the CG loops
CG_CONVERGED = 0        # residual <= tol
CG_NEGATIVE_CURVATURE = 1
CG_MAXITER = 2
CG_BOUNDARY = 3         # Steihaug: the step reached the trust-region boundary

cdef enum:
    C_CONVERGED = 0
    C_NEGATIVE = 1
    C_MAXITER = 2
    C_BOUNDARY = 3

# status codes (values of neurenix.optimize.Status)
cdef enum:
    S_RUNNING = -1
    S_MAXITER = 1
    S_LINESEARCH = 3
    S_GTOL = 8
    S_XTOL = 10
    S_TRUST_RADIUS = 11
    S_INDEFINITE = 13
    S_PRECISION = 14

# subproblem kinds of :func:`trust_region`
SUB_CG = 0
SUB_GLTR = 1
SUB_PYTHON = 2
SUB_EXACT = 3           # Moré-Sorensen on the dense Hessian (DenseSubproblem)
SUB_DOGLEG = 4


# The vector reductions (dot products, norms, sums) come from _vec.pxd in its
# ``lanes16`` order: sixteen partial sums in a fixed order, which the compiler
# turns into independent vector accumulators (no -ffast-math needed, the result is
# reproducible), so a pass is bound by loads, not by the latency of one add chain
# (4x faster than 4 scalar sums at n = 100..1000, measured).  The two CG kernels
# below sum in the same order.


cdef inline double _cg_update(floating* p, floating* r, const floating* d, const floating* hd,
                              double alpha, Py_ssize_t n, double* pp) noexcept nogil:
    """p += alpha d, r += alpha hd; returns r.r (and p.p in ``pp`` unless NULL), one pass."""
    cdef double s[LANES16]
    cdef double u[LANES16]
    cdef floating pv, rv
    cdef Py_ssize_t i, m = n - n % LANES16
    cdef int j
    for j in range(LANES16):
        s[j] = 0.0
        u[j] = 0.0
    for i in range(0, m, 16):
        for j in range(LANES16):
            pv = <floating>(p[i + j] + alpha * d[i + j])
            rv = <floating>(r[i + j] + alpha * hd[i + j])
            p[i + j] = pv
            r[i + j] = rv
            s[j] += <double>rv * <double>rv
            u[j] += <double>pv * <double>pv
    for i in range(m, n):
        pv = <floating>(p[i] + alpha * d[i])
        rv = <floating>(r[i] + alpha * hd[i])
        p[i] = pv
        r[i] = rv
        s[i - m] += <double>rv * <double>rv
        u[i - m] += <double>pv * <double>pv
    if pp != NULL:
        pp[0] = fold16(u)
    return fold16(s)


cdef inline double _cg_model(const floating* g, const floating* p, const floating* r,
                            const floating* hd, double tau, Py_ssize_t n) noexcept nogil:
    """g.p + p.(r - g + tau hd) / 2: the model value of a CG iterate (H p = r - g)."""
    cdef double s[LANES16]
    cdef double gv, pv
    cdef Py_ssize_t i, m = n - n % LANES16
    cdef int j
    for j in range(LANES16):
        s[j] = 0.0
    for i in range(0, m, 16):
        for j in range(LANES16):
            gv = <double>g[i + j]
            pv = <double>p[i + j]
            s[j] += gv * pv + 0.5 * pv * (<double>r[i + j] - gv + tau * <double>hd[i + j])
    for i in range(m, n):
        gv = <double>g[i]
        pv = <double>p[i]
        s[i - m] += gv * pv + 0.5 * pv * (<double>r[i] - gv + tau * <double>hd[i])
    return fold16(s)



cdef inline double update_radius_c(double radius, double rho, bint hits,
                                   double max_radius) noexcept nogil:
    """N&W Algorithm 4.1: quarter the radius when ``rho < 1/4``, double it (up to
    ``max_radius``) when ``rho > 3/4`` and the step reached the boundary."""
    if rho < 0.25 or rho != rho:
        return 0.25 * radius
    if rho > 0.75 and hits:
        return 2.0 * radius if 2.0 * radius < max_radius else max_radius
    return radius


def update_radius(double radius, double rho, bint hits_boundary, double max_radius):
    """N&W Algorithm 4.1 radius update (the rule of every trust-region loop here)."""
    return update_radius_c(radius, rho, hits_boundary, max_radius)


def _dtype_of(floating[::1] x):
    if floating is double:
        return np.float64
    else:
        return np.float32


cdef object _as_vector(object out, Py_ssize_t n, int typenum, str name):
    """``out`` as a C-contiguous 1-D array of length ``n`` and type ``typenum``
    (no copy when it already is one); ValueError naming ``name`` otherwise."""
    cdef cnp.ndarray a
    if cnp.PyArray_Check(out):
        a = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_NDIM(a) == 1
                and cnp.PyArray_DIM(a, 0) == n and cnp.PyArray_IS_C_CONTIGUOUS(a)):
            return a
    a = np.asarray(out)
    if a.size != n or a.ndim > 2:
        raise ValueError(f"{name} must return an array of shape ({n},), got {np.shape(out)}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must return a real array, got dtype {a.dtype}")
    return np.ascontiguousarray(a.reshape(n), dtype=cnp.PyArray_DescrFromType(typenum))


cdef bint _vec_finite(cnp.ndarray a):
    if cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE:
        return all_finite(<double*>cnp.PyArray_DATA(a), cnp.PyArray_DIM(a, 0))
    return all_finite(<float*>cnp.PyArray_DATA(a), cnp.PyArray_DIM(a, 0))


cdef bint _mat_finite(cnp.ndarray a):
    cdef Py_ssize_t m = cnp.PyArray_SIZE(a)
    cdef bint ok
    if cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE:
        with nogil:
            ok = all_finite(<double*>cnp.PyArray_DATA(a), m)
    else:
        with nogil:
            ok = all_finite(<float*>cnp.PyArray_DATA(a), m)
    return ok


cdef double _asym(const floating* H, Py_ssize_t n, Py_ssize_t kd, double* amax) noexcept nogil:
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


cdef inline cnp.ndarray _copy(cnp.ndarray a):
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef inline cnp.ndarray _empty(Py_ssize_t n, int typenum):
    """``np.empty(n, dtype)`` without the Python call."""
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return <cnp.ndarray>cnp.PyArray_EMPTY(1, dims, typenum, 0)


# --------------------------------------------------------------------------
# Hessian access and evaluation
# --------------------------------------------------------------------------
cdef class _Hess:
    """Hessian-vector products for the kernels: :meth:`apply` returns ``H @ d``
    as a C-contiguous vector of the working dtype; ``nprod`` counts them."""

    cdef Py_ssize_t n
    cdef int typenum
    cdef public Py_ssize_t nprod

    cdef object apply(self, object d):
        raise NotImplementedError

    cdef int nonfinite(self, object hd) except -1:
        """Called by a kernel whose curvature ``d^T (H d)`` came out non-finite: raise
        if the product ``hd`` has a non-finite entry (for a finite ``d``, an inf or
        NaN in ``H d`` always makes that dot product non-finite, so the kernels
        test the product through it instead of in a pass of its own); a finite
        product whose dot overflowed passes."""
        if not _vec_finite(<cnp.ndarray>hd):
            raise ValueError("hessp returned non-finite values")
        return 0


cdef class _PyHess(_Hess):
    """A Python callable ``hessp(d) -> H @ d`` as a :class:`_Hess`."""

    cdef object fn

    def __init__(self, fn, Py_ssize_t n, int typenum):
        self.fn = fn
        self.n = n
        self.typenum = typenum
        self.nprod = 0

    cdef object apply(self, object d):
        self.nprod += 1
        return _as_vector(self.fn(d), self.n, self.typenum, "hessp")


cdef _Hess _wrap_hessp(object hessp, Py_ssize_t n, int typenum):
    if isinstance(hessp, _Hess):
        return <_Hess>hessp
    return _PyHess(hessp, n, typenum)


cdef class Problem(_Hess):
    """The compiled loops' view of a :class:`~neurenix.optimize._objective.ScalarObjective`.

    ``f`` and ``g`` come from the shared evaluator of the compiled ``minimize``
    loops (:class:`neurenix._ext._evaluator.Evaluator`, held as ``ev``, with
    delta counters): ``mode`` 0: ``fun`` returns ``(f, g)``; 1: separate
    ``fun`` and ``jac``; 2: through ``obj.fun``/``obj.grad`` (finite-difference
    gradients, with the objective's cache).  ``hmode`` 0: the user's
    ``hessp(x, p, *args)``; 1: a
    :class:`~neurenix.optimize._subproblems.HessianOperator` made by
    ``hop_factory(x, first)`` at each new point (``hess`` matrices, the
    objective's finite-difference products, dense assembly); 2: SciPy's
    finite difference ``(g(x + eps p) - g(x)) / eps`` with an absolute step
    ``eps`` (Newton-CG's ``eps`` option).

    The user's functions get a fresh copy of ``x``.  What they return is
    validated as by the objective wrapper (a real scalar; arrays of ``x``'s
    length; finite Hessian products), with a fast path for a Python float and
    a contiguous array of ``x``'s dtype.  Calls made directly are counted in
    ``ev`` and added to the objective's ``nfev``/``njev``/``nhev`` by :meth:`flush`.
    """

    cdef Evaluator ev
    cdef object hp, hop_factory, hop, dtype, hessfn, dense_fallback
    cdef cnp.ndarray xh, g0, gtmp
    cdef int hmode
    cdef double fd_eps

    def __init__(self, obj, int mode, int hmode, fun, jac, hessp, tuple args, hop_factory,
                 double fd_eps, Py_ssize_t n, dtype, hess=None, dense_fallback=None):
        if mode not in (0, 1, 2) or hmode not in (0, 1, 2):
            raise ValueError("Problem: unknown mode")
        self.dtype = np.dtype(dtype)
        self.typenum = self.dtype.num
        self.ev = Evaluator(obj, mode, fun, jac, args, self.typenum, n, False)
        self.hmode = hmode
        self.hp = hessp
        self.hop_factory = hop_factory
        self.hessfn = hess
        self.dense_fallback = dense_fallback
        self.fd_eps = fd_eps
        self.n = n
        self.g0 = _empty(n, self.typenum)
        self.gtmp = _empty(n, self.typenum)
        self.nprod = 0

    @property
    def nfev(self):
        """``fun`` calls made here since the last :meth:`flush`."""
        return self.ev.nfev

    @property
    def njev(self):
        """``jac`` calls made here since the last :meth:`flush`."""
        return self.ev.njev

    @property
    def nhev(self):
        """``hessp``/``hess`` calls made here since the last :meth:`flush`."""
        return self.ev.nhev

    def flush(self):
        """Add the calls made here to the objective's counters (and reset them)."""
        self.ev.flush()

    cdef int at(self, cnp.ndarray x, cnp.ndarray g, bint first) except -1:
        """Make the Hessian products refer to the point ``x`` (gradient ``g``)."""
        if self.hmode == 1:
            if self.hop is not None:
                self.nprod += self.hop.nprod
            self.hop = self.hop_factory(_copy(x), first)
        else:
            self.xh = _copy(x)
            if self.hmode == 2:
                memcpy(cnp.PyArray_DATA(self.g0), cnp.PyArray_DATA(g),
                       self.n * cnp.PyArray_ITEMSIZE(g))
        return 0

    cdef cnp.ndarray dense_at(self, cnp.ndarray x, bint first):
        """The dense Hessian at ``x`` for ``trust-exact``/``dogleg``: a C-contiguous
        (n, n) array of the working dtype.  The user's ``hess`` is called directly;
        a dense array of the working dtype and shape is returned as it is
        (:meth:`DenseSubproblem.set_point` tests it: finite, from its Frobenius
        sum, and symmetric at the first point, over the band for a band matrix);
        anything else (other dtypes, sparse matrices, LinearOperators) goes
        through ``dense_fallback(H, first).dense()`` (a ``HessianOperator``).
        Without ``hess`` the matrix is assembled from ``n`` products
        (``hop_factory(x, first).dense()``)."""
        cdef cnp.ndarray a
        if self.hessfn is None:
            if self.hop is not None:
                self.nprod += self.hop.nprod
            self.hop = self.hop_factory(_copy(x), first)
            return <cnp.ndarray>self.hop.dense()
        H = self.ev.call(self.hessfn, _copy(x))
        self.ev.nhev += 1
        if cnp.PyArray_Check(H):
            a = <cnp.ndarray>H
            if (cnp.PyArray_TYPE(a) == self.typenum and cnp.PyArray_NDIM(a) == 2
                    and cnp.PyArray_DIM(a, 0) == self.n and cnp.PyArray_DIM(a, 1) == self.n
                    and cnp.PyArray_IS_C_CONTIGUOUS(a)):
                return a
        hop = self.dense_fallback(H, first)
        a = <cnp.ndarray>hop.dense()
        self.nprod += hop.nprod        # a LinearOperator is assembled from n products
        return a

    def products(self):
        """Hessian-vector products made so far (``nhessp``)."""
        return self.nprod + (self.hop.nprod if self.hop is not None else 0)

    def set_point(self, cnp.ndarray x, cnp.ndarray g, bint first=False):
        """Python face of :meth:`at` (for the step-wise optimizers)."""
        self.at(x, g, first)

    cdef object apply(self, object d):
        cdef cnp.ndarray a
        if self.hmode != 1:
            self.nprod += 1
        if self.hmode == 0:
            if self.ev.noargs:
                out = self.hp(self.xh, d)
            else:
                out = self.hp(self.xh, d, *self.ev.args)
            self.ev.nhev += 1
            # finiteness: tested by the kernels through d^T (H d) (see _Hess.nonfinite)
            return _as_vector(out, self.n, self.typenum, "hessp")
        if self.hmode == 1:
            return _as_vector(self.hop.matvec(d), self.n, self.typenum, "hess")
        # SciPy's approx_fhess_p: forward difference with the absolute step eps
        xt = (self.xh + self.fd_eps * np.asarray(d)).astype(self.dtype, copy=False)
        self.ev.g_at(xt, self.gtmp)
        a = np.ascontiguousarray((self.gtmp - self.g0) / self.fd_eps, dtype=self.dtype)
        if not _vec_finite(a):
            raise ValueError("finite-difference Hessian-vector product is not finite "
                             "(the gradient is not finite near x); pass hess or hessp")
        return a

    def hessp(self, d):
        """``H @ d`` at the current point (Python face of :meth:`apply`, with the
        finiteness test the kernels make through ``d^T (H d)``)."""
        out = self.apply(d)
        self.nonfinite(out)
        return out


cdef double _boundary_tau(const floating* z, const floating* d, Py_ssize_t n,
                          double radius, bint positive) noexcept nogil:
    """Root of ||z + tau d|| = radius: the positive one (or the negative one)."""
    cdef double a = nrm2sq_lanes16(d, n), b = dot_lanes16(z, d, n), c = nrm2sq_lanes16(z, n) - radius * radius
    cdef double disc, q
    if a == 0.0:
        return 0.0
    if c > 0.0:
        c = 0.0      # z is (up to rounding) on the boundary already
    disc = sqrt(b * b - a * c)
    # a tau^2 + 2 b tau + c = 0, roots (-b +- disc)/a, computed without cancellation
    if b >= 0.0:
        q = -(b + disc)
        # roots: q / a (<= 0) and c / q (>= 0)
        if positive:
            return c / q if q != 0.0 else 0.0
        return q / a
    q = -b + disc
    if positive:
        return q / a
    return c / q if q != 0.0 else 0.0


# --------------------------------------------------------------------------
# Newton-CG inner loop
# --------------------------------------------------------------------------
cdef int _cg_newton(const floating* g, _Hess H, cnp.ndarray d_arr, floating* r, floating* p,
                    Py_ssize_t n, double tol, Py_ssize_t maxiter, bint l1,
                    Py_ssize_t* iters) except -1:
    """Truncated CG on ``H p = -g`` from ``p = 0`` (N&W Algorithm 7.1, inner loop);
    the residual is measured in the 1-norm when ``l1`` (SciPy's test), else the 2-norm."""
    cdef floating* d = <floating*>cnp.PyArray_DATA(d_arr)
    cdef floating* Hd
    cdef Py_ssize_t i, k = 0
    cdef double rr, rr_new, rn, dHd, alpha, beta
    cdef int status = C_MAXITER
    for i in range(n):
        p[i] = 0
        r[i] = g[i]
        d[i] = -g[i]
    rr = nrm2sq_lanes16(r, n)
    rn = asum_lanes16(r, n) if l1 else sqrt(rr)
    if n == 0 or rn <= tol:
        iters[0] = 0
        return C_CONVERGED
    while k < maxiter:
        Hd_o = H.apply(d_arr)
        Hd = <floating*>cnp.PyArray_DATA(<cnp.ndarray>Hd_o)
        k += 1
        dHd = dot_lanes16(d, Hd, n)
        if not isfinite(dHd):
            H.nonfinite(Hd_o)
        if dHd <= 0.0:
            if k == 1:
                for i in range(n):
                    p[i] = -g[i]
            status = C_NEGATIVE
            break
        alpha = rr / dHd
        rr_new = _cg_update(p, r, d, Hd, alpha, n, NULL)
        rn = asum_lanes16(r, n) if l1 else sqrt(rr_new)
        if rn <= tol:
            status = C_CONVERGED
            break
        beta = rr_new / rr
        rr = rr_new
        for i in range(n):
            d[i] = <floating>(-r[i] + beta * d[i])
    iters[0] = k
    return status


def cg_newton(floating[::1] g, object hessp, double tol, Py_ssize_t maxiter,
              floating[::1] p, bint l1=False):
    """Truncated CG on ``H p = -g`` (N&W Algorithm 7.1, inner loop).

    Stops when ``||r|| <= tol`` (``CG_CONVERGED``; the 1-norm when ``l1``,
    as SciPy's Newton-CG, else the 2-norm), when a direction of non-positive
    curvature ``d^T H d <= 0`` is met (``CG_NEGATIVE_CURVATURE``: ``p`` is the
    last iterate, or ``-g`` if it happens at the first iteration), or after
    ``maxiter`` products (``CG_MAXITER``).  ``hessp(d) -> H @ d``.

    Returns
    -------
    status, iterations : int, int
        ``iterations`` is also the number of ``hessp`` calls.
    """
    cdef Py_ssize_t n = g.shape[0], k = 0
    cdef int status
    if p.shape[0] != n:
        raise ValueError("p must have the shape of g")
    dtype = _dtype_of(g)
    cdef _Hess H = _wrap_hessp(hessp, n, np.dtype(dtype).num)
    r_arr = np.empty(max(n, 1), dtype=dtype)
    cdef cnp.ndarray d_arr = np.empty(n, dtype=dtype)
    cdef floating[::1] r = r_arr
    if n == 0:
        return CG_CONVERGED, 0
    status = _cg_newton(&g[0], H, d_arr, &r[0], &p[0], n, tol, maxiter, l1, &k)
    return status, k


# --------------------------------------------------------------------------
# Steihaug-Toint truncated CG
# --------------------------------------------------------------------------
cdef int _steihaug(const floating* g, _Hess H, cnp.ndarray d_arr, floating* r, floating* p,
                   Py_ssize_t n, double radius, double tol, Py_ssize_t maxiter,
                   bint* hits, double* model, Py_ssize_t* iters) except -1:
    """Steihaug-Toint CG (N&W Algorithm 7.2) on raw vectors; see :func:`steihaug_cg`."""
    cdef floating* d = <floating*>cnp.PyArray_DATA(d_arr)
    cdef floating* Hd
    cdef Py_ssize_t i, k = 0
    cdef double rr, rr_new, dHd, alpha = 0.0, beta, tau = 0.0, tau2, m1, m2, rd, zz, t
    cdef double pp = 0.0, pd, dd
    cdef int status = C_MAXITER, event
    hits[0] = False
    model[0] = 0.0
    for i in range(n):
        p[i] = 0
        r[i] = g[i]
        d[i] = -g[i]
    rr = nrm2sq_lanes16(r, n)
    if n == 0 or sqrt(rr) <= tol:
        iters[0] = 0
        return C_CONVERGED
    while k < maxiter:
        Hd_o = H.apply(d_arr)
        Hd = <floating*>cnp.PyArray_DATA(<cnp.ndarray>Hd_o)
        k += 1
        dHd = dot3_lanes16(d, Hd, p, n, &pd, &dd)
        if not isfinite(dHd):
            H.nonfinite(Hd_o)
        event = 0
        if dHd <= 0.0:
            # m(z + tau d) - m(z) = tau r.d + tau^2 dHd / 2 ; take the better root
            rd = dot_lanes16(r, d, n)
            tau = _boundary_tau(p, d, n, radius, True)
            tau2 = _boundary_tau(p, d, n, radius, False)
            m1 = tau * rd + 0.5 * tau * tau * dHd
            m2 = tau2 * rd + 0.5 * tau2 * tau2 * dHd
            if m2 < m1:
                tau = tau2
            event = 1
        else:
            alpha = rr / dHd
            # ||p + alpha d||^2 >= radius^2 ?  (from p.p, p.d, d.d of this pass)
            zz = pp + alpha * (2.0 * pd + alpha * dd)
            if zz >= radius * radius:
                tau = _boundary_tau(p, d, n, radius, True)
                event = 2
        if event != 0:
            # p <- z + tau d ; H p = (r - g) + tau H d
            for i in range(n):
                p[i] = <floating>(p[i] + tau * d[i])
            hits[0] = True
            model[0] = _cg_model(g, p, r, Hd, tau, n)
            iters[0] = k
            return C_NEGATIVE if event == 1 else C_BOUNDARY
        rr_new = _cg_update(p, r, d, Hd, alpha, n, &pp)
        if sqrt(rr_new) <= tol:
            status = C_CONVERGED
            break
        beta = rr_new / rr
        rr = rr_new
        for i in range(n):
            d[i] = <floating>(-r[i] + beta * d[i])
    # m(z) = g.z + z.(r - g)/2
    model[0] = _cg_model(g, p, r, r, 0.0, n)
    iters[0] = k
    return status


def steihaug_cg(floating[::1] g, object hessp, double radius, double tol,
                Py_ssize_t maxiter, floating[::1] p):
    """Steihaug-Toint CG for ``min g^T p + p^T H p / 2, ||p|| <= radius``.

    N&W Algorithm 7.2: CG from ``p = 0`` until the residual is below ``tol``;
    a direction of non-positive curvature or an iterate leaving the region is
    followed to the boundary (for negative curvature, the boundary point of
    lower model value of the two along the direction).

    Returns
    -------
    hits_boundary : bool
    model : float
        ``g^T p + p^T H p / 2`` at the returned step, obtained from the CG
        recurrences (``H p = r - g``) without an extra product.
    status : int
    iterations : int
        Number of ``hessp`` calls.
    """
    cdef Py_ssize_t n = g.shape[0], k = 0
    cdef bint hits = False
    cdef double model = 0.0
    cdef int status
    if p.shape[0] != n:
        raise ValueError("p must have the shape of g")
    if n == 0:
        return False, 0.0, CG_CONVERGED, 0
    dtype = _dtype_of(g)
    cdef _Hess H = _wrap_hessp(hessp, n, np.dtype(dtype).num)
    r_arr = np.empty(n, dtype=dtype)
    cdef cnp.ndarray d_arr = np.empty(n, dtype=dtype)
    cdef floating[::1] r = r_arr
    status = _steihaug(&g[0], H, d_arr, &r[0], &p[0], n, radius, tol, maxiter,
                       &hits, &model, &k)
    return bool(hits), model, status, k


# --------------------------------------------------------------------------
# tridiagonal trust-region subproblem
# --------------------------------------------------------------------------
cdef bint _ldl(const double* a, const double* b, Py_ssize_t m, double lam,
               double* dpiv, double* l) noexcept nogil:
    """LDL^T of T + lam I (T: diagonal a, off-diagonal b); False unless all pivots > 0."""
    cdef Py_ssize_t i
    dpiv[0] = a[0] + lam
    if not dpiv[0] > 0.0:
        return False
    for i in range(m - 1):
        l[i] = b[i] / dpiv[i]
        dpiv[i + 1] = a[i + 1] + lam - l[i] * b[i]
        if not dpiv[i + 1] > 0.0:
            return False
    return True


cdef double _ldl_solve(const double* dpiv, const double* l, Py_ssize_t m,
                       const double* rhs, double* h, double* y) noexcept nogil:
    """h = (L D L^T)^{-1} rhs; y = L^{-1} rhs.  Returns y^T D^{-1} y = rhs^T (T+lam I)^{-1} rhs."""
    cdef Py_ssize_t i
    cdef double s = 0.0
    y[0] = rhs[0]
    for i in range(1, m):
        y[i] = rhs[i] - l[i - 1] * y[i - 1]
    for i in range(m):
        h[i] = y[i] / dpiv[i]
        s += y[i] * y[i] / dpiv[i]
    for i in range(m - 2, -1, -1):
        h[i] -= l[i] * h[i + 1]
    return s


cdef Py_ssize_t _sturm_count(const double* a, const double* b, Py_ssize_t m, double x,
                             double tiny) noexcept nogil:
    """Number of eigenvalues of T smaller than x (signs of the LDL^T pivots of T - xI)."""
    cdef Py_ssize_t i, c = 0
    cdef double q = a[0] - x
    if q == 0.0:
        q = -tiny
    if q < 0.0:
        c += 1
    for i in range(1, m):
        q = a[i] - x - b[i - 1] * b[i - 1] / q
        if q == 0.0:
            q = -tiny
        if q < 0.0:
            c += 1
    return c


cdef double _lambda_min(const double* a, const double* b, Py_ssize_t m) noexcept nogil:
    """Smallest eigenvalue of T by bisection on the Sturm count (Gershgorin bracket)."""
    cdef Py_ssize_t i
    cdef double lo = a[0], hi = a[0], r, mid, scale, tiny
    for i in range(m):
        r = 0.0
        if i > 0:
            r += fabs(b[i - 1])
        if i < m - 1:
            r += fabs(b[i])
        if a[i] - r < lo:
            lo = a[i] - r
        if a[i] + r > hi:
            hi = a[i] + r
    scale = fabs(lo) if fabs(lo) > fabs(hi) else fabs(hi)
    if scale == 0.0:
        return 0.0
    tiny = 1e-300 + 2.2e-16 * scale
    # smallest eigenvalue in [lo, hi]: the largest x with count(x) == 0
    for i in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= 4.0 * 2.2e-16 * scale:
            break
        if _sturm_count(a, b, m, mid, tiny) == 0:
            lo = mid
        else:
            hi = mid
    return lo


cdef int _trs_tridiag(const double* a, const double* b, Py_ssize_t m, double gamma,
                      double radius, double* h, double* lam_out,
                      double* dpiv, double* l, double* y, double* z, double* rhs) noexcept nogil:
    """Solve min gamma h_0 + h^T T h / 2 s.t. ||h|| <= radius.

    Returns 0 (interior), 1 (boundary), 2 (hard case: boundary with an
    eigenvector component added).
    """
    cdef Py_ssize_t i, it
    cdef double hn, lam, lmin, lam_lo, delta, scale, s, q, zz, hz, tau1, tau2
    cdef double m1, m2, disc, c, lam_new
    for i in range(m):
        rhs[i] = 0.0
    rhs[0] = -gamma
    # interior Newton step when T is positive definite
    if _ldl(a, b, m, 0.0, dpiv, l):
        _ldl_solve(dpiv, l, m, rhs, h, y)
        hn = sqrt(nrm2sq_lanes16(h, m))
        if hn <= radius:
            lam_out[0] = 0.0
            return 0
        # T positive definite and ||h(0)|| > radius: lam = 0 lies left of the
        # solution, where Newton's iteration is monotone -- lambda_min not needed
        return _trs_newton(a, b, m, radius, 0.0, 0.0, hn, h, lam_out, dpiv, l, y, rhs)
    lmin = _lambda_min(a, b, m)
    lam_lo = -lmin if -lmin > 0.0 else 0.0
    scale = 0.0
    for i in range(m):
        if fabs(a[i]) > scale:
            scale = fabs(a[i])
        if i < m - 1 and fabs(b[i]) > scale:
            scale = fabs(b[i])
    if scale == 0.0:
        scale = 1.0
    delta = 1e-14 * scale
    lam = lam_lo + delta
    it = 0
    while not _ldl(a, b, m, lam, dpiv, l):
        delta *= 4.0
        lam = lam_lo + delta
        it += 1
        if it > 200:
            break
    _ldl_solve(dpiv, l, m, rhs, h, y)
    hn = sqrt(nrm2sq_lanes16(h, m))
    if hn < radius:
        # hard case: add tau z, z an eigenvector of lmin (inverse iteration on
        # the nearly singular T + lam I, which is positive definite)
        for i in range(m):
            z[i] = 1.0 + 0.1 * ((i * 7919) % 13)   # fixed, generic start vector
        for it in range(4):
            _ldl_solve(dpiv, l, m, z, y, rhs)
            s = sqrt(nrm2sq_lanes16(y, m))
            if s == 0.0:
                break
            for i in range(m):
                z[i] = y[i] / s
        zz = nrm2sq_lanes16(z, m)
        hz = 0.0
        for i in range(m):
            hz += h[i] * z[i]
        c = hn * hn - radius * radius
        disc = sqrt(hz * hz - zz * c)
        tau1 = (-hz + disc) / zz
        tau2 = (-hz - disc) / zz
        # model values along the two boundary points: m(h + tau z)
        m1 = 0.0
        m2 = 0.0
        for i in range(m):
            y[i] = h[i] + tau1 * z[i]
        m1 = _tri_model(a, b, m, gamma, y)
        for i in range(m):
            y[i] = h[i] + tau2 * z[i]
        m2 = _tri_model(a, b, m, gamma, y)
        if m1 <= m2:
            for i in range(m):
                h[i] = h[i] + tau1 * z[i]
        else:
            for i in range(m):
                h[i] = y[i]
        lam_out[0] = lam_lo
        return 2
    return _trs_newton(a, b, m, radius, lam, lam_lo, hn, h, lam_out, dpiv, l, y, rhs)


cdef int _trs_newton(const double* a, const double* b, Py_ssize_t m, double radius,
                     double lam, double lam_lo, double hn, double* h, double* lam_out,
                     double* dpiv, double* l, double* y, const double* rhs) noexcept nogil:
    """Safeguarded Newton on 1/||h(lam)|| - 1/radius from ``lam`` (factored in
    ``dpiv``, ``l``; ``h = h(lam)``, ``hn = ||h||``), left of the solution, where
    the iteration is monotone.  Returns 1 (boundary)."""
    cdef Py_ssize_t it
    cdef double q, lam_new
    for it in range(100):
        if fabs(hn - radius) <= 1e-12 * radius:
            break
        # Newton step needs q = h^T (T + lam I)^{-1} h
        q = _ldl_quad(dpiv, l, m, h, y)
        if q <= 0.0:
            break
        lam_new = lam + (hn * hn / q) * (hn - radius) / radius
        if lam_new <= lam_lo:
            lam_new = 0.5 * (lam + lam_lo)
        if lam_new == lam:
            break
        if not _ldl(a, b, m, lam_new, dpiv, l):
            lam_new = 0.5 * (lam + lam_new)
            if not _ldl(a, b, m, lam_new, dpiv, l):
                _ldl(a, b, m, lam, dpiv, l)
                break
        lam = lam_new
        _ldl_solve(dpiv, l, m, rhs, h, y)
        hn = sqrt(nrm2sq_lanes16(h, m))
    lam_out[0] = lam
    return 1


cdef double _ldl_quad(const double* dpiv, const double* l, Py_ssize_t m,
                      const double* v, double* y) noexcept nogil:
    """v^T (L D L^T)^{-1} v = ||D^{-1/2} L^{-1} v||^2."""
    cdef Py_ssize_t i
    cdef double s
    y[0] = v[0]
    for i in range(1, m):
        y[i] = v[i] - l[i - 1] * y[i - 1]
    s = 0.0
    for i in range(m):
        s += y[i] * y[i] / dpiv[i]
    return s


cdef double _tri_model(const double* a, const double* b, Py_ssize_t m, double gamma,
                       const double* h) noexcept nogil:
    """gamma h_0 + h^T T h / 2."""
    cdef Py_ssize_t i
    cdef double s = 0.0
    for i in range(m):
        s += a[i] * h[i] * h[i]
        if i < m - 1:
            s += 2.0 * b[i] * h[i] * h[i + 1]
    return gamma * h[0] + 0.5 * s


def tridiag_trs(double[::1] a, double[::1] b, double gamma, double radius):
    """Trust-region subproblem on a symmetric tridiagonal matrix.

    Minimizes ``gamma * h[0] + h^T T h / 2`` subject to ``||h|| <= radius``
    with ``T = diag(a) + diag(b, 1) + diag(b, -1)``.

    Returns
    -------
    h : ndarray
    lam : float
        Lagrange multiplier (0 for an interior solution).
    kind : int
        0 interior, 1 boundary, 2 boundary in the hard case.
    """
    cdef Py_ssize_t m = a.shape[0]
    if m == 0 or b.shape[0] != m - 1:
        raise ValueError("b must have one element fewer than a (and a at least one)")
    if not radius > 0:
        raise ValueError("radius must be > 0")
    work = np.empty((6, m), dtype=np.float64)
    cdef double[:, ::1] w = work
    cdef double lam = 0.0
    cdef int kind
    cdef const double* bp = &b[0] if m > 1 else NULL
    with nogil:
        kind = _trs_tridiag(&a[0], bp, m, gamma, radius, &w[0, 0], &lam,
                            &w[1, 0], &w[2, 0], &w[3, 0], &w[4, 0], &w[5, 0])
    return work[0].copy(), lam, kind


def tridiag_lambda_min(double[::1] a, double[::1] b):
    """Smallest eigenvalue of a symmetric tridiagonal matrix (Sturm bisection)."""
    cdef Py_ssize_t m = a.shape[0]
    if m == 0 or b.shape[0] != m - 1:
        raise ValueError("b must have one element fewer than a (and a at least one)")
    cdef const double* bp = &b[0] if m > 1 else NULL
    return _lambda_min(&a[0], bp, m)



# --------------------------------------------------------------------------
# GLTR
# --------------------------------------------------------------------------
cdef class Lanczos:
    """Krylov space of GLTR at one point (Gould, Lucidi, Roma & Toint 1999).

    Holds the Lanczos vectors ``Q`` (rows), the tridiagonal ``T`` (``alpha``,
    ``beta``) and the next, not yet normalized, Lanczos vector.  A solve for a
    new radius at the same point re-solves the tridiagonal subproblem on the
    space built so far and extends the space only when the residual test
    fails -- so a trust-region step rejected at this point costs no Hessian
    product (the space depends on ``g`` and ``H`` only, not on the radius).

    Parameters
    ----------
    g : ndarray, float32 or float64
        Gradient at the point (copied).
    max_restarts : int
        Restarts allowed when the space becomes invariant (see :func:`gltr`).
    """

    cdef cnp.ndarray Q_arr, ab_arr, work_arr, w_arr, v_arr, g_arr
    cdef Py_ssize_t n, cap, k
    cdef int restarts, max_restarts, typenum
    cdef bint terminal, empty
    cdef double gamma, tscale, bnorm
    cdef public double lam

    def __init__(self, g, int max_restarts=1):
        g = np.asarray(g)
        if g.ndim != 1 or g.dtype not in (np.float32, np.float64):
            raise TypeError("g must be a 1-D float32 or float64 array")
        self.n = g.shape[0]
        self.typenum = g.dtype.num
        self.max_restarts = max_restarts
        self.cap = 0
        self.g_arr = np.empty(self.n, dtype=g.dtype)
        self.w_arr = np.empty(self.n, dtype=g.dtype)
        self.v_arr = np.empty(self.n, dtype=g.dtype)
        self._alloc(min(self.n, 32) + 1)
        self.reset(g)

    cdef _alloc(self, Py_ssize_t cap):
        Q2 = np.zeros((cap, self.n), dtype=self.g_arr.dtype)
        ab2 = np.zeros((2, cap), dtype=np.float64)
        if self.cap:
            Q2[:self.cap] = self.Q_arr
            ab2[:, :self.cap] = self.ab_arr
        self.Q_arr = Q2
        self.ab_arr = ab2
        self.work_arr = np.empty((6, cap), dtype=np.float64)
        self.cap = cap

    cpdef reset(self, g):
        """Start a new Krylov space from the gradient ``g`` (keeps the storage)."""
        cdef cnp.ndarray ga = <cnp.ndarray>g
        memcpy(cnp.PyArray_DATA(self.g_arr), cnp.PyArray_DATA(ga),
               self.n * cnp.PyArray_ITEMSIZE(self.g_arr))
        self.k = 0
        self.restarts = 0
        self.terminal = False
        self.empty = False
        self.tscale = 0.0
        self.bnorm = 0.0
        self.lam = 0.0
        if self.n == 0:
            self.gamma = 0.0
            return
        if self.typenum == cnp.NPY_DOUBLE:
            self.gamma = sqrt(nrm2sq_lanes16(<double*>cnp.PyArray_DATA(ga), self.n))
        else:
            self.gamma = sqrt(nrm2sq_lanes16(<float*>cnp.PyArray_DATA(ga), self.n))
        if self.gamma == 0.0:
            # no gradient: the Krylov space is empty; start from a generic vector
            self.restarts = 1      # the start itself counts as the one exploration
            if self.max_restarts == 0 or not _generic_unit(self.Q_arr, 0):
                self.empty = True
        else:
            self.Q_arr[0] = self.g_arr / self.gamma

    @property
    def size(self):
        """Dimension of the Krylov space built so far."""
        return self.k

    cdef int _grow_to(self, Py_ssize_t need) except -1:
        if need > self.cap:
            self._alloc(max(need, min(self.n, 2 * self.cap) + 1))
        return 0


cdef int _gltr_solve(Lanczos lz, _Hess H, double radius, double tol, Py_ssize_t maxiter,
                     floating* p, bint* hits, double* model, Py_ssize_t* iters) except -1:
    """GLTR on the state ``lz`` for ``radius``: extend the Krylov space until
    ``beta_{k+1} |h_k| <= tol`` (or it spans everything / ``maxiter``), then
    ``p = Q_k h``.  ``iters`` counts the Hessian products of this call."""
    cdef Py_ssize_t n = lz.n, i, j, k, m, calls = 0
    cdef floating* Q
    cdef floating* w = <floating*>cnp.PyArray_DATA(lz.w_arr)
    cdef floating* v = <floating*>cnp.PyArray_DATA(lz.v_arr)
    cdef floating* Hq
    cdef double* a
    cdef double* b
    cdef double* work
    cdef double alpha, beta, bnorm, res, lam = 0.0
    cdef int kind = 0
    cdef bint start_block, go = True
    cdef Py_ssize_t cap
    hits[0] = False
    model[0] = 0.0
    iters[0] = 0
    if n == 0 or lz.empty:
        for i in range(n):
            p[i] = 0
        return 0
    k = lz.k
    if k > 0:
        # the space at this point exists: solve on it for the new radius
        cap = lz.cap
        a = <double*>cnp.PyArray_DATA(lz.ab_arr)
        work = <double*>cnp.PyArray_DATA(lz.work_arr)
        kind = _trs_tridiag(a, a + cap, k, lz.gamma, radius, work, &lam,
                            work + cap, work + 2 * cap, work + 3 * cap, work + 4 * cap,
                            work + 5 * cap)
        res = lz.bnorm * fabs(work[k - 1])
        if lz.terminal or res <= tol:
            go = False
        else:
            # continue: the pending vector w / bnorm becomes q_k
            lz._grow_to(k + 1)
            cap = lz.cap
            Q = <floating*>cnp.PyArray_DATA(lz.Q_arr)
            a = <double*>cnp.PyArray_DATA(lz.ab_arr)
            a[cap + k - 1] = lz.bnorm
            for i in range(n):
                Q[k * n + i] = <floating>(w[i] / lz.bnorm)
    while go:
        cap = lz.cap
        Q = <floating*>cnp.PyArray_DATA(lz.Q_arr)
        a = <double*>cnp.PyArray_DATA(lz.ab_arr)
        b = a + cap
        work = <double*>cnp.PyArray_DATA(lz.work_arr)
        memcpy(v, &Q[k * n], n * sizeof(floating))
        Hq_o = H.apply(lz.v_arr)
        Hq = <floating*>cnp.PyArray_DATA(<cnp.ndarray>Hq_o)
        calls += 1
        start_block = (k == 0) or b[k - 1] == 0.0
        alpha = dot_lanes16(&Q[k * n], Hq, n)
        if not isfinite(alpha):
            H.nonfinite(Hq_o)
        for i in range(n):
            w[i] = <floating>(Hq[i] - alpha * Q[k * n + i])
        if k > 0 and not start_block:
            beta = b[k - 1]
            for i in range(n):
                w[i] = <floating>(w[i] - beta * Q[(k - 1) * n + i])
        a[k] = alpha
        bnorm = sqrt(nrm2sq_lanes16(w, n))
        if fabs(alpha) > lz.tscale:
            lz.tscale = fabs(alpha)
        if bnorm > lz.tscale:
            lz.tscale = bnorm
        m = k + 1
        kind = _trs_tridiag(a, b, m, lz.gamma, radius, work, &lam,
                            work + cap, work + 2 * cap, work + 3 * cap, work + 4 * cap,
                            work + 5 * cap)
        res = bnorm * fabs(work[m - 1])
        k += 1
        lz.k = k
        lz.bnorm = bnorm
        if k >= n or k >= maxiter:
            lz.terminal = True
            break
        if bnorm <= 1e-12 * lz.tscale:
            # invariant subspace: restart from a generic vector orthogonal to Q
            if lz.restarts >= lz.max_restarts:
                lz.terminal = True
                break
            lz.restarts += 1
            lz._grow_to(k + 1)
            b = <double*>cnp.PyArray_DATA(lz.ab_arr) + lz.cap
            b[k - 1] = 0.0
            if not _generic_unit(lz.Q_arr, k):
                lz.terminal = True
                break
            continue
        if res <= tol:
            break
        lz._grow_to(k + 1)
        cap = lz.cap
        Q = <floating*>cnp.PyArray_DATA(lz.Q_arr)
        b = <double*>cnp.PyArray_DATA(lz.ab_arr) + cap
        b[k - 1] = bnorm
        for i in range(n):
            Q[k * n + i] = <floating>(w[i] / bnorm)
    # p = Q_k h
    m = lz.k
    cap = lz.cap
    Q = <floating*>cnp.PyArray_DATA(lz.Q_arr)
    a = <double*>cnp.PyArray_DATA(lz.ab_arr)
    work = <double*>cnp.PyArray_DATA(lz.work_arr)
    for i in range(n):
        p[i] = 0
    for j in range(m):
        for i in range(n):
            p[i] = <floating>(p[i] + work[j] * Q[j * n + i])
    model[0] = _tri_model(a, a + cap, m, lz.gamma, work)
    hits[0] = kind != 0
    lz.lam = lam
    iters[0] = calls
    return 0


def gltr_solve(Lanczos lz, object hessp, double radius, double tol, Py_ssize_t maxiter,
               floating[::1] p):
    """One GLTR solve on the Krylov state ``lz`` (reused across radii at one point).

    Returns ``(hits_boundary, model, lam, iterations)``; ``iterations`` is the
    number of ``hessp`` calls made by this solve (0 when the space built by
    earlier solves suffices for the new radius).
    """
    cdef Py_ssize_t n = p.shape[0], k = 0
    cdef bint hits = False
    cdef double model = 0.0
    cdef int tn = np.dtype(_dtype_of(p)).num
    if n != lz.n or tn != lz.typenum:
        raise ValueError("p must have the length and dtype of the Lanczos state")
    if n == 0:
        return False, 0.0, 0.0, 0
    cdef _Hess H = _wrap_hessp(hessp, n, tn)
    _gltr_solve(lz, H, radius, tol, maxiter, &p[0], &hits, &model, &k)
    return bool(hits), model, lz.lam, k


def gltr(floating[::1] g, object hessp, double radius, double tol, Py_ssize_t maxiter,
         floating[::1] p, int max_restarts=1):
    """Generalized Lanczos trust-region method (Gould, Lucidi, Roma & Toint 1999).

    Lanczos on ``H`` from ``q_0 = g/||g||`` builds ``T_k = Q_k^T H Q_k``; after
    every step the subproblem ``min ||g|| h_0 + h^T T_k h / 2, ||h|| <= radius``
    is solved nearly exactly (:func:`tridiag_trs`) and the iteration stops when
    the residual of the full problem, ``beta_{k+1} |h_k|``, is at most ``tol``.
    ``p = Q_k h``.  The Lanczos vectors are stored (no second pass).

    If the Krylov space becomes invariant (``beta_{k+1} ~ 0``) before it spans
    the whole space, the process is restarted (at most ``max_restarts`` times)
    from a fixed pseudo-random vector orthogonalized against the Lanczos
    vectors, so that ``T`` becomes block diagonal; this lets the method see
    negative curvature orthogonal to the gradient (the hard case, where a pure
    Krylov method cannot).  One-shot form of :class:`Lanczos` + :func:`gltr_solve`.

    Returns
    -------
    hits_boundary : bool
    model : float
        ``g^T p + p^T H p / 2`` from the tridiagonal model.
    lam : float
        Lagrange multiplier.
    iterations : int
        Number of ``hessp`` calls.
    """
    if p.shape[0] != g.shape[0]:
        raise ValueError("p must have the shape of g")
    lz = Lanczos(np.asarray(g), max_restarts)
    return gltr_solve(lz, hessp, radius, tol, maxiter, p)


def _generic_unit(Q_arr, Py_ssize_t k):
    """Row k of Q <- a fixed pseudo-random unit vector orthogonal to rows 0..k-1."""
    n = Q_arr.shape[1]
    v = np.random.default_rng(12345 + k).standard_normal(n)
    for _ in range(2):       # classical Gram-Schmidt, twice
        if k > 0:
            v -= Q_arr[:k].T.astype(np.float64) @ (Q_arr[:k].astype(np.float64) @ v)
    nv = float(np.linalg.norm(v))
    if nv <= 1e-8:
        return False
    Q_arr[k] = v / nv
    return True



# --------------------------------------------------------------------------
# dense subproblems: Moré-Sorensen (trust-exact) and dogleg, compiled
# --------------------------------------------------------------------------
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


cdef Py_ssize_t _bandwidth(const floating* H, Py_ssize_t n, Py_ssize_t kmax) noexcept nogil:
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


cdef int _pbtrf(floating* L, Py_ssize_t n, Py_ssize_t kd, double* rdiag) noexcept nogil:
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


cdef void _tbsv(const floating* L, const double* rdiag, Py_ssize_t m, Py_ssize_t kd,
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


cdef void _trsv_dense(const floating* L, const double* rdiag, Py_ssize_t m, Py_ssize_t cs,
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


cdef double _quad_form(const DenseState* s, const floating* H, const floating* p,
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


cdef void _dense_bounds(const floating* H, Py_ssize_t n, DenseState* s,
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


cdef double _smallest_sv(const DenseState* s, const floating* L, Py_ssize_t n, floating* w,
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


cdef double _leading_singular_shift(const DenseState* s, const floating* H, const floating* L,
                                    Py_ssize_t n, int k, double lam, floating* v) noexcept nogil:
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


cdef int _more_sorensen(const floating* H, floating* L, const floating* g, Py_ssize_t n,
                        DenseState* s, double radius, floating* p, floating* w,
                        floating* z, double* acc, bint* hits, double* model) noexcept nogil:
    """Nearly exact solution of min g^T p + p^T H p / 2, ||p|| <= radius (Moré &
    Sorensen 1983; Nocedal & Wright Alg. 4.3; Conn, Gould & Toint Alg. 7.3.4).

    Safeguarded Newton iterations on ``1/||p(lam)|| - 1/radius`` with Cholesky
    factorizations of ``H + lam I``; the interval ``[lam_lb, lam_ub]`` starts from
    Gershgorin bounds and norms of H, is raised by failed factorizations (the
    shift that makes a leading block singular) and by ``lam - s_min^2`` (the
    estimated smallest eigenvalue of ``H + lam I``), and lowered by steps inside the
    region.  Stops when ``| ||p|| - radius | <= k_easy radius``, on an interior
    Newton step (``lam = 0``), or -- the hard case -- when adding ``tau z``
    (``z`` the estimated null vector of ``H + lam I``, ``||p + tau z|| = radius``,
    the root of smaller magnitude) changes the model by at most ``k_hard (p^T (H +
    lam I) p + lam radius^2)``.  Returns the number of factorization rounds."""
    cdef Py_ssize_t i, it = 0
    cdef double gn = s.gnorm, lam, lam_lb, lam_ub, lam_new, pn, wn, smin, t1, t2, t, quad
    cdef double hm, ss
    cdef int info = 0
    cdef bint factored = False, have_p = False, done = False, solved = False
    hits[0] = True
    hm = s.hfro if s.hfro < s.hinf else s.hinf
    lam_ub = gn / radius + ((-s.glo) if -s.glo < hm else hm)
    if lam_ub < 0.0:
        lam_ub = 0.0
    lam_lb = gn / radius - (s.ghi if s.ghi < hm else hm)
    if -s.mindiag > lam_lb:
        lam_lb = -s.mindiag
    if lam_lb < 0.0:
        lam_lb = 0.0
    if radius < s.prev_radius and s.lam_lb > lam_lb:
        lam_lb = s.lam_lb       # a smaller radius at the same point: lam* only grows
    lam = 0.0 if lam_lb == 0.0 else _safeguard(lam_lb, lam_ub, s.theta)
    while it < s.maxiter:
        if factored:
            factored = False
        else:
            info = _factor_shifted(s, H, L, n, lam)
            s.nfact += 1
        it += 1
        if info == 0 and gn > s.close0:
            for i in range(n):
                p[i] = -g[i]
            _potrs(s, L, n, p)
            have_p = True
            pn = sqrt(nrm2sq_lanes16(p, n))
            if pn <= radius and lam == 0.0:
                hits[0] = False
                done = solved = True
                break
            # Newton step on 1/||p|| - 1/radius:  w = L^{-1} p
            memcpy(w, p, n * sizeof(floating))
            _lsolve(s, L, n, False, w)
            wn = sqrt(nrm2sq_lanes16(w, n))
            lam_new = lam + (pn / wn) * (pn / wn) * (pn - radius) / radius
            if pn < radius:
                # inside: the hard case test along the estimated null vector z
                smin = _smallest_sv(s, L, n, w, z, acc)
                t1 = _boundary_tau(p, z, n, radius, True)
                t2 = _boundary_tau(p, z, n, radius, False)
                t = t1 if fabs(t1) < fabs(t2) else t2
                quad = -dot_lanes16(g, p, n)            # p^T (H + lam I) p
                if t * t * smin * smin <= s.k_hard * (quad + lam * radius * radius):
                    for i in range(n):
                        p[i] = <floating>(p[i] + t * z[i])
                    done = True
                    break
                lam_ub = lam
                if lam - smin * smin > lam_lb:
                    lam_lb = lam - smin * smin
                info = _factor_shifted(s, H, L, n, lam_new)
                s.nfact += 1
                if info == 0:
                    lam = lam_new
                    factored = True
                else:
                    if lam_new > lam_lb:
                        lam_lb = lam_new
                    lam = _safeguard(lam_lb, lam_ub, s.theta)
            else:
                if fabs(pn - radius) <= s.k_easy * radius:
                    done = solved = True
                    break
                lam_lb = lam
                lam = lam_new
        elif info == 0:
            # g is (numerically) zero: the step is radius z, z a null vector of H + lam I
            if lam == 0.0:
                for i in range(n):
                    p[i] = 0
                hits[0] = False
                have_p = True
                done = True
                break
            smin = _smallest_sv(s, L, n, w, z, acc)
            for i in range(n):
                p[i] = <floating>(radius * z[i])
            have_p = True
            if smin * smin <= s.k_hard * lam:
                done = True
                break
            lam_ub = lam
            if lam - smin * smin > lam_lb:
                lam_lb = lam - smin * smin
            lam = _safeguard(lam_lb, lam_ub, s.theta)
        else:
            # H + lam I is not positive definite: raise the lower bound
            t = lam + _leading_singular_shift(s, H, L, n, info, lam, w)
            if t > lam_lb:
                lam_lb = t
            if lam > lam_lb:
                lam_lb = lam
            if lam_ub <= lam_lb:
                # the interval closed on a point where H + lam I is singular (e.g.
                # g = 0 and a diagonal H, whose Gershgorin bound is -lambda_min):
                # reopen it just above, where the factorization succeeds
                ss = lam_lb if lam_lb > s.hinf else s.hinf
                lam_ub = lam_lb + 1e-8 * (ss if ss > 1e-300 else 1.0)
            lam = _safeguard(lam_lb, lam_ub, s.theta)
    if not done and not have_p:
        # out of iterations without any step (every factorization failed; SciPy
        # fails there): the Cauchy point, the model's minimizer along -g in the region
        if True:
            quad = _quad_form(s, H, g, n)
            t = radius / gn if gn > 0.0 else 0.0
            if quad > 0.0 and gn * gn / quad < t:
                t = gn * gn / quad
            for i in range(n):
                p[i] = <floating>(-t * g[i])
            hits[0] = t * gn >= radius
    s.lam_lb = lam_lb
    s.lam = lam
    s.prev_radius = radius
    s.niter = it
    if solved:
        # (H + lam I) p = -g:  g^T p + p^T H p / 2 = (g^T p - lam ||p||^2) / 2, a sum
        # of two terms <= 0 (no O(n^2) product, and no cancellation)
        model[0] = 0.5 * (dot_lanes16(g, p, n) - lam * nrm2sq_lanes16(p, n))
    else:
        model[0] = dot_lanes16(g, p, n) + 0.5 * _quad_form(s, H, p, n)
    return 0


cdef int _dogleg(const floating* H, floating* L, const floating* g, Py_ssize_t n,
                 DenseState* s, double radius, floating* p, floating* pb, floating* hg,
                 floating* d, bint* hits, double* model) noexcept nogil:
    """Powell's dogleg step (Nocedal & Wright section 4.1): the Newton point
    ``pb = -H^{-1} g`` when ``||pb|| < radius``, else the point where the path
    0 -> Cauchy point ``pu = -(g^T g / g^T H g) g`` -> ``pb`` leaves the region.
    ``pb`` and ``H g`` are computed once per point.  Returns -1 when H is not
    positive definite (Cholesky fails or ``g^T H g <= 0``), else 0."""
    cdef Py_ssize_t i
    cdef double alpha, nu, t, gg, pHp
    hits[0] = True
    if s.newton == 0:
        s.nfact += 1
        if _factor_shifted(s, H, L, n, 0.0) != 0:
            s.newton = -1
        else:
            for i in range(n):
                pb[i] = -g[i]
            _potrs(s, L, n, pb)
            s.nb = sqrt(nrm2sq_lanes16(pb, n))
            s.newton = 1
    if s.newton < 0:
        return -1
    if s.nb < radius:
        memcpy(p, pb, n * sizeof(floating))
        hits[0] = False
        model[0] = 0.5 * dot_lanes16(g, pb, n)        # p^T H p = -g^T p
        return 0
    gg = s.gnorm * s.gnorm
    if s.cauchy == 0:
        for i in range(n):
            hg[i] = <floating>_row_dot(s, H, g, i, n)
        s.gHg = dot_lanes16(g, hg, n)
        s.cauchy = 1 if s.gHg > 0.0 else -1
    if s.cauchy < 0:
        return -1
    alpha = gg / s.gHg
    nu = alpha * s.gnorm
    if nu >= radius:
        t = radius / s.gnorm
        for i in range(n):
            p[i] = <floating>(-t * g[i])
        model[0] = -t * gg + 0.5 * t * t * s.gHg
        return 0
    # pu + t (pb - pu), t the positive root of ||pu + t d|| = radius
    for i in range(n):
        p[i] = <floating>(-alpha * g[i])            # pu
        d[i] = <floating>(pb[i] - p[i])
    t = _boundary_tau(p, d, n, radius, True)
    for i in range(n):
        p[i] = <floating>(p[i] + t * d[i])
    # H p = (1 - t) H pu + t H pb = -(1 - t) alpha H g - t g
    pHp = 0.0
    for i in range(n):
        pHp += <double>p[i] * (-(1.0 - t) * alpha * <double>hg[i] - t * <double>g[i])
    model[0] = dot_lanes16(g, p, n) + 0.5 * pHp
    return 0


cdef class DenseSubproblem:
    """Dense trust-region subproblem at one point, for ``trust-exact`` (Moré-Sorensen)
    and ``dogleg``: the Hessian (kept by reference, C-contiguous, the working
    dtype), a copy of the gradient, the bounds of H and all work storage
    (allocated once; :meth:`set_point` reuses it).

    Parameters
    ----------
    n : int
    dtype : float32 or float64
    k_easy, k_hard : float
        Moré-Sorensen's relative accuracies (``||p||`` vs the radius; the model
        in the hard case); defaults as SciPy's ``trust-exact``.
    maxiter : int
        Factorization rounds per solve (SciPy's ``subproblem_maxiter``, 25).
    band : bool, default True
        Allow the band path: at each point the bandwidth ``kd`` of H is measured
        (O(n) reads for a dense H, one pass over the zeros for a band one) and, when
        ``kd <= n // 8``, H + lam I is factored by a band Cholesky and every product,
        bound and solve reads the band only -- the same factor, so the same steps
        to rounding.  False: always LAPACK's dense ``?potrf``.
    """

    cdef cnp.ndarray H_arr, L_arr, g_arr, work_arr, acc_arr, rd_arr, bw_arr
    cdef Py_ssize_t n
    cdef int typenum
    cdef DenseState s
    cdef bint ready

    def __init__(self, Py_ssize_t n, dtype, double k_easy=0.1, double k_hard=0.2,
                 Py_ssize_t maxiter=25, bint band=True):
        dt = np.dtype(dtype)
        if dt != np.float64 and dt != np.float32:
            raise TypeError("dtype must be float32 or float64")
        if n < 1:
            raise ValueError("n must be >= 1")
        if not (k_easy > 0 and k_hard > 0):
            raise ValueError("k_easy and k_hard must be > 0")
        if maxiter < 1:
            raise ValueError("maxiter must be >= 1")
        self.n = n
        self.typenum = dt.num
        self.L_arr = _empty(n * n, dt.num)
        self.g_arr = _empty(n, dt.num)
        self.work_arr = _empty(3 * n, dt.num)
        self.acc_arr = _empty(n, cnp.NPY_DOUBLE)
        self.rd_arr = _empty(n, cnp.NPY_DOUBLE)
        self.bw_arr = _empty(2 * n, cnp.NPY_DOUBLE)
        self.s.rdiag = <double*>cnp.PyArray_DATA(self.rd_arr)
        self.s.k_easy = k_easy
        self.s.k_hard = k_hard
        self.s.theta = 0.01
        self.s.maxiter = maxiter
        self.s.allow_band = band
        self.s.nfact = 0
        self.ready = False

    cpdef set_point(self, cnp.ndarray H, cnp.ndarray g, bint check_symmetric=False):
        """Make the subproblem refer to the Hessian ``H`` (kept, not copied) and the
        gradient ``g`` (copied): measures the bandwidth of H (band or dense path)
        and its bounds (one pass over the band), and raises ValueError when H is
        not finite or, with ``check_symmetric``, not symmetric (``max |H - H^T| <=
        100 sqrt(eps) max(1, max |H|)``, the test of ``check_hessian_matrix``)."""
        cdef Py_ssize_t n = self.n
        if (cnp.PyArray_TYPE(H) != self.typenum or cnp.PyArray_NDIM(H) != 2
                or cnp.PyArray_DIM(H, 0) != n or cnp.PyArray_DIM(H, 1) != n
                or not cnp.PyArray_IS_C_CONTIGUOUS(H)):
            raise ValueError(f"H must be a C-contiguous ({n}, {n}) array of the working dtype")
        if (cnp.PyArray_TYPE(g) != self.typenum or cnp.PyArray_NDIM(g) != 1
                or cnp.PyArray_DIM(g, 0) != n or not cnp.PyArray_IS_C_CONTIGUOUS(g)):
            raise ValueError(f"g must be a C-contiguous ({n},) array of the working dtype")
        self.H_arr = H
        memcpy(cnp.PyArray_DATA(self.g_arr), cnp.PyArray_DATA(g), n * cnp.PyArray_ITEMSIZE(g))
        if self.typenum == cnp.NPY_DOUBLE:
            _ds_bounds(<double>0, self)
        else:
            _ds_bounds(<float>0, self)
        if not isfinite(self.s.hfro) and not _mat_finite(H):
            # (a finite H can overflow the sum of squares; that one is accepted)
            self.ready = False
            raise ValueError("hess returned non-finite values")
        if check_symmetric:
            _ds_check_symmetric(self)
        self.ready = True

    def solve(self, double radius, bint dogleg=False):
        """Solve for ``radius`` (Moré-Sorensen, or the dogleg step when ``dogleg``).

        Returns ``(p, hits_boundary, model_value)``; ``None`` for the dogleg on a
        Hessian that is not positive definite.
        """
        if not self.ready:
            raise ValueError("set_point must be called first")
        if not radius > 0:
            raise ValueError("radius must be > 0")
        p = np.empty(self.n, dtype=self.g_arr.dtype)
        cdef bint hits = False
        cdef double model = 0.0
        cdef int r
        if self.typenum == cnp.NPY_DOUBLE:
            r = _ds_solve(self, <double*>cnp.PyArray_DATA(p), radius, dogleg, &hits, &model)
        else:
            r = _ds_solve(self, <float*>cnp.PyArray_DATA(p), radius, dogleg, &hits, &model)
        if r < 0:
            return None
        return p, bool(hits), model

    @property
    def lam(self):
        """Multiplier of the last Moré-Sorensen solve."""
        return self.s.lam

    @property
    def niter(self):
        """Factorization rounds of the last Moré-Sorensen solve."""
        return self.s.niter

    @property
    def nfactor(self):
        """Cholesky factorizations made since construction (all points and solves)."""
        return self.s.nfact

    @property
    def bandwidth(self):
        """Sub-diagonals of the band factor at the current point, or -1 when the
        dense path (LAPACK ``?potrf``) is used."""
        if not self.ready:
            raise ValueError("set_point must be called first")
        return int(self.s.kd) if self.s.band else -1

    @property
    def bounds(self):
        """``(glo, ghi, ||H||_F, ||H||_inf, min diag)`` of the current Hessian."""
        return self.s.glo, self.s.ghi, self.s.hfro, self.s.hinf, self.s.mindiag



cdef void _set_layout(const floating* H, Py_ssize_t n, DenseState* s) noexcept nogil:
    """Band or dense path for ``H``: the band one when ``H`` has at most
    ``n // BAND_RATIO`` nonzero diagonals on each side of the main one (then a band
    Cholesky costs a small fraction of LAPACK's dense one, and the bounds, products
    and solves read the band only).  The test reads only entries outside the band
    found so far: O(n) for a dense matrix."""
    cdef Py_ssize_t kmax = n // BAND_RATIO, kd = kmax + 1
    if s.allow_band:
        kd = _bandwidth(H, n, kmax)
    if kd <= kmax:
        s.band = True
        s.kd = kd
        s.cs = kd
    else:
        s.band = False
        s.kd = n - 1
        s.cs = n


cdef int _ds_check_symmetric(DenseSubproblem ds) except -1:
    cdef Py_ssize_t n = ds.n, kd = ds.s.kd
    cdef double amax = 0.0, asym, eps
    if ds.typenum == cnp.NPY_DOUBLE:
        eps = 2.220446049250313e-16
        with nogil:
            if kd < n - 1:
                asym = _asym(<double*>cnp.PyArray_DATA(ds.H_arr), n, kd, &amax)
            else:
                asym = nxk_asym_d(<double*>cnp.PyArray_DATA(ds.H_arr), n, &amax)
    else:
        eps = 1.1920928955078125e-07
        with nogil:
            if kd < n - 1:
                asym = _asym(<float*>cnp.PyArray_DATA(ds.H_arr), n, kd, &amax)
            else:
                asym = nxk_asym_f(<float*>cnp.PyArray_DATA(ds.H_arr), n, &amax)
    if asym > 100.0 * sqrt(eps) * (amax if amax > 1.0 else 1.0):
        ds.ready = False
        raise ValueError(f"hess must return a symmetric matrix (max |H - H^T| = {asym:.3g})")
    return 0


cdef void _ds_bounds(floating tag, DenseSubproblem ds):
    cdef floating* H = <floating*>cnp.PyArray_DATA(ds.H_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(ds.g_arr)
    cdef Py_ssize_t n = ds.n
    cdef double eps = 2.220446049250313e-16 if floating is double else 1.1920928955078125e-07
    with nogil:
        _set_layout(H, n, &ds.s)
        _dense_bounds(H, n, &ds.s, <double*>cnp.PyArray_DATA(ds.bw_arr))
        ds.s.gnorm = sqrt(nrm2sq_lanes16(g, n))
    ds.s.close0 = n * eps * ds.s.hinf
    ds.s.prev_radius = -1.0
    ds.s.lam_lb = 0.0
    ds.s.lam = 0.0
    ds.s.niter = 0
    ds.s.newton = 0
    ds.s.cauchy = 0


cdef int _ds_solve(DenseSubproblem ds, floating* p, double radius, bint dogleg, bint* hits,
                   double* model) noexcept:
    """The compiled solve on ``ds`` (no Python object inside): 0, or -1 for the
    dogleg on a Hessian that is not positive definite."""
    cdef floating* H = <floating*>cnp.PyArray_DATA(ds.H_arr)
    cdef floating* L = <floating*>cnp.PyArray_DATA(ds.L_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(ds.g_arr)
    cdef floating* wk = <floating*>cnp.PyArray_DATA(ds.work_arr)
    cdef double* acc = <double*>cnp.PyArray_DATA(ds.acc_arr)
    cdef Py_ssize_t n = ds.n
    cdef int r
    with nogil:
        if dogleg:
            r = _dogleg(H, L, g, n, &ds.s, radius, p, wk, wk + n, wk + 2 * n, hits, model)
        else:
            r = _more_sorensen(H, L, g, n, &ds.s, radius, p, wk, wk + n, acc, hits, model)
    return r


def dense_bounds(const floating[:, ::1] H):
    """Moré-Sorensen safeguards of a symmetric ``H`` in one pass (those
    :class:`DenseSubproblem` uses): Gershgorin bounds ``lo <= lambda_min``,
    ``hi >= lambda_max``, ``min(||H||_inf, ||H||_F)`` and the smallest diagonal
    entry.  Returns ``(lo, hi, hnorm, min_diag)``."""
    cdef Py_ssize_t n = H.shape[0]
    cdef DenseState s
    if H.shape[1] != n:
        raise ValueError("H must be square")
    if n == 0:
        return 0.0, 0.0, 0.0, 0.0
    s.allow_band = False
    with nogil:
        _set_layout(&H[0, 0], n, &s)
        _dense_bounds(&H[0, 0], n, &s, NULL)
    return s.glo, s.ghi, (s.hinf if s.hinf < s.hfro else s.hfro), s.mindiag


def bandwidth(const floating[:, ::1] H):
    """The bandwidth ``max |i - j|`` over the nonzero entries of the square ``H``
    (both triangles), as the dense subproblems measure it."""
    cdef Py_ssize_t n = H.shape[0], kd
    if H.shape[1] != n:
        raise ValueError("H must be square")
    if n == 0:
        return 0
    with nogil:
        kd = _bandwidth(&H[0, 0], n, n)
    return int(kd)



# --------------------------------------------------------------------------
# outer loops
# --------------------------------------------------------------------------
cdef object _tr(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray g_arr, double f,
                int kind, object factory, object indefinite_exc, double radius, double rmax,
                double eta, double gtol, Py_ssize_t maxiter, Py_ssize_t sub_maxiter,
                bint inexact, object driver, list allvecs, DenseSubproblem ds):
    cdef Py_ssize_t n = prob.n, i, k = 0, it = 0
    cdef cnp.ndarray xt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray gt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray p_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray r_arr = None, d_arr = None        # Steihaug-CG's residual, direction
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(g_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* p = <floating*>cnp.PyArray_DATA(p_arr)
    cdef floating* r = NULL
    cdef floating* pp
    cdef double eps = 2.220446049250313e-16 if floating is double else 1.1920928955078125e-07
    cdef double gn, xn, tol, model, predicted, f_new, actual, rho
    cdef bint hits, got_g
    cdef int status = S_RUNNING
    cdef Lanczos lz = None
    cdef bint fresh = True, first = True
    sub = None
    if kind == 0:
        r_arr = _empty(n, prob.typenum)
        d_arr = _empty(n, prob.typenum)
        r = <floating*>cnp.PyArray_DATA(r_arr)
    gn = sqrt(nrm2sq_lanes16(g, n))
    while True:
        if gn < gtol:
            status = S_GTOL
            break
        if k >= maxiter:
            status = S_MAXITER
            break
        xn = sqrt(nrm2sq_lanes16(x, n))
        if radius <= eps * (xn if xn > 1.0 else 1.0):
            status = S_TRUST_RADIUS
            break
        if fresh:
            # a new point: Hessian access made here, once the stopping tests have
            # passed (no Hessian is evaluated at a point where the run ends)
            if kind >= 3:
                # set_point raises on a non-finite H (found in its one pass over H)
                ds.set_point(prob.dense_at(x_arr, first), g_arr, first)
            else:
                prob.at(x_arr, g_arr, first)
            if kind == 1:
                if lz is None:
                    lz = Lanczos(g_arr)
                else:
                    lz.reset(g_arr)
            elif kind == 2:
                sub = None
                sub = factory(_copy(x_arr), f, _copy(g_arr), prob.hop)
            fresh = False
            first = False
        # ---- subproblem
        if kind == 0:
            tol = (0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn
            _steihaug(g, prob, d_arr, r, p, n, radius, tol, sub_maxiter, &hits, &model, &it)
        elif kind == 1:
            tol = ((0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn) if inexact else 1e-8 * gn
            _gltr_solve(lz, prob, radius, tol, sub_maxiter, p, &hits, &model, &it)
        elif kind >= 3:
            if _ds_solve(ds, p, radius, kind == 4, &hits, &model) < 0:
                status = S_INDEFINITE
                break
        else:
            try:
                res = sub.solve(radius)
            except indefinite_exc:
                status = S_INDEFINITE
                break
            step_o, hits_o = res
            hits = bool(hits_o)
            model = float(sub.model_value)
            step_o = _as_vector(step_o, n, prob.typenum, "subproblem step")
            pp = <floating*>cnp.PyArray_DATA(<cnp.ndarray>step_o)
            memcpy(p, pp, n * sizeof(floating))
        predicted = -model
        if not predicted > 0.0:
            status = S_PRECISION
            break
        # ---- trial point and ratio of actual to predicted reduction
        for i in range(n):
            xt[i] = <floating>(x[i] + p[i])
        f_new = prob.ev.f_at(xt_arr, gt_arr, &got_g)
        actual = f - f_new if isfinite(f_new) else -INFINITY
        rho = actual / predicted
        radius = update_radius_c(radius, rho, hits, rmax)
        k += 1
        if rho > eta:
            tmp = x_arr
            x_arr = xt_arr
            xt_arr = tmp
            x = <floating*>cnp.PyArray_DATA(x_arr)
            xt = <floating*>cnp.PyArray_DATA(xt_arr)
            f = f_new
            if not got_g:
                prob.ev.g_at(x_arr, gt_arr)
            tmp = g_arr
            g_arr = gt_arr
            gt_arr = tmp
            g = <floating*>cnp.PyArray_DATA(g_arr)
            gn = sqrt(nrm2sq_lanes16(g, n))
            if allvecs is not None:
                allvecs.append(_copy(x_arr))
            fresh = True
        if driver is not None:
            st = driver.iteration(k, x_arr, f, g_arr, step=sqrt(nrm2sq_lanes16(p, n)),
                                  trust_radius=radius)
            if st is not None:
                status = int(st)
                break
    return status, k, f, radius, x_arr, g_arr


def trust_region(Problem prob, cnp.ndarray x0, cnp.ndarray g0, double f, int kind,
                 object factory=None, object indefinite_exc=None, *, double radius=1.0,
                 double max_radius=1000.0, double eta=0.15, double gtol=1e-4,
                 Py_ssize_t maxiter=1000, Py_ssize_t sub_maxiter=0, bint inexact=True,
                 object driver=None, list allvecs=None, double k_easy=0.1, double k_hard=0.2):
    """The trust-region loop (N&W Algorithm 4.1) from ``x0`` with ``f``, ``g0`` there.

    ``kind``: ``SUB_CG`` (Steihaug-Toint), ``SUB_GLTR`` (Krylov space kept
    across rejected steps), ``SUB_EXACT`` (Moré-Sorensen, :class:`DenseSubproblem`;
    ``sub_maxiter`` factorization rounds per solve, default 25, and ``k_easy``,
    ``k_hard``), ``SUB_DOGLEG``, or ``SUB_PYTHON`` (``factory(x, f, g, hop)`` makes a
    subproblem with ``solve(radius) -> (p, hits)`` and ``model_value``; the
    exception class ``indefinite_exc`` raised by ``solve`` ends the run with
    ``INDEFINITE``).  Stops (status codes of ``neurenix.optimize.Status``) on
    ``||g|| < gtol`` (GTOL), ``maxiter``, a radius below the rounding level of
    ``x`` (TRUST_RADIUS), a model that predicts no decrease (PRECISION), or a
    status returned by ``driver.iteration``.  Options are validated by the
    Python front end.

    Returns
    -------
    status, nit, f, radius, x, g
    """
    cdef Py_ssize_t n = prob.n
    if (x0.shape[0] != n or g0.shape[0] != n or x0.dtype != prob.dtype
            or g0.dtype != prob.dtype):
        raise ValueError("trust_region: x0 and g0 must be vectors of the problem's size and dtype")
    if kind not in (0, 1, 2, 3, 4):
        raise ValueError("trust_region: unknown subproblem kind")
    if kind == 2 and (factory is None or indefinite_exc is None):
        raise ValueError("trust_region: SUB_PYTHON needs factory and indefinite_exc")
    cdef DenseSubproblem ds = None
    if kind >= 3:
        if n == 0:
            raise ValueError("trust_region: empty problem")
        ds = DenseSubproblem(n, prob.dtype, k_easy, k_hard, sub_maxiter if sub_maxiter > 0 else 25)
    if sub_maxiter <= 0:
        sub_maxiter = max(2 * n, 1) if kind == 0 else max(n, 1)
    cdef cnp.ndarray x = _copy(x0)
    cdef cnp.ndarray g = _copy(g0)
    if prob.typenum == cnp.NPY_DOUBLE:
        return _tr(<double>0, prob, x, g, f, kind, factory, indefinite_exc, radius, max_radius,
                   eta, gtol, maxiter, sub_maxiter, inexact, driver, allvecs, ds)
    return _tr(<float>0, prob, x, g, f, kind, factory, indefinite_exc, radius, max_radius,
               eta, gtol, maxiter, sub_maxiter, inexact, driver, allvecs, ds)


cdef int _wolfe(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray xt_arr,
                cnp.ndarray gt_arr, double f, const floating* g, const floating* p,
                double c1, double c2, int maxls, double* alpha_out,
                double* f_out) except -1:
    """Strong-Wolfe search from the unit step along ``p`` (Moré-Thuente, reverse
    communication).  On success (1) ``xt``/``gt`` hold the accepted point and
    its gradient; 0 on failure.  A non-finite value makes the search backtrack.

    Near the rounding floor of ``f`` the sufficient-decrease test cannot be
    decided; a trial point is then also accepted under the approximate Wolfe
    conditions of Hager & Zhang (SIAM J. Optim. 16(1), 2005, eq. 4.1 with
    ``eps_k = 1000 eps_machine |f|``): ``phi(a) <= phi(0) + eps_k`` and
    ``|phi'(a)| <= c2 |phi'(0)|``."""
    cdef Py_ssize_t n = prob.n, i, it
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* gt = <floating*>cnp.PyArray_DATA(gt_arr)
    cdef MTState s
    cdef double dphi0 = dot_lanes16(g, p, n), stp = 1.0, ft = 0.0, alpha = 0.0, dphi
    cdef double eps_f = 1e3 * (2.220446049250313e-16 if floating is double
                               else 1.1920928955078125e-07) * fabs(f)
    cdef bint have = False, got
    cdef int task = mt_start(&s, f, dphi0, &stp, c1, c2, 1e-14, 0.0, 1e10)
    for it in range(maxls):
        if task != MT_FG:
            break
        for i in range(n):
            xt[i] = <floating>(x[i] + stp * p[i])
        ft = prob.ev.f_at(xt_arr, gt_arr, &got)
        if not isfinite(ft):
            mt_nonfinite(&s, &stp)
            have = False
            continue
        if not got:
            prob.ev.g_at(xt_arr, gt_arr)
        have = True
        alpha = stp
        dphi = dot_lanes16(gt, p, n)
        if ft <= f + eps_f and fabs(dphi) <= c2 * fabs(dphi0) and dphi0 < 0.0:
            alpha_out[0] = alpha
            f_out[0] = ft
            return 1
        task = mt_iterate(&s, &stp, ft, dphi)
    if not have:
        return 0
    if task == MT_CONVERGED or (task != MT_FG and task != MT_ERROR and
                                ft <= f + c1 * alpha * dphi0 and ft < f):
        alpha_out[0] = alpha
        f_out[0] = ft
        return 1
    return 0


cdef object _ncg(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray g_arr, double f,
                 double xtol, double gtol, Py_ssize_t maxiter, Py_ssize_t cg_maxiter,
                 double c1, double c2, bint l1, object driver, list allvecs):
    cdef Py_ssize_t n = prob.n, i, k = 0, it = 0
    cdef cnp.ndarray xt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray gt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray p_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray r_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray d_arr = _empty(n, prob.typenum)
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(g_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* p = <floating*>cnp.PyArray_DATA(p_arr)
    cdef floating* r = <floating*>cnp.PyArray_DATA(r_arr)
    cdef double gn, tol, alpha = 0.0, f_new = 0.0
    cdef int status = S_RUNNING, cg, ok, cg2
    cdef bint small, full_newton, unchanged, minus_g, have_dir = False, got
    while True:
        if absmax(g, n) <= gtol:
            status = S_GTOL
            break
        if k >= maxiter:
            status = S_MAXITER
            break
        if have_dir:
            # the accurate Newton step of the small-step check, at this same point
            cg = C_CONVERGED
            have_dir = False
        else:
            gn = asum_lanes16(g, n) if l1 else sqrt(nrm2sq_lanes16(g, n))
            tol = (0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn
            prob.at(x_arr, g_arr, k == 0)
            cg = _cg_newton(g, prob, d_arr, r, p, n, tol, cg_maxiter, l1, &it)
        minus_g = False
        if not dot_lanes16(g, p, n) < 0.0:
            # rounding made the CG iterate useless: fall back to steepest descent
            for i in range(n):
                p[i] = -g[i]
            cg = C_NEGATIVE
            minus_g = True
        elif cg == C_NEGATIVE and it == 1:
            minus_g = True          # the first CG direction, -g
        ok = _wolfe(tag, prob, x_arr, xt_arr, gt_arr, f, g, p, c1, c2, 60, &alpha, &f_new)
        if not ok and not (cg == C_NEGATIVE and minus_g):
            # the (truncated) Newton direction failed: retry along steepest descent
            for i in range(n):
                p[i] = -g[i]
            cg = C_NEGATIVE
            ok = _wolfe(tag, prob, x_arr, xt_arr, gt_arr, f, g, p, c1, c2, 60, &alpha, &f_new)
        if not ok:
            status = S_LINESEARCH
            break
        k += 1
        small = fabs(alpha) * asum_lanes16(p, n) / n <= xtol
        full_newton = alpha == 1.0 and cg == C_CONVERGED
        unchanged = f_new >= f
        if unchanged:
            for i in range(n):
                if xt[i] != x[i]:
                    unchanged = False
                    break
        tmp = x_arr
        x_arr = xt_arr
        xt_arr = tmp
        tmp = g_arr
        g_arr = gt_arr
        gt_arr = tmp
        x = <floating*>cnp.PyArray_DATA(x_arr)
        xt = <floating*>cnp.PyArray_DATA(xt_arr)
        g = <floating*>cnp.PyArray_DATA(g_arr)
        f = f_new
        if allvecs is not None:
            allvecs.append(_copy(x_arr))
        if driver is not None:
            st = driver.iteration(k, x_arr, f, g_arr, step=fabs(alpha) * sqrt(nrm2sq_lanes16(p, n)))
            if st is not None:
                status = int(st)
                break
        if small and full_newton:
            if absmax(g, n) <= gtol:
                status = S_GTOL
                break
            # verify with an accurate Newton step at the new point: near a
            # non-degenerate minimizer its length estimates the remaining error
            prob.at(x_arr, g_arr, False)
            cg2 = _cg_newton(g, prob, d_arr, r, p, n, 1e-8 * sqrt(nrm2sq_lanes16(g, n)),
                             cg_maxiter, False, &it)
            if cg2 == C_CONVERGED:
                if asum_lanes16(p, n) / n <= xtol:
                    status = S_XTOL
                    # take that small, accurate Newton step when it does not raise f:
                    # the error left is then of second order in it
                    for i in range(n):
                        xt[i] = <floating>(x[i] + p[i])
                    f_new = prob.ev.f_at(xt_arr, gt_arr, &got)
                    if isfinite(f_new) and f_new <= f:
                        if not got:
                            prob.ev.g_at(xt_arr, gt_arr)
                        tmp = x_arr
                        x_arr = xt_arr
                        xt_arr = tmp
                        tmp = g_arr
                        g_arr = gt_arr
                        gt_arr = tmp
                        f = f_new
                        k += 1
                        if allvecs is not None:
                            allvecs.append(_copy(x_arr))
                        if driver is not None:
                            st = driver.iteration(k, x_arr, f, g_arr,
                                                  step=sqrt(nrm2sq_lanes16(p, n)))
                            if st is not None:
                                status = int(st)
                    break
                have_dir = not unchanged      # reuse it as the next direction
        if unchanged:
            status = S_PRECISION
            break
    return status, k, f, x_arr, g_arr


def newton_cg(Problem prob, cnp.ndarray x0, cnp.ndarray g0, double f, *, double xtol=1e-5,
              double gtol=1e-5, Py_ssize_t maxiter=1000, Py_ssize_t cg_maxiter=1000,
              double c1=1e-4, double c2=0.9, bint l1=True, object driver=None,
              list allvecs=None):
    """Line-search Newton-CG (N&W Algorithm 7.1) from ``x0`` with ``f``, ``g0`` there.

    Inner CG to the forcing tolerance ``min(0.5, sqrt||g||) ||g||`` (1-norms
    when ``l1``, as SciPy), negative-curvature detection, strong-Wolfe
    search from the unit step (steepest descent when the Newton direction
    fails).  Stops on ``max|g_i| <= gtol`` (GTOL), on a small full Newton step
    confirmed by an accurate Newton solve (XTOL, see
    :mod:`neurenix.optimize._newton_cg`), ``maxiter``, a failed search
    (LINESEARCH), a step that changes nothing (PRECISION), or a status
    returned by ``driver.iteration``.  When the confirming solve does not
    stop the run, its (accurate) Newton step is the next search direction.

    Returns
    -------
    status, nit, f, x, g
    """
    cdef Py_ssize_t n = prob.n
    if (x0.shape[0] != n or g0.shape[0] != n or x0.dtype != prob.dtype
            or g0.dtype != prob.dtype):
        raise ValueError("newton_cg: x0 and g0 must be vectors of the problem's size and dtype")
    if n == 0:
        raise ValueError("newton_cg: empty problem")
    cdef cnp.ndarray x = _copy(x0)
    cdef cnp.ndarray g = _copy(g0)
    if prob.typenum == cnp.NPY_DOUBLE:
        return _ncg(<double>0, prob, x, g, f, xtol, gtol, maxiter, cg_maxiter, c1, c2, l1,
                    driver, allvecs)
    return _ncg(<float>0, prob, x, g, f, xtol, gtol, maxiter, cg_maxiter, c1, c2, l1,
                driver, allvecs)


def wolfe_search(Problem prob, cnp.ndarray x, double f, cnp.ndarray g, cnp.ndarray p,
                 double c1=1e-4, double c2=0.9, int maxls=60):
    """Strong-Wolfe search along ``p`` from ``x`` (the one Newton-CG uses).

    Returns ``(alpha, f_new, x_new, g_new)`` or None when it fails.
    """
    cdef Py_ssize_t n = prob.n
    for a in (x, g, p):
        if a.shape[0] != n or a.dtype != prob.dtype or not a.flags.c_contiguous:
            raise ValueError("wolfe_search: x, g, p must be contiguous vectors of the "
                             "problem's size and dtype")
    cdef cnp.ndarray xt = _empty(n, prob.typenum)
    cdef cnp.ndarray gt = _empty(n, prob.typenum)
    cdef double alpha = 0.0, fn = 0.0
    cdef int ok
    if n == 0:
        return None
    if prob.typenum == cnp.NPY_DOUBLE:
        ok = _wolfe(<double>0, prob, x, xt, gt, f, <double*>cnp.PyArray_DATA(g),
                    <double*>cnp.PyArray_DATA(p), c1, c2, maxls, &alpha, &fn)
    else:
        ok = _wolfe(<float>0, prob, x, xt, gt, f, <float*>cnp.PyArray_DATA(g),
                    <float*>cnp.PyArray_DATA(p), c1, c2, maxls, &alpha, &fn)
    if not ok:
        return None
    return alpha, fn, xt, gt
