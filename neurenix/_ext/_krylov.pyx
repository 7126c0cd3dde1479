# cython: language_level=3
"""Krylov inner loops of the second-order methods (Newton-CG, trust regions).

Every loop here is typed and walks its vectors without the GIL; it takes the
GIL only to call the Hessian-vector product ``hessp(d) -> H @ d`` (a thin
callback supplied and validated by the Python layer, which also checks the
shape and finiteness of what the user's callable returns).  The work vectors
are allocated once per call.

* :func:`cg_newton` -- the inner conjugate-gradient loop of line-search
  Newton-CG with negative-curvature detection (Nocedal & Wright, *Numerical
  Optimization*, 2nd ed., Algorithm 7.1).
* :func:`steihaug_cg` -- Steihaug-Toint truncated CG for the trust-region
  subproblem (Steihaug 1983; Toint 1981; N&W Algorithm 7.2).
* :func:`gltr` -- the generalized Lanczos trust-region method (Gould, Lucidi,
  Roma & Toint, SIAM J. Optim. 9(2), 1999): Lanczos tridiagonalization
  ``Q^T H Q = T`` and, at every step, the trust-region subproblem restricted to
  the Krylov space solved nearly exactly on ``T`` (:func:`tridiag_trs`).
* :func:`tridiag_trs` -- Moré-Sorensen on a symmetric tridiagonal matrix:
  LDL^T factorizations, the smallest eigenvalue by Sturm-sequence bisection,
  safeguarded Newton on the secular equation ``1/||h(lam)|| = 1/radius``
  (Moré & Sorensen, SIAM J. Sci. Stat. Comput. 4(3), 1983), hard case included.
* :func:`chol_shifted`, :func:`chol_solve`, :func:`tri_solve` -- LAPACK
  ``?potrf``/``?potrs``/``?trtrs`` through ``scipy.linalg.cython_lapack`` for
  the dense Moré-Sorensen solver of ``trust-exact``.

Dot products accumulate in double for both float32 and float64 vectors.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport sqrt, fabs
from scipy.linalg.cython_lapack cimport dpotrf, spotrf, dpotrs, spotrs, dtrtrs, strtrs

import numpy as np

cnp.import_array()

# return codes of the CG loops
CG_CONVERGED = 0        # residual <= tol
CG_NEGATIVE_CURVATURE = 1
CG_MAXITER = 2
CG_BOUNDARY = 3         # Steihaug: the step reached the trust-region boundary


cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        s += <double>a[i] * <double>b[i]
    return s


cdef inline double _nrm2sq(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        s += <double>a[i] * <double>a[i]
    return s


cdef object _call_hessp(object hessp, object d_arr, Py_ssize_t n):
    """``hessp(d)`` as a C-contiguous array of length ``n`` (validated by the caller)."""
    out = hessp(d_arr)
    if out.shape[0] != n:
        raise ValueError(f"hessp must return an array of shape ({n},), got {out.shape}")
    return out


def _dtype_of(floating[::1] x):
    if floating is double:
        return np.float64
    else:
        return np.float32


cdef double _boundary_tau(const floating* z, const floating* d, Py_ssize_t n,
                          double radius, bint positive) noexcept nogil:
    """Root of ||z + tau d|| = radius: the positive one (or the negative one)."""
    cdef double a = _nrm2sq(d, n), b = _dot(z, d, n), c = _nrm2sq(z, n) - radius * radius
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
def cg_newton(floating[::1] g, object hessp, double tol, Py_ssize_t maxiter,
              floating[::1] p):
    """Truncated CG on ``H p = -g`` (N&W Algorithm 7.1, inner loop).

    Stops when ``||r|| <= tol`` (``CG_CONVERGED``), when a direction of
    non-positive curvature ``d^T H d <= 0`` is met (``CG_NEGATIVE_CURVATURE``:
    ``p`` is the last iterate, or ``-g`` if it happens at the first
    iteration), or after ``maxiter`` products (``CG_MAXITER``).

    Returns
    -------
    status, iterations : int, int
        ``iterations`` is also the number of ``hessp`` calls.
    """
    cdef Py_ssize_t n = g.shape[0], i, k = 0
    cdef double rr, rr_new, dHd, alpha, beta
    cdef int status = CG_MAXITER
    cdef bint neg = False
    if p.shape[0] != n:
        raise ValueError("p must have the shape of g")
    dtype = _dtype_of(g)
    r_arr = np.empty(n, dtype=dtype)
    d_arr = np.empty(n, dtype=dtype)
    cdef floating[::1] r = r_arr
    cdef floating[::1] d = d_arr
    cdef floating[::1] Hd
    with nogil:
        for i in range(n):
            p[i] = 0
            r[i] = g[i]
            d[i] = -g[i]
        rr = _nrm2sq(&r[0], n) if n > 0 else 0.0
    if sqrt(rr) <= tol or n == 0:
        return CG_CONVERGED, 0
    while k < maxiter:
        Hd = _call_hessp(hessp, d_arr, n)
        k += 1
        with nogil:
            dHd = _dot(&d[0], &Hd[0], n)
            if dHd <= 0.0:
                neg = True
                if k == 1:
                    for i in range(n):
                        p[i] = -g[i]
            else:
                alpha = rr / dHd
                for i in range(n):
                    p[i] += <floating>(alpha * d[i])
                    r[i] += <floating>(alpha * Hd[i])
                rr_new = _nrm2sq(&r[0], n)
        if neg:
            status = CG_NEGATIVE_CURVATURE
            break
        if sqrt(rr_new) <= tol:
            status = CG_CONVERGED
            break
        with nogil:
            beta = rr_new / rr
            rr = rr_new
            for i in range(n):
                d[i] = <floating>(-r[i] + beta * d[i])
    return status, k


# --------------------------------------------------------------------------
# Steihaug-Toint truncated CG
# --------------------------------------------------------------------------
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
    cdef Py_ssize_t n = g.shape[0], i, k = 0
    cdef double rr, rr_new, dHd, alpha, beta, tau, tau2, m1, m2, rd
    cdef double model = 0.0, zz
    cdef int status = CG_MAXITER
    cdef int event = 0
    cdef bint hits = False
    if p.shape[0] != n:
        raise ValueError("p must have the shape of g")
    dtype = _dtype_of(g)
    r_arr = np.empty(n, dtype=dtype)
    d_arr = np.empty(n, dtype=dtype)
    cdef floating[::1] r = r_arr
    cdef floating[::1] d = d_arr
    cdef floating[::1] Hd
    with nogil:
        for i in range(n):
            p[i] = 0
            r[i] = g[i]
            d[i] = -g[i]
        rr = _nrm2sq(&r[0], n) if n > 0 else 0.0
    if n == 0 or sqrt(rr) <= tol:
        return False, 0.0, CG_CONVERGED, 0
    while k < maxiter:
        Hd = _call_hessp(hessp, d_arr, n)
        k += 1
        with nogil:
            dHd = _dot(&d[0], &Hd[0], n)
            event = 0
            if dHd <= 0.0:
                # m(z + tau d) - m(z) = tau r.d + tau^2 dHd / 2 ; take the better root
                rd = _dot(&r[0], &d[0], n)
                tau = _boundary_tau(&p[0], &d[0], n, radius, True)
                tau2 = _boundary_tau(&p[0], &d[0], n, radius, False)
                m1 = tau * rd + 0.5 * tau * tau * dHd
                m2 = tau2 * rd + 0.5 * tau2 * tau2 * dHd
                if m2 < m1:
                    tau = tau2
                event = 1
            else:
                alpha = rr / dHd
                # ||p + alpha d|| >= radius ?
                zz = 0.0
                for i in range(n):
                    zz += (<double>p[i] + alpha * d[i]) * (<double>p[i] + alpha * d[i])
                if zz >= radius * radius:
                    tau = _boundary_tau(&p[0], &d[0], n, radius, True)
                    event = 2
            if event != 0:
                # p <- z + tau d ; H p = (r - g) + tau H d
                model = 0.0
                for i in range(n):
                    p[i] = <floating>(p[i] + tau * d[i])
                for i in range(n):
                    model += <double>g[i] * p[i] + 0.5 * <double>p[i] * (
                        <double>r[i] - <double>g[i] + tau * <double>Hd[i])
            else:
                for i in range(n):
                    p[i] += <floating>(alpha * d[i])
                    r[i] += <floating>(alpha * Hd[i])
                rr_new = _nrm2sq(&r[0], n)
        if event != 0:
            hits = True
            status = CG_NEGATIVE_CURVATURE if event == 1 else CG_BOUNDARY
            return hits, model, status, k
        if sqrt(rr_new) <= tol:
            status = CG_CONVERGED
            break
        with nogil:
            beta = rr_new / rr
            rr = rr_new
            for i in range(n):
                d[i] = <floating>(-r[i] + beta * d[i])
    with nogil:
        # m(z) = g.z + z.(r - g)/2
        model = 0.0
        for i in range(n):
            model += <double>g[i] * p[i] + 0.5 * <double>p[i] * (<double>r[i] - <double>g[i])
    return False, model, status, k


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
        hn = sqrt(_nrm2sq(h, m))
        if hn <= radius:
            lam_out[0] = 0.0
            return 0
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
    hn = sqrt(_nrm2sq(h, m))
    if hn < radius:
        # hard case: add tau z, z an eigenvector of lmin (inverse iteration on
        # the nearly singular T + lam I, which is positive definite)
        for i in range(m):
            z[i] = 1.0 + 0.1 * ((i * 7919) % 13)   # fixed, generic start vector
        for it in range(4):
            _ldl_solve(dpiv, l, m, z, y, rhs)
            s = sqrt(_nrm2sq(y, m))
            if s == 0.0:
                break
            for i in range(m):
                z[i] = y[i] / s
        zz = _nrm2sq(z, m)
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
    # safeguarded Newton on 1/||h(lam)|| - 1/radius: monotone from the left
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
        hn = sqrt(_nrm2sq(h, m))
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
    Krylov method cannot).

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
    cdef Py_ssize_t n = g.shape[0], i, j, k, m, cap
    cdef double gamma, alpha, beta, bnorm, tscale, res, lam = 0.0, model = 0.0
    cdef int kind = 0, restarts = 0
    cdef bint start_block
    if p.shape[0] != n:
        raise ValueError("p must have the shape of g")
    dtype = _dtype_of(g)
    if n == 0:
        return False, 0.0, 0.0, 0
    gamma = sqrt(_nrm2sq(&g[0], n))
    cap = min(n, max(maxiter, 1), 32) + 1
    Q_arr = np.zeros((cap, n), dtype=dtype)
    ab_arr = np.zeros((2, cap), dtype=np.float64)      # alphas, betas
    work_arr = np.empty((6, cap), dtype=np.float64)
    w_arr = np.empty(n, dtype=dtype)
    cdef floating[:, ::1] Q = Q_arr
    cdef double[:, ::1] ab = ab_arr
    cdef double[:, ::1] work = work_arr
    cdef floating[::1] w = w_arr
    cdef floating[::1] Hq
    if gamma == 0.0:
        # no gradient: the Krylov space is empty; start from a generic vector
        _generic_unit(Q_arr, 0)
        restarts = 1      # the start itself counts as the one exploration
        if max_restarts == 0:
            for i in range(n):
                p[i] = 0
            return False, 0.0, 0.0, 0
    else:
        with nogil:
            for i in range(n):
                Q[0, i] = <floating>(g[i] / gamma)
    tscale = 0.0
    k = 0
    while True:
        q_view = Q_arr[k]
        Hq = _call_hessp(hessp, q_view, n)
        start_block = (k == 0) or ab[1, k - 1] == 0.0
        with nogil:
            alpha = _dot(&Q[k, 0], &Hq[0], n)
            for i in range(n):
                w[i] = <floating>(Hq[i] - alpha * Q[k, i])
            if k > 0 and not start_block:
                beta = ab[1, k - 1]
                for i in range(n):
                    w[i] = <floating>(w[i] - beta * Q[k - 1, i])
            ab[0, k] = alpha
            bnorm = sqrt(_nrm2sq(&w[0], n))
            if fabs(alpha) > tscale:
                tscale = fabs(alpha)
            if bnorm > tscale:
                tscale = bnorm
            m = k + 1
            kind = _trs_tridiag(&ab[0, 0], &ab[1, 0], m, gamma, radius, &work[0, 0], &lam,
                                &work[1, 0], &work[2, 0], &work[3, 0], &work[4, 0],
                                &work[5, 0])
            res = bnorm * fabs(work[0, m - 1])
        k += 1
        if k >= n or k >= maxiter:
            break
        if bnorm <= 1e-12 * tscale:
            # invariant subspace
            if restarts >= max_restarts:
                break
            restarts += 1
            if k + 1 > cap:
                cap = min(n, 2 * cap) + 1
                Q_arr, ab_arr, work_arr = _grow(Q_arr, ab_arr, work_arr, cap)
                Q = Q_arr
                ab = ab_arr
                work = work_arr
            ab[1, k - 1] = 0.0
            if not _generic_unit(Q_arr, k):
                break
            continue
        if res <= tol:
            break
        if k + 1 > cap:
            cap = min(n, 2 * cap) + 1
            Q_arr, ab_arr, work_arr = _grow(Q_arr, ab_arr, work_arr, cap)
            Q = Q_arr
            ab = ab_arr
            work = work_arr
        with nogil:
            ab[1, k - 1] = bnorm
            for i in range(n):
                Q[k, i] = <floating>(w[i] / bnorm)
    with nogil:
        m = k
        for i in range(n):
            p[i] = 0
        for j in range(m):
            for i in range(n):
                p[i] += <floating>(work[0, j] * Q[j, i])
        model = _tri_model(&ab[0, 0], &ab[1, 0], m, gamma, &work[0, 0])
    return kind != 0, model, lam, k


def _grow(Q_arr, ab_arr, work_arr, Py_ssize_t cap):
    Q2 = np.zeros((cap, Q_arr.shape[1]), dtype=Q_arr.dtype)
    Q2[:Q_arr.shape[0]] = Q_arr
    ab2 = np.zeros((2, cap), dtype=np.float64)
    ab2[:, :ab_arr.shape[1]] = ab_arr
    return Q2, ab2, np.empty((6, cap), dtype=np.float64)


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
# dense Cholesky helpers (trust-exact, dogleg)
# --------------------------------------------------------------------------
def chol_shifted(const floating[:, ::1] H, double lam, floating[::1, :] L):
    """``L <- cholesky(H + lam I)`` (lower triangle, Fortran order) by ``?potrf``.

    Returns LAPACK's ``info``: 0 on success, ``k > 0`` when the leading minor
    of order ``k`` is not positive definite.
    """
    cdef int n = <int>H.shape[0], info = 0, i, j
    if H.shape[1] != n or L.shape[0] != n or L.shape[1] != n:
        raise ValueError("H and L must be square of the same size")
    if n == 0:
        return 0
    with nogil:
        for j in range(n):
            for i in range(j, n):
                L[i, j] = H[i, j]
            L[j, j] = <floating>(L[j, j] + lam)
        if floating is double:
            dpotrf(b"L", &n, &L[0, 0], &n, &info)
        else:
            spotrf(b"L", &n, &L[0, 0], &n, &info)
    return info


def chol_solve(floating[::1, :] L, floating[::1] b):
    """``b <- (L L^T)^{-1} b`` in place by ``?potrs``."""
    cdef int n = <int>L.shape[0], one = 1, info = 0
    if b.shape[0] != n or L.shape[1] != n:
        raise ValueError("size mismatch")
    if n == 0:
        return
    with nogil:
        if floating is double:
            dpotrs(b"L", &n, &one, &L[0, 0], &n, &b[0], &n, &info)
        else:
            spotrs(b"L", &n, &one, &L[0, 0], &n, &b[0], &n, &info)


def tri_solve(floating[::1, :] L, floating[::1] b, bint trans=False):
    """``b <- L^{-1} b`` (or ``L^{-T} b``) in place by ``?trtrs``."""
    cdef int n = <int>L.shape[0], one = 1, info = 0
    cdef char* tr = b"T" if trans else b"N"
    if b.shape[0] != n or L.shape[1] != n:
        raise ValueError("size mismatch")
    if n == 0:
        return 0
    with nogil:
        if floating is double:
            dtrtrs(b"L", tr, b"N", &n, &one, &L[0, 0], &n, &b[0], &n, &info)
        else:
            strtrs(b"L", tr, b"N", &n, &one, &L[0, 0], &n, &b[0], &n, &info)
    return info
