# cython: language_level=3
"""Subproblem steps of the second-order methods, compiled.

Each solver returns a step for one outer iteration of the loops in
:mod:`neurenix._ext._krylov`; the only Python call inside them is the Hessian-vector
product (:class:`_Hess`).

* :func:`cg_newton` -- the inner conjugate-gradient loop of line-search
  Newton-CG with negative-curvature detection (N&W Algorithm 7.1).
* :func:`steihaug_cg` -- Steihaug-Toint truncated CG for the trust-region
  subproblem (Steihaug 1983; Toint 1981; N&W Algorithm 7.2).
* :class:`Lanczos` / :func:`gltr_solve` -- the generalized Lanczos
  trust-region method (Gould, Lucidi, Roma & Toint, SIAM J. Optim. 9(2),
  1999): Lanczos tridiagonalization ``Q^T H Q = T`` and, at every step, the
  trust-region subproblem restricted to the Krylov space solved nearly exactly
  on ``T`` (:func:`tridiag_trs`, kernels in ``_tridiag.pxd``).  The Krylov space
  is kept across solves at one point, so a rejected step (new radius, same
  point) costs no Hessian product unless the smaller-radius solution needs a
  larger space.
* :class:`DenseSubproblem` -- the dense solvers of ``trust-exact``
  (Moré-Sorensen, hard case included; Moré & Sorensen, SIAM J. Sci. Stat.
  Comput. 4(3), 1983) and ``dogleg`` (N&W section 4.1), on the factorizations
  and bounds of ``_dense.pxd``, all storage allocated once.

Vector reductions come from ``_vec.pxd`` (``lanes16`` order) and accumulate in
double for float32 and float64 vectors.  The vector loops do not release the GIL
explicitly: between two Python calls (``hessp``) they are a few microseconds at
the sizes these methods are used for, less than a GIL release/acquire pair would
save.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.string cimport memcpy

from ._vec cimport (LANES16, fold16, dot_lanes16, nrm2sq_lanes16, asum_lanes16,
                    dot3_lanes16, all_finite)
from ._tridiag cimport _lambda_min, _trs_tridiag, _tri_model
from ._dense cimport (BAND_RATIO, DenseState, _bandwidth, _factor_shifted, _potrs,
                      _lsolve, _row_dot, _quad_form, _dense_bounds, _smallest_sv,
                      _leading_singular_shift, _safeguard, _asym, nxk_asym_d, nxk_asym_f)

from ._evaluator cimport _check_vector

import numpy as np

cnp.import_array()

# return codes of the CG loops
CG_CONVERGED = 0        # residual <= tol
CG_NEGATIVE_CURVATURE = 1
CG_MAXITER = 2
CG_BOUNDARY = 3         # Steihaug: the step reached the trust-region boundary


# The two CG kernels below sum in the lanes16 order of _vec.pxd (sixteen partial
# sums in a fixed order, reproducible, vectorized without -ffast-math).

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



def update_radius(double radius, double rho, bint hits_boundary, double max_radius):
    """N&W Algorithm 4.1 radius update (the rule of every trust-region loop here)."""
    return update_radius_c(radius, rho, hits_boundary, max_radius)


def _dtype_of(floating[::1] x):
    if floating is double:
        return np.float64
    else:
        return np.float32


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



# --------------------------------------------------------------------------
# Hessian access and evaluation
# --------------------------------------------------------------------------
cdef class _Hess:
    """Hessian-vector products for the kernels: :meth:`apply` returns ``H @ d``
    as a C-contiguous vector of the working dtype; ``nprod`` counts them."""


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


cdef double _boundary_tau(const floating* z, const floating* d, Py_ssize_t n,
                          double radius, bint positive) noexcept nogil:
    """Root of ||z + tau d|| = radius: the positive one (or the negative one)."""
    cdef double a = nrm2sq_lanes16(d, n), b = dot_lanes16(z, d, n)
    cdef double c = nrm2sq_lanes16(z, n) - radius * radius
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
# (kernels: _tridiag.pxd)
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
# (kernels: _dense.pxd)


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
