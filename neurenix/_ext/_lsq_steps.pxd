# cython: language_level=3
"""The steps of the least-squares loops of :mod:`neurenix._ext._lsq`.

* :func:`lmpar` -- the Levenberg-Marquardt parameter and step (Moré 1978,
  section 5; MINPACK's LMPAR): safeguarded Newton iteration on
  ``phi(lambda) = ||D p|| - Delta``, the step from QRSOLV.
* :func:`qr_lstsq_c` -- the Gauss-Newton step ``argmin ||J p + f||`` by pivoted QR
  with a rank cut.
* :func:`_select_step` and its pieces -- the trust-region reflective step (Branch,
  Coleman & Li, SIAM J. Sci. Comput. 21(1), 1999): the quadratic model, the step
  to the bounds and to the ball, the reflected and the Cauchy steps, the 1-D
  minimizer; Coleman-Li scaling and the strictly feasible projection.

``cdef inline``, ``nogil``, compiled into the loop's module.
"""
from libc.math cimport sqrt, fabs, isfinite, copysign, INFINITY
from libc.string cimport memcpy
from libc.float cimport DBL_MAX
from scipy.linalg.cython_lapack cimport dgeqp3, dormqr

from ._vec cimport dot_seq
from ._minpack cimport (DWARF, EPSMCH, enorm, qrsolv, qr_factor, apply_qt)


cdef inline double lmpar(int n, const double* R, int ldr, const int* ipvt, const double* diag,
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


cdef inline double _model(Py_ssize_t m, Py_ssize_t n, const double* Jh, const double* gh,
                          const double* diag_h, const double* s, double* Js) noexcept nogil:
    """Quadratic model ``0.5 ||Jh s||^2 + 0.5 s^T diag(diag_h) s + gh^T s``."""
    cdef Py_ssize_t j
    cdef double q = 0.0, lin = 0.0
    _matvec(m, n, Jh, s, Js)
    for j in range(n):
        q += s[j] * (diag_h[j] * s[j])
        lin += gh[j] * s[j]
    return 0.5 * (dot_seq(Js, Js, m) + q) + lin


cdef inline double _step_to_bound(Py_ssize_t n, const double* x, const double* s,
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


cdef inline double _ball_exit(Py_ssize_t n, const double* x, const double* s,
                              double delta) noexcept nogil:
    """The ``t >= 0`` with ``||x + t s|| = delta`` (``x`` inside the ball); inf when
    ``s = 0``.  The two roots are formed as in the stable quadratic formula."""
    cdef double a = dot_seq(s, s, n), b, c, disc, q, t1, t2
    if a == 0.0:
        return INFINITY
    b = dot_seq(x, s, n)
    c = dot_seq(x, x, n) - delta * delta
    disc = b * b - a * c
    disc = sqrt(disc if disc > 0.0 else 0.0)
    q = -(b + copysign(disc, b))
    t1 = q / a
    t2 = c / q if q != 0.0 else 0.0
    return t1 if t1 > t2 else t2


cdef inline double _min_1d(double a, double b, double lo, double hi, double* value) noexcept nogil:
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


cdef inline double _select_step(Py_ssize_t m, Py_ssize_t n, const double* x, const double* Jh,
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
        a = 0.5 * (dot_seq(mw1, mw1, m) + a)
        b = dot_seq(mw2, mw1, m) + b + dot_seq(gh, r_h, n)
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
    a = 0.5 * (dot_seq(mw1, mw1, m) + a)
    b = dot_seq(gh, ag_h, n)
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


cdef inline int qr_lstsq_c(int m, int n, double* A, double* c, int* jpvt, double* tau,
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


cdef inline int qr_lwork(int m, int n):
    """Workspace size for :func:`qr_lstsq_c` (dgeqp3's query, at least dormqr's)."""
    cdef int lwork = -1, info = 0
    cdef double wq = 0.0
    cdef double a1 = 0.0, tau1 = 0.0
    cdef int jp1 = 0
    if m == 0 or n == 0:
        return 1
    dgeqp3(&m, &n, &a1, &m, &jp1, &tau1, &wq, &lwork, &info)
    return max(<int> wq, n * 64 + 64)
