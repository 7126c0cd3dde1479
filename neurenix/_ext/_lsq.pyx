# cython: language_level=3
"""Nonlinear least squares in Cython: the Levenberg-Marquardt loop of Moré (1978)
and the dense linear algebra of the Gauss-Newton and trust-region steps.

What is here
------------
* :func:`lm_solve` — the whole Levenberg-Marquardt iteration, written fresh from
  J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory",
  Numerical Analysis, Lecture Notes in Mathematics 630 (1978), pp. 105-116, and the
  MINPACK User Guide (Moré, Garbow & Hillstrom, ANL-80-74, 1980), reproducing the
  arithmetic of MINPACK's LMDER exactly (its trial points agree to the last bit):
  Householder QR with column pivoting by QRFAC's rule (:func:`qrfac`), ``Q^T f``,
  Moré's scaling ``D = diag(max column norms)``, the Levenberg-Marquardt parameter
  search (section 5, safeguarded Newton iteration on ``phi(lambda) = ||D p|| - Delta``),
  the solve of ``[J; sqrt(lambda) D] p = [-f; 0]`` by Givens rotations that reuse the
  QR factor (section 3), and the trust-region update of section 4.  The loop calls
  Python only to evaluate the residuals, the Jacobian (or the residuals at the
  finite-difference points) and the user's callback.
* :func:`trf_solve` — the trust-region reflective loop (Branch, Coleman & Li 1999)
  for dense Jacobians: bounds by Coleman-Li scaling and reflection, robust losses,
  ``x_scale``; Python only for residuals, Jacobian, loss and callback.
* :func:`gn_solve` — the Gauss-Newton loop with an Armijo line search.
* :func:`qr_lstsq` — minimum-norm-ish least squares ``min ||J p + f||`` by pivoted QR
  with a rank cut (the Gauss-Newton step).
* :func:`lm_step` — one Levenberg-Marquardt parameter search on a given ``J, f, D,
  Delta`` (exposed for tests and for the Python drivers).
* :func:`fd_columns` — the finite-difference / complex-step Jacobian columns.

Everything that reaches the typed code has been validated in Python (shapes,
finiteness, option ranges); values returned by user callables are converted and
shape-checked here before any LAPACK call sees them.

Layered kernel -> step -> loop, all compiled into this one module: MINPACK's
kernels in ``_minpack.pxd`` (ENORM, QRFAC, QRSOLV, LAPACK's pivoted QR), the steps
in ``_lsq_steps.pxd`` (LMPAR, the Gauss-Newton QR step, the TRF step), and here
the loops, the conversions of what the user's callables return, and the Python
faces.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt, fabs, isfinite, copysign, INFINITY
from libc.string cimport memcpy
from libc.float cimport DBL_MAX
from scipy.linalg.cython_lapack cimport dgeqp3, dormqr

from ._vec cimport dot_seq, dot_lanes8h, all_finite
from ._status cimport *          # least_squares' status codes L_* (SciPy's)
from ._minpack cimport (DWARF, EPSMCH, LONG, enorm, enorm_cols, enorm_mp, qr_factor,
                        apply_qt, qrfac, qrsolv)
from ._lsq_steps cimport (lmpar, qr_lstsq_c, qr_lwork, _select_step, _model, _matvec,
                          _cl_scaling, _make_feasible, _step_to_bound)

from time import perf_counter

from ._evaluator import MaxTimeExceeded

cnp.import_array()


# ---------------------------------------------------------------------------
# The residual function as the drivers call it (Ctrl-C and maxtime)
# ---------------------------------------------------------------------------
cdef class BestPoint:
    """``fun`` as ``least_squares``' drivers call it: remembers the evaluated point
    of lowest cost (what a run interrupted by ``KeyboardInterrupt`` returns) and,
    with a ``deadline`` (``time.perf_counter`` scale; 0: none), raises
    :class:`~neurenix._ext._evaluator.MaxTimeExceeded` before a call once it
    has passed.  The cost is ``0.5 f.f``, or ``lossf.cost(f)`` with a robust
    loss; only plain float64 vectors are ranked (complex-step points and
    values the drivers will refuse are passed through).  The best point is
    copied into buffers allocated once, so the bookkeeping costs one dot
    product per call."""

    cdef public object fun, lossf
    cdef public double deadline, best_cost
    cdef public Py_ssize_t nfev
    cdef cnp.ndarray bx, bf

    def __init__(self, fun, lossf=None, double deadline=0.0):
        self.fun = fun
        self.lossf = lossf
        self.deadline = deadline
        self.best_cost = INFINITY
        self.nfev = 0

    def __call__(self, x):
        cdef cnp.ndarray a, xa
        cdef Py_ssize_t m, n
        cdef double c
        if self.deadline != 0.0 and perf_counter() >= self.deadline:
            raise MaxTimeExceeded("maxtime")
        f = self.fun(x)
        self.nfev += 1
        if _plain(f, 1) and _plain(x, 1):
            a = <cnp.ndarray>f
            xa = <cnp.ndarray>x
            m = cnp.PyArray_DIM(a, 0)
            n = cnp.PyArray_DIM(xa, 0)
            if self.lossf is None:
                c = 0.5 * dot_seq(<double*>cnp.PyArray_DATA(a), <double*>cnp.PyArray_DATA(a), m)
            else:
                c = self.lossf.cost(f)
            if c < self.best_cost:          # False for NaN
                if self.bx is None or cnp.PyArray_DIM(self.bx, 0) != n:
                    self.bx = np.empty(n)
                if self.bf is None or cnp.PyArray_DIM(self.bf, 0) != m:
                    self.bf = np.empty(m)
                memcpy(cnp.PyArray_DATA(self.bx), cnp.PyArray_DATA(xa), n * sizeof(double))
                memcpy(cnp.PyArray_DATA(self.bf), cnp.PyArray_DATA(a), m * sizeof(double))
                self.best_cost = c
        return f

    def best(self):
        """``(x, f, cost)`` of the best point evaluated (copies), or None."""
        if self.bx is None:
            return None
        return self.bx.copy(), self.bf.copy(), self.best_cost


# ---------------------------------------------------------------------------
# Calls into Python (validated conversions)
# ---------------------------------------------------------------------------
cpdef object as_real(object value, str what):
    """``value`` (what the user's ``what`` returned) as a float64 array;
    ``TypeError`` naming ``what`` for complex values (whose imaginary part a
    conversion would drop silently; SciPy's ``lm`` refuses them too) or for
    values that are not numbers."""
    a = np.asarray(value)
    if a.dtype.kind == "c":
        raise TypeError(f"{what} must return real values, got complex dtype {a.dtype}")
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return real numbers, got dtype {a.dtype}") from None


cdef object _vec(object value, Py_ssize_t m, str what):
    cdef cnp.ndarray a = as_real(value, what)
    if a.ndim > 1:
        raise ValueError(f"{what} must return the residual vector (at most 1-D "
                         f"array_like), got shape {np.shape(a)}")
    if a.ndim == 0:
        a = a.reshape(1)
    if a.shape[0] != m:
        raise ValueError(f"{what} returned {a.shape[0]} residuals, expected {m} "
                         "(the number at x0)")
    return a


cdef inline cnp.ndarray _new_vec(Py_ssize_t n, const double* src):
    """A fresh float64 array holding ``src[:n]`` (what the user's callables get)."""
    cdef cnp.npy_intp dim = n
    cdef cnp.ndarray a = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_DOUBLE, 0)
    memcpy(cnp.PyArray_DATA(a), src, n * sizeof(double))
    return a


cdef inline bint _plain(object v, int ndim):
    """True for a float64, aligned, C-contiguous ndarray of ``ndim`` dimensions."""
    cdef cnp.ndarray a
    if type(v) is not np.ndarray:
        return False
    a = <cnp.ndarray> v
    return (cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE and cnp.PyArray_NDIM(a) == ndim
            and cnp.PyArray_ISCARRAY_RO(a))


cdef int _fun_into(object fun, const double* x, Py_ssize_t n, Py_ssize_t m,
                   double* out) except -1:
    """``out[:m] = fun(x)`` on a fresh copy of ``x``; the value is converted and its
    length checked before it is copied (a plain float64 vector is copied directly)."""
    cdef object v = fun(_new_vec(n, x))
    cdef cnp.ndarray a
    if _plain(v, 1) and cnp.PyArray_DIMS(<cnp.ndarray> v)[0] == m:
        a = <cnp.ndarray> v
    else:
        a = np.ascontiguousarray(_vec(v, m, "fun"))
    memcpy(out, cnp.PyArray_DATA(a), m * sizeof(double))
    return 0


cdef int _jac_into(object jac, object x, Py_ssize_t m, Py_ssize_t n, double* A,
                   double* B=NULL) except -1:
    """Evaluate a user Jacobian and copy it column-major into A (finite values only)
    and, when ``B`` is not NULL, into B as well."""
    return _jac_copy(jac(x), m, n, A, B)


cdef int _jac_copy(object v, Py_ssize_t m, Py_ssize_t n, double* A,
                   double* B=NULL) except -1:
    """Check a Jacobian value's shape and finiteness; copy it column-major into A
    (and into B unless NULL: the transposing copy stores twice in one pass)."""
    cdef cnp.ndarray J
    cdef const double* src
    cdef double[:, :] Jv
    cdef Py_ssize_t i, j
    cdef bint finite = True
    cdef double* dst
    cdef double* dst2
    cdef double e
    cdef Py_ssize_t i0, i1
    if _plain(v, 2):
        J = <cnp.ndarray> v
    else:
        J = as_real(v, "jac")
    if J.ndim != 2 or J.shape[0] != m or J.shape[1] != n:
        raise ValueError(f"jac must return an array of shape ({m}, {n}), got shape "
                         f"{np.shape(J)}")
    if cnp.PyArray_ISFARRAY_RO(J) and cnp.PyArray_TYPE(J) == cnp.NPY_DOUBLE:
        memcpy(A, cnp.PyArray_DATA(J), m * n * sizeof(double))
    elif cnp.PyArray_ISCARRAY_RO(J) and cnp.PyArray_TYPE(J) == cnp.NPY_DOUBLE:
        src = <const double*> cnp.PyArray_DATA(J)
        with nogil:
            # transpose in tiles of 32 rows, so that a tile of the source stays in
            # cache while its columns are written
            i0 = 0
            while i0 < m:
                i1 = i0 + 32 if i0 + 32 < m else m
                for j in range(n):
                    dst = A + j * m
                    if B == NULL:
                        for i in range(i0, i1):
                            dst[i] = src[i * n + j]
                    else:
                        dst2 = B + j * m
                        for i in range(i0, i1):
                            e = src[i * n + j]
                            dst[i] = e
                            dst2[i] = e
                i0 = i1
            B = NULL
    else:
        Jv = J
        for j in range(n):
            for i in range(m):
                A[i + j * m] = Jv[i, j]
    with nogil:
        if B != NULL:
            memcpy(B, A, m * n * sizeof(double))
        finite = all_finite(A, m * n)
    if not finite:
        raise ValueError("jac returned non-finite values")
    return 0


cdef int _fd_into(object fun, double* x, Py_ssize_t n, const double* f0, Py_ssize_t m,
                  const double* h, const char* central, int cs, double* A,
                  str what="fun") except -1:
    """Finite-difference (forward/central) or complex-step columns into A (column-major).

    ``h[j]`` is the step of column j (already the step actually representable);
    ``central[j]`` selects ``(f(x+h) - f(x-h)) / 2h``.
    """
    cdef Py_ssize_t i, j
    cdef double xj, hj
    cdef const double[::1] fp, fm     # read-only results of fun are fine
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
                raise ValueError(f"{what} returned shape {val.shape} at a complex-step point, "
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
        fp = _vec(fun(xa.copy()), m, what)
        if central[j]:
            xv[j] = xj - hj
            fm = _vec(fun(xa.copy()), m, what)
            for i in range(m):
                A[i + j * m] = (fp[i] - fm[i]) / (2.0 * hj)
        else:
            for i in range(m):
                A[i + j * m] = (fp[i] - f0[i]) / hj
        xv[j] = xj
    return 0


def fd_columns(fun, double[::1] x, double[::1] f0, double[::1] h, central, bint cs,
               str what="fun"):
    """Jacobian ``(m, n)`` by finite differences with given steps ``h`` (validated by
    the caller).  ``central`` is a bool array; ``cs`` selects the complex step;
    ``what`` names the callable in error messages."""
    cdef Py_ssize_t n = x.shape[0], m = f0.shape[0]
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] c = np.ascontiguousarray(central, dtype=np.uint8)
    cdef cnp.ndarray out = np.empty((n, m), dtype=np.float64)   # column-major (m, n)
    cdef double[:, ::1] ov = out
    cdef double[::1] xw = np.array(x, copy=True)
    if n == 0:
        return out.T
    _fd_into(fun, &xw[0], n, &f0[0], m, &h[0], <char*> &c[0], cs, &ov[0, 0], what)
    return out.T


cdef void _fd_steps(int n, const double* x, int method, const double* diff_step,
                    double* h, double eps=EPSMCH) noexcept nogil:
    """SciPy's ``approx_derivative`` step rule (see :func:`fd_steps`); ``method``:
    0 2-point, 1 3-point, 2 complex step; ``diff_step`` may be NULL; ``eps`` the
    machine epsilon of the variables' dtype."""
    cdef int j
    cdef double r = eps ** (1.0 / 3.0) if method == 1 else sqrt(eps)
    cdef double sgn, hd, hj
    for j in range(n):
        sgn = 1.0 if x[j] >= 0.0 else -1.0
        hd = r * sgn * (fabs(x[j]) if fabs(x[j]) > 1.0 else 1.0)
        hj = hd
        if diff_step != NULL:
            hj = diff_step[j] * sgn * fabs(x[j])
            if (x[j] + hj) - x[j] == 0.0:
                hj = hd
        if method != 2:
            hj = (x[j] + hj) - x[j]
        h[j] = hj


def fd_steps(double[::1] x, str method, diff_step=None, double eps=EPSMCH):
    """Steps of SciPy's ``approx_derivative`` rule: ``h = r * sign(x) * max(1, |x|)``,
    ``r = sqrt(eps)`` (2-point, cs) or ``eps**(1/3)`` (3-point), ``eps`` that of the
    variables' dtype (float64's by default); with ``diff_step``
    ``h = diff_step * sign(x) * |x|`` (falling back to the default where that is 0).
    Returned as the step actually representable, ``(x + h) - x`` (not for cs)."""
    cdef int n = x.shape[0]
    cdef double[::1] ds
    h = np.empty(n)
    cdef double[::1] hv = h
    if n == 0:
        return h
    if diff_step is not None:
        ds = np.ascontiguousarray(diff_step, dtype=np.float64)
    _fd_steps(n, &x[0], _FD_CODE[method], &ds[0] if diff_step is not None else NULL,
              &hv[0], eps)
    return h


_FD_CODE = {"2-point": 0, "3-point": 1, "cs": 2}


# ---------------------------------------------------------------------------
# The Levenberg-Marquardt loop
# ---------------------------------------------------------------------------
def lm_solve(fun, jac, double[::1] x0, double[::1] f0, double ftol, double xtol,
             double gtol, Py_ssize_t max_nfev, diag0, double factor, fd_method,
             diff_step, callback, J0=None):
    """Levenberg-Marquardt (Moré 1978; the iteration of MINPACK's ``lmder``) from
    ``x0`` with residuals ``f0 = fun(x0)``.

    Parameters
    ----------
    fun : callable ``fun(x) -> (m,)``
    jac : callable ``jac(x) -> (m, n)`` or None (finite differences, ``fd_method``)
    diag0 : ndarray (n,) or None
        ``1 / x_scale``; None means Moré's Jacobian scaling (``x_scale="jac"``).
    factor : float
        Initial step bound ``factor * ||D x0||`` (``factor`` if that is 0).
    diff_step : ndarray (n,) or None
        Relative finite-difference steps (``jac`` None only).
    callback : callable ``callback(x, f) -> bool`` or None; True stops.
    J0 : ndarray (m, n), optional
        The Jacobian at ``x0`` when the caller already evaluated (and validated) it;
        it is used instead of a first call of ``jac`` (counted in ``njev``).

    Returns
    -------
    x, f, info, nfev, njev, nit, J
        ``info`` is MINPACK's: 1 ftol, 2 xtol, 3 both, 4 gtol, 5 max_nfev,
        6/7/8 the tolerances are too small for machine precision, -2 callback.
        ``nfev`` counts the calls of ``fun`` at trial points plus the one at ``x0``
        (as MINPACK's), not those for finite differences.  ``J`` is the Jacobian
        at ``x`` when the last one evaluated was there (the final steps were
        rejected, the usual end), else None.
    """
    cdef int n = x0.shape[0], m = f0.shape[0]
    cdef int i, j, l, info = 0, it = 1
    cdef Py_ssize_t nfev = 1, njev = 0
    cdef bint scale_jac = diag0 is None
    cdef double fnorm, fnorm1, xnorm = 0.0, delta = 0.0, par = 0.0, pnorm, gnorm, acc
    cdef double actred, prered, dirder, ratio, t, temp1, temp2
    cdef bint accepted, same
    cdef int fd_code = _FD_CODE.get(fd_method, 0)
    cdef const double* dsp = NULL

    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    # one work block: A (m (n + 1): the Jacobian, then f to become Q^T f), wa4 (m),
    # S (n n), 13 vectors of n
    work_arr = np.empty(m * (n + 1) + m + n * n + 13 * n)
    cdef double* A = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* fw = A + m * n
    cdef double* wa4 = fw + m
    cdef double* S = wa4 + m
    cdef double* diag = S + n * n
    cdef double* acnorm = diag + n
    cdef double* rdiag = acnorm + n
    cdef double* qtf = rdiag + n
    cdef double* wa1 = qtf + n
    cdef double* wa2 = wa1 + n
    cdef double* wa3 = wa2 + n
    cdef double* wa5 = wa3 + n
    cdef double* sdiag = wa5 + n
    cdef double* qwork = sdiag + n
    cdef double* hsteps = qwork + n
    cdef double* ds_copy = hsteps + n
    cdef double* xlast = ds_copy + n
    ipvt_arr = np.empty(n, dtype=np.intc)
    cdef int* ipvt = <int*> cnp.PyArray_DATA(ipvt_arr)
    central_arr = np.full(n, 1 if fd_code == 1 else 0, dtype=np.uint8)
    cdef char* central = <char*> cnp.PyArray_DATA(central_arr)
    cdef double[::1] dtmp

    if scale_jac:
        for j in range(n):
            diag[j] = 1.0
    else:
        dtmp = np.ascontiguousarray(diag0, dtype=np.float64)
        for j in range(n):
            diag[j] = dtmp[j]
    if diff_step is not None:
        dtmp = np.ascontiguousarray(diff_step, dtype=np.float64)
        for j in range(n):
            ds_copy[j] = dtmp[j]
        dsp = ds_copy

    if not all_finite(f, m):
        raise ValueError("fun: residuals at x0 are not finite")
    # the Jacobian as evaluated (before its factorization) and where
    Jkeep_arr = np.empty((n, m))
    cdef double* Jkeep = <double*> cnp.PyArray_DATA(Jkeep_arr)
    xjac_arr = np.empty(n)
    cdef double* xjac = <double*> cnp.PyArray_DATA(xjac_arr)
    memcpy(xlast, x, n * sizeof(double))    # last point where fun was evaluated ...
    memcpy(wa4, f, m * sizeof(double))      # ... and its residuals
    fnorm = enorm(m, f)
    while True:
        # ---- Jacobian and its pivoted QR
        if jac is None:
            _fd_steps(n, x, fd_code, dsp, hsteps)
            _fd_into(fun, x, n, f, m, hsteps, central, fd_code == 2, A)
            memcpy(Jkeep, A, m * n * sizeof(double))
        else:
            if J0 is not None:
                _jac_copy(J0, m, n, A, Jkeep)
                J0 = None
            else:
                _jac_into(jac, _new_vec(n, x), m, n, A, Jkeep)
            njev += 1
        memcpy(xjac, x, n * sizeof(double))
        with nogil:
            memcpy(fw, f, m * sizeof(double))
            qrfac(m, n, A, ipvt, rdiag, acnorm, qwork, 1)     # fw <- Q^T f
            for j in range(n):
                A[j + j * m] = rdiag[j]
                qtf[j] = fw[j]
            if it == 1:
                if scale_jac:
                    for j in range(n):
                        diag[j] = acnorm[j] if acnorm[j] != 0.0 else 1.0
                for j in range(n):
                    wa3[j] = diag[j] * x[j]
                xnorm = enorm(n, wa3)
                delta = factor * xnorm
                if delta == 0.0:
                    delta = factor
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
                par = lmpar(n, A, m, ipvt, diag, qtf, delta, par, wa1, sdiag, S, wa2,
                            wa3, wa5)
                for j in range(n):
                    wa1[j] = -wa1[j]
                    wa2[j] = x[j] + wa1[j]
                    wa3[j] = diag[j] * wa1[j]
                pnorm = enorm(n, wa3)
                if it == 1 and pnorm < delta:
                    delta = pnorm
            # a trial point equal to the last one evaluated (the step vanished in
            # rounding) reuses its residuals, still in wa4, as SciPy's wrapper does;
            # it counts in nfev as in MINPACK
            same = True
            for j in range(n):
                if wa2[j] != xlast[j]:
                    same = False
                    break
            if not same:
                _fun_into(fun, wa2, n, m, wa4)
                memcpy(xlast, wa2, n * sizeof(double))
            nfev += 1
            with nogil:
                fnorm1 = enorm(m, wa4)
                if not isfinite(fnorm1):
                    fnorm1 = INFINITY
                actred = -1.0
                if 0.1 * fnorm1 < fnorm:
                    actred = 1.0 - (fnorm1 / fnorm) * (fnorm1 / fnorm)
                # predicted reduction: ||R P^T p||^2 + 2 par ||D p||^2, relative to ||f||^2
                for j in range(n):
                    wa3[j] = 0.0
                    t = wa1[ipvt[j]]
                    for i in range(j + 1):
                        wa3[i] += A[i + j * m] * t
                temp1 = enorm(n, wa3) / fnorm
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
                    memcpy(f, wa4, m * sizeof(double))
                    xnorm = enorm(n, wa2)
                    fnorm = fnorm1
                    it += 1
                # convergence tests (MINPACK's order: a later test overrides)
                if fabs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0:
                    info = 1
                if delta <= xtol * xnorm:
                    info = 3 if info == 1 else 2
            if accepted and callback is not None and info == 0:
                if callback(_new_vec(n, x), _new_vec(m, f)):
                    info = -2
            if info != 0:
                break
            if nfev >= max_nfev:
                info = 5
            if fabs(actred) <= EPSMCH and prered <= EPSMCH and 0.5 * ratio <= 1.0:
                info = 6
            if delta <= EPSMCH * xnorm:
                info = 7
            if gnorm <= EPSMCH:
                info = 8
            if info != 0 or accepted:
                break
        if info != 0:
            break
    for j in range(n):
        if xjac[j] != x[j]:
            return x_arr, f_arr, info, nfev, njev, it - 1, None
    return x_arr, f_arr, info, nfev, njev, it - 1, Jkeep_arr.T


# ---------------------------------------------------------------------------
# The Gauss-Newton loop
# ---------------------------------------------------------------------------
cdef double _rho_rows(object rho, object f_arr, Py_ssize_t m, double* r1,
                      double* r2) except? -1.0:
    """Call the loss ``rho(f) -> (3, m)`` (rho, rho', rho''); copy rows 1 and 2 and
    return the cost ``0.5 * sum(rho)``."""
    cdef cnp.ndarray R = np.ascontiguousarray(rho(f_arr), dtype=np.float64)
    cdef const double* src
    cdef Py_ssize_t i
    cdef double acc = 0.0
    if R.ndim != 2 or R.shape[0] != 3 or R.shape[1] != m:
        raise ValueError(f"loss must return an array of shape (3, {m}), got "
                         f"{np.shape(R)}")
    src = <const double*> cnp.PyArray_DATA(R)
    for i in range(m):
        acc += src[i]
    memcpy(r1, src + m, m * sizeof(double))
    memcpy(r2, src + 2 * m, m * sizeof(double))
    return 0.5 * acc


def gn_solve(prob_f, prob_J, double[::1] x0, double[::1] f0, J0, rho, double ftol,
             double xtol, double gtol, Py_ssize_t max_nfev, Py_ssize_t nfev0, xscale,
             callback, int verbose, double c1):
    """Gauss-Newton with Armijo backtracking on the cost (Nocedal & Wright,
    *Numerical Optimization*, 2nd ed., sections 3.1 and 10.3), the whole loop here.

    Each iteration: IRLS rescaling of ``J, f`` by the loss (Triggs et al. 2000) when
    ``rho`` is given, gradient ``g = J_s^T f_s`` (stop when ``||g||_inf <= gtol``),
    column scaling ``d`` (``1 / ||J_s e_j||`` or ``xscale``), the step
    ``p = d argmin ||J_s d q + f_s||`` by pivoted QR with a rank cut (``-g`` if that
    is no descent direction), then halving ``t`` from 1 until
    ``cost(x + t p) <= cost + c1 t g.p``.  Python is called only for ``prob_f(x) ->
    f`` (validated residuals), ``prob_J(x, f) -> J`` (validated dense Jacobian or
    finite differences), ``rho(f) -> (3, m)`` and the callback.

    Parameters
    ----------
    prob_f, prob_J : callables of the driver (they count nfev / njev)
    J0 : ndarray (m, n), the Jacobian at ``x0``
    rho : callable or None (linear loss)
    nfev0 : evaluations already made (``f0``)
    xscale : ndarray (n,) or None (``x_scale="jac"``)
    callback : callable ``callback(x, f, cost) -> bool`` or None; True stops.

    Returns
    -------
    x, f, J, cost, status, nit, nfev
        ``J`` is the (unscaled) Jacobian at ``x``; ``status`` is SciPy's:
        0 max_nfev, 1 gtol, 2 ftol, 3 xtol, 4 ftol and xtol, -2 callback.
    """
    cdef int n = x0.shape[0], m = f0.shape[0]
    cdef Py_ssize_t i, j, nfev = nfev0
    cdef int status = L_RUNNING, nit = 0, lwork, rank
    cdef bint linear = rho is None, accepted, ftol_ok, xtol_ok, finite
    cdef double cost, cost_new = 0.0, cost_old = 0.0, dF = 0.0, slope, t, gmax, pn, xn
    cdef double dxn, rcond = EPSMCH * (m if m > n else n), w, dj
    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    J_arr = np.empty((n, m))            # its buffer is J column-major (J = J_arr.T)
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    cdef double* Jc = <double*> cnp.PyArray_DATA(J_arr)
    lwork = qr_lwork(m, n)
    work_arr = np.empty(2 * m * n + 5 * m + 9 * n + lwork)
    cdef double* A = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* Js = A + m * n
    cdef double* fs = Js + m * n
    cdef double* c = fs + m
    cdef double* r1 = c + m
    cdef double* r2 = r1 + m
    cdef double* wrow = r2 + m
    cdef double* g = wrow + m
    cdef double* d = g + n
    cdef double* p = d + n
    cdef double* ps = p + n
    cdef double* z = ps + n
    cdef double* tau = z + n
    cdef double* xnew = tau + n
    cdef double* dxs = xnew + n
    cdef double* xs = dxs + n
    cdef double* qwork = xs + n
    jpvt_arr = np.zeros(max(n, 1), dtype=np.intc)
    cdef int* jpvt = <int*> cnp.PyArray_DATA(jpvt_arr)
    cdef double[::1] xsv
    cdef cnp.ndarray fn_arr
    if xscale is not None:
        xsv = np.ascontiguousarray(xscale, dtype=np.float64)
        for j in range(n):
            xs[j] = xsv[j]
    _jac_copy(J0, m, n, Jc)
    if linear:
        cost = 0.5 * dot_seq(f, f, m)
    else:
        cost = _rho_rows(rho, f_arr, m, r1, r2)
    while True:
        with nogil:
            # ---- IRLS rescaling, gradient (scratch row: c, rewritten below), column scaling
            _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
            gmax = 0.0
            for j in range(n):
                if fabs(g[j]) > gmax:
                    gmax = fabs(g[j])
        if gmax <= gtol:
            status = L_GTOL
            break
        with nogil:
            if xscale is None:
                enorm_cols(m, n, Js, d)
                for j in range(n):
                    d[j] = 1.0 / d[j] if d[j] != 0.0 else INFINITY
            else:
                memcpy(d, xs, n * sizeof(double))
            for j in range(n):
                dj = d[j]
                if not (isfinite(dj) and dj > 0.0):
                    d[j] = 1.0
                    dj = 1.0
                for i in range(m):
                    A[i + j * m] = Js[i + j * m] * dj
            memcpy(c, fs, m * sizeof(double))
            # ---- Gauss-Newton step (pivoted QR, rank cut)
            rank = qr_lstsq_c(m, n, A, c, jpvt, tau, qwork, lwork, z, ps, rcond)
            for j in range(n):
                p[j] = d[j] * ps[j]
            slope = dot_seq(g, p, n)
            if not slope < 0.0:          # not a descent direction (rank loss): use -g
                for j in range(n):
                    p[j] = -g[j]
                slope = -dot_seq(g, g, n)
            pn = enorm(n, p)
            xn = enorm(n, x)
        # ---- Armijo backtracking
        t = 1.0
        while True:
            for j in range(n):
                xnew[j] = x[j] + t * p[j]
            fn_arr = prob_f(_new_vec(n, xnew))
            nfev += 1
            if <Py_ssize_t> cnp.PyArray_DIMS(fn_arr)[0] != m:
                raise ValueError(f"fun returned {fn_arr.shape[0]} residuals, expected {m}")
            fn_arr = np.ascontiguousarray(fn_arr, dtype=np.float64)
            finite = all_finite(<const double*> cnp.PyArray_DATA(fn_arr), m)
            if not finite:
                cost_new = INFINITY
            elif linear:
                cost_new = 0.5 * dot_seq(<const double*> cnp.PyArray_DATA(fn_arr),
                                         <const double*> cnp.PyArray_DATA(fn_arr), m)
            else:
                cost_new = _rho_rows(rho, fn_arr, m, wrow, wrow)   # rows kept below
            if cost_new <= cost + c1 * t * slope or nfev >= max_nfev:
                break
            t *= 0.5
            if t * pn <= EPSMCH * (1.0 + xn):
                break
        nit += 1
        for j in range(n):
            dxs[j] = xnew[j] - x[j]
        accepted = cost_new < cost
        if accepted:
            dF = cost - cost_new
            cost_old = cost
            memcpy(x, xnew, n * sizeof(double))
            memcpy(f, cnp.PyArray_DATA(fn_arr), m * sizeof(double))
            cost = cost_new
            if not linear:
                _rho_rows(rho, f_arr, m, r1, r2)
            _jac_copy(prob_J(_new_vec(n, x), _new_vec(m, f)), m, n, Jc)
        if verbose == 2:
            print(f"gn it {nit}: cost={cost:.6e} step={t:.3g} nfev={nfev}")
        dxn = enorm(n, dxs)
        ftol_ok = accepted and dF < ftol * cost_old
        # a line search that cannot decrease the cost has shrunk the step to rounding
        xtol_ok = (not accepted and nfev < max_nfev) \
            or dxn < xtol * (xtol + enorm(n, x))
        if ftol_ok and xtol_ok:
            status = L_FTOL_XTOL
        elif ftol_ok:
            status = L_FTOL
        elif xtol_ok:
            status = L_XTOL
        elif nfev >= max_nfev:
            status = L_MAXFEV
        if status != L_RUNNING:
            break
        if callback is not None and callback(_new_vec(n, x), _new_vec(m, f), cost):
            status = L_CALLBACK
            break
    return x_arr, f_arr, J_arr.T, cost, status, nit, nfev


# ---------------------------------------------------------------------------
# The trust-region reflective loop (dense Jacobians)
# ---------------------------------------------------------------------------
# (the step, _select_step and its pieces: _lsq_steps.pxd)


cdef inline double _irls_weight(double f, double r1, double r2) noexcept nogil:
    """Row weight of the IRLS rescaling by a robust loss,
    ``sqrt(max(rho' + 2 rho'' f^2, eps))`` (Triggs et al. 2000, as SciPy's trf)."""
    cdef double w = r1 + 2.0 * r2 * f * f
    if w < EPSMCH:
        w = EPSMCH
    return sqrt(w)


def loss_weights(const double[::1] f, const double[:, ::1] rho):
    """``(w, fs)``: the IRLS row weights and rescaled residuals ``rho' f / w`` for
    ``rho`` rows ``(rho, rho', rho'')`` at the residuals ``f`` (the rule of
    :func:`_loss_scale`, for the Python paths: sparse and operator Jacobians)."""
    cdef Py_ssize_t i, m = f.shape[0]
    if rho.shape[0] != 3 or rho.shape[1] != m:
        raise ValueError(f"rho must have shape (3, {m})")
    w = np.empty(m)
    fs = np.empty(m)
    cdef double[::1] wv = w, fv = fs
    with nogil:
        for i in range(m):
            wv[i] = _irls_weight(f[i], rho[1, i], rho[2, i])
            fv[i] = f[i] * (rho[1, i] / wv[i])
    return w, fs


cdef void _loss_scale(Py_ssize_t m, Py_ssize_t n, bint linear, const double* J,
                      const double* f, const double* r1, const double* r2, double* Js,
                      double* fs, double* g) noexcept nogil:
    """IRLS rescaling by the loss (``Js = w J``, ``fs = rho' f / w``,
    ``w = sqrt(max(rho' + 2 rho'' f^2, eps))``) and the gradient ``g = Js^T fs``."""
    cdef Py_ssize_t i, j
    cdef double w
    cdef double* wrow = fs + m          # scratch row after fs (m more doubles)
    if linear:
        memcpy(Js, J, m * n * sizeof(double))
        memcpy(fs, f, m * sizeof(double))
    else:
        for i in range(m):
            w = _irls_weight(f[i], r1[i], r2[i])
            wrow[i] = w
            fs[i] = f[i] * (r1[i] / w)
        for j in range(n):
            for i in range(m):
                Js[i + j * m] = J[i + j * m] * wrow[i]
    for j in range(n):
        g[j] = dot_seq(Js + j * m, fs, m)


def trf_solve(fun, jac, fdjac, double[::1] x0, double[::1] f0, J0, double[::1] lb_,
              double[::1] ub_, rho, double ftol, double xtol, double gtol,
              Py_ssize_t max_nfev, Py_ssize_t nfev0, xscale, callback, int verbose):
    """Trust-region reflective (Branch, Coleman & Li, SIAM J. Sci. Comput. 21(1),
    1999) for dense Jacobians, the whole loop here.

    Each outer iteration: loss rescaling of ``J, f`` (Triggs et al. 2000), gradient
    ``g``, Coleman-Li scaling ``v, dv``, the scaled problem ``Jh = Js diag(d)``,
    ``d = sqrt(v) / scale_inv``, ``diag_h = g dv / scale_inv``; the augmented matrix
    ``[Jh; diag(sqrt(diag_h))]`` is factored once (LAPACK ``dgeqp3``) and Moré's
    LM-parameter search (:func:`lmpar`) solves the trust-region subproblem for every
    radius the inner loop tries; with bounds the step is chosen by
    :func:`_select_step` and kept strictly feasible.  Python is called only for
    ``fun(x) -> f``, ``jac(x) -> J`` (or ``fdjac(x, f) -> J``), the loss ``rho(f) ->
    (3, m)`` and the callback.

    Parameters
    ----------
    fun : callable, the user's residuals (validated and copied here)
    jac : callable ``jac(x) -> (m, n)`` or None
    fdjac : callable ``fdjac(x, f) -> (m, n)`` (finite differences) used when ``jac``
        is None
    J0 : ndarray (m, n), the validated Jacobian at ``x0``
    lb_, ub_ : bounds (``-inf``/``inf`` where absent); ``x0`` strictly inside
    rho : callable or None (linear loss)
    nfev0 : evaluations already made
    xscale : ndarray (n,) or None (``x_scale="jac"``)
    callback : callable ``callback(x, f, cost) -> bool`` or None; True stops.

    Returns
    -------
    x, f, Js, g, cost, optimality, status, nit, nfev, njev
        ``Js`` and ``g`` are the loss-scaled Jacobian and gradient at ``x``,
        ``optimality = ||g v||_inf``; ``status`` is SciPy's (-2 callback, 0
        max_nfev, 1 gtol, 2 ftol, 3 xtol, 4 ftol and xtol).
    """
    cdef int n = x0.shape[0], m = f0.shape[0], ma = m + n, lwork
    cdef Py_ssize_t i, j, nfev = nfev0, njev = 1
    cdef int status = L_RUNNING, nit = 0
    cdef bint linear = rho is None, bounded = False, jac_scale = xscale is None
    cdef bint finite, ftol_ok, xtol_ok, moved
    cdef double cost, cost_new = 0.0, delta, g_norm, theta, actual, predicted, ratio
    cdef double step_norm, dx_norm, t, par
    for j in range(n):
        if isfinite(lb_[j]) or isfinite(ub_[j]):
            bounded = True
    x_arr = _new_vec(n, &x0[0])
    f_arr = _new_vec(m, &f0[0])
    fn_arr = np.empty(m)
    J_arr = np.empty((n, m))            # buffers column-major: J = J_arr.T
    Js_arr = np.empty((n, m))
    cdef double* x = <double*> cnp.PyArray_DATA(x_arr)
    cdef double* f = <double*> cnp.PyArray_DATA(f_arr)
    cdef double* fn = <double*> cnp.PyArray_DATA(fn_arr)
    cdef double* Jc = <double*> cnp.PyArray_DATA(J_arr)
    cdef double* Js = <double*> cnp.PyArray_DATA(Js_arr)
    lwork = qr_lwork(ma, n)
    work_arr = np.empty(m * n + ma * n + ma + 6 * m + n * n + 26 * n + lwork)
    cdef double* Jh = <double*> cnp.PyArray_DATA(work_arr)
    cdef double* Aug = Jh + m * n
    cdef double* qtc = Aug + ma * n
    cdef double* fs = qtc + ma          # fs, then its scratch row (2 m)
    cdef double* r1 = fs + 2 * m
    cdef double* r2 = r1 + m
    cdef double* mw1 = r2 + m
    cdef double* mw2 = mw1 + m
    cdef double* S = mw2 + m
    cdef double* lb = S + n * n
    cdef double* ub = lb + n
    cdef double* g = ub + n
    cdef double* scale_inv = g + n
    cdef double* v = scale_inv + n
    cdef double* dv = v + n
    cdef double* d = dv + n
    cdef double* diag_h = d + n
    cdef double* gh = diag_h + n
    cdef double* ones = gh + n
    cdef double* tau = ones + n
    cdef double* p = tau + n
    cdef double* p_h = p + n
    cdef double* xnew = p_h + n
    cdef double* r_h = xnew + n
    cdef double* ag_h = r_h + n
    cdef double* w1 = ag_h + n
    cdef double* w2 = w1 + n
    cdef double* sdiag = w2 + n
    cdef double* wa1 = sdiag + n
    cdef double* wa2 = wa1 + n
    cdef double* wa3 = wa2 + n
    cdef double* xsol = wa3 + n
    cdef double* qwork = xsol + n + 3 * n
    jpvt_arr = np.zeros(max(n, 1), dtype=np.intc)
    cdef int* jpvt = <int*> cnp.PyArray_DATA(jpvt_arr)
    cdef double[::1] xsv
    cdef object Jv
    memcpy(lb, &lb_[0], n * sizeof(double))
    memcpy(ub, &ub_[0], n * sizeof(double))
    for j in range(n):
        ones[j] = 1.0
    if not jac_scale:
        xsv = np.ascontiguousarray(xscale, dtype=np.float64)
        for j in range(n):
            scale_inv[j] = 1.0 / xsv[j]
    _jac_copy(J0, m, n, Jc)
    if linear:
        cost = 0.5 * dot_seq(f, f, m)
    else:
        cost = _rho_rows(rho, f_arr, m, r1, r2)
    with nogil:
        _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
        if jac_scale:
            enorm_cols(m, n, Js, scale_inv)
            for j in range(n):
                if scale_inv[j] == 0.0:
                    scale_inv[j] = 1.0
        if bounded:
            _cl_scaling(n, x, g, lb, ub, v, dv)
        else:
            for j in range(n):
                v[j] = 1.0
                dv[j] = 0.0
        for j in range(n):
            if dv[j] != 0.0:
                v[j] *= scale_inv[j]
            w1[j] = x[j] * scale_inv[j] / sqrt(v[j])
        delta = enorm(n, w1)
        if delta == 0.0:
            delta = 1.0
    while True:
        with nogil:
            if bounded:
                _cl_scaling(n, x, g, lb, ub, v, dv)
            g_norm = 0.0
            for j in range(n):
                t = fabs(g[j] * v[j])
                if t > g_norm:
                    g_norm = t
        if g_norm < gtol:
            status = L_GTOL
        if nfev >= max_nfev and status == L_RUNNING:
            status = L_MAXFEV
        if status != L_RUNNING:
            break
        with nogil:
            for j in range(n):
                # the distance to a bound, in units of the variable's scale
                if dv[j] != 0.0:
                    v[j] *= scale_inv[j]
                d[j] = sqrt(v[j]) / scale_inv[j]
                diag_h[j] = g[j] * dv[j] / scale_inv[j]
                gh[j] = d[j] * g[j]
                for i in range(m):
                    Jh[i + j * m] = Js[i + j * m] * d[j]
            theta = 1.0 - g_norm
            if theta < 0.995:
                theta = 0.995
            # the augmented subproblem matrix [Jh; diag(sqrt(diag_h))] and [fs; 0],
            # factored once for every radius the inner loop tries
            for j in range(n):
                memcpy(Aug + j * ma, Jh + j * m, m * sizeof(double))
                for i in range(n):
                    Aug[m + i + j * ma] = 0.0
                Aug[m + j + j * ma] = sqrt(diag_h[j])
            memcpy(qtc, fs, m * sizeof(double))
            for i in range(n):
                qtc[m + i] = 0.0
            qr_factor(ma, n, Aug, jpvt, tau, qwork, lwork)
            apply_qt(ma, n, Aug, tau, qtc, qwork, lwork)
        actual = -1.0
        while actual <= 0.0 and nfev < max_nfev:
            with nogil:
                par = lmpar(n, Aug, ma, jpvt, ones, qtc, delta, 0.0, xsol, sdiag, S,
                            wa1, wa2, wa3)
                for j in range(n):
                    p_h[j] = -xsol[j]
                    p[j] = d[j] * p_h[j]
                if bounded:
                    predicted = _select_step(m, n, x, Jh, diag_h, gh, p, p_h, d, delta,
                                             lb, ub, theta, r_h, ag_h, w1, w2, mw1, mw2)
                else:
                    predicted = -_model(m, n, Jh, gh, diag_h, p_h, mw1)
                for j in range(n):
                    xnew[j] = x[j] + p[j]
                if bounded:
                    moved = False
                    for j in range(n):
                        if xnew[j] <= lb[j] or xnew[j] >= ub[j]:
                            moved = True
                    if moved:
                        _make_feasible(n, xnew, lb, ub, 0.0)
                    _make_feasible(n, xnew, lb, ub, 1e-10)
            _fun_into(fun, xnew, n, m, fn)
            nfev += 1
            step_norm = enorm(n, p_h)
            if not all_finite(fn, m):
                delta = 0.25 * step_norm
                continue
            if linear:
                cost_new = 0.5 * dot_seq(fn, fn, m)
            else:
                cost_new = _rho_rows(rho, fn_arr, m, r1, r2)
            actual = cost - cost_new
            if predicted > 0.0:
                ratio = actual / predicted
            else:
                ratio = 1.0 if actual > 0.0 else 0.0
            if ratio < 0.25:
                delta = 0.25 * step_norm
            elif ratio > 0.75 and step_norm > 0.95 * delta:
                delta *= 2.0
            for j in range(n):
                w1[j] = xnew[j] - x[j]
            dx_norm = enorm(n, w1)
            ftol_ok = actual >= 0.0 and actual < ftol * cost and ratio > 0.25
            xtol_ok = dx_norm < xtol * (xtol + enorm(n, x))
            if ftol_ok and xtol_ok:
                status = L_FTOL_XTOL
            elif ftol_ok:
                status = L_FTOL
            elif xtol_ok:
                status = L_XTOL
            if status != L_RUNNING:
                break
        nit += 1
        if actual > 0.0:
            memcpy(x, xnew, n * sizeof(double))
            memcpy(f, fn, m * sizeof(double))
            cost = cost_new
            # (with a loss, r1 and r2 hold the rows of this point: the last evaluated)
            if jac is not None:
                _jac_into(jac, _new_vec(n, x), m, n, Jc)
            else:
                Jv = fdjac(_new_vec(n, x), _new_vec(m, f))
                _jac_copy(Jv, m, n, Jc)
            njev += 1
            with nogil:
                _loss_scale(m, n, linear, Jc, f, r1, r2, Js, fs, g)
                if jac_scale:
                    enorm_cols(m, n, Js, w1)
                    for j in range(n):
                        if w1[j] > scale_inv[j]:
                            scale_inv[j] = w1[j]
            if verbose == 2:
                print(f"trf it {nit}: cost={cost:.6e} nfev={nfev}")
            if status == L_RUNNING and callback is not None and \
                    callback(_new_vec(n, x), _new_vec(m, f), cost):
                status = L_CALLBACK
        if status != L_RUNNING:
            break
        if nfev >= max_nfev:
            status = L_MAXFEV
            break
    if bounded:
        _cl_scaling(n, x, g, lb, ub, v, dv)
    g_norm = 0.0
    for j in range(n):
        t = fabs(g[j] * v[j])
        if t > g_norm:
            g_norm = t
    return (x_arr, f_arr, Js_arr.T, _new_vec(n, g), cost, g_norm, status, nit, nfev,
            njev)


# ---------------------------------------------------------------------------
# Helpers for the Python drivers (gn, trf) and for tests
# ---------------------------------------------------------------------------



def qr_lstsq(J, f, double rcond=-1.0):
    """Solve ``min ||J p + f||`` by pivoted QR (dgeqp3); columns with
    ``|R_kk| <= rcond * |R_00|`` are dropped (their components set to 0).

    Returns ``(p, rank)``.  ``rcond < 0`` means ``eps * max(m, n)``.
    """
    cdef cnp.ndarray Af = np.array(J, dtype=np.float64, order="F", copy=True)
    if Af.ndim != 2:
        raise ValueError(f"J must be a 2-D array, got shape {np.shape(Af)}")
    cdef int m = Af.shape[0], n = Af.shape[1], lwork, rank
    fa = np.asarray(f, dtype=np.float64)
    if fa.shape != (m,):
        raise ValueError(f"f must have shape ({m},), got {fa.shape}")
    if not (np.isfinite(Af).all() and np.isfinite(fa).all()):
        raise ValueError("J and f must be finite")
    if rcond < 0:
        rcond = EPSMCH * max(m, n)
    p = np.zeros(n)
    if n == 0 or m == 0:
        return p, 0
    cdef double[::1, :] A = Af
    cdef double[::1] c = np.array(f, dtype=np.float64, copy=True)
    cdef double[::1] tau = np.empty(max(min(m, n), 1))
    cdef int[::1] jpvt = np.zeros(max(n, 1), dtype=np.intc)
    cdef double[::1] z = np.zeros(max(n, 1))
    cdef double[::1] pv = p
    lwork = qr_lwork(m, n)
    cdef double[::1] work = np.empty(lwork)
    with nogil:
        rank = qr_lstsq_c(m, n, &A[0, 0], &c[0], &jpvt[0], &tau[0], &work[0], lwork,
                          &z[0], &pv[0], rcond)
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


def qrfac_py(J, Py_ssize_t repeat=1):
    """MINPACK-rule pivoted QR of ``J`` (m >= n) by :func:`qrfac` (for tests and
    timing).  Returns ``(a, ipvt, rdiag, acnorm)``: ``a`` the factored matrix
    (column-major, reflectors below the diagonal), ``ipvt`` 0-based.  ``repeat > 1``
    refactors copies of ``J`` that many times (timing only)."""
    cdef cnp.ndarray J0 = np.array(J, dtype=np.float64, order="F", copy=True)
    cdef int m = J0.shape[0], n = J0.shape[1]
    cdef Py_ssize_t r
    if J0.ndim != 2 or m < n or n == 0:
        raise ValueError("J must be a 2-D array with m >= n >= 1")
    a_arr = np.empty((m, n), order="F")
    cdef double[::1, :] a = a_arr
    cdef double[::1, :] src = J0
    cdef int[::1] ipvt = np.empty(n, dtype=np.intc)
    rdiag = np.empty(n)
    acnorm = np.empty(n)
    cdef double[::1] rd = rdiag, ac = acnorm, wa = np.empty(n)
    with nogil:
        for r in range(repeat):
            memcpy(&a[0, 0], &src[0, 0], m * n * sizeof(double))
            qrfac(m, n, &a[0, 0], &ipvt[0], &rd[0], &ac[0], &wa[0], 0)
    return a_arr, np.asarray(ipvt), rdiag, acnorm


def enorm_py(double[::1] x):
    """:func:`enorm` of ``x`` (for tests)."""
    if x.shape[0] == 0:
        return 0.0
    return enorm(x.shape[0], &x[0])
