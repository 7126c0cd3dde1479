"""Nonlinear least squares: ``least_squares`` (Levenberg-Marquardt, Gauss-Newton,
trust-region reflective), robust losses, and ``curve_fit``.

Algorithms
----------
``"lm"``
    Levenberg-Marquardt with Moré's scaling and trust-region control (J. J. Moré,
    "The Levenberg-Marquardt algorithm: implementation and theory", Lecture Notes
    in Mathematics 630, 1978): the iteration of MINPACK's ``lmder``, with its QR
    pivoting and norm accumulation reproduced so that the trial points (hence
    ``nfev``) equal SciPy's ``lm`` to the last bit while residuals stay finite.  The whole loop runs in Cython
    (:func:`neurenix._ext._lsq.lm_solve`) over LAPACK; Python is called only for the
    residuals, the Jacobian and the callback.
``"gn"``
    Gauss-Newton with a backtracking (Armijo) line search on the cost; the step
    solves ``min ||J p + f||`` by QR with column pivoting (LAPACK ``dgeqp3`` in
    Cython, :func:`neurenix._ext._lsq.qr_lstsq`), dropping columns whose pivot falls
    below ``eps * max(m, n) * |R_00|`` (Nocedal & Wright, *Numerical Optimization*,
    2nd ed., section 10.3).
``"trf"``
    Trust-region reflective for bound constraints (M. A. Branch, T. F. Coleman and
    Y. Li, "A subspace, interior, and conjugate gradient method for large-scale
    bound-constrained minimization problems", SIAM J. Sci. Comput. 21(1), 1999):
    Coleman-Li scaling ``v(x)`` (in units of ``x_scale`` where a bound is active,
    as SciPy), the augmented trust-region subproblem solved by Moré's LM-parameter
    search, reflection of the step on the first bound it hits, and the choice
    between the truncated, reflected and Cauchy steps by the quadratic model.  For
    dense Jacobians the whole loop runs in Cython
    (:func:`neurenix._ext._lsq.trf_solve`; the augmented matrix is factored once per
    Jacobian and reused for every radius); Python is called for the residuals, the
    Jacobian, the loss and the callback.  A sparse matrix or ``LinearOperator``
    Jacobian runs the same iteration in Python (:func:`_solve_trf_py`) with the
    subproblem by LSMR (Fong & Saunders 2011, ``scipy.sparse.linalg.lsmr``) for the
    Gauss-Newton direction and a 2-D subspace trust-region solve (Byrd, Schnabel &
    Shultz 1988).

Robust losses follow SciPy's conventions: ``rho(z)`` with ``z = (f / f_scale)**2``,
cost ``0.5 * f_scale**2 * sum(rho(z))``, and the IRLS-style rescaling of residuals
and Jacobian by ``sqrt(rho' + 2 rho'' f**2)`` (Triggs et al., "Bundle adjustment —
a modern synthesis", 2000, section 4.3).

``status`` keeps SciPy's integers: -2 callback stop, -1 bad input, 0 ``max_nfev``,
1 ``gtol``, 2 ``ftol``, 3 ``xtol``, 4 ``ftol`` and ``xtol``; ``success`` is
``status > 0``.
"""
import math
import numbers
import warnings

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, aslinearoperator, lsmr

from .._ext import _lsq as _k
from .._core.objective import as_float_array
from .._core.result import OptimizeResult, LSQ_MESSAGES

__all__ = ["least_squares", "curve_fit", "LSQ_MESSAGES", "_minimize_gauss_newton"]

EPS = np.finfo(float).eps

# MINPACK's info -> SciPy's least_squares status (6/7/8: the same tests hit at
# machine precision)
_FROM_MINPACK = {1: 2, 2: 3, 3: 4, 4: 1, 5: 0, 6: 2, 7: 3, 8: 1, -2: -2}

_METHODS = ("lm", "gn", "trf")


# ---------------------------------------------------------------------------
# Robust losses: rho(z), rho'(z), rho''(z) at z = f**2 (rows 0, 1, 2)
# ---------------------------------------------------------------------------
def _linear(z):
    return np.vstack((z, np.ones_like(z), np.zeros_like(z)))


def _soft_l1(z):
    t = 1.0 + z
    s = np.sqrt(t)
    return np.vstack((2.0 * (s - 1.0), 1.0 / s, -0.5 / (t * s)))


def _huber(z):
    out = np.empty((3, z.size))
    small = z <= 1.0
    big = ~small
    out[0, small] = z[small]
    out[1, small] = 1.0
    out[2, small] = 0.0
    sz = np.sqrt(z[big])
    out[0, big] = 2.0 * sz - 1.0
    out[1, big] = 1.0 / sz
    out[2, big] = -0.5 / (z[big] * sz)
    return out


def _cauchy(z):
    t = 1.0 + z
    return np.vstack((np.log1p(z), 1.0 / t, -1.0 / (t * t)))


def _arctan(z):
    t = 1.0 + z * z
    return np.vstack((np.arctan(z), 1.0 / t, -2.0 * z / (t * t)))


LOSSES = {"linear": _linear, "soft_l1": _soft_l1, "huber": _huber, "cauchy": _cauchy,
          "arctan": _arctan}


class _Loss:
    """``rho`` scaled by ``f_scale`` (SciPy's conventions)."""

    def __init__(self, loss, f_scale, m):
        self.linear = loss == "linear"
        self.fn = LOSSES[loss] if isinstance(loss, str) else loss
        self.callable = not isinstance(loss, str)
        self.c = float(f_scale)
        self.m = m

    def __call__(self, f):
        """Return rows (f_scale**2 rho, rho', rho'' / f_scale**2) at z=(f/f_scale)**2."""
        z = (f / self.c) ** 2
        r = self.fn(z)
        if self.callable:
            r = np.asarray(r, dtype=np.float64)
            if r.shape != (3, self.m):
                raise ValueError(f"loss must return an array of shape (3, {self.m}), got "
                                 f"{r.shape}")
        r = np.array(r, dtype=np.float64)
        r[0] *= self.c ** 2
        r[2] /= self.c ** 2
        return r

    def cost(self, f):
        if self.linear:
            return 0.5 * float(f @ f)
        return 0.5 * float(np.sum(self(f)[0]))


def _scale_for_loss(J, f, rho):
    """IRLS rescaling: J <- w J, f <- rho' f / w, w = sqrt(max(rho'+2 rho'' f^2, eps))
    (the weights by the compiled loops' rule, :func:`neurenix._ext._lsq.loss_weights`)."""
    w, fs = _k.loss_weights(np.ascontiguousarray(f, dtype=np.float64),
                            np.ascontiguousarray(rho, dtype=np.float64))
    if isinstance(J, LinearOperator):
        Js = _row_scaled(J, w)
    elif sparse.issparse(J):
        Js = sparse.diags(w) @ J
    else:
        Js = J * w[:, None]
    return Js, fs


def _row_scaled(A, w):
    return LinearOperator(A.shape, matvec=lambda v: w * A.matvec(v),
                          rmatvec=lambda v: A.rmatvec(w * v), dtype=float)


def _col_scaled(A, d):
    return LinearOperator(A.shape, matvec=lambda v: A.matvec(d * v),
                          rmatvec=lambda v: d * A.rmatvec(v), dtype=float)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------
def _check_tol(value, name):
    if value is None:
        return 0.0
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a finite real number or None, got {value!r}")
    if not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if value < EPS:
        warnings.warn(f"{name}={value!r} is below machine epsilon; the corresponding "
                      "termination test is effectively disabled", stacklevel=3)
    return float(value)


def _prepare_bounds(bounds, n):
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2:
        lb, ub = bounds
    elif hasattr(bounds, "lb") and hasattr(bounds, "ub"):   # scipy.optimize.Bounds
        lb, ub = bounds.lb, bounds.ub
    else:
        raise ValueError("bounds must be a pair (lb, ub) or a Bounds object, got "
                         f"{bounds!r}")
    if isinstance(lb, numbers.Real) and isinstance(ub, numbers.Real):
        # scalar bounds (the default (-inf, inf) among them): no array conversions
        lbf, ubf = float(lb), float(ub)
        if math.isnan(lbf) or math.isnan(ubf):
            raise ValueError("bounds must not contain NaN")
        if lbf >= ubf:
            raise ValueError("bounds: each lower bound must be strictly less than its "
                             "upper bound")
        return np.full(n, lbf), np.full(n, ubf)
    try:
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)).copy()
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)).copy()
    except (ValueError, TypeError):
        raise ValueError(f"bounds: each of lb, ub must be a scalar or have shape ({n},)") \
            from None
    if np.isnan(lb).any() or np.isnan(ub).any():
        raise ValueError("bounds must not contain NaN")
    if (lb >= ub).any():
        raise ValueError("bounds: each lower bound must be strictly less than its upper "
                         "bound")
    return lb, ub


def _as_x0(x0):
    """x0 validated like every solver's (``_objective.as_float_array``), as float64:
    least_squares works in float64 throughout, as SciPy's does."""
    x = as_float_array(x0)
    if x.dtype != np.float64:
        x = x.astype(np.float64)
    if x.size == 0:
        raise ValueError("x0 must have at least one element")
    return x


def _wrap(fn, args, kwargs):
    if not args and not kwargs:
        return fn
    return lambda x: fn(x, *args, **kwargs)


def _residuals(fun, x, m=None, where="x0"):
    f = fun(x)
    if not (type(f) is np.ndarray and f.dtype == np.float64 and f.ndim == 1):
        f = np.asarray(f, dtype=np.float64)
        if f.ndim > 1:
            raise ValueError(f"fun must return at most 1-D array_like, got shape {f.shape}")
        f = np.atleast_1d(f)
    if m is not None and f.size != m:
        raise ValueError(f"fun returned {f.size} residuals, expected {m}")
    return f


# ---------------------------------------------------------------------------
# least_squares
# ---------------------------------------------------------------------------
def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="lm",
                  ftol=1e-8, xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear",
                  f_scale=1.0, max_nfev=None, diff_step=None, args=(), kwargs=None,
                  callback=None, verbose=0):
    """Solve a nonlinear least-squares problem ``min 0.5 * sum(rho(f_i(x)**2))``.

    SciPy's signature and semantics (``scipy.optimize.least_squares``); the
    default method here is ``"lm"`` as the project's interface specifies (SciPy's
    default is ``"trf"``).

    Parameters
    ----------
    fun : callable ``fun(x, *args, **kwargs) -> array_like, shape (m,)``
        Residuals.
    x0 : array_like, shape (n,)
        Starting point (computed in float64, as SciPy does).
    jac : {"2-point", "3-point", "cs"} or callable
        Jacobian: finite differences (SciPy's step rule), complex step, or
        ``jac(x, *args, **kwargs) -> (m, n)`` array; for ``"trf"`` also a sparse
        matrix or ``LinearOperator`` (then the subproblem uses LSMR).
    bounds : (lb, ub) or Bounds
        Only ``"trf"`` handles bounds; ``x0`` must lie inside them.
    method : {"lm", "gn", "trf"}
    ftol, xtol, gtol : float or None
        Termination tolerances (None disables a test; not all may be None for lm).
        ``lm``: MINPACK's tests. ``gn``/``trf``: ``dF < ftol * F`` (with a good
        model agreement), ``||dx|| < xtol * (xtol + ||x||)``, ``||g||_inf < gtol``
        (``trf``: the Coleman-Li scaled gradient).
    x_scale : None, array_like or "jac"
        Characteristic scale of each variable. None: ``"jac"`` for ``lm`` (Moré's
        scaling) and ``1`` for ``trf`` and ``gn``, as in SciPy >= 1.16.
    loss : {"linear", "soft_l1", "huber", "cauchy", "arctan"} or callable
        ``rho(z)``; a callable takes ``z`` (m,) and returns ``(3, m)``: rho, rho', rho''.
        ``lm`` supports only ``"linear"`` (as in SciPy).
    f_scale : float
        Soft margin between inlier and outlier residuals (> 0).
    max_nfev : int, optional
        Limit on residual evaluations (finite-difference evaluations not counted,
        as in SciPy 1.17's ``lm``).  Default ``100 * n``.
    diff_step : array_like, optional
        Relative finite-difference step.
    args, kwargs : extra arguments of ``fun`` and ``jac``.
    callback : callable ``callback(intermediate_result)``, optional
        Called after every accepted step with an :class:`OptimizeResult` holding
        ``x`` and ``cost``; raising ``StopIteration`` or returning True stops
        (``status = -2``).
    verbose : {0, 1, 2}
        1 prints the termination report, 2 also one line per iteration (gn, trf).

    Returns
    -------
    OptimizeResult
        ``x, cost, fun, jac, grad, optimality, active_mask, nfev, njev, nit,
        status, message, success``.  ``lm``: ``nfev`` counts as MINPACK (the
        evaluation at ``x0`` plus one per trial point; a trial point equal to the
        previous one reuses its residuals, as in SciPy), ``njev`` every ``jac``
        call including the one at the solution for ``jac`` (SciPy's ``lm`` omits
        that one from its count).

    References
    ----------
    .. [1] J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and
       theory", Lecture Notes in Mathematics 630, Springer, 1978, pp. 105-116.
    .. [2] M. A. Branch, T. F. Coleman, Y. Li, "A subspace, interior, and conjugate
       gradient method for large-scale bound-constrained minimization problems",
       SIAM J. Sci. Comput. 21(1), 1999, pp. 1-23.
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    method = method.lower()
    if kwargs is None:
        kwargs = {}
    if not isinstance(args, tuple):
        args = (args,)
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict, got {type(kwargs).__name__}")
    if not (callable(jac) or jac in ("2-point", "3-point", "cs")):
        raise ValueError(f"jac must be '2-point', '3-point', 'cs' or a callable, got {jac!r}")
    if not (callable(loss) or loss in LOSSES):
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable, got {loss!r}")
    if type(f_scale) is not float and (isinstance(f_scale, bool)
                                       or not isinstance(f_scale, numbers.Real)) \
            or not math.isfinite(f_scale) or f_scale <= 0:
        raise ValueError(f"f_scale must be a positive finite number, got {f_scale!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    ftol = _check_tol(ftol, "ftol")
    xtol = _check_tol(xtol, "xtol")
    gtol = _check_tol(gtol, "gtol")
    if method == "lm" and ftol < EPS and xtol < EPS and gtol < EPS:
        raise ValueError("ftol, xtol, gtol: at least one must be >= machine epsilon "
                         "for method='lm'")
    x0 = _as_x0(x0)
    n = x0.size
    if method != "trf" and type(bounds) is tuple and len(bounds) == 2 \
            and type(bounds[0]) is float and type(bounds[1]) is float \
            and bounds[0] == -math.inf and bounds[1] == math.inf:
        lb = ub = None                 # the default: no bound arrays for lm / gn
        bounded = False
    else:
        lb, ub = _prepare_bounds(bounds, n)
        bounded = bool(np.isfinite(lb).any() or np.isfinite(ub).any())
    if method in ("lm", "gn") and bounded:
        raise ValueError(f"bounds: method={method!r} does not handle bounds; use "
                         "method='trf'")
    if bounded and ((x0 < lb).any() or (x0 > ub).any()):
        raise ValueError("x0 is infeasible: it must lie within bounds")
    if method == "lm" and loss != "linear":
        raise ValueError("loss: method='lm' supports only loss='linear' (as SciPy); use "
                         "method='trf' or 'gn' for robust losses")

    if x_scale is None:
        x_scale = "jac" if method == "lm" else 1.0
    if isinstance(x_scale, str):
        if x_scale != "jac":
            raise ValueError(f"x_scale must be 'jac', None or positive numbers, got "
                             f"{x_scale!r}")
    else:
        try:
            xs = np.broadcast_to(np.asarray(x_scale, dtype=np.float64), (n,)).copy()
        except (ValueError, TypeError):
            raise ValueError(f"x_scale must be a scalar or have shape ({n},)") from None
        if not np.all(np.isfinite(xs)) or np.any(xs <= 0):
            raise ValueError("x_scale must contain only positive finite values")
        x_scale = xs

    if max_nfev is not None:
        if isinstance(max_nfev, bool) or not isinstance(max_nfev, numbers.Integral) \
                or max_nfev <= 0:
            raise ValueError(f"max_nfev must be a positive integer or None, got {max_nfev!r}")
        max_nfev = int(max_nfev)
    else:
        max_nfev = 100 * n
    if diff_step is not None:
        diff_step = np.broadcast_to(np.asarray(diff_step, dtype=np.float64), (n,)).copy()
        if not np.all(np.isfinite(diff_step)):
            raise ValueError("diff_step must be finite")

    f_user = _wrap(fun, args, kwargs)
    jac_user = _wrap(jac, args, kwargs) if callable(jac) else None
    f0 = _residuals(f_user, x0.copy())
    m = f0.size
    if method != "lm" and not np.isfinite(f0).all():     # lm: checked by the kernel
        raise ValueError("fun: residuals at x0 are not finite")
    if method == "lm" and m < n:
        raise ValueError(f"method='lm' needs at least as many residuals as variables "
                         f"(m >= n), got m={m} < n={n}; use method='trf'")
    J0 = None
    if jac_user is not None:
        J0 = jac_user(x0.copy())
        # lm: the kernel checks finiteness when it copies J0
        J0 = _check_jac(J0, m, n, allow_sparse=(method == "trf"),
                        check_finite=(method != "lm"))

    if method == "lm":
        res = _solve_lm(f_user, jac_user, jac, x0, f0, J0, ftol, xtol, gtol, max_nfev,
                        x_scale, diff_step, callback)
    else:
        lossf = _Loss(loss, f_scale, m)
        if lb is None:
            lb, ub = np.full(n, -np.inf), np.full(n, np.inf)
        prob = _Problem(f_user, jac_user, jac, lb, ub, diff_step, m, n)
        if method == "gn":
            res = _solve_gn(prob, x0, f0, J0, lossf, ftol, xtol, gtol, max_nfev, x_scale,
                            callback, verbose)
        else:
            res = _solve_trf(prob, x0, f0, J0, lossf, ftol, xtol, gtol, max_nfev, x_scale,
                             callback, verbose)
    res.message = LSQ_MESSAGES[res.status]
    res.success = res.status > 0
    if verbose >= 1:
        print(f"{res.message} nfev={res.nfev}, cost={res.cost:.4e}, "
              f"optimality={res.optimality:.2e}")
    return res


def _check_jac(J, m, n, allow_sparse, check_finite=True):
    if sparse.issparse(J) or isinstance(J, LinearOperator):
        if not allow_sparse:
            raise ValueError("jac: sparse or LinearOperator Jacobians need method='trf'")
        if J.shape != (m, n):
            raise ValueError(f"jac must return shape ({m}, {n}), got {J.shape}")
        return J.tocsr() if sparse.issparse(J) else J
    J = np.asarray(J, dtype=np.float64)
    if J.shape != (m, n):
        raise ValueError(f"jac must return an array of shape ({m}, {n}), got shape "
                         f"{J.shape}")
    if check_finite and not np.isfinite(J).all():
        raise ValueError("jac returned non-finite values at x0")
    return J


def _stop_adapter(callback):
    """Adapt ``callback(OptimizeResult)`` to the kernel's ``cb(x, f) -> bool``."""
    if callback is None:
        return None

    def cb(x, f):
        try:
            r = callback(OptimizeResult(x=x, fun=f, cost=0.5 * float(f @ f)))
        except StopIteration:
            return True
        return bool(r)
    return cb


def _solve_lm(f_user, jac_user, jac, x0, f0, J0, ftol, xtol, gtol, max_nfev, x_scale,
              diff_step, callback):
    diag = None if isinstance(x_scale, str) else 1.0 / x_scale
    fd_method = jac if isinstance(jac, str) else "2-point"
    # the first Jacobian at x0 was already evaluated (and validated): reuse it
    x, f, info, nfev, njev, nit, J = _k.lm_solve(
        f_user, jac_user, x0, f0, ftol, xtol, gtol, max_nfev, diag, 100.0, fd_method,
        diff_step, _stop_adapter(callback), J0)
    if J is not None:
        pass      # the last Jacobian evaluated was at the solution: reuse it
    elif jac_user is not None:
        # the Jacobian at the solution, for result.jac (as SciPy); not fed to a kernel
        J = _check_jac(jac_user(x.copy()), f.size, x.size, False, check_finite=False)
        njev += 1
    else:
        J = _k.fd_columns(f_user, x, f, _k.fd_steps(x, fd_method, diff_step),
                          np.full(x.size, fd_method == "3-point"), fd_method == "cs")
    g = J.T @ f
    return OptimizeResult(x=x, cost=0.5 * float(f @ f), fun=f, jac=J, grad=g,
                          optimality=float(np.abs(g).max()),
                          active_mask=np.zeros(x.size, dtype=int), nfev=int(nfev),
                          njev=int(njev) if jac_user is not None else None, nit=int(nit),
                          status=_FROM_MINPACK[info])


# ---------------------------------------------------------------------------
# Problem wrapper of the Python drivers (gn, trf)
# ---------------------------------------------------------------------------
class _Problem:
    def __init__(self, fun, jac_user, jac, lb, ub, diff_step, m, n):
        self.fun = fun
        self.jac_user = jac_user
        self.fd = jac if isinstance(jac, str) else None
        self.lb, self.ub = lb, ub
        self.diff_step = diff_step
        self.m, self.n = m, n
        self.nfev = 1
        self.njev = 0

    def f(self, x):
        self.nfev += 1
        return _residuals(self.fun, x.copy(), self.m)

    def J(self, x, f, first=None):
        if self.jac_user is not None:
            self.njev += 1
            if first is not None:
                return first
            return _check_jac(self.jac_user(x.copy()), self.m, self.n, True)
        return self.fd_jac(x, f)

    def fd_jac(self, x, f):
        h = _k.fd_steps(x, self.fd, self.diff_step)
        central = np.full(self.n, self.fd == "3-point")
        if self.fd != "cs" and (np.any(np.isfinite(self.lb)) or np.any(np.isfinite(self.ub))):
            # keep the difference points inside the bounds: flip a forward step that
            # would cross ub; use a one-sided step where a central one would cross
            if self.fd == "3-point":
                out = (x - h < self.lb) | (x + h > self.ub)
                central = ~out
            fwd_out = x + h > self.ub
            h = np.where(~central & fwd_out, -h, h)
            h = (x + h) - x
        return _k.fd_columns(self.fun, x, f, np.ascontiguousarray(h), central,
                             self.fd == "cs")


def _grad(J, f):
    return J.T @ f if not isinstance(J, LinearOperator) else J.rmatvec(f)


def _colnorms(J):
    if isinstance(J, LinearOperator):
        raise ValueError("x_scale='jac' needs an explicit (dense or sparse) Jacobian")
    if sparse.issparse(J):
        return np.sqrt(np.asarray(J.multiply(J).sum(axis=0)).ravel())
    return np.linalg.norm(J, axis=0)


def _result(x, f, J, g, cost, prob, status, nit, active=None, optimality=None):
    return OptimizeResult(
        x=x, cost=cost, fun=f, jac=J, grad=g,
        optimality=float(np.max(np.abs(g))) if optimality is None else float(optimality),
        active_mask=np.zeros(x.size, dtype=int) if active is None else active,
        nfev=prob.nfev, njev=prob.njev if prob.jac_user is not None else None,
        nit=nit, status=status)


def _callback_stop(callback, x, f, cost):
    if callback is None:
        return False
    try:
        r = callback(OptimizeResult(x=x.copy(), fun=f.copy(), cost=cost))
    except StopIteration:
        return True
    return bool(r)


# ---------------------------------------------------------------------------
# Gauss-Newton with a line search
# ---------------------------------------------------------------------------
def _solve_gn(prob, x, f, J0, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
              verbose, c1=1e-4):
    """Gauss-Newton: ``p = argmin ||J_s p + f_s||`` (pivoted QR), Armijo backtracking.

    The loop runs in Cython (:func:`neurenix._ext._lsq.gn_solve`); Python is called
    for the residuals, the Jacobian, the loss and the callback."""
    J = prob.J(x, f, J0)
    if sparse.issparse(J) or isinstance(J, LinearOperator):
        raise ValueError("jac: method='gn' needs a dense Jacobian; use method='trf'")

    def f_eval(xn):
        return prob.f(xn)

    def J_eval(xn, fn):
        Jn = prob.J(xn, fn)
        if sparse.issparse(Jn) or isinstance(Jn, LinearOperator):
            raise ValueError("jac: method='gn' needs a dense Jacobian; use method='trf'")
        return Jn
    cb = None
    if callback is not None:
        def cb(xc, fc, cost):
            return _callback_stop(callback, xc, fc, cost)
    x, f, J, cost, status, nit, nfev = _k.gn_solve(
        f_eval, J_eval, x, f, J, None if loss.linear else loss, ftol, xtol, gtol,
        max_nfev, prob.nfev, None if isinstance(x_scale, str) else x_scale, cb,
        verbose, c1)
    if not loss.linear:
        J, f_s = _scale_for_loss(J, f, loss(f))
        g = J.T @ f_s
    else:
        g = J.T @ f
    return _result(x, f, J, g, cost, prob, status, nit)


def _minimize_gauss_newton(fun, x0, args=(), jac=None, callback=None, **options):
    """``minimize(method="gauss-newton")``: ``fun`` returns the residual vector.

    Minimizes ``0.5 * ||fun(x)||**2`` with :func:`least_squares` ``method="gn"``
    (``options["method"]="lm"`` selects Levenberg-Marquardt instead).  ``jac`` is the
    residual Jacobian (callable) or None / "2-point" / "3-point" / "cs".
    Options: ``ftol, xtol, gtol, max_nfev`` (alias ``maxfev``), ``x_scale, loss,
    f_scale, diff_step, method``.  ``result.fun`` is the cost, ``result.jac`` the
    gradient ``J^T f`` (so it reads like any ``minimize`` result);
    ``result.residuals`` and ``result.jac_residuals`` hold ``f`` and ``J``.
    """
    options = dict(options)
    if "maxfev" in options:
        options["max_nfev"] = options.pop("maxfev")
    if "maxiter" in options:
        raise ValueError("maxiter: gauss-newton counts residual evaluations; use max_nfev")
    inner = options.pop("method", "gn")
    allowed = {"ftol", "xtol", "gtol", "max_nfev", "x_scale", "loss", "f_scale", "diff_step"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"options: unknown option(s) for gauss-newton: {sorted(unknown)}")
    if jac is None or jac is True:
        if jac is True:
            raise ValueError("jac=True is not supported by gauss-newton: pass the "
                             "residual Jacobian as a callable")
        jac = "2-point"
    cb = None
    if callback is not None:
        def cb(r):
            return callback(OptimizeResult(x=r.x, fun=r.cost))
    r = least_squares(fun, x0, jac=jac, method=inner, args=args, callback=cb, **options)
    out = OptimizeResult(x=r.x, fun=r.cost, jac=r.grad, nit=r.get("nit"), nfev=r.nfev,
                         njev=r.njev, status=r.status, success=r.success,
                         message=r.message, residuals=r.fun, jac_residuals=r.jac)
    return out


# ---------------------------------------------------------------------------
# Trust-region reflective
# ---------------------------------------------------------------------------
def _cl_scaling(x, g, lb, ub):
    """Coleman-Li vector v and its derivative dv (Branch, Coleman & Li 1999, eq. 2.3)."""
    v = np.ones_like(x)
    dv = np.zeros_like(x)
    m = (g < 0) & np.isfinite(ub)
    v[m] = ub[m] - x[m]
    dv[m] = -1.0
    m = (g > 0) & np.isfinite(lb)
    v[m] = x[m] - lb[m]
    dv[m] = 1.0
    return v, dv


def _strictly_feasible(x, lb, ub, rstep=1e-10):
    """Move points on or outside a bound slightly inside."""
    x = x.copy()
    lo = x <= lb
    x[lo] = lb[lo] + rstep * np.maximum(1.0, np.abs(lb[lo]))
    hi = x >= ub
    x[hi] = ub[hi] - rstep * np.maximum(1.0, np.abs(ub[hi]))
    both = (x < lb) | (x > ub)
    x[both] = 0.5 * (lb[both] + ub[both])
    return x


def _step_to_bound(x, s, lb, ub):
    """Largest t >= 0 with lb <= x + t s <= ub, and the mask of bounds hit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(s > 0, (ub - x) / s, np.where(s < 0, (lb - x) / s, np.inf))
    tmin = float(np.min(t))
    return tmin, (t == tmin) * np.sign(s)


def _intersect_ball(x, s, delta):
    """t1 <= 0 <= t2 with ||x + t s|| = delta."""
    a = s @ s
    if a == 0:
        return -np.inf, np.inf
    b = x @ s
    c = x @ x - delta ** 2
    disc = math.sqrt(max(b * b - a * c, 0.0))
    q = -(b + math.copysign(disc, b))
    t1, t2 = q / a, c / q if q != 0 else 0.0
    return min(t1, t2), max(t1, t2)


def _model(Jh, gh, diag_h, s):
    Js = Jh @ s if not isinstance(Jh, LinearOperator) else Jh.matvec(s)
    return 0.5 * float(Js @ Js + s @ (diag_h * s)) + float(gh @ s)


def _minimize_1d(a, b, lo, hi):
    """Min of a t^2 + b t over [lo, hi] -> (t, value)."""
    cands = [lo, hi]
    if a > 0:
        t = -b / (2 * a)
        if lo < t < hi:
            cands.append(t)
    vals = [a * t * t + b * t for t in cands]
    i = int(np.argmin(vals))
    return cands[i], vals[i]


def _select_step(x, Jh, diag_h, gh, p, p_h, d, delta, lb, ub, theta):
    """Choose among the truncated, reflected and Cauchy steps (Branch et al. 1999, sec. 3)."""
    if np.all((x + p > lb) & (x + p < ub)):
        return p, p_h, -_model(Jh, gh, diag_h, p_h)
    t, hits = _step_to_bound(x, p, lb, ub)
    r_h = p_h.copy()
    r_h[hits.astype(bool)] *= -1
    r = d * r_h
    p_h = p_h * t
    p = p * t
    x_on = x + p
    # reflected direction: from the hit point, as far as the ball and the bounds allow
    _, to_tr = _intersect_ball(p_h, r_h, delta)
    to_bound, _ = _step_to_bound(x_on, r, lb, ub)
    r_stride = min(to_bound, to_tr)
    if r_stride > 0:
        lo = (1.0 - theta) * t / r_stride
        hi = theta * to_bound if r_stride == to_bound else to_tr
    else:
        lo, hi = 0.0, -1.0
    if lo <= hi:
        Jr = Jh @ r_h if not isinstance(Jh, LinearOperator) else Jh.matvec(r_h)
        Jp = Jh @ p_h if not isinstance(Jh, LinearOperator) else Jh.matvec(p_h)
        a = 0.5 * float(Jr @ Jr + r_h @ (diag_h * r_h))
        b = float(Jp @ Jr + p_h @ (diag_h * r_h) + gh @ r_h)
        r_t, _ = _minimize_1d(a, b, lo, hi)
        r_h = p_h + r_h * r_t
        r_value = _model(Jh, gh, diag_h, r_h)
    else:
        r_value = np.inf
    p_h = p_h * theta
    p = p * theta
    p_value = _model(Jh, gh, diag_h, p_h)
    # Cauchy step: along -gh, within ball and bounds
    ag_h = -gh
    ag = d * ag_h
    to_tr = delta / max(np.linalg.norm(ag_h), 1e-300)
    to_bound, _ = _step_to_bound(x, ag, lb, ub)
    ag_stride = theta * to_bound if to_bound < to_tr else to_tr
    Jg = Jh @ ag_h if not isinstance(Jh, LinearOperator) else Jh.matvec(ag_h)
    a = 0.5 * float(Jg @ Jg + ag_h @ (diag_h * ag_h))
    b = float(gh @ ag_h)
    ag_t, ag_value = _minimize_1d(a, b, 0.0, ag_stride)
    ag_h = ag_h * ag_t
    best = int(np.argmin([p_value, r_value, ag_value]))
    if best == 0:
        return p, p_h, -p_value
    if best == 1:
        return d * r_h, r_h, -r_value
    return d * ag_h, ag_h, -ag_value


def _tr_subproblem(Jh, fh, diag_h, delta):
    """min ||Jh p + fh||^2 + p^T diag(diag_h) p subject to ||p|| <= delta.

    Dense: Moré's LM-parameter search on the augmented matrix (Cython kernel).
    Sparse / LinearOperator: Gauss-Newton direction by LSMR, then the exact
    trust-region solution in the 2-D subspace spanned by it and the gradient.
    """
    n = diag_h.size
    if not (sparse.issparse(Jh) or isinstance(Jh, LinearOperator)):
        Ja = np.vstack((Jh, np.diag(np.sqrt(diag_h))))
        fa = np.concatenate((fh, np.zeros(n)))
        p, _ = _k.lm_step(Ja, fa, np.ones(n), delta)
        return p
    op = aslinearoperator(Jh)
    sq = np.sqrt(diag_h)
    aug = LinearOperator((op.shape[0] + n, n),
                         matvec=lambda v: np.concatenate((op.matvec(v), sq * v)),
                         rmatvec=lambda u: op.rmatvec(u[:op.shape[0]]) + sq * u[op.shape[0]:],
                         dtype=float)
    rhs = np.concatenate((-fh, np.zeros(n)))
    gn = lsmr(aug, rhs, atol=1e-10, btol=1e-10, maxiter=max(2 * n, 100))[0]
    g = op.rmatvec(fh)
    S = np.column_stack((g, gn))
    Q, R = np.linalg.qr(S)
    keep = np.abs(np.diag(R)) > 1e-12 * max(np.abs(R).max(), 1e-300)
    Q = Q[:, keep]
    JQ = np.column_stack([aug.matvec(Q[:, k]) for k in range(Q.shape[1])])
    z, _ = _k.lm_step(JQ, -rhs, np.ones(Q.shape[1]), delta)
    return Q @ z


def _active_mask(x, lb, ub):
    active = np.zeros(x.size, dtype=int)
    tol = 1e-10
    with np.errstate(invalid="ignore"):
        active[np.isfinite(lb) & (x - lb <= tol * np.maximum(1.0, np.abs(lb)))] = -1
        active[np.isfinite(ub) & (ub - x <= tol * np.maximum(1.0, np.abs(ub)))] = 1
    return active


def _solve_trf(prob, x, f, J0, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
               verbose):
    """Trust-region reflective.  Dense Jacobians (user arrays or finite differences):
    the loop runs in Cython (:func:`neurenix._ext._lsq.trf_solve`), calling Python
    for the residuals, the Jacobian, the loss and the callback.  Sparse and
    ``LinearOperator`` Jacobians: the same iteration in Python
    (:func:`_solve_trf_py`), its subproblem by LSMR."""
    lb, ub = prob.lb, prob.ub
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    n = x.size
    if bounded:
        x_in = _strictly_feasible(x, lb, ub)
        if np.any(x_in != x):
            x = x_in
            f = prob.f(x)
            prob.nfev -= 1            # the start point is not an iteration's evaluation
            if not np.all(np.isfinite(f)):
                raise ValueError("fun: residuals at x0 (moved inside the bounds) are "
                                 "not finite")
            J0 = None if prob.jac_user is None else _check_jac(
                prob.jac_user(x.copy()), prob.m, n, True)
    J = prob.J(x, f, J0)
    if sparse.issparse(J) or isinstance(J, LinearOperator):
        return _solve_trf_py(prob, x, f, J, loss, ftol, xtol, gtol, max_nfev, x_scale,
                             callback, verbose)
    cb = None
    if callback is not None:
        def cb(xc, fc, cost):
            return _callback_stop(callback, xc, fc, cost)
    x, f, Js, g, cost, opt, status, nit, nfev, njev = _k.trf_solve(
        prob.fun, prob.jac_user, prob.fd_jac, x, f, J, lb, ub,
        None if loss.linear else loss, ftol, xtol, gtol, max_nfev, prob.nfev,
        None if isinstance(x_scale, str) else x_scale, cb, verbose)
    prob.nfev, prob.njev = nfev, njev
    active = _active_mask(x, lb, ub) if bounded else None
    # SciPy returns the loss-scaled Jacobian (J^T J approximates the cost's Hessian)
    return _result(x, f, Js, g, cost, prob, status, nit, active=active, optimality=opt)


def _solve_trf_py(prob, x, f, J, loss, ftol, xtol, gtol, max_nfev, x_scale, callback,
                  verbose):
    """The trust-region reflective loop in Python, for any Jacobian kind (used for
    sparse and ``LinearOperator`` Jacobians; ``J`` is the Jacobian at ``x``, which
    lies strictly inside the bounds)."""
    lb, ub = prob.lb, prob.ub
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    n = x.size
    cost = loss.cost(f)
    if loss.linear:
        Js, fs = J, f
    else:
        Js, fs = _scale_for_loss(J, f, loss(f))
    g = _grad(Js, fs)
    jac_scale = isinstance(x_scale, str)
    if jac_scale:
        cn = _colnorms(Js)
        scale_inv = np.where(cn > 0, cn, 1.0)
    else:
        scale_inv = 1.0 / x_scale
    v, dv = _cl_scaling(x, g, lb, ub) if bounded else (np.ones(n), np.zeros(n))
    v = np.where(dv != 0, v * scale_inv, v)
    delta = np.linalg.norm(x * scale_inv / np.sqrt(v))
    if delta == 0:
        delta = 1.0
    status = None
    nit = 0
    while True:
        if bounded:
            v, dv = _cl_scaling(x, g, lb, ub)
        g_norm = float(np.max(np.abs(g * v)))
        if g_norm < gtol:
            status = 1
        if prob.nfev >= max_nfev and status is None:
            status = 0
        if status is not None:
            break
        # the distance to a bound, in units of the variable's scale
        v = np.where(dv != 0, v * scale_inv, v)
        d = np.sqrt(v) / scale_inv
        diag_h = g * dv / scale_inv
        gh = d * g
        if isinstance(Js, LinearOperator):
            Jh = _col_scaled(Js, d)
        elif sparse.issparse(Js):
            Jh = Js @ sparse.diags(d)
        else:
            Jh = Js * d
        theta = max(0.995, 1.0 - g_norm)
        actual = -1.0
        while actual <= 0 and prob.nfev < max_nfev:
            p_h = _tr_subproblem(Jh, fs, diag_h, delta)
            p = d * p_h
            if bounded:
                step, step_h, predicted = _select_step(x, Jh, diag_h, gh, p, p_h, d, delta,
                                                       lb, ub, theta)
            else:
                step, step_h = p, p_h
                predicted = -_model(Jh, gh, diag_h, p_h)
            x_new = x + step
            if bounded:
                x_new = _strictly_feasible(x_new, lb, ub, rstep=0.0) \
                    if np.any((x_new <= lb) | (x_new >= ub)) else x_new
                x_new = np.clip(x_new, lb, ub)
                x_new = _strictly_feasible(x_new, lb, ub)
            f_new = prob.f(x_new)
            step_norm = float(np.linalg.norm(step_h))
            if not np.all(np.isfinite(f_new)):
                delta = 0.25 * step_norm
                continue
            cost_new = loss.cost(f_new)
            actual = cost - cost_new
            ratio = actual / predicted if predicted > 0 else (1.0 if actual > 0 else 0.0)
            if ratio < 0.25:
                delta = 0.25 * step_norm
            elif ratio > 0.75 and step_norm > 0.95 * delta:
                delta *= 2.0
            dx_norm = float(np.linalg.norm(x_new - x))
            ftol_ok = actual >= 0 and actual < ftol * cost and ratio > 0.25
            xtol_ok = dx_norm < xtol * (xtol + np.linalg.norm(x))
            if ftol_ok and xtol_ok:
                status = 4
            elif ftol_ok:
                status = 2
            elif xtol_ok:
                status = 3
            if status is not None:
                break
        nit += 1
        if actual > 0:
            x, f, cost = x_new, f_new, cost_new
            J = prob.J(x, f)
            if loss.linear:
                Js, fs = J, f
            else:
                Js, fs = _scale_for_loss(J, f, loss(f))
            g = _grad(Js, fs)
            if jac_scale:
                scale_inv = np.maximum(scale_inv, _colnorms(Js))
            if verbose == 2:
                print(f"trf it {nit}: cost={cost:.6e} nfev={prob.nfev}")
            if status is None and _callback_stop(callback, x, f, cost):
                status = -2
        if status is not None:
            break
        if prob.nfev >= max_nfev:
            status = 0
            break
    if bounded:
        v, _ = _cl_scaling(x, g, lb, ub)
    active = _active_mask(x, lb, ub)
    # SciPy returns the loss-scaled Jacobian (J^T J approximates the cost's Hessian)
    return _result(x, f, Js, g, cost, prob, status, nit, active=active,
                   optimality=np.max(np.abs(g * v)))


# ---------------------------------------------------------------------------
# curve_fit
# ---------------------------------------------------------------------------
def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False,
              check_finite=None, bounds=(-np.inf, np.inf), method=None, jac=None,
              *, full_output=False, nan_policy=None, **kwargs):
    """Fit ``ydata ≈ f(xdata, *p)``; SciPy's ``curve_fit`` semantics.

    Parameters
    ----------
    f : callable ``f(xdata, *params) -> (m,)``
    xdata : array_like
        Passed to ``f`` unchanged (any shape/object).
    ydata : array_like, shape (m,)
    p0 : array_like, optional
        Initial guess; default ones (the number of parameters read from ``f``'s
        signature).
    sigma : None, (m,) or (m, m)
        1-D: standard deviations of ``ydata`` (residuals divided by sigma);
        2-D: covariance of ``ydata`` (residuals whitened by its Cholesky factor).
    absolute_sigma : bool
        False (default): ``pcov`` is scaled by the reduced chi-square
        ``2 * cost / (m - n)``; True: ``sigma`` taken as absolute.
    check_finite : bool, optional
        Raise on NaN/inf in the data (default True, as SciPy when nan_policy is None).
    bounds : (lb, ub)
        Parameter bounds (forces ``method="trf"``).
    method : {"lm", "gn", "trf"}, optional
        Default ``"lm"`` without bounds, ``"trf"`` with bounds.
    jac : callable ``jac(xdata, *params) -> (m, n)`` or str, optional
    full_output : bool
        Also return ``infodict, mesg, ier`` (``infodict`` has ``nfev`` and ``fvec``).
    **kwargs
        Passed to :func:`least_squares` (``ftol, xtol, gtol, max_nfev, loss, ...``;
        ``maxfev`` is accepted as an alias of ``max_nfev``).

    Returns
    -------
    popt : ndarray (n,)
    pcov : ndarray (n, n)
        ``pinv(J^T J)`` computed by SVD of the whitened Jacobian at the solution
        (singular values below ``eps * max(m, n) * s_max`` dropped), times the
        reduced chi-square unless ``absolute_sigma``; filled with ``inf`` when
        ``m <= n`` and not ``absolute_sigma`` (SciPy's rule, with a warning).
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if nan_policy is not None:
        raise ValueError("nan_policy: only None is supported (NaNs are rejected by "
                         "check_finite)")
    if check_finite is None:
        check_finite = True
    if p0 is None:
        import inspect
        try:
            sig = inspect.signature(f)
        except (TypeError, ValueError):
            raise ValueError("p0: cannot determine the number of fit parameters from f's "
                             "signature; pass p0") from None
        params = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(params) < 2:
            raise ValueError("p0: f must take xdata and at least one parameter")
        p0 = np.ones(len(params) - 1)
    p0 = _as_x0(p0)
    n = p0.size
    ydata = np.asarray(ydata, dtype=np.float64)
    if ydata.ndim != 1:
        ydata = ydata.ravel() if ydata.ndim > 1 else np.atleast_1d(ydata)
    if ydata.size == 0:
        raise ValueError("ydata must not be empty")
    if check_finite:
        if not np.all(np.isfinite(ydata)):
            raise ValueError("ydata must not contain NaN or inf (check_finite=True)")
        xa = np.asarray(xdata) if not isinstance(xdata, np.ndarray) else xdata
        if xa.dtype.kind in "fc" and not np.all(np.isfinite(xa)):
            raise ValueError("xdata must not contain NaN or inf (check_finite=True)")
    m = ydata.size
    lb, ub = _prepare_bounds(bounds, n)
    bounded = bool(np.any(np.isfinite(lb)) or np.any(np.isfinite(ub)))
    if method is None:
        method = "trf" if bounded else "lm"
    if "maxfev" in kwargs:
        if "max_nfev" in kwargs:
            raise ValueError("maxfev, max_nfev: pass only one")
        kwargs["max_nfev"] = kwargs.pop("maxfev")

    # whitening: r = W (f(x, p) - y)
    if sigma is None:
        def white(r):
            return r
        white_J = None
    else:
        sigma = np.asarray(sigma, dtype=np.float64)
        if sigma.shape == (m,):
            if np.any(sigma <= 0) or not np.all(np.isfinite(sigma)):
                raise ValueError("sigma must contain positive finite standard deviations")
            w = 1.0 / sigma

            def white(r):
                return w * r

            def white_J(J):
                return J * w[:, None]
        elif sigma.shape == (m, m):
            try:
                L = np.linalg.cholesky(sigma)
            except np.linalg.LinAlgError:
                raise ValueError("sigma: the 2-D covariance matrix must be positive "
                                 "definite") from None
            from scipy.linalg import solve_triangular

            def white(r):
                return solve_triangular(L, r, lower=True)

            def white_J(J):
                return solve_triangular(L, J, lower=True)
        else:
            raise ValueError(f"sigma must have shape ({m},) or ({m}, {m}), got {sigma.shape}")

    def resid(p):
        return white(np.asarray(f(xdata, *p), dtype=np.float64) - ydata)

    if callable(jac):
        def jac_w(p):
            J = np.asarray(jac(xdata, *p), dtype=np.float64)
            return J if white_J is None else white_J(J)
        jac_arg = jac_w
    elif jac is None:
        jac_arg = "2-point"
    else:
        jac_arg = jac
    res = least_squares(resid, p0, jac=jac_arg, bounds=(lb, ub), method=method, **kwargs)
    if not res.success:
        raise RuntimeError("Optimal parameters not found: " + res.message)
    popt = res.x
    J = res.jac
    if sparse.issparse(J):
        J = J.toarray()
    elif isinstance(J, LinearOperator):
        J = J @ np.eye(n)
    # with a robust loss res.jac is the loss-scaled Jacobian (SciPy's convention)
    _, s, VT = np.linalg.svd(J, full_matrices=False)
    thresh = np.finfo(float).eps * max(J.shape) * (s[0] if s.size else 0.0)
    keep = s > thresh
    s = s[keep]
    VT = VT[:s.size]
    pcov = (VT.T / s ** 2) @ VT
    warn_cov = False
    if not absolute_sigma:
        if m > n:
            pcov = pcov * (2.0 * res.cost / (m - n))
        else:
            pcov = np.full((n, n), np.inf)
            warn_cov = True
    if warn_cov:
        warnings.warn("Covariance of the parameters could not be estimated (m <= n)",
                      RuntimeWarning, stacklevel=2)
    if full_output:
        infodict = {"nfev": res.nfev, "fvec": res.fun, "njev": res.njev}
        return popt, pcov, infodict, res.message, res.status
    return popt, pcov
