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
from libc.math cimport fabs, sqrt, isfinite

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
