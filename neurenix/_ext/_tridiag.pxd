# cython: language_level=3
"""Kernels of the trust-region subproblem on a symmetric tridiagonal matrix ``T``
(the Lanczos matrix of GLTR): LDL^T factorizations of ``T + lam I``, the
smallest eigenvalue by Sturm-sequence bisection, and Moré-Sorensen's safeguarded
Newton iteration on the secular equation ``1/||h(lam)|| = 1/radius``, hard case
included (Moré & Sorensen, SIAM J. Sci. Stat. Comput. 4(3), 1983; Gould, Lucidi,
Roma & Toint, SIAM J. Optim. 9(2), 1999).

``cdef inline`` on raw double pointers, no Python object: compiled into the
module that cimports them (:mod:`neurenix._ext._subproblems`), where GLTR calls
:func:`_trs_tridiag` after every Lanczos step.
"""
from libc.math cimport sqrt, fabs, isfinite, INFINITY

from ._vec cimport nrm2sq_lanes16


cdef inline bint _ldl(const double* a, const double* b, Py_ssize_t m, double lam,
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


cdef inline double _ldl_solve(const double* dpiv, const double* l, Py_ssize_t m,
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


cdef inline Py_ssize_t _sturm_count(const double* a, const double* b, Py_ssize_t m, double x,
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


cdef inline double _lambda_min(const double* a, const double* b, Py_ssize_t m) noexcept nogil:
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


cdef inline int _trs_tridiag(const double* a, const double* b, Py_ssize_t m, double gamma,
                             double radius, double* h, double* lam_out,
                             double* dpiv, double* l, double* y, double* z,
                             double* rhs) noexcept nogil:
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


cdef inline int _trs_newton(const double* a, const double* b, Py_ssize_t m, double radius,
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


cdef inline double _ldl_quad(const double* dpiv, const double* l, Py_ssize_t m,
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


cdef inline double _tri_model(const double* a, const double* b, Py_ssize_t m, double gamma,
                              const double* h) noexcept nogil:
    """gamma h_0 + h^T T h / 2."""
    cdef Py_ssize_t i
    cdef double s = 0.0
    for i in range(m):
        s += a[i] * h[i] * h[i]
        if i < m - 1:
            s += 2.0 * b[i] * h[i] * h[i + 1]
    return gamma * h[0] + 0.5 * s
