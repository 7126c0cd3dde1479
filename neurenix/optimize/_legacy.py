"""SciPy's legacy functional interfaces on neurenix's solvers.

``fmin_l_bfgs_b``, ``fmin_bfgs``, ``fmin_cg``, ``fmin_ncg`` (over :func:`minimize`)
and ``leastsq`` (over :func:`least_squares` with ``method="lm"``), with SciPy's
signatures, defaults and return tuples, so that code written against
``scipy.optimize``'s old interfaces (statsmodels' ``fit(method="bfgs")`` and
friends, lmfit's ``leastsq``) runs on neurenix unchanged, e.g. under
:func:`neurenix.patch_scipy`.  No algorithm lives here: each function maps its
arguments to the modern call and its result back to the old tuple.

Finite differences: where SciPy's legacy functions take an absolute step
(``epsilon``), the gradient is formed by forward differences with that absolute
step (SciPy's rule for these functions), and the evaluations are counted in
``funcalls``/``nfev`` as SciPy counts them.
"""
import warnings

import numpy as np
from scipy import linalg

from ._minimize import minimize
from ._lsq import least_squares
from .._core.result import OptimizeResult
from .._ext._lbfgs import gnorm as _gnorm

__all__ = ["fmin_l_bfgs_b", "fmin_bfgs", "fmin_cg", "fmin_ncg", "leastsq"]

#: SciPy's default absolute finite-difference step of the fmin_* functions
_EPSILON = float(np.sqrt(np.finfo(float).eps))


class _Counted:
    """``fun`` with a call counter and a one-point cache (x, f), so that the
    forward-difference gradient reuses ``f(x)`` already computed at ``x``."""

    def __init__(self, fun, args):
        self.fun = fun
        self.args = args
        self.ncalls = 0
        self.x = None
        self.f = None

    def __call__(self, x):
        self.ncalls += 1
        f = self.fun(x, *self.args)
        self.x = np.array(x, copy=True)
        self.f = f
        return f

    def value(self, x):
        if self.x is not None and np.array_equal(self.x, x):
            return self.f
        return self(x)

    def gradient(self, eps):
        """Forward differences with the absolute step ``eps`` (scalar or (n,)):
        ``g_i = (f(x + eps_i e_i) - f(x)) / eps_i``."""
        def grad(x):
            x = np.asarray(x, dtype=float)
            f0 = float(self.value(x))
            h = np.broadcast_to(np.asarray(eps, dtype=float), x.shape)
            g = np.empty(x.size)
            xh = x.copy()
            for i in range(x.size):
                xh[i] = x[i] + h[i]
                g[i] = (float(self(xh)) - f0) / h[i]
                xh[i] = x[i]
            # leave the cache at x (the point the next line search starts from)
            self.x, self.f = x.copy(), f0
            return g
        return grad


def _history(callback, retall, x0):
    """A minimize callback that records the iterates (``retall``) and forwards
    ``xk`` to the legacy ``callback(xk)``; returns (callback or None, list)."""
    allvecs = [np.array(x0, dtype=float, copy=True)] if retall else None
    if callback is None and not retall:
        return None, None

    def cb(xk):
        if retall:
            allvecs.append(np.array(xk, copy=True))
        if callback is not None:
            callback(xk)
    return cb, allvecs


def _report(res, disp, fcalls, gcalls, hcalls=None):
    """SciPy's ``disp`` report of the fmin_* functions."""
    if not disp:
        return
    if res.status != 0:
        warnings.warn(res.message, RuntimeWarning, stacklevel=3)
    else:
        print(res.message)
    print(f"         Current function value: {res.fun:f}")
    print(f"         Iterations: {res.nit:d}")
    print(f"         Function evaluations: {fcalls:d}")
    print(f"         Gradient evaluations: {gcalls:d}")
    if hcalls is not None:
        print(f"         Hessian evaluations: {hcalls:d}")


def _objective(f, fprime, args, epsilon):
    """(fun, jac, counter) for minimize: analytic ``fprime`` or forward
    differences with the absolute step ``epsilon``."""
    counter = _Counted(f, args)
    if fprime is None:
        return counter, counter.gradient(epsilon), counter
    return counter, (lambda x: fprime(x, *args)), counter


def fmin_l_bfgs_b(func, x0, fprime=None, args=(), approx_grad=0, bounds=None, m=10,
                  factr=1e7, pgtol=1e-5, epsilon=1e-8, iprint=None, maxfun=15000,
                  maxiter=15000, disp=None, callback=None, maxls=20):
    """Minimize ``func`` with L-BFGS-B (``scipy.optimize.fmin_l_bfgs_b``'s interface).

    ``fprime=None`` and ``approx_grad=0``: ``func`` returns ``(f, g)``;
    ``approx_grad=1``: forward differences with the absolute step ``epsilon``.
    ``factr`` sets ``ftol = factr * eps``; ``pgtol`` is ``gtol``; ``m`` is
    ``maxcor``.  ``iprint``/``disp`` (SciPy: Fortran progress output, deprecated
    there) are accepted; ``disp > 0`` prints the termination report.

    Returns
    -------
    x : ndarray
    f : float
    d : dict
        ``grad, task, funcalls, nit, warnflag`` (``warnflag`` is SciPy's
        L-BFGS-B status: 0 converged, 1 too many evaluations or iterations,
        2 stopped for another reason; ``task`` is the message).
    """
    x0 = np.asarray(x0).ravel()            # as SciPy's L-BFGS-B
    if approx_grad:
        counter = _Counted(func, args)
        fun, jac = counter, counter.gradient(epsilon)
    elif fprime is None:
        counter = None
        fun, jac = (lambda x: func(x, *args)), True
    else:
        counter = None
        fun, jac = (lambda x: func(x, *args)), (lambda x: fprime(x, *args))
    opts = {"maxcor": m, "ftol": factr * np.finfo(float).eps, "gtol": pgtol,
            "maxfun": maxfun, "maxiter": maxiter, "maxls": maxls}
    res = minimize(fun, x0, jac=jac, bounds=bounds, callback=callback,
                   method="L-BFGS-B", options=opts)
    funcalls = counter.ncalls if counter is not None else res.nfev
    if disp is not None and disp > 0:
        print(res.message)
    d = {"grad": res.jac, "task": res.message, "funcalls": funcalls, "nit": res.nit,
         "warnflag": res.status}
    return res.x, res.fun, d


def _first_then(g0, x0, jac):
    """``jac`` that returns ``g0`` (already computed at ``x0``) on its first call
    at ``x0``, so that the gradient at the start is not evaluated twice."""
    state = [True]

    def grad(x):
        if state[0]:
            state[0] = False
            if np.array_equal(x, x0):
                return g0
        return jac(x)
    return grad


def _fmin_first_order(method, f, x0, fprime, args, gtol, norm, epsilon, maxiter,
                      full_output, disp, retall, callback, c1, c2, **more):
    x0 = np.asarray(x0).flatten()         # SciPy's fmin_* flatten x0
    fun, jac, counter = _objective(f, fprime, args, epsilon)
    if fprime is not None:
        g0 = np.atleast_1d(np.asarray(fprime(x0.copy(), *args)))
        if g0.shape != x0.shape and _gnorm(g0, norm) <= gtol:
            # SciPy tests max|g(x0)| <= gtol before it uses g as a vector, so a
            # gradient of the wrong shape that is small enough ends the run at x0
            res = OptimizeResult(x=x0, fun=float(counter(x0)), jac=g0, nit=0, njev=1,
                                 hess_inv=np.eye(x0.size), status=0,
                                 message="Optimization terminated successfully.")
            _report(res, disp, counter.ncalls, 1)
            return res, counter.ncalls, 1, ([x0.copy()] if retall else None)
        jac = _first_then(g0, x0, jac)
    cb, allvecs = _history(callback, retall, x0)
    opts = {"gtol": gtol, "c1": c1, "c2": c2, **more}
    if norm != np.inf:
        opts["norm"] = norm
    if maxiter is not None:
        opts["maxiter"] = maxiter
    res = minimize(fun, x0, jac=jac, method=method, callback=cb, options=opts)
    fcalls = counter.ncalls
    gcalls = res.njev
    _report(res, disp, fcalls, gcalls)
    return res, fcalls, gcalls, allvecs


def fmin_bfgs(f, x0, fprime=None, args=(), gtol=1e-5, norm=np.inf, epsilon=_EPSILON,
              maxiter=None, full_output=0, disp=1, retall=0, callback=None, xrtol=0,
              c1=1e-4, c2=0.9, hess_inv0=None):
    """Minimize ``f`` with BFGS (``scipy.optimize.fmin_bfgs``'s interface).

    Returns ``xopt`` or, with ``full_output``, ``(xopt, fopt, gopt, Bopt,
    func_calls, grad_calls, warnflag)``; ``retall`` appends the list of
    iterates.
    """
    more = {}
    if xrtol != 0:
        more["xrtol"] = xrtol
    if hess_inv0 is not None:
        more["hess_inv0"] = hess_inv0
    res, fcalls, gcalls, allvecs = _fmin_first_order(
        "BFGS", f, x0, fprime, args, gtol, norm, epsilon, maxiter, full_output, disp,
        retall, callback, c1, c2, **more)
    if full_output:
        out = (res.x, res.fun, res.jac, res.hess_inv, fcalls, gcalls, res.status)
        return out + (allvecs,) if retall else out
    return (res.x, allvecs) if retall else res.x


def fmin_cg(f, x0, fprime=None, args=(), gtol=1e-5, norm=np.inf, epsilon=_EPSILON,
            maxiter=None, full_output=0, disp=1, retall=0, callback=None, c1=1e-4, c2=0.4):
    """Minimize ``f`` with nonlinear conjugate gradients (``scipy.optimize.fmin_cg``).

    Returns ``xopt`` or, with ``full_output``, ``(xopt, fopt, func_calls,
    grad_calls, warnflag)``; ``retall`` appends the list of iterates.
    """
    res, fcalls, gcalls, allvecs = _fmin_first_order(
        "CG", f, x0, fprime, args, gtol, norm, epsilon, maxiter, full_output, disp, retall,
        callback, c1, c2)
    if full_output:
        out = (res.x, res.fun, fcalls, gcalls, res.status)
        return out + (allvecs,) if retall else out
    return (res.x, allvecs) if retall else res.x


def fmin_ncg(f, x0, fprime, fhess_p=None, fhess=None, args=(), avextol=1e-5,
             epsilon=_EPSILON, maxiter=None, full_output=0, disp=1, retall=0, callback=None,
             c1=1e-4, c2=0.9):
    """Minimize ``f`` with Newton-CG (``scipy.optimize.fmin_ncg``'s interface).

    ``avextol`` is Newton-CG's ``xtol``; without ``fhess``/``fhess_p`` the
    Hessian-vector products are forward differences of ``fprime`` with step
    ``epsilon``.  Returns ``xopt`` or, with ``full_output``, ``(xopt, fopt,
    fcalls, gcalls, hcalls, warnflag)``; ``retall`` appends the iterates.
    """
    x0 = np.asarray(x0).flatten()
    counter = _Counted(f, args)
    jac = (lambda x: fprime(x, *args))
    hess = (lambda x: fhess(x, *args)) if fhess is not None else None
    hessp = (lambda x, p: fhess_p(x, p, *args)) if fhess_p is not None and fhess is None \
        else None
    cb, allvecs = _history(callback, retall, x0)
    opts = {"xtol": avextol, "c1": c1, "c2": c2, "eps": epsilon}
    if maxiter is not None:
        opts["maxiter"] = maxiter
    res = minimize(counter, x0, jac=jac, hess=hess, hessp=hessp, method="Newton-CG",
                   callback=cb, options=opts)
    hcalls = res.get("nhev", 0) or 0
    _report(res, disp, counter.ncalls, res.njev, hcalls)
    if full_output:
        out = (res.x, res.fun, counter.ncalls, res.njev, hcalls, res.status)
        return out + (allvecs,) if retall else out
    return (res.x, allvecs) if retall else res.x


def _leastsq_messages(ftol, xtol, gtol, maxfev):
    """MINPACK's ``info`` -> SciPy's message (the contract of ``leastsq``)."""
    return {
        0: "Improper input parameters.",
        1: "Both actual and predicted relative reductions in the sum of squares\n  "
           f"are at most {ftol:f}",
        2: f"The relative error between two consecutive iterates is at most {xtol:f}",
        3: "Both actual and predicted relative reductions in the sum of squares\n  "
           f"are at most {ftol:f} and the relative error between two consecutive "
           f"iterates is at \n  most {xtol:f}",
        4: "The cosine of the angle between func(x) and any column of the\n  Jacobian is "
           f"at most {gtol:f} in absolute value",
        5: f"Number of calls to function has reached maxfev = {maxfev}.",
    }


#: least_squares status -> MINPACK info
_INFO = {0: 5, 1: 4, 2: 1, 3: 2, 4: 3}


def leastsq(func, x0, args=(), Dfun=None, full_output=False, col_deriv=False,
            ftol=1.49012e-8, xtol=1.49012e-8, gtol=0.0, maxfev=0, epsfcn=None, factor=100,
            diag=None):
    """Minimize the sum of squares of ``func(x)`` by Levenberg-Marquardt
    (``scipy.optimize.leastsq``'s interface over :func:`least_squares` with
    ``method="lm"``, the MINPACK iteration).

    Returns ``(x, ier)`` or, with ``full_output``, ``(x, cov_x, infodict, mesg,
    ier)`` where ``infodict`` has ``nfev, fvec, fjac, ipvt, qtf``.

    Deviations from SciPy (documented in ``docs/scipy_compat.md``): ``fjac``,
    ``ipvt``, ``qtf`` and ``cov_x`` come from a pivoted QR (LAPACK) of the
    Jacobian at the solution, where MINPACK's come from its own QR of the
    Jacobian at the last point where one was formed; MINPACK's ``info`` 6-8
    (a tolerance too small) are reported as 1, 2, 4; ``factor`` must be 100
    (neurenix's LM fixes the initial step bound as SciPy's ``least_squares``);
    without ``Dfun``, ``maxfev`` counts the evaluations at trial points
    (``maxfev // (n + 1)`` of them, ``n + 1`` evaluations per forward-difference
    iteration), not each finite-difference evaluation.
    """
    if factor != 100:
        raise ValueError(f"factor: only the default initial step bound factor=100 is "
                         f"supported, got {factor!r}")
    if not isinstance(args, tuple):
        args = (args,)
    x0 = np.asarray(x0).flatten()
    n = x0.size
    if Dfun is None:
        jac = "2-point"
        if maxfev == 0:
            maxfev = 200 * (n + 1)
        max_nfev = max(1, maxfev // (n + 1))
    else:
        if col_deriv:
            jac = lambda x, *a: np.asarray(Dfun(x, *a)).T  # noqa: E731
        else:
            jac = Dfun
        if maxfev == 0:
            maxfev = 100 * (n + 1)
        max_nfev = maxfev
    # SciPy checks the output's shape with one call at x0 before MINPACK starts
    # (a call client code can see in its own counters, as lmfit's nfev)
    f0 = np.atleast_1d(np.asarray(func(x0.copy(), *args), dtype=float))
    if n > f0.size:
        raise TypeError(f"Improper input: func input vector length N={n} must not exceed "
                        f"func output vector length M={f0.size}")
    if n == 0:
        return _leastsq_degenerate(x0, f0, n, full_output, ftol, xtol, gtol, maxfev)
    diff_step = None if epsfcn is None else float(np.sqrt(max(epsfcn, np.finfo(float).eps)))
    x_scale = "jac" if diag is None else 1.0 / np.asarray(diag, dtype=float)
    try:
        res = _lm(func, x0, jac, ftol, xtol, gtol, max_nfev, diff_step, x_scale, args)
    except ValueError as e:
        if "not finite" not in str(e):
            raise
        if np.all(np.isfinite(f0)):
            raise
        return _leastsq_degenerate(x0, f0, n, full_output, ftol, xtol, gtol, maxfev)
    info = _INFO.get(int(res.status), 0)
    mesg = _leastsq_messages(ftol, xtol, gtol, maxfev)[info]
    if not full_output:
        if info == 5:
            warnings.warn(mesg, RuntimeWarning, stacklevel=2)
        return res.x, info
    J = np.asarray(res.jac, dtype=float)
    qr, tau, piv = _pivoted_qr(J)
    fvec = np.asarray(res.fun, dtype=float)
    q_t_f = _apply_qt(qr, tau, fvec)[:n]
    cov_x = None
    if info in (1, 2, 3, 4):
        r = np.triu(qr[:n, :])
        try:
            invR, trtri_info = linalg.lapack.dtrtri(r)
            if trtri_info != 0:
                raise linalg.LinAlgError(f"trtri returned info {trtri_info}")
            invR[piv] = invR.copy()
            cov_x = invR @ invR.T
        except (linalg.LinAlgError, ValueError):
            cov_x = None
    # MINPACK counts the finite-difference evaluations too: n per Jacobian, one
    # Jacobian per iteration
    nfev = int(res.nfev) + (n * int(res.nit) if Dfun is None else 0)
    infodict = {"fvec": fvec, "nfev": nfev, "fjac": np.ascontiguousarray(qr.T),
                "ipvt": piv.astype(np.int32), "qtf": q_t_f}
    if Dfun is not None:
        infodict["njev"] = res.njev
    return res.x, cov_x, infodict, mesg, info


def _lm(func, x0, jac, ftol, xtol, gtol, max_nfev, diff_step, x_scale, args):
    # SciPy's leastsq default gtol=0 disables the gradient test: None here
    return least_squares(func, x0, jac=jac, method="lm", ftol=ftol, xtol=xtol,
                         gtol=gtol if gtol else None, max_nfev=max_nfev,
                         diff_step=diff_step, x_scale=x_scale, args=args)


def _leastsq_degenerate(x0, f0, n, full_output, ftol, xtol, gtol, maxfev):
    """SciPy's (MINPACK's) outcome where there is nothing to iterate: no variable
    (``info`` 0, "Improper input parameters.") or non-finite residuals at ``x0``
    (MINPACK's tests all fail on NaN and it stops with ``info`` 4 at ``x0``)."""
    m = f0.size
    info = 0 if n == 0 else 4
    mesg = _leastsq_messages(ftol, xtol, gtol, maxfev)[info]
    if not full_output:
        if info == 0:
            raise TypeError(mesg)
        return x0, info
    if n == 0:
        infodict = {"fvec": f0, "nfev": 0, "fjac": np.empty((0, m)),
                    "ipvt": np.empty(0, dtype=np.int32), "qtf": np.empty(0)}
        return x0, None, infodict, mesg, info
    infodict = {"fvec": f0, "nfev": 1 + n, "fjac": np.full((n, m), np.nan),
                "ipvt": np.arange(n, dtype=np.int32), "qtf": np.full(n, np.nan)}
    return x0, np.full((n, n), np.nan), infodict, mesg, info


def _pivoted_qr(J):
    """LAPACK ``dgeqp3``: ``(qr, tau, piv)`` with R in the upper triangle of
    ``qr`` and the Householder vectors below it; ``piv`` 0-based."""
    (qr, tau), _, piv = linalg.qr(J, mode="raw", pivoting=True)
    return np.asarray(qr), np.asarray(tau), np.asarray(piv)


def _apply_qt(qr, tau, f):
    """``Q^T f`` from the Householder representation (LAPACK ``dormqr``)."""
    ormqr = linalg.get_lapack_funcs("ormqr", (qr,))
    m, n = qr.shape
    k = min(m, n)
    out, _, info = ormqr("L", "T", qr[:, :k], tau[:k], f.reshape(-1, 1).copy(),
                         max(1, f.size * 2), overwrite_c=True)
    return out.ravel()
