# cython: language_level=3
"""Nonlinear least squares in Cython: the Levenberg-Marquardt loop of Moré (1978)
and the dense linear algebra of the Gauss-Newton and trust-region steps.

What is here
------------
* :func:`lm_solve` — the whole Levenberg-Marquardt iteration, written fresh from
  J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory",
  Numerical Analysis, Lecture Notes in Mathematics 630 (1978), pp. 105-116:
  QR factorization with column pivoting (LAPACK ``dgeqp3``), ``Q^T f`` (``dormqr``),
  Moré's scaling ``D = diag(max column norms)``, the Levenberg-Marquardt parameter
  search (section 5, safeguarded Newton iteration on ``phi(lambda) = ||D p|| - Delta``),
  the solve of ``[J; sqrt(lambda) D] p = [-f; 0]`` by Givens rotations that reuse the
  QR factor (section 3), and the trust-region update of section 4.  The loop calls
  Python only to evaluate the residuals, the Jacobian (or the residuals at the
  finite-difference points) and the user's callback.
* :func:`qr_lstsq` — minimum-norm-ish least squares ``min ||J p + f||`` by pivoted QR
  with a rank cut (the Gauss-Newton step).
* :func:`lm_step` — one Levenberg-Marquardt parameter search on a given ``J, f, D,
  Delta`` (exposed for tests and for the Python drivers).
* :func:`fd_columns` — the finite-difference / complex-step Jacobian columns.

Everything that reaches the typed code has been validated in Python (shapes,
finiteness, option ranges); values returned by user callables are converted and
shape-checked here before any LAPACK call sees them.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from scipy.linalg.cython_lapack cimport dgeqp3, dormqr
from scipy.linalg.cython_blas cimport dnrm2

cnp.import_array()

cdef double DWARF = 2.2250738585072014e-308
cdef double EPSMCH = 2.220446049250313e-16


cdef inline double enorm(int n, const double* x) noexcept nogil:
    """Euclidean norm without overflow (BLAS ``dnrm2`` scales)."""
    cdef int inc = 1
    if n <= 0:
        return 0.0
    return dnrm2(&n, <double*> x, &inc)


# ---------------------------------------------------------------------------
# Dense kernels (column-major, nogil)
# ---------------------------------------------------------------------------
cdef int qr_factor(int m, int n, double* A, int* jpvt, double* tau,
                   double* work, int lwork) noexcept nogil:
    """A P = Q R in place (LAPACK dgeqp3); jpvt returned 0-based."""
    cdef int info = 0, j
    for j in range(n):
        jpvt[j] = 0
    # numpy: q, r, p = scipy.linalg.qr(A, pivoting=True)
    dgeqp3(&m, &n, A, &m, jpvt, tau, work, &lwork, &info)
    for j in range(n):
        jpvt[j] -= 1
    return info


cdef int apply_qt(int m, int n, double* A, double* tau, double* c,
                  double* work, int lwork) noexcept nogil:
    """c <- Q^T c (LAPACK dormqr with the reflectors left by dgeqp3)."""
    cdef int info = 0, one = 1
    cdef char side = b'L'
    cdef char trans = b'T'
    dormqr(&side, &trans, &m, &one, &n, A, &m, tau, c, &m, work, &lwork, &info)
    return info


cdef void qrsolv(int n, const double* R, int ldr, const int* ipvt, const double* diag,
                 const double* qtb, double* x, double* sdiag, double* S,
                 double* wa) noexcept nogil:
    """Solve ``min || [A; D] x - [b; 0] ||`` given ``A P = Q R`` and ``qtb = Q^T b``.

    Moré (1978), section 3: the rows of ``P^T D P`` are eliminated against ``R`` by
    Givens rotations, giving ``S`` upper triangular with ``S^T S = R^T R + P^T D^2 P``.
    ``S`` (strict upper part, column-major, ld ``n``) and its diagonal ``sdiag`` are
    returned for the Newton correction of :func:`lmpar`.
    """
    cdef int i, j, k, l, nsing
    cdef double c, s, t, cotan, tn, qtbpj, rkk, acc
    for j in range(n):
        for i in range(j + 1):
            S[i + j * n] = R[i + j * ldr]
        wa[j] = qtb[j]
    for j in range(n):
        l = ipvt[j]
        if diag[l] != 0.0:
            for k in range(j, n):
                sdiag[k] = 0.0
            sdiag[j] = diag[l]
            qtbpj = 0.0
            for k in range(j, n):
                if sdiag[k] == 0.0:
                    continue
                rkk = S[k + k * n]
                if fabs(rkk) < fabs(sdiag[k]):
                    cotan = rkk / sdiag[k]
                    s = 0.5 / sqrt(0.25 + 0.25 * cotan * cotan)
                    c = s * cotan
                else:
                    tn = sdiag[k] / rkk
                    c = 0.5 / sqrt(0.25 + 0.25 * tn * tn)
                    s = c * tn
                S[k + k * n] = c * rkk + s * sdiag[k]
                t = c * wa[k] + s * qtbpj
                qtbpj = -s * wa[k] + c * qtbpj
                wa[k] = t
                for i in range(k + 1, n):
                    t = c * S[k + i * n] + s * sdiag[i]
                    sdiag[i] = -s * S[k + i * n] + c * sdiag[i]
                    S[k + i * n] = t
        sdiag[j] = S[j + j * n]
    nsing = n
    for j in range(n):
        if sdiag[j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa[j] = 0.0
    for j in range(nsing - 1, -1, -1):
        acc = 0.0
        for i in range(j + 1, nsing):
            acc += S[j + i * n] * wa[i]
        wa[j] = (wa[j] - acc) / sdiag[j]
    for j in range(n):
        x[ipvt[j]] = wa[j]


cdef double lmpar(int n, const double* R, int ldr, const int* ipvt, const double* diag,
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


# ---------------------------------------------------------------------------
# Calls into Python (validated conversions)
# ---------------------------------------------------------------------------
cdef object _vec(object value, Py_ssize_t m, str what):
    cdef cnp.ndarray a = np.asarray(value, dtype=np.float64)
    if a.ndim > 1:
        raise ValueError(f"{what} must return at most 1-D array_like, got shape {np.shape(a)}")
    if a.ndim == 0:
        a = a.reshape(1)
    if a.shape[0] != m:
        raise ValueError(f"{what} returned {a.shape[0]} residuals, expected {m} "
                         "(the number at x0)")
    return a


cdef int _jac_into(object jac, object x, Py_ssize_t m, Py_ssize_t n, double* A) except -1:
    """Evaluate a user Jacobian and copy it column-major into A."""
    cdef cnp.ndarray J = np.asarray(jac(x), dtype=np.float64)
    cdef double[:, :] Jv
    cdef Py_ssize_t i, j
    if J.ndim != 2 or J.shape[0] != m or J.shape[1] != n:
        raise ValueError(f"jac must return an array of shape ({m}, {n}), got shape "
                         f"{np.shape(J)}")
    Jv = J
    for j in range(n):
        for i in range(m):
            A[i + j * m] = Jv[i, j]
            if not isfinite(A[i + j * m]):
                raise ValueError("jac returned non-finite values")
    return 0


cdef int _fd_into(object fun, double* x, Py_ssize_t n, const double* f0, Py_ssize_t m,
                  const double* h, const char* central, int cs, double* A) except -1:
    """Finite-difference (forward/central) or complex-step columns into A (column-major).

    ``h[j]`` is the step of column j (already the step actually representable);
    ``central[j]`` selects ``(f(x+h) - f(x-h)) / 2h``.
    """
    cdef Py_ssize_t i, j
    cdef double xj, hj
    cdef double[::1] fp, fm
    cdef cnp.ndarray xa = np.empty(n, dtype=np.float64)
    cdef double[::1] xv = xa
    cdef cnp.ndarray xc
    for i in range(n):
        xv[i] = x[i]
    if cs:
        xc = xa.astype(np.complex128)
        for j in range(n):
            xc[j] = complex(x[j], h[j])
            val = np.asarray(fun(xc))
            if val.ndim == 0:
                val = val.reshape(1)
            if val.ndim != 1 or val.shape[0] != m:
                raise ValueError(f"fun returned shape {val.shape} at a complex-step point, "
                                 f"expected ({m},)")
            fp = np.ascontiguousarray(np.imag(val), dtype=np.float64)
            for i in range(m):
                A[i + j * m] = fp[i] / h[j]
            xc[j] = x[j]
        return 0
    for j in range(n):
        xj = x[j]
        hj = h[j]
        xv[j] = xj + hj
        fp = _vec(fun(xa.copy()), m, "fun")
        if central[j]:
            xv[j] = xj - hj
            fm = _vec(fun(xa.copy()), m, "fun")
            for i in range(m):
                A[i + j * m] = (fp[i] - fm[i]) / (2.0 * hj)
        else:
            for i in range(m):
                A[i + j * m] = (fp[i] - f0[i]) / hj
        xv[j] = xj
    return 0


def fd_columns(fun, double[::1] x, double[::1] f0, double[::1] h, central, bint cs):
    """Jacobian ``(m, n)`` by finite differences with given steps ``h`` (validated by
    the caller).  ``central`` is a bool array; ``cs`` selects the complex step."""
    cdef Py_ssize_t n = x.shape[0], m = f0.shape[0]
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] c = np.ascontiguousarray(central, dtype=np.uint8)
    cdef cnp.ndarray out = np.empty((n, m), dtype=np.float64)   # column-major (m, n)
    cdef double[:, ::1] ov = out
    cdef double[::1] xw = np.array(x, copy=True)
    if n == 0:
        return out.T
    _fd_into(fun, &xw[0], n, &f0[0], m, &h[0], <char*> &c[0], cs, &ov[0, 0])
    return out.T


def fd_steps(double[::1] x, str method, diff_step=None):
    """Steps of SciPy's ``approx_derivative`` rule: ``h = r * sign(x) * max(1, |x|)``,
    ``r = sqrt(eps)`` (2-point, cs) or ``eps**(1/3)`` (3-point); with ``diff_step``
    ``h = diff_step * sign(x) * |x|`` (falling back to the default where that is 0).
    Returned as the step actually representable, ``(x + h) - x``."""
    xa = np.asarray(x)
    sign = np.where(xa >= 0, 1.0, -1.0)
    r = EPSMCH ** (1.0 / 3.0) if method == "3-point" else sqrt(EPSMCH)
    hdef = r * sign * np.maximum(1.0, np.abs(xa))
    if diff_step is None:
        h = hdef
    else:
        h = np.asarray(diff_step, dtype=np.float64) * sign * np.abs(xa)
        h = np.where((xa + h) - xa == 0, hdef, h)
    if method == "cs":
        return np.ascontiguousarray(h)
    return np.ascontiguousarray((xa + h) - xa)


# ---------------------------------------------------------------------------
# The Levenberg-Marquardt loop
# ---------------------------------------------------------------------------
def lm_solve(fun, jac, double[::1] x0, double[::1] f0, double ftol, double xtol,
             double gtol, Py_ssize_t max_nfev, diag0, double factor, fd_method,
             diff_step, callback):
    """Levenberg-Marquardt (Moré 1978) from ``x0`` with residuals ``f0 = fun(x0)``.

    Parameters
    ----------
    fun : callable ``fun(x) -> (m,)``
    jac : callable ``jac(x) -> (m, n)`` or None (finite differences, ``fd_method``)
    diag0 : ndarray (n,) or None
        ``1 / x_scale``; None means Moré's Jacobian scaling (``x_scale="jac"``).
    callback : callable ``callback(x, f) -> bool`` or None; True stops.

    Returns
    -------
    x, f, info, nfev, njev, nit
        ``info`` is MINPACK's: 1 ftol, 2 xtol, 3 both, 4 gtol, 5 max_nfev,
        6/7/8 the tolerances are too small for machine precision, -2 callback.
    """
    cdef int n = x0.shape[0], m = f0.shape[0]
    cdef int i, j, l, info = 0, it = 1, lwork, qinfo
    cdef Py_ssize_t nfev = 1, njev = 0
    cdef bint scale_jac = diag0 is None
    cdef double fnorm, fnorm1, xnorm = 0.0, delta = 0.0, par = 0.0, pnorm, gnorm, acc
    cdef double actred, prered, dirder, ratio, t, temp1, temp2
    cdef bint accepted
    cdef int mode_cs = 0

    x_arr = np.array(x0, dtype=np.float64, copy=True)
    f_arr = np.array(f0, dtype=np.float64, copy=True)
    cdef double[::1] x = x_arr
    cdef double[::1] f = f_arr
    cdef double[::1] A = np.empty(m * n, dtype=np.float64)
    cdef double[::1] tau = np.empty(n)
    cdef int[::1] ipvt = np.empty(n, dtype=np.intc)
    cdef double[::1] diag = np.ones(n) if scale_jac else np.array(diag0, dtype=np.float64)
    cdef double[::1] acnorm = np.empty(n)
    cdef double[::1] qtf = np.empty(n)
    cdef double[::1] wa1 = np.empty(n)
    cdef double[::1] wa2 = np.empty(n)
    cdef double[::1] wa3 = np.empty(n)
    cdef double[::1] wa5 = np.empty(n)
    cdef double[::1] sdiag = np.empty(n)
    cdef double[::1] S = np.empty(n * n)
    cdef double[::1] wa4 = np.empty(m)
    cdef double[::1] fw = np.empty(m)
    cdef double[::1] hsteps
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] central = np.zeros(n, dtype=np.uint8)
    cdef double wq = 0.0
    cdef double[::1] ftv

    if fd_method == "3-point":
        central[:] = 1
    elif fd_method == "cs":
        mode_cs = 1
    # workspace query
    lwork = -1
    dgeqp3(&m, &n, &A[0], &m, &ipvt[0], &tau[0], &wq, &lwork, &qinfo)
    lwork = <int> wq
    lwork = max(lwork, 3 * n + 1, n * 64 + 64)
    cdef double[::1] work = np.empty(lwork)

    fnorm = enorm(m, &f[0])
    while True:
        # ---- Jacobian and its pivoted QR
        if jac is None:
            hsteps = fd_steps(x, fd_method, diff_step)
            _fd_into(fun, &x[0], n, &f[0], m, &hsteps[0], <char*> &central[0], mode_cs, &A[0])
        else:
            _jac_into(jac, x_arr.copy(), m, n, &A[0])
            njev += 1
        with nogil:
            for j in range(n):
                acnorm[j] = enorm(m, &A[j * m])
            qr_factor(m, n, &A[0], &ipvt[0], &tau[0], &work[0], lwork)
            if it == 1:
                if scale_jac:
                    for j in range(n):
                        diag[j] = acnorm[j] if acnorm[j] != 0.0 else 1.0
                for j in range(n):
                    wa3[j] = diag[j] * x[j]
                xnorm = enorm(n, &wa3[0])
                delta = factor * xnorm
                if delta == 0.0:
                    delta = factor
            for i in range(m):
                fw[i] = f[i]
            apply_qt(m, n, &A[0], &tau[0], &fw[0], &work[0], lwork)
            for j in range(n):
                qtf[j] = fw[j]
            # scaled gradient: max_j |cos(angle between f and column j)|
            gnorm = 0.0
            if fnorm != 0.0:
                for j in range(n):
                    l = ipvt[j]
                    if acnorm[l] != 0.0:
                        acc = 0.0
                        for i in range(j + 1):
                            acc += A[i + j * m] * (qtf[i] / fnorm)
                        t = fabs(acc / acnorm[l])
                        if t > gnorm:
                            gnorm = t
        if gnorm <= gtol:
            info = 4
            break
        if scale_jac:
            for j in range(n):
                if acnorm[j] > diag[j]:
                    diag[j] = acnorm[j]
        # ---- inner loop: find an acceptable step
        while True:
            with nogil:
                par = lmpar(n, &A[0], m, &ipvt[0], &diag[0], &qtf[0], delta, par,
                            &wa1[0], &sdiag[0], &S[0], &wa2[0], &wa3[0], &wa5[0])
                for j in range(n):
                    wa1[j] = -wa1[j]
                    wa2[j] = x[j] + wa1[j]
                    wa3[j] = diag[j] * wa1[j]
                pnorm = enorm(n, &wa3[0])
                if it == 1 and pnorm < delta:
                    delta = pnorm
            xt = np.array(wa2, copy=True)
            ftv = _vec(fun(xt), m, "fun")
            nfev += 1
            wa4[:] = ftv
            with nogil:
                fnorm1 = enorm(m, &wa4[0])
                if not isfinite(fnorm1):
                    fnorm1 = INFINITY
                actred = -1.0
                if 0.1 * fnorm1 < fnorm:
                    actred = 1.0 - (fnorm1 / fnorm) * (fnorm1 / fnorm)
                # predicted reduction: ||R P^T p||^2 + 2 par ||D p||^2, relative to ||f||^2
                for j in range(n):
                    wa3[j] = 0.0
                for j in range(n):
                    t = wa1[ipvt[j]]
                    for i in range(j + 1):
                        wa3[i] += A[i + j * m] * t
                temp1 = enorm(n, &wa3[0]) / fnorm
                temp2 = sqrt(par) * pnorm / fnorm
                prered = temp1 * temp1 + temp2 * temp2 / 0.5
                dirder = -(temp1 * temp1 + temp2 * temp2)
                ratio = 0.0
                if prered != 0.0:
                    ratio = actred / prered
                # trust-region update (Moré 1978, section 4)
                if ratio <= 0.25:
                    if actred >= 0.0:
                        t = 0.5
                    else:
                        t = 0.5 * dirder / (dirder + 0.5 * actred)
                    if 0.1 * fnorm1 >= fnorm or t < 0.1:
                        t = 0.1
                    delta = t * (delta if delta < pnorm / 0.1 else pnorm / 0.1)
                    par = par / t
                elif par == 0.0 or ratio >= 0.75:
                    delta = pnorm / 0.5
                    par = 0.5 * par
                accepted = ratio >= 1e-4
                if accepted:
                    for j in range(n):
                        x[j] = wa2[j]
                        wa2[j] = diag[j] * x[j]
                    for i in range(m):
                        f[i] = wa4[i]
                    xnorm = enorm(n, &wa2[0])
                    fnorm = fnorm1
                    it += 1
                if fabs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0:
                    info = 1
                if delta <= xtol * xnorm:
                    info = 3 if info == 1 else 2
            if accepted and callback is not None and info == 0:
                if callback(x_arr.copy(), f_arr.copy()):
                    info = -2
            if info != 0:
                break
            if nfev >= max_nfev:
                info = 5
            elif fabs(actred) <= EPSMCH and prered <= EPSMCH and 0.5 * ratio <= 1.0:
                info = 6
            elif delta <= EPSMCH * xnorm:
                info = 7
            elif gnorm <= EPSMCH:
                info = 8
            if info != 0 or accepted:
                break
        if info != 0:
            break
    return x_arr, f_arr, info, nfev, njev, it - 1


# ---------------------------------------------------------------------------
# Helpers for the Python drivers (gn, trf) and for tests
# ---------------------------------------------------------------------------
def qr_lstsq(J, f, double rcond=-1.0):
    """Solve ``min ||J p + f||`` by pivoted QR (dgeqp3); columns with
    ``|R_kk| <= rcond * |R_00|`` are dropped (their components set to 0).

    Returns ``(p, rank)``.  ``rcond < 0`` means ``eps * max(m, n)``.
    """
    cdef cnp.ndarray Af = np.array(J, dtype=np.float64, order="F", copy=True)
    cdef int m = Af.shape[0], n = Af.shape[1], lwork, j, i, rank
    cdef double wq = 0.0, t
    if rcond < 0:
        rcond = EPSMCH * max(m, n)
    cdef double[::1, :] A = Af
    cdef double[::1] c = np.array(f, dtype=np.float64, copy=True)
    cdef double[::1] tau = np.empty(max(min(m, n), 1))
    cdef int[::1] jpvt = np.zeros(max(n, 1), dtype=np.intc)
    cdef double[::1] z = np.zeros(max(n, 1))
    p = np.zeros(n)
    cdef double[::1] pv = p
    if n == 0 or m == 0:
        return p, 0
    lwork = -1
    dgeqp3(&m, &n, &A[0, 0], &m, &jpvt[0], &tau[0], &wq, &lwork, &i)
    lwork = max(<int> wq, n * 64 + 64)
    cdef double[::1] work = np.empty(lwork)
    cdef int k = min(m, n)
    with nogil:
        qr_factor(m, n, &A[0, 0], &jpvt[0], &tau[0], &work[0], lwork)
        apply_qt(m, k, &A[0, 0], &tau[0], &c[0], &work[0], lwork)
        rank = 0
        for j in range(k):
            if fabs(A[j, j]) > rcond * fabs(A[0, 0]) and A[j, j] != 0.0:
                rank += 1
            else:
                break
        for j in range(rank - 1, -1, -1):
            t = -c[j]
            for i in range(j + 1, rank):
                t -= A[j, i] * z[i]
            z[j] = t / A[j, j]
        for j in range(rank):
            pv[jpvt[j]] = z[j]
    return p, rank


def lm_step(J, f, diag, double delta, double par0=0.0):
    """One Levenberg-Marquardt parameter search (Moré 1978, section 5).

    Returns ``(p, par)``: ``p`` solves ``(J^T J + par D^2) p = -J^T f`` with
    ``par = 0`` and ``||D p|| <= 1.1 delta``, or ``| ||D p|| - delta | <= 0.1 delta``
    (up to the 10 iterations of the search).  Requires ``m >= n`` and ``diag > 0``.
    """
    cdef cnp.ndarray Af = np.array(J, dtype=np.float64, order="F", copy=True)
    cdef int m = Af.shape[0], n = Af.shape[1], lwork, i
    cdef double wq = 0.0, par
    cdef double[::1, :] A = Af
    cdef double[::1] c = np.array(f, dtype=np.float64, copy=True)
    cdef double[::1] d = np.array(diag, dtype=np.float64, copy=True)
    cdef double[::1] tau = np.empty(n)
    cdef int[::1] jpvt = np.zeros(n, dtype=np.intc)
    x = np.empty(n)
    cdef double[::1] xv = x
    cdef double[::1] sdiag = np.empty(n), S = np.empty(n * n)
    cdef double[::1] w1 = np.empty(n), w2 = np.empty(n), w3 = np.empty(n)
    lwork = -1
    dgeqp3(&m, &n, &A[0, 0], &m, &jpvt[0], &tau[0], &wq, &lwork, &i)
    lwork = max(<int> wq, n * 64 + 64)
    cdef double[::1] work = np.empty(lwork)
    with nogil:
        qr_factor(m, n, &A[0, 0], &jpvt[0], &tau[0], &work[0], lwork)
        apply_qt(m, n, &A[0, 0], &tau[0], &c[0], &work[0], lwork)
        par = lmpar(n, &A[0, 0], m, &jpvt[0], &d[0], &c[0], delta, par0, &xv[0],
                    &sdiag[0], &S[0], &w1[0], &w2[0], &w3[0])
    return -x, par
