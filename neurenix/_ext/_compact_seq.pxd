# cython: language_level=3
"""L-BFGS-B compact-form steps in the order of operations of L-BFGS-B 3.0.

Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm for bound
constrained optimization", SIAM J. Sci. Comput. 16(5); Zhu, Byrd, Lu & Nocedal
(1997), "Algorithm 778: L-BFGS-B", ACM TOMS 23(4); Morales & Nocedal (2011),
"Remark on Algorithm 778", ACM TOMS 38(1).

These kernels serve the float64 L-BFGS-B loop (``_run_b`` of ``_lbfgs.pyx``),
which reproduces SciPy's iterates bit for bit (SciPy's ``_lbfgsb`` is a C
translation of the 3.0 routines).  A sum's value depends on its order, so every
quantity is formed in the routines' order: explicit loops as one running sum in
their index order, and where the routines call BLAS/LAPACK (``ddot``, ``dnrm2``,
``daxpy``, ``dscal``, ``dpotrf``, ``dtrtrs``) the same library call, through
:mod:`scipy.linalg.cython_blas` / :mod:`scipy.linalg.cython_lapack` (the
OpenBLAS that SciPy links).  No vector lanes here: the loops are short
(``O(m n)`` per iteration at most) and their order is the point.

Storage (column-major, as the LAPACK calls need): ``ws``/``wy`` hold the
``m`` s- and y-vectors as rows of length ``n`` (ring: ``head`` the oldest,
``col`` stored); ``sy``, ``ss``, ``wt`` are ``m x m`` with element ``(i, j)``
at ``[i + m j]``; ``wn``/``snd`` are ``2m x 2m`` (``[i + 2m j]``).
``nbd``: 0 free, 1 lower bound only, 2 both, 3 upper bound only.
``iwhere``: -1 never bounded, 3 fixed (l = u), 0 free and moved by the Cauchy
step, -3 free but not moved, 1 at its lower bound, 2 at its upper bound.
"""
from libc.math cimport sqrt, fabs, fmax, fmin
from scipy.linalg.cython_blas cimport ddot, daxpy, dscal, dnrm2
from scipy.linalg.cython_lapack cimport dpotrf, dtrtrs

cdef inline double _epsmch() noexcept nogil:
    return 2.220446049250313e-16


cdef struct CF:
    # the compact form and the work vectors of one run
    int n, m
    double* ws
    double* wy
    double* sy
    double* ss
    double* wt
    double* wn
    double* snd
    double* wa          # 8m: p, c, wbp, v of the Cauchy step; wa[0:2m] later M W'(xcp - x)
    double* acc         # 4m: partial sums of several inner products taken in one pass
    int* rp             # ring slot of the j-th stored pair, oldest first (cf_ring)
    int* nbd
    int* iwhere
    int* index          # free variables at the GCP first (nfree), the active ones after
    int* indx2          # breakpoints in the Cauchy step; entering/leaving variables after
    double theta
    int col, head, itail, iupdat, updatd
    int nfree, nenter, ileave


cdef inline void cf_reset(CF* c) noexcept nogil:
    """Forget every pair (the routines' restart: B = I)."""
    c.col = 0
    c.head = 0
    c.theta = 1.0
    c.iupdat = 0
    c.updatd = 0


cdef inline void cf_ring(CF* c) noexcept nogil:
    """``rp[j]``: the slot of the ``j``-th pair, oldest first."""
    cdef int j
    for j in range(c.col):
        c.rp[j] = (c.head + j) % c.m


cdef inline double cf_dot(int n, const double* a, const double* b) noexcept nogil:
    cdef int one = 1
    return ddot(&n, <double*>a, &one, <double*>b, &one)


cdef inline double cf_nrm2(int n, const double* a) noexcept nogil:
    cdef int one = 1
    return dnrm2(&n, <double*>a, &one)


cdef inline void cf_axpy(int n, double a, const double* x, double* y) noexcept nogil:
    cdef int one = 1
    daxpy(&n, &a, <double*>x, &one, y, &one)


cdef inline void cf_scal(int n, double a, double* x) noexcept nogil:
    cdef int one = 1
    dscal(&n, &a, x, &one)


cdef inline int cf_trsv(char* trans, int k, double* A, int lda, double* b) noexcept nogil:
    """Solve ``U x = b`` (``trans`` "N") or ``U' x = b`` ("T") in place, ``U`` the
    upper triangle of the leading ``k x k`` block of ``A``; LAPACK's info."""
    cdef char uplo = b'U'
    cdef char diag = b'N'
    cdef int one = 1, info = 0, ldb = lda if lda > k else k
    dtrtrs(&uplo, trans, &diag, &k, &one, A, &lda, b, &ldb, &info)
    return info


cdef inline int cf_chol(int k, double* A, int lda) noexcept nogil:
    """Upper Cholesky factor of the leading ``k x k`` block (LAPACK dpotrf)."""
    cdef char uplo = b'U'
    cdef int info = 0
    dpotrf(&uplo, &k, A, &lda, &info)
    return info


# ------------------------------------------------------------------ middle matrix
cdef inline int cf_bmv(CF* c, const double* v, double* p) noexcept nogil:
    """``p = M v`` for the 2col-vector ``v``: M the middle matrix of
    ``B = theta I - W M W'``, through its factored inverse
    ``[D^1/2 0; -L D^-1/2 J] [-D^1/2 D^-1/2 L'; 0 J']`` (Byrd et al. 1995, eq. 3.x;
    ``J J' = theta S'S + L D^-1 L'`` in ``wt``).  Non-zero: singular system."""
    cdef int m = c.m, col = c.col, i, k, info
    cdef double s
    cdef double* sy = c.sy
    cdef char tr_t = b'T'
    cdef char tr_n = b'N'
    if col == 0:
        return 0
    # forward: p2 = J^-1 (v2 + L D^-1 v1)
    p[col] = v[col]
    for i in range(1, col):
        s = 0.0
        for k in range(i):
            s = s + sy[i + m * k] * v[k] / sy[k + m * k]
        p[col + i] = v[col + i] + s
    info = cf_trsv(&tr_t, col, c.wt, m, &p[col])
    if info != 0:
        return info
    for i in range(col):
        p[i] = v[i] / sqrt(sy[i + m * i])
    # backward: p2 = J'^-1 p2, p1 = -D^-1/2 p1 + D^-1 L' p2
    info = cf_trsv(&tr_n, col, c.wt, m, &p[col])
    if info != 0:
        return info
    for i in range(col):
        p[i] = -p[i] / sqrt(sy[i + m * i])
    for i in range(col):
        s = 0.0
        for k in range(i + 1, col):
            s = s + sy[k + m * i] * p[col + k] / sy[i + m * i]
        p[i] = p[i] + s
    return 0


# ------------------------------------------------------------------ Cauchy point
cdef inline void cf_heap(int nn, double* t, int* order, int built) noexcept nogil:
    """Williams' heapsort step (CACM Algorithm 232) on ``t[0:nn+1]`` with the
    indices ``order``: build the heap when ``built`` is 0, then move its least
    element to ``t[nn]`` and keep ``t[0:nn]`` a heap (1-based arithmetic inside)."""
    cdef int i, j, k, idx_in, idx_out
    cdef double v, least
    if built == 0:
        for k in range(2, nn + 2):
            v = t[k - 1]
            idx_in = order[k - 1]
            i = k
            while i > 1:
                j = i // 2
                if v < t[j - 1]:
                    t[i - 1] = t[j - 1]
                    order[i - 1] = order[j - 1]
                    i = j
                else:
                    break
            t[i - 1] = v
            order[i - 1] = idx_in
    if nn > 0:
        i = 1
        least = t[0]
        idx_out = order[0]
        v = t[nn]
        idx_in = order[nn]
        while True:
            j = i + i
            if j > nn:
                break
            if t[j] < t[j - 1]:
                j += 1
            if t[j - 1] < v:
                t[i - 1] = t[j - 1]
                order[i - 1] = order[j - 1]
                i = j
            else:
                break
        t[i - 1] = v
        order[i - 1] = idx_in
        t[nn] = least
        order[nn] = idx_out


cdef inline int cf_cauchy(CF* c, const double* x, const double* l, const double* u,
                          const double* g, double* t, double* d, double* xcp,
                          double sbgnrm) noexcept nogil:
    """The generalized Cauchy point ``xcp``: the first local minimizer of the
    quadratic model along the projected steepest-descent path (Byrd et al. 1995,
    Algorithm CP), breakpoints taken in increasing order from a heap.  Leaves
    ``c.wa[2m:4m] = W'(xcp - x)`` for the subspace step.  Non-zero: singular
    middle matrix."""
    cdef int n = c.n, m = c.m, col = c.col, col2 = 2 * col
    cdef int* nbd = c.nbd
    cdef int* iwhere = c.iwhere
    cdef int* order = c.indx2
    cdef double* p = c.wa
    cdef double* cc = c.wa + 2 * m
    cdef double* wbp = c.wa + 4 * m
    cdef double* v = c.wa + 6 * m
    cdef double* ws = c.ws
    cdef double* wy = c.wy
    cdef double theta = c.theta
    cdef int i, j, ptr, nfree = n, nbreak = -1, ibkmin = 0, nleft, it, ibp, bnded = 1
    cdef int lower, upper, info
    cdef double f1 = 0.0, f2, f2_org, tl = 0.0, tu = 0.0, bkmin = 0.0, gi
    cdef double dtm, tsum, tj, tj0, dt, dibp, zibp, dibp2, wmc, wmp, wmw, a
    if sbgnrm <= 0.0:
        for i in range(n):
            xcp[i] = x[i]
        return 0
    for i in range(col2):
        p[i] = 0.0
    cf_ring(c)
    for i in range(n):
        gi = -g[i]
        if iwhere[i] != 3 and iwhere[i] != -1:
            if nbd[i] <= 2:
                tl = x[i] - l[i]
            if nbd[i] >= 2:
                tu = u[i] - x[i]
            lower = nbd[i] <= 2 and tl <= 0.0
            upper = nbd[i] >= 2 and tu <= 0.0
            iwhere[i] = 0
            if lower:
                if gi <= 0.0:
                    iwhere[i] = 1
            elif upper:
                if gi >= 0.0:
                    iwhere[i] = 2
            elif fabs(gi) <= 0.0:
                iwhere[i] = -3
        if iwhere[i] != 0 and iwhere[i] != -1:
            d[i] = 0.0
            continue
        d[i] = gi
        f1 = f1 - gi * gi
        for j in range(col):
            ptr = i + n * c.rp[j]
            p[j] = p[j] + wy[ptr] * gi
            p[col + j] = p[col + j] + ws[ptr] * gi
        if nbd[i] <= 2 and nbd[i] != 0 and gi < 0.0:
            nbreak += 1
            order[nbreak] = i
            t[nbreak] = tl / (-gi)
            if nbreak == 0 or t[nbreak] < bkmin:
                bkmin = t[nbreak]
                ibkmin = nbreak
        elif nbd[i] >= 2 and gi > 0.0:
            nbreak += 1
            order[nbreak] = i
            t[nbreak] = tu / gi
            if nbreak == 0 or t[nbreak] < bkmin:
                bkmin = t[nbreak]
                ibkmin = nbreak
        else:
            nfree -= 1
            order[nfree] = i
            if fabs(gi) > 0.0:
                bnded = 0
    if theta != 1.0:
        cf_scal(col, theta, &p[col])
    for i in range(n):
        xcp[i] = x[i]
    if nbreak == -1 and nfree == n:
        return 0                    # d = 0: x is the Cauchy point
    for j in range(col2):
        cc[j] = 0.0
    f2 = -theta * f1
    f2_org = f2
    if col > 0:
        info = cf_bmv(c, p, v)
        if info != 0:
            return info
        f2 = f2 - cf_dot(col2, v, p)
    dtm = -f1 / f2
    tsum = 0.0
    if nbreak != -1:
        nleft = nbreak
        it = 0
        tj = 0.0
        while True:
            tj0 = tj
            if it == 0:
                tj = bkmin
                ibp = order[ibkmin]
            else:
                if it == 1 and ibkmin != nbreak:
                    t[ibkmin] = t[nbreak]
                    order[ibkmin] = order[nbreak]
                cf_heap(nleft, t, order, it - 1)
                tj = t[nleft]
                ibp = order[nleft]
            dt = tj - tj0
            if dtm < dt:
                break               # the minimizer lies in this segment
            tsum = tsum + dt
            nleft -= 1
            it += 1
            dibp = d[ibp]
            d[ibp] = 0.0
            if dibp > 0.0:
                zibp = u[ibp] - x[ibp]
                xcp[ibp] = u[ibp]
                iwhere[ibp] = 2
            else:
                zibp = l[ibp] - x[ibp]
                xcp[ibp] = l[ibp]
                iwhere[ibp] = 1
            # (with every breakpoint passed, the segment tests below end the
            # search: 3.0's separate all-fixed exit compares a 0-based count
            # with n in SciPy's translation and is never taken, nor here)
            dibp2 = dibp * dibp
            f1 = f1 + dt * f2 + dibp2 - theta * dibp * zibp
            f2 = f2 - theta * dibp2
            if col > 0:
                cf_axpy(col2, dt, p, cc)
                ptr = c.head
                for j in range(col):
                    wbp[j] = wy[ibp + n * ptr]
                    wbp[col + j] = theta * ws[ibp + n * ptr]
                    ptr = (ptr + 1) % m
                info = cf_bmv(c, wbp, v)
                if info != 0:
                    return info
                wmc = cf_dot(col2, cc, v)
                wmp = cf_dot(col2, p, v)
                wmw = cf_dot(col2, wbp, v)
                cf_axpy(col2, -dibp, wbp, p)
                f1 = f1 + dibp * wmc
                f2 = f2 + dibp * 2.0 * wmp - dibp2 * wmw
            f2 = fmax(_epsmch() * f2_org, f2)
            if nleft >= 0:
                dtm = -f1 / f2
            elif bnded:
                dtm = 0.0
                break
            else:
                dtm = -f1 / f2
                break
    if dtm <= 0.0:
        dtm = 0.0
    tsum = tsum + dtm
    cf_axpy(n, tsum, d, xcp)
    if col > 0:
        cf_axpy(col2, dtm, p, cc)
    return 0


cdef inline void cf_freev(CF* c, int it, int cnstnd, int* wrk) noexcept nogil:
    """The free set at the GCP (``index[0:nfree]``, active ones after), and for
    ``it > 0`` with bounds the variables that entered (``indx2[0:nenter]``) and
    left it (``indx2[ileave:n]``) since the last iteration."""
    cdef int n = c.n, i, k, iact
    cdef int* idx = c.index
    cdef int* idx2 = c.indx2
    cdef int* iwhere = c.iwhere
    c.nenter = 0
    c.ileave = n
    if it > 0 and cnstnd:
        for i in range(c.nfree):
            k = idx[i]
            if iwhere[k] > 0:
                c.ileave -= 1
                idx2[c.ileave] = k
        for i in range(c.nfree, n):
            k = idx[i]
            if iwhere[k] <= 0:
                idx2[c.nenter] = k
                c.nenter += 1
    wrk[0] = c.ileave < n or c.nenter > 0 or c.updatd
    c.nfree = 0
    iact = n
    for i in range(n):
        if iwhere[i] <= 0:
            idx[c.nfree] = i
            c.nfree += 1
        else:
            iact -= 1
            idx[iact] = i


# ------------------------------------------------------------------ subspace step
cdef inline int cf_formk(CF* c) noexcept nogil:
    """Factor the 2col x 2col matrix ``K`` of the direct subspace step
    (Byrd et al. 1995 Section 5.1, in the form of Morales & Nocedal 2011): the
    inner products over the free set ``snd`` are updated for the new pair and
    for the variables that entered/left the free set, ``K`` is formed in ``wn``
    and factored as ``L E L'`` by two Cholesky factorizations.  Non-zero: not
    positive definite."""
    cdef int n = c.n, m = c.m, col = c.col, m2 = 2 * c.m, nsub = c.nfree
    cdef int* ind = c.index
    cdef int* idx2 = c.indx2
    cdef double* ws = c.ws
    cdef double* wy = c.wy
    cdef double* w1 = c.snd
    cdef double* wn = c.wn
    cdef double theta = c.theta
    cdef int ip, jp, iy, jy, js, is_, is1, js1, k, k1, i, upcl, cnt, col2, info
    cdef double a1, a2, a3, a4
    cdef double* s1 = c.acc
    cdef double* s2 = c.acc + c.m
    cdef double* s3 = c.acc + 2 * c.m
    cdef double* s4 = c.acc + 3 * c.m
    cdef int* rp = c.rp
    cdef char tr_t = b'T'
    cdef char uplo = b'U'
    cdef char diag = b'N'
    cf_ring(c)
    if c.updatd:
        if c.iupdat > m:
            # drop the oldest pair: shift the blocks up-left by one
            for jy in range(m - 1):
                js = m + jy
                cnt = m - (jy + 1)
                for k in range(cnt):
                    w1[jy + k + m2 * jy] = w1[jy + 1 + k + m2 * (jy + 1)]
                    w1[js + k + m2 * js] = w1[js + 1 + k + m2 * (js + 1)]
                for k in range(m - 1):
                    w1[m + k + m2 * jy] = w1[m + 1 + k + m2 * (jy + 1)]
        # the new row of blocks (1,1), (2,1) and (2,2)
        iy = col - 1
        is_ = m + col - 1
        ip = c.head + col - 1
        if ip >= m:
            ip -= m
        # (the col sums of each kind taken together, each one in its own index
        # order: independent chains, the same values as one sum after another)
        for jy in range(col):
            s1[jy] = 0.0
            s2[jy] = 0.0
            s3[jy] = 0.0
            s4[jy] = 0.0
        for k in range(nsub):
            k1 = ind[k]
            a1 = wy[k1 + n * ip]
            for jy in range(col):
                s1[jy] = s1[jy] + a1 * wy[k1 + n * rp[jy]]
        for k in range(nsub, n):
            k1 = ind[k]
            a1 = ws[k1 + n * ip]
            for jy in range(col):
                s2[jy] = s2[jy] + a1 * ws[k1 + n * rp[jy]]
                s3[jy] = s3[jy] + a1 * wy[k1 + n * rp[jy]]
        for jy in range(col):
            js = m + jy
            w1[iy + m2 * jy] = s1[jy]
            w1[is_ + m2 * js] = s2[jy]
            w1[is_ + m2 * jy] = s3[jy]
        # the new column of block (2,1)
        jy = col - 1
        jp = c.head + col - 1
        if jp >= m:
            jp -= m
        for k in range(nsub):
            k1 = ind[k]
            a1 = wy[k1 + n * jp]
            for i in range(col):
                s4[i] = s4[i] + ws[k1 + n * rp[i]] * a1
        for i in range(col):
            w1[m + i + m2 * jy] = s4[i]
        upcl = col - 1
    else:
        upcl = col
    # the old parts of blocks (1,1) and (2,2): variables entering/leaving the free set
    ip = c.head
    for iy in range(upcl):
        is_ = m + iy
        jp = c.head
        for jy in range(iy + 1):
            js = m + jy
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            a4 = 0.0
            for k in range(c.nenter):
                k1 = idx2[k]
                a1 = a1 + wy[k1 + n * ip] * wy[k1 + n * jp]
                a2 = a2 + ws[k1 + n * ip] * ws[k1 + n * jp]
            for k in range(c.ileave, n):
                k1 = idx2[k]
                a3 = a3 + wy[k1 + n * ip] * wy[k1 + n * jp]
                a4 = a4 + ws[k1 + n * ip] * ws[k1 + n * jp]
            w1[iy + m2 * jy] = w1[iy + m2 * jy] + a1 - a3
            w1[is_ + m2 * js] = w1[is_ + m2 * js] - a2 + a4
            jp = (jp + 1) % m
        ip = (ip + 1) % m
    # the old part of block (2,1)
    ip = c.head
    for is_ in range(m, m + upcl):
        jp = c.head
        for jy in range(upcl):
            a1 = 0.0
            a3 = 0.0
            for k in range(c.nenter):
                k1 = idx2[k]
                a1 = a1 + ws[k1 + n * ip] * wy[k1 + n * jp]
            for k in range(c.ileave, n):
                k1 = idx2[k]
                a3 = a3 + ws[k1 + n * ip] * wy[k1 + n * jp]
            if is_ <= jy + m:
                w1[is_ + m2 * jy] = w1[is_ + m2 * jy] + a1 - a3
            else:
                w1[is_ + m2 * jy] = w1[is_ + m2 * jy] - a1 + a3
            jp = (jp + 1) % m
        ip = (ip + 1) % m
    # upper triangle of K = [D + Y'ZZ'Y/theta, -L_a' + R_z; ., theta S'AA'S]
    for iy in range(col):
        is_ = col + iy
        is1 = m + iy
        for jy in range(iy + 1):
            js = col + jy
            js1 = m + jy
            wn[jy + m2 * iy] = w1[iy + m2 * jy] / theta
            wn[js + m2 * is_] = w1[is1 + m2 * js1] * theta
        for jy in range(iy):
            wn[jy + m2 * is_] = -w1[is1 + m2 * jy]
        for jy in range(iy, col):
            wn[jy + m2 * is_] = w1[is1 + m2 * jy]
        wn[iy + m2 * iy] = wn[iy + m2 * iy] + c.sy[iy + m * iy]
    info = cf_chol(col, wn, m2)
    if info != 0:
        return -1
    col2 = 2 * col
    dtrtrs(&uplo, &tr_t, &diag, &col, &col, wn, &m2, &wn[m2 * col], &m2, &info)
    for is_ in range(col, col2):
        for js in range(is_, col2):
            wn[is_ + m2 * js] = wn[is_ + m2 * js] + cf_dot(col, &wn[m2 * is_], &wn[m2 * js])
    info = cf_chol(col, &wn[col + m2 * col], m2)
    if info != 0:
        return -2
    return 0


cdef inline int cf_cmprlb(CF* c, const double* x, const double* g, const double* z,
                          double* r, int cnstnd) noexcept nogil:
    """The reduced gradient of the model at the Cauchy point over the free
    variables, ``r = -Z'(B (xcp - x) + g)``, from ``W'(xcp - x)`` of the Cauchy
    step.  Non-zero: singular middle matrix."""
    cdef int n = c.n, m = c.m, col = c.col, i, j, k, ptr
    cdef double a1, a2, theta = c.theta
    cdef int* ind = c.index
    if not cnstnd and col > 0:
        for i in range(n):
            r[i] = -g[i]
        return 0
    for i in range(c.nfree):
        k = ind[i]
        r[i] = -theta * (z[k] - x[k]) - g[k]
    if cf_bmv(c, &c.wa[2 * m], c.wa) != 0:
        return -8
    cf_ring(c)
    for j in range(col):
        c.acc[j] = theta * c.wa[col + j]
    for j in range(col):
        a1 = c.wa[j]
        a2 = c.acc[j]
        ptr = n * c.rp[j]
        for i in range(c.nfree):
            k = ind[i] + ptr
            r[i] = r[i] + c.wy[k] * a1 + c.ws[k] * a2
    return 0


cdef inline int cf_subsm(CF* c, const double* l, const double* u, double* x, double* d,
                         double* xp, const double* xx, const double* gg,
                         int* iword) noexcept nogil:
    """The subspace step from the Cauchy point ``x`` (overwritten by the new
    point): the Newton direction of the model over the free variables
    ``d = (1/theta) r + (1/theta^2) Z'W K^-1 W'Z r`` (``d`` holds ``r`` on entry),
    projected on the box; when the projected step is not a descent direction
    from ``xx`` (gradient ``gg``), the step along the Newton direction
    truncated at the first bound instead (Morales & Nocedal 2011).
    Non-zero: singular ``K``."""
    cdef int n = c.n, m = c.m, col = c.col, nsub = c.nfree, m2 = 2 * c.m, col2 = 2 * c.col
    cdef int* ind = c.index
    cdef int* nbd = c.nbd
    cdef double* wv = c.wa
    cdef double* ws = c.ws
    cdef double* wy = c.wy
    cdef double theta = c.theta
    cdef int i, j, k, ptr, jy, js, ibd, info
    cdef double a1, a2, xk, dk, alpha, dd
    cdef char tr_t = b'T'
    cdef char tr_n = b'N'
    if nsub <= 0:
        return 0
    cf_ring(c)
    for i in range(col):
        c.acc[i] = 0.0
        c.acc[m + i] = 0.0
    for j in range(nsub):
        k = ind[j]
        a1 = d[j]
        for i in range(col):
            ptr = k + n * c.rp[i]
            c.acc[i] = c.acc[i] + wy[ptr] * a1
            c.acc[m + i] = c.acc[m + i] + ws[ptr] * a1
    for i in range(col):
        wv[i] = c.acc[i]
        wv[col + i] = theta * c.acc[m + i]
    info = cf_trsv(&tr_t, col2, c.wn, m2, wv)
    if info != 0:
        return info
    for i in range(col):
        wv[i] = -wv[i]
    info = cf_trsv(&tr_n, col2, c.wn, m2, wv)
    if info != 0:
        return info
    for jy in range(col):
        a1 = wv[jy]
        a2 = wv[col + jy]
        ptr = n * c.rp[jy]
        for i in range(nsub):
            k = ind[i] + ptr
            d[i] = d[i] + (wy[k] * a1 / theta) + (ws[k] * a2)
    cf_scal(nsub, 1.0 / theta, d)
    # the projected Newton step
    iword[0] = 0
    for i in range(n):
        xp[i] = x[i]
    for i in range(nsub):
        k = ind[i]
        dk = d[i]
        xk = x[k]
        if nbd[k] == 0:
            x[k] = xk + dk
        elif nbd[k] == 1:
            x[k] = fmax(l[k], xk + dk)
            if x[k] == l[k]:
                iword[0] = 1
        elif nbd[k] == 2:
            xk = fmax(l[k], xk + dk)
            x[k] = fmin(u[k], xk)
            if x[k] == l[k] or x[k] == u[k]:
                iword[0] = 1
        elif nbd[k] == 3:
            x[k] = fmin(u[k], xk + dk)
            if x[k] == u[k]:
                iword[0] = 1
    if iword[0] == 0:
        return 0
    dd = 0.0
    for i in range(n):
        dd = dd + (x[i] - xx[i]) * gg[i]
    if not dd > 0.0:
        return 0
    # not a descent direction: back to the Cauchy point, then the truncated step
    for i in range(n):
        x[i] = xp[i]
    alpha = 1.0
    a1 = 1.0
    ibd = 0
    for i in range(nsub):
        k = ind[i]
        dk = d[i]
        if nbd[k] != 0:
            if dk < 0.0 and nbd[k] <= 2:
                a2 = l[k] - x[k]
                if a2 >= 0.0:
                    a1 = 0.0
                elif dk * alpha < a2:
                    a1 = a2 / dk
            elif dk > 0.0 and nbd[k] >= 2:
                a2 = u[k] - x[k]
                if a2 <= 0.0:
                    a1 = 0.0
                elif dk * alpha > a2:
                    a1 = a2 / dk
            if a1 < alpha:
                alpha = a1
                ibd = i
    if alpha < 1.0:
        dk = d[ibd]
        k = ind[ibd]
        if dk > 0.0:
            x[k] = u[k]
            d[ibd] = 0.0
        elif dk < 0.0:
            x[k] = l[k]
            d[ibd] = 0.0
    for i in range(nsub):
        k = ind[i]
        x[k] = x[k] + alpha * d[i]
    return 0


# ------------------------------------------------------------------ the memory
cdef inline void cf_matupd(CF* c, const double* s, const double* y, double stp,
                           double dtd, double rr, double dr) noexcept nogil:
    """Store the pair ``(s, y)`` (``s`` already scaled by ``stp``) in the ring,
    ``theta = y'y / s'y`` (``rr / dr``), and the new row of ``S'Y`` and column of
    ``S'S`` by BLAS ``ddot`` (the diagonal from ``dr`` and ``stp^2 d'd``)."""
    cdef int n = c.n, m = c.m, j, k, ptr, cnt
    cdef double* sy = c.sy
    cdef double* ss = c.ss
    if c.iupdat <= m:
        c.col = c.iupdat
        c.itail = (c.head + c.iupdat - 1) % m
    else:
        c.itail = (c.itail + 1) % m
        c.head = (c.head + 1) % m
    for k in range(n):
        c.ws[c.itail * n + k] = s[k]
        c.wy[c.itail * n + k] = y[k]
    c.theta = rr / dr
    if c.iupdat > m:
        # drop the oldest pair: move S'S up-left, S'Y up-left
        for j in range(1, c.col):
            for k in range(j):
                ss[k + m * (j - 1)] = ss[1 + k + m * j]
            cnt = c.col - j
            for k in range(cnt):
                sy[j - 1 + k + m * (j - 1)] = sy[j + k + m * j]
    ptr = c.head
    for j in range(c.col - 1):
        sy[c.col - 1 + m * j] = cf_dot(n, s, &c.wy[ptr * n])
        ss[j + m * (c.col - 1)] = cf_dot(n, &c.ws[ptr * n], s)
        ptr = (ptr + 1) % m
    ss[(c.col - 1) + m * (c.col - 1)] = dtd if stp == 1.0 else stp * stp * dtd
    sy[(c.col - 1) + m * (c.col - 1)] = dr


cdef inline int cf_formt(CF* c) noexcept nogil:
    """``T = theta S'S + L D^-1 L'`` in the upper triangle of ``wt``, then its
    Cholesky factor ``J'``.  Non-zero: not positive definite."""
    cdef int m = c.m, col = c.col, i, j, k, kk
    cdef double s
    cdef double* sy = c.sy
    cdef double* wt = c.wt
    for j in range(col):
        wt[m * j] = c.theta * c.ss[m * j]
    for i in range(1, col):
        for j in range(i, col):
            kk = j if i > j else i
            s = 0.0
            for k in range(kk):
                s = s + ((sy[i + m * k] * sy[j + m * k]) / sy[k + m * k])
            wt[i + m * j] = s + c.theta * c.ss[i + m * j]
    if cf_chol(col, wt, m) != 0:
        return -3
    return 0


cdef inline void cf_place(CF* c, double* mat, int mb) noexcept nogil:
    """Point the matrices at the block ``mat`` laid out for ``mb`` pairs
    (``11 mb^2 + 12 mb`` doubles)."""
    c.sy = mat
    c.ss = mat + mb * mb
    c.wt = mat + 2 * mb * mb
    c.wn = mat + 3 * mb * mb
    c.snd = mat + 7 * mb * mb
    c.wa = mat + 11 * mb * mb
    c.acc = c.wa + 8 * mb
    c.m = mb


cdef inline void cf_grow(CF* c, double* mat, int mb) noexcept nogil:
    """Move the memory into the (zeroed) block ``mat`` for ``mb > c.m`` pairs.

    Used while the ring has not wrapped (``head = 0``), so the stored pairs keep
    their slots: ``S'Y``, ``S'S`` and the free-set products ``snd`` are copied
    (``snd``'s second block row/column starts at ``m``, now ``mb``); ``wt``,
    ``wn`` and ``wa`` are formed anew before they are read.  The arithmetic
    does not depend on the leading dimensions, so a run whose memory grows
    computes what a run with ``mb`` pairs from the start computes."""
    cdef int ma = c.m, col = c.col, i, j, ii, jj
    cdef double* sy = c.sy
    cdef double* ss = c.ss
    cdef double* snd = c.snd
    for j in range(col):
        for i in range(col):
            mat[i + mb * j] = sy[i + ma * j]
            mat[mb * mb + i + mb * j] = ss[i + ma * j]
    for j in range(2 * ma):
        jj = j if j < ma else j - ma + mb
        for i in range(2 * ma):
            ii = i if i < ma else i - ma + mb
            mat[7 * mb * mb + ii + 2 * mb * jj] = snd[i + 2 * ma * j]
    cf_place(c, mat, mb)
