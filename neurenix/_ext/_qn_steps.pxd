# cython: language_level=3
"""The direction steps of the quasi-Newton loops (:mod:`neurenix._ext._lbfgs`).

* :func:`_two_loop` -- the L-BFGS two-loop recursion, ``q <- H q`` over the ring
  buffer of pairs with ``H0 = gamma I`` (Nocedal & Wright 2006, Algorithm 7.4).
* :func:`_cauchy_subspace` -- the L-BFGS-B step: the generalized Cauchy point by
  the breakpoint search (Byrd, Lu, Nocedal & Zhu 1995, Section 4, Algorithm CP;
  a binary heap of breakpoints), then the direct primal subspace minimization
  (Section 5.1) with the projection-then-check step of Morales & Nocedal (2011).
* :func:`_box_step`, :func:`_step_max` -- the largest step along a direction that
  stays in the box.

``cdef inline`` on raw pointers, no Python object: compiled into the loop's
module, so the per-iteration call costs what it did when these were private to
``_lbfgs.pyx``.
"""
from cython cimport floating
from libc.math cimport fabs, sqrt, isfinite, INFINITY
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from ._vec cimport dot_lanes8, axpy, axpy_scale_dot_lanes8
from ._compact cimport (BP, BState, _slot, _width, _wcomb, _wdots, _chol, _lsolve, _ltsolve,
                        _schur, _schur_su, _msolve, _block_flags, _gram_shift,
                        _gram_new_pair, _gram_toggle, _gram4, nx_fwd_rows)


cdef inline void _two_loop(floating* S, floating* Y, const double* rho, Py_ssize_t m,
                           Py_ssize_t n, Py_ssize_t newest, Py_ssize_t count, double gamma,
                           floating* q, double* alpha) noexcept nogil:
    """q <- H q with the L-BFGS matrix of the ``count`` newest pairs (ring buffer,
    row ``newest`` the newest) and H0 = gamma I (Nocedal & Wright Alg. 7.4).

    Each update of q is fused with the inner product the recursion needs next
    (``axpy_scale_dot_lanes8``), so the 4 * count passes over q of the textbook loops become
    2 * count + 1; the arithmetic, and so the result, is the same."""
    cdef Py_ssize_t k, j, jn, i
    cdef double a, b, dotv
    if count == 0:
        for i in range(n):
            q[i] = <floating>(gamma * q[i])
        return
    # first loop, newest to oldest: alpha_j = rho_j s_j.q ; q -= alpha_j y_j
    j = newest
    dotv = dot_lanes8(&S[j * n], q, n)
    for k in range(count):
        a = rho[j] * dotv
        alpha[j] = a
        if k < count - 1:
            jn = j - 1 if j > 0 else m - 1
            dotv = axpy_scale_dot_lanes8(-a, &Y[j * n], q, 1.0, &S[jn * n], n)
            j = jn
        else:
            # the oldest pair: scale by H0 = gamma I and start the second loop
            # with y_oldest . q, all in the same pass
            dotv = axpy_scale_dot_lanes8(-a, &Y[j * n], q, gamma, &Y[j * n], n)
    # second loop, oldest to newest: beta = rho_j y_j.q ; q += (alpha_j - beta) s_j
    for k in range(count):
        b = rho[j] * dotv
        if k < count - 1:
            jn = j + 1 if j < m - 1 else 0
            dotv = axpy_scale_dot_lanes8(alpha[j] - b, &S[j * n], q, 1.0, &Y[jn * n], n)
            j = jn
        else:
            axpy(alpha[j] - b, &S[j * n], q, n)



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



ctypedef fused _dirtype:
    float
    double


cdef inline double _box_step(const floating* x, const _dirtype* d, const floating* lo,
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


cdef inline double _step_max(const floating* x, const floating* d, const floating* lo,
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


cdef inline int _cauchy_subspace(floating* x, floating* g, floating* lo, floating* hi,
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
    if nfree == 0 or c == 0:
        # no free variable, or B = theta I (no pairs stored): the step ends at
        # the Cauchy point, as in L-BFGS-B's mainlb (Byrd et al. 1995; Zhu et
        # al. 1997, Algorithm 778), and so SciPy
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
