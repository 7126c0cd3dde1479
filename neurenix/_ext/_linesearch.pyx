# cython: language_level=3
"""Moré–Thuente line search for the strong Wolfe conditions, by reverse communication.

The search looks for a step ``stp > 0`` along a descent direction such that,
with :math:`\\phi(t) = f(x + t d)`,

.. math::

    \\phi(stp) \\le \\phi(0) + ftol \\cdot stp \\cdot \\phi'(0), \\qquad
    |\\phi'(stp)| \\le gtol \\cdot |\\phi'(0)|.

Algorithm of Moré & Thuente (1994), "Line search algorithms with guaranteed
sufficient decrease", ACM TOMS 20(3):286-307: a safeguarded interval of
uncertainty updated by :c:func:`mt_step` (cubic/quadratic/secant trial steps,
the four cases of Section 4), with the modified function
:math:`\\psi(t) = \\phi(t) - \\phi(0) - ftol\\, t\\, \\phi'(0)` used until a
point with :math:`\\psi \\le 0` and :math:`\\phi' \\ge 0` is found (stage 1).

The search never calls the objective: the caller evaluates :math:`\\phi, \\phi'`
at the ``stp`` this module proposes (``MT_FG``) and passes them back, so the
same code serves the compiled L-BFGS/BFGS/CG loops (``cimport``) and Python
(:class:`MoreThuente`).
"""
from scipy.linalg.cython_blas cimport dgemv
from libc.math cimport fabs, sqrt, isfinite, pow, INFINITY as INF

cdef double XTRAPL = 1.1
cdef double XTRAPU = 4.0


cdef inline double _max3(double a, double b, double c) noexcept nogil:
    cdef double m = a if a > b else b
    return m if m > c else c


cdef inline double _cubic_step(double t, double fp, double dp, double u, double fu,
                               double du) noexcept nogil:
    """Minimizer of the cubic interpolating (t, fp, dp) and (u, fu, du), written as a
    step from ``t`` towards ``u`` (Moré & Thuente 1994, cases 2 and 4, with the
    scaling ``s`` against overflow).  Case 4's ``(fp - fu) / (u - t)`` is this
    ``(fu - fp) / (t - u)`` exactly: both operands only change sign."""
    cdef double theta = 3.0 * (fu - fp) / (t - u) + du + dp
    cdef double s = _max3(fabs(theta), fabs(du), fabs(dp))
    cdef double gamma = s * sqrt((theta / s) * (theta / s) - (du / s) * (dp / s))
    cdef double p, q
    if t > u:
        gamma = -gamma
    p = (gamma - dp) + theta
    q = ((gamma - dp) + gamma) + du
    return t + (p / q) * (u - t)


cdef void mt_step(double* stx, double* fx, double* dx, double* sty, double* fy, double* dy,
                  double* stp, double fp, double dp, int* brackt, double stpmin,
                  double stpmax) noexcept nogil:
    """One safeguarded update of the interval [stx, sty] and the next trial stp."""
    cdef double sgnd = dp * (dx[0] / fabs(dx[0]))
    cdef double theta, s, gamma, p, q, r, stpc, stpq, stpf
    cdef double t = stp[0]
    if fp > fx[0]:
        # case 1: higher function value; the minimum is bracketed
        theta = 3.0 * (fx[0] - fp) / (t - stx[0]) + dx[0] + dp
        s = _max3(fabs(theta), fabs(dx[0]), fabs(dp))
        gamma = s * sqrt((theta / s) * (theta / s) - (dx[0] / s) * (dp / s))
        if t < stx[0]:
            gamma = -gamma
        p = (gamma - dx[0]) + theta
        q = ((gamma - dx[0]) + gamma) + dp
        r = p / q
        stpc = stx[0] + r * (t - stx[0])
        stpq = stx[0] + ((dx[0] / ((fx[0] - fp) / (t - stx[0]) + dx[0])) / 2.0) * (t - stx[0])
        if fabs(stpc - stx[0]) < fabs(stpq - stx[0]):
            stpf = stpc
        else:
            stpf = stpc + (stpq - stpc) / 2.0
        brackt[0] = 1
    elif sgnd < 0.0:
        # case 2: lower value, derivatives of opposite sign; bracketed
        stpc = _cubic_step(t, fp, dp, stx[0], fx[0], dx[0])
        stpq = t + (dp / (dp - dx[0])) * (stx[0] - t)
        if fabs(stpc - t) > fabs(stpq - t):
            stpf = stpc
        else:
            stpf = stpq
        brackt[0] = 1
    elif fabs(dp) < fabs(dx[0]):
        # case 3: lower value, same sign, derivative decreases in magnitude
        theta = 3.0 * (fx[0] - fp) / (t - stx[0]) + dx[0] + dp
        s = _max3(fabs(theta), fabs(dx[0]), fabs(dp))
        gamma = (theta / s) * (theta / s) - (dx[0] / s) * (dp / s)
        gamma = s * sqrt(gamma) if gamma > 0.0 else 0.0
        if t > stx[0]:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx[0] - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = t + r * (stx[0] - t)
        elif t > stx[0]:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = t + (dp / (dp - dx[0])) * (stx[0] - t)
        if brackt[0]:
            stpf = stpc if fabs(stpc - t) < fabs(stpq - t) else stpq
            if t > stx[0]:
                stpf = min(t + 0.66 * (sty[0] - t), stpf)
            else:
                stpf = max(t + 0.66 * (sty[0] - t), stpf)
        else:
            stpf = stpc if fabs(stpc - t) > fabs(stpq - t) else stpq
            stpf = min(stpmax, stpf)
            stpf = max(stpmin, stpf)
    else:
        # case 4: lower value, same sign, derivative does not decrease
        if brackt[0]:
            stpf = _cubic_step(t, fp, dp, sty[0], fy[0], dy[0])
        elif t > stx[0]:
            stpf = stpmax
        else:
            stpf = stpmin
    # update the interval
    if fp > fx[0]:
        sty[0] = t
        fy[0] = fp
        dy[0] = dp
    else:
        if sgnd < 0.0:
            sty[0] = stx[0]
            fy[0] = fx[0]
            dy[0] = dx[0]
        stx[0] = t
        fx[0] = fp
        dx[0] = dp
    stp[0] = stpf


cdef int mt_start(MTState* s, double f, double g, double* stp, double ftol, double gtol,
                  double xtol, double stpmin, double stpmax) noexcept nogil:
    """Initialise with phi(0) = f, phi'(0) = g < 0 and a first trial stp."""
    if stp[0] < stpmin or stp[0] > stpmax or g >= 0.0 or ftol < 0.0 or gtol < 0.0 \
            or xtol < 0.0 or stpmin < 0.0 or stpmax < stpmin:
        return MT_ERROR
    s.ftol = ftol
    s.gtol = gtol
    s.xtol = xtol
    s.stpmin = stpmin
    s.stpmax = stpmax
    s.brackt = 0
    s.stage = 1
    s.finit = f
    s.ginit = g
    s.gtest = ftol * g
    s.width = stpmax - stpmin
    s.width1 = s.width / 0.5
    s.stx = 0.0
    s.fx = f
    s.gx = g
    s.sty = 0.0
    s.fy = f
    s.gy = g
    s.stmin = 0.0
    s.stmax = stp[0] + XTRAPU * stp[0]
    return MT_FG


cdef int mt_iterate(MTState* s, double* stp, double f, double g) noexcept nogil:
    """Take phi(stp) = f, phi'(stp) = g; return a task and (for MT_FG) the next stp."""
    cdef double ftest = s.finit + stp[0] * s.gtest
    cdef double fm, fxm, fym, gm, gxm, gym
    cdef int task = MT_FG
    if s.stage == 1 and f <= ftest and g >= 0.0:
        s.stage = 2
    if s.brackt and (stp[0] <= s.stmin or stp[0] >= s.stmax):
        task = MT_ROUNDING
    if s.brackt and s.stmax - s.stmin <= s.xtol * s.stmax:
        task = MT_XTOL
    if stp[0] == s.stpmax and f <= ftest and g <= s.gtest:
        task = MT_STPMAX
    if stp[0] == s.stpmin and (f > ftest or g >= s.gtest):
        task = MT_STPMIN
    if f <= ftest and fabs(g) <= s.gtol * (-s.ginit):
        task = MT_CONVERGED
    if task != MT_FG:
        return task
    if s.stage == 1 and f <= s.fx and f > ftest:
        # modified function psi while in stage 1
        fm = f - stp[0] * s.gtest
        fxm = s.fx - s.stx * s.gtest
        fym = s.fy - s.sty * s.gtest
        gm = g - s.gtest
        gxm = s.gx - s.gtest
        gym = s.gy - s.gtest
        mt_step(&s.stx, &fxm, &gxm, &s.sty, &fym, &gym, stp, fm, gm, &s.brackt,
                s.stmin, s.stmax)
        s.fx = fxm + s.stx * s.gtest
        s.fy = fym + s.sty * s.gtest
        s.gx = gxm + s.gtest
        s.gy = gym + s.gtest
    else:
        mt_step(&s.stx, &s.fx, &s.gx, &s.sty, &s.fy, &s.gy, stp, f, g, &s.brackt,
                s.stmin, s.stmax)
    if s.brackt:
        if fabs(s.sty - s.stx) >= 0.66 * s.width1:
            stp[0] = s.stx + 0.5 * (s.sty - s.stx)
        s.width1 = s.width
        s.width = fabs(s.sty - s.stx)
        s.stmin = min(s.stx, s.sty)
        s.stmax = max(s.stx, s.sty)
    else:
        s.stmin = stp[0] + XTRAPL * (stp[0] - s.stx)
        s.stmax = stp[0] + XTRAPU * (stp[0] - s.stx)
    stp[0] = max(stp[0], s.stpmin)
    stp[0] = min(stp[0], s.stpmax)
    if (s.brackt and (stp[0] <= s.stmin or stp[0] >= s.stmax)) or \
            (s.brackt and s.stmax - s.stmin <= s.xtol * s.stmax):
        stp[0] = s.stx
    return MT_FG


cdef void mt_nonfinite(MTState* s, double* stp) noexcept nogil:
    """phi or phi' was not finite at stp: shrink the search below stp and retry
    halfway between the best step so far and stp (a backtrack)."""
    cdef double bad = stp[0]
    if bad < s.stpmax:
        s.stpmax = bad
    if s.brackt:
        if s.sty > bad:
            s.sty = bad
            # keep the bracket end finite-valued: use the best end's data
            s.fy = s.fx
            s.gy = s.gx
            s.stmax = max(s.stx, s.sty)
            s.stmin = min(s.stx, s.sty)
    else:
        s.stmax = bad
    stp[0] = s.stx + 0.5 * (bad - s.stx)


# ------------------------------------------------------------------ bracketing and zoom
# Nocedal & Wright (2006), Numerical Optimization, 2nd ed., Algorithms 3.5 (bracketing)
# and 3.6 (zoom), in the form of SciPy's ``scalar_search_wolfe2`` (the fallback of its
# BFGS and CG when the Moré–Thuente search fails): the same trial steps, tests and
# limits, so that a caller reproduces SciPy's iterates and evaluation counts.

cdef enum:
    _BR_F = 0, _BR_G = 1, _BR_X = 2, _Z_F = 3, _Z_G = 4, _Z_X = 5

cdef double _DELTA1 = 0.2      # cubic interpolant: keep this fraction away from the ends
cdef double _DELTA2 = 0.1      # quadratic interpolant: likewise
cdef int _ZOOM_MAXITER = 10


cdef inline bint _ok(double v) noexcept nogil:
    return isfinite(v)


cdef extern from *:
    """
    /* exponents the compiler cannot see, so pow(x, 2.0) stays libm's pow */
    static volatile double neurenix_pow_two = 2.0;
    static volatile double neurenix_pow_three = 3.0;
    """
    double _POW_TWO "neurenix_pow_two"
    double _POW_THREE "neurenix_pow_three"


cdef bint _cubicmin(double a, double fa, double fpa, double b, double fb, double c, double fc,
                    double* out) noexcept nogil:
    """Minimizer of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a;
    False where SciPy's ``_cubicmin`` gives None (a floating-point exception of the
    computation or a non-finite result: here any non-finite intermediate, which for
    finite input is exactly when an exception occurs)."""
    cdef double C = fpa, db = b - a, dc = c - a, t, denom, v0, v1, A, B, radical, xmin
    cdef double d1[4]
    cdef double v[2]
    cdef double ab[2]
    cdef double one = 1.0, zero = 0.0
    cdef int two = 2, inc = 1
    t = db * dc
    # x ** 2 in SciPy is libm's pow (within 0.52 ulp, not always x * x), which the
    # compiler would fold into x * x for a constant exponent: read it from a volatile
    denom = pow(t, _POW_TWO) * (db - dc)
    v0 = fb - fa - C * db
    v1 = fc - fa - C * dc
    # [A, B] = [[dc**2, -db**2], [-dc**3, db**3]] @ [v0, v1], by the BLAS dgemv that
    # NumPy's np.dot calls for it (row-major: "T" on the column-major view), so that
    # A and B are rounded as SciPy's are
    d1[0] = pow(dc, _POW_TWO)
    d1[1] = -pow(db, _POW_TWO)
    d1[2] = -pow(dc, _POW_THREE)
    d1[3] = pow(db, _POW_THREE)
    v[0] = v0
    v[1] = v1
    dgemv("T", &two, &two, &one, d1, &two, v, &inc, &zero, ab, &inc)
    A = ab[0]
    B = ab[1]
    if not (_ok(denom) and denom != 0.0 and _ok(A) and _ok(B)):
        return False
    A = A / denom
    B = B / denom
    radical = B * B - 3.0 * A * C
    if not (_ok(A) and _ok(B) and _ok(radical) and radical >= 0.0 and 3.0 * A != 0.0):
        return False
    xmin = a + (-B + sqrt(radical)) / (3.0 * A)
    if not _ok(xmin):
        return False
    out[0] = xmin
    return True


cdef bint _quadmin(double a, double fa, double fpa, double b, double fb,
                   double* out) noexcept nogil:
    """Minimizer of the quadratic through (a, fa), (b, fb) with slope fpa at a;
    False where SciPy's ``_quadmin`` gives None."""
    cdef double D = fa, C = fpa, db = b - a, B, xmin
    if not (_ok(db * db) and db * db != 0.0):
        return False
    B = (fb - D - C * db) / (db * db)
    if not (_ok(B) and _ok(2.0 * B) and 2.0 * B != 0.0):
        return False
    xmin = a - C / (2.0 * B)
    if not _ok(xmin):
        return False
    out[0] = xmin
    return True


cdef double first_step(double phi0, double old_phi0, double derphi0) noexcept nogil:
    """SciPy's first trial step from the previous value: ``min(1, 2.02 (phi0 -
    old_phi0) / phi'(0))`` (1 when phi'(0) is 0 or the value is negative; a NaN
    gives 1 as Python's ``min`` does)."""
    cdef double a = 1.0, t
    if derphi0 != 0.0:
        t = 1.01 * 2.0 * (phi0 - old_phi0) / derphi0
        if t < 1.0:
            a = t
    if a < 0.0:
        a = 1.0
    return a


cdef inline int _w2_done(W2State* s, double stp, double phi, double derphi,
                         double* out) noexcept nogil:
    s.stp = stp
    s.phi = phi
    s.derphi = derphi
    out[0] = stp
    return W2_DONE


cdef int _zoom_step(W2State* s, double* stp) noexcept nogil:
    """Next zoom trial: cubic interpolation (from the second trial on), else
    quadratic, else bisection, each kept away from the interval's ends."""
    cdef double dalpha = s.a_hi - s.a_lo, a, b, cchk = 0.0, qchk, aj = 0.0
    cdef bint ok = False
    if dalpha < 0.0:
        a = s.a_hi
        b = s.a_lo
    else:
        a = s.a_lo
        b = s.a_hi
    if s.j > 0:
        cchk = _DELTA1 * dalpha
        ok = _cubicmin(s.a_lo, s.phi_lo, s.derphi_lo, s.a_hi, s.phi_hi, s.a_rec, s.phi_rec, &aj)
    if s.j == 0 or not ok or aj > b - cchk or aj < a + cchk:
        qchk = _DELTA2 * dalpha
        ok = _quadmin(s.a_lo, s.phi_lo, s.derphi_lo, s.a_hi, s.phi_hi, &aj)
        if not ok or aj > b - qchk or aj < a + qchk:
            aj = s.a_lo + 0.5 * dalpha
    s.a_j = aj
    s.stage = _Z_F
    stp[0] = aj
    return W2_F


cdef int _zoom_start(W2State* s, double a_lo, double a_hi, double phi_lo, double phi_hi,
                     double derphi_lo, double* stp) noexcept nogil:
    s.a_lo = a_lo
    s.a_hi = a_hi
    s.phi_lo = phi_lo
    s.phi_hi = phi_hi
    s.derphi_lo = derphi_lo
    s.phi_rec = s.phi0
    s.a_rec = 0.0
    s.j = 0
    return _zoom_step(s, stp)


cdef inline int _zoom_next(W2State* s, double* stp) noexcept nogil:
    s.j += 1
    if s.j > _ZOOM_MAXITER:
        return W2_ZOOM
    return _zoom_step(s, stp)


cdef int _bracket_top(W2State* s, double* stp) noexcept nogil:
    """Top of the bracketing loop, phi(alpha1) known."""
    if s.i >= s.maxiter:
        # the loop ran out: SciPy returns the last trial, phi' unknown
        s.stp = s.alpha1
        s.phi = s.phi_a1
        stp[0] = s.alpha1
        return W2_DONE_NOG
    if s.alpha1 == 0.0:
        return W2_ROUNDING
    if s.alpha0 > s.amax:
        return W2_AMAX
    if s.phi_a1 > s.phi0 + s.c1 * s.alpha1 * s.derphi0 or \
            (s.phi_a1 >= s.phi_a0 and s.i > 0):
        return _zoom_start(s, s.alpha0, s.alpha1, s.phi_a0, s.phi_a1, s.derphi_a0, stp)
    s.stage = _BR_G
    stp[0] = s.alpha1
    return W2_G


cdef int _bracket_after(W2State* s, double* stp) noexcept nogil:
    """phi'(alpha1) known and alpha1 not accepted: zoom, or double the step."""
    cdef double alpha2
    if s.derphi_a1 >= 0.0:
        return _zoom_start(s, s.alpha1, s.alpha0, s.phi_a1, s.phi_a0, s.derphi_a1, stp)
    alpha2 = 2.0 * s.alpha1
    if s.amax < alpha2:
        alpha2 = s.amax
    s.alpha0 = s.alpha1
    s.alpha1 = alpha2
    s.phi_a0 = s.phi_a1
    s.derphi_a0 = s.derphi_a1
    s.i += 1
    s.stage = _BR_F
    stp[0] = alpha2
    return W2_F


cdef int w2_start(W2State* s, double phi0, double old_phi0, bint has_old, double derphi0,
                  double c1, double c2, double amax, int maxiter, bint extra,
                  double* stp) noexcept nogil:
    """Initialise with phi(0), phi'(0) and (when ``has_old``) the previous value,
    which sets the first trial step (:c:func:`first_step`, capped at ``amax``;
    ``amax = inf`` for none).  ``maxiter``: bracketing iterations; ``extra``:
    ask the caller's extra acceptance condition (``W2_EXTRA``) at each strong-Wolfe
    point.  Returns ``W2_F`` with the first trial in ``stp``."""
    cdef double alpha1 = first_step(phi0, old_phi0, derphi0) if has_old else 1.0
    if amax < alpha1:
        alpha1 = amax
    s.phi0 = phi0
    s.derphi0 = derphi0
    s.c1 = c1
    s.c2 = c2
    s.amax = amax
    s.maxiter = maxiter
    s.extra = extra
    s.alpha0 = 0.0
    s.alpha1 = alpha1
    s.phi_a0 = phi0
    s.derphi_a0 = derphi0
    s.i = 0
    s.j = 0
    s.stage = _BR_F
    s.stp = alpha1
    s.phi = phi0
    s.derphi = derphi0
    stp[0] = alpha1
    return W2_F


cdef int w2_phi(W2State* s, double phi, double* stp) noexcept nogil:
    """Take phi at the ``stp`` of the last ``W2_F``; return the next task."""
    if s.stage == _BR_F:
        s.phi_a1 = phi
        return _bracket_top(s, stp)
    # zoom
    s.phi_aj = phi
    if phi > s.phi0 + s.c1 * s.a_j * s.derphi0 or phi >= s.phi_lo:
        s.phi_rec = s.phi_hi
        s.a_rec = s.a_hi
        s.a_hi = s.a_j
        s.phi_hi = phi
        return _zoom_next(s, stp)
    s.stage = _Z_G
    stp[0] = s.a_j
    return W2_G


cdef int _zoom_after(W2State* s, double* stp) noexcept nogil:
    if s.derphi_aj * (s.a_hi - s.a_lo) >= 0.0:
        s.phi_rec = s.phi_hi
        s.a_rec = s.a_hi
        s.a_hi = s.a_lo
        s.phi_hi = s.phi_lo
    else:
        s.phi_rec = s.phi_lo
        s.a_rec = s.a_lo
    s.a_lo = s.a_j
    s.phi_lo = s.phi_aj
    s.derphi_lo = s.derphi_aj
    return _zoom_next(s, stp)


cdef int w2_dphi(W2State* s, double derphi, double* stp) noexcept nogil:
    """Take phi' at the ``stp`` of the last ``W2_G``; return the next task."""
    if s.stage == _BR_G:
        s.derphi_a1 = derphi
        if fabs(derphi) <= -s.c2 * s.derphi0:
            if s.extra:
                s.stage = _BR_X
                stp[0] = s.alpha1
                return W2_EXTRA
            return _w2_done(s, s.alpha1, s.phi_a1, derphi, stp)
        return _bracket_after(s, stp)
    s.derphi_aj = derphi
    if fabs(derphi) <= -s.c2 * s.derphi0:
        if s.extra:
            s.stage = _Z_X
            stp[0] = s.a_j
            return W2_EXTRA
        return _w2_done(s, s.a_j, s.phi_aj, derphi, stp)
    return _zoom_after(s, stp)


cdef int w2_extra(W2State* s, bint ok, double* stp) noexcept nogil:
    """Take the caller's verdict on the extra condition at the ``stp`` of ``W2_EXTRA``."""
    if s.stage == _BR_X:
        if ok:
            return _w2_done(s, s.alpha1, s.phi_a1, s.derphi_a1, stp)
        return _bracket_after(s, stp)
    if ok:
        return _w2_done(s, s.a_j, s.phi_aj, s.derphi_aj, stp)
    return _zoom_after(s, stp)


# ------------------------------------------------------------------ Python face
_TASKS = {MT_FG: "FG", MT_CONVERGED: "CONVERGENCE", MT_ROUNDING: "WARNING: ROUNDING ERRORS",
          MT_XTOL: "WARNING: XTOL", MT_STPMAX: "WARNING: STP = STPMAX",
          MT_STPMIN: "WARNING: STP = STPMIN", MT_ERROR: "ERROR"}


cdef class MoreThuente:
    """Reverse-communication Moré–Thuente search (Python face of the kernel).

    ``task, stp = ls.start(phi0, dphi0, stp, ftol, gtol, xtol, stpmin, stpmax)``,
    then while ``task == "FG"``: evaluate at ``stp`` and call
    ``task, stp = ls.iterate(phi, dphi)``; on a non-finite value call
    ``stp = ls.nonfinite()``.
    """

    cdef MTState s
    cdef double stp

    def start(self, double f, double g, double stp, double ftol, double gtol, double xtol,
              double stpmin, double stpmax):
        cdef int task = mt_start(&self.s, f, g, &stp, ftol, gtol, xtol, stpmin, stpmax)
        self.stp = stp
        return _TASKS[task], stp

    def iterate(self, double f, double g):
        cdef double stp = self.stp
        cdef int task = mt_iterate(&self.s, &stp, f, g)
        self.stp = stp
        return _TASKS[task], stp

    def nonfinite(self):
        cdef double stp = self.stp
        mt_nonfinite(&self.s, &stp)
        self.stp = stp
        return stp

    @property
    def best(self):
        """(stx, fx, gx): the best step so far and phi, phi' there."""
        return self.s.stx, self.s.fx, self.s.gx


_W2_TASKS = {W2_F: "F", W2_G: "G", W2_EXTRA: "EXTRA", W2_DONE: "DONE",
             W2_DONE_NOG: "DONE_NOG", W2_ROUNDING: "ROUNDING", W2_AMAX: "AMAX",
             W2_ZOOM: "ZOOM"}


cdef class Wolfe2:
    """Reverse-communication bracketing/zoom search (Python face of the kernel that
    the compiled BFGS/CG loops drive; SciPy's ``scalar_search_wolfe2``).

    ``task, stp = ls.start(phi0, old_phi0, derphi0, c1, c2, amax, maxiter, extra)``
    (``old_phi0`` None: first trial 1; ``amax`` None: no cap), then answer each
    task: ``"F"`` with ``ls.phi(phi(stp))``, ``"G"`` with ``ls.dphi(phi'(stp))``,
    ``"EXTRA"`` with ``ls.extra(bool)``, until ``"DONE"`` (``ls.result``:
    ``stp, phi, phi'``), ``"DONE_NOG"`` (the iteration limit: ``stp, phi``, phi'
    unknown) or a failure (``"ROUNDING"``, ``"AMAX"``, ``"ZOOM"``).
    """

    cdef W2State s

    def start(self, double phi0, old_phi0, double derphi0, double c1, double c2, amax,
              int maxiter=10, bint extra=False):
        cdef double stp
        cdef double am = INF if amax is None else <double>amax
        cdef int task = w2_start(&self.s, phi0, 0.0 if old_phi0 is None else <double>old_phi0,
                                 old_phi0 is not None, derphi0, c1, c2, am, maxiter, extra, &stp)
        return _W2_TASKS[task], stp

    def phi(self, double value):
        cdef double stp = 0.0
        cdef int task = w2_phi(&self.s, value, &stp)
        return _W2_TASKS[task], stp

    def dphi(self, double value):
        cdef double stp = 0.0
        cdef int task = w2_dphi(&self.s, value, &stp)
        return _W2_TASKS[task], stp

    def extra(self, bint ok):
        cdef double stp = 0.0
        cdef int task = w2_extra(&self.s, ok, &stp)
        return _W2_TASKS[task], stp

    @property
    def result(self):
        """(stp, phi, phi') of the accepted step (phi' meaningful for "DONE" only)."""
        return self.s.stp, self.s.phi, self.s.derphi


def cubicmin(double a, double fa, double fpa, double b, double fb, double c, double fc):
    """Minimizer of the interpolating cubic (the zoom's), or None (Python face, for tests)."""
    cdef double out
    return out if _cubicmin(a, fa, fpa, b, fb, c, fc, &out) else None


def quadmin(double a, double fa, double fpa, double b, double fb):
    """Minimizer of the interpolating quadratic (the zoom's), or None (Python face, for tests)."""
    cdef double out
    return out if _quadmin(a, fa, fpa, b, fb, &out) else None
