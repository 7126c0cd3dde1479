"""``least_squares``: the front end (validation, dispatch to ``lm``, ``gn``,
``trf``) and ``minimize(method="gauss-newton")``.

``status`` keeps SciPy's integers: -2 callback stop, -1 bad input, 0 ``max_nfev``,
1 ``gtol``, 2 ``ftol``, 3 ``xtol``, 4 ``ftol`` and ``xtol``; ``success`` is
``status > 0``.  Two codes of this package's own: -3, interrupted by
``KeyboardInterrupt`` (the best point evaluated so far is returned), and -4, the
wall-time limit of ``minimize(method="gauss-newton", options={"maxtime": ...})``.
"""
import math
import numbers
import time

import numpy as np
from scipy import sparse

from ..._core.result import OptimizeResult, LSQ_MESSAGES
from ..._core.residuals import check_jacobian, check_residuals
from .common import (EPS, LOSSES, _Loss, _Problem, _as_x0, _check_tol, _prepare_bounds,
                     _wrap)
from ..._core.validation import MAX_COUNT
from ..._ext import _lsq as _k
from ..._ext._evaluator import MaxTimeExceeded
from ..._ext._status import LSQ_CODES as _LSQ_CODES
from .common import _active_mask
from .gn import _solve_gn
from .lm import _solve_lm
from .trf import _solve_trf



_METHODS = ("lm", "gn", "trf", "dogbox")
_TR_SOLVERS = (None, "exact", "lsmr")



def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf",
                  ftol=1e-8, xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear",
                  f_scale=1.0, diff_step=None, tr_solver=None, tr_options=None,
                  jac_sparsity=None, max_nfev=None, verbose=0, args=(), kwargs=None,
                  callback=None):
    """Solve a nonlinear least-squares problem ``min 0.5 * sum(rho(f_i(x)**2))``.

    SciPy's signature (argument order included), defaults and semantics
    (``scipy.optimize.least_squares``): the default method is ``"trf"``;
    ``"dogbox"`` is delegated to SciPy's ``least_squares`` unchanged.

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
    method : {"trf", "lm", "gn", "dogbox"}
        ``"trf"`` (default), ``"lm"`` (MINPACK's iteration), ``"gn"``
        (neurenix's Gauss-Newton), ``"dogbox"`` (SciPy's, delegated).
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
    tr_solver : {None, "exact", "lsmr"}
        ``trf``'s trust-region subproblem solver, as SciPy: ``"exact"`` (dense
        Jacobians: Moré's LM-parameter search on the augmented matrix, the
        compiled loop) or ``"lsmr"`` (the Gauss-Newton direction by
        ``scipy.sparse.linalg.lsmr`` and the exact solution in the 2-D subspace
        it spans with the gradient).  None: ``"exact"`` for a dense Jacobian,
        ``"lsmr"`` for a sparse matrix, a ``LinearOperator`` or ``jac_sparsity``.
    tr_options : dict, optional
        ``"lsmr"``: keyword arguments of ``lsmr`` (``atol``, ``btol``,
        ``maxiter``, ...) and ``regularize`` (default True: SciPy's Tikhonov
        term from the best step along the gradient).  ``"exact"``: ignored, as
        in SciPy.
    jac_sparsity : array_like or sparse matrix (m, n), optional
        Sparsity structure of the Jacobian for finite differences: columns that
        share no row are differenced together (Curtis, Powell & Reid 1974), so
        one evaluation serves a whole group; the Jacobian is then sparse and
        ``tr_solver`` defaults to ``"lsmr"``.  Not with ``lm``.
    args, kwargs : extra arguments of ``fun`` and ``jac``.
    callback : callable ``callback(intermediate_result)``, optional
        Called after every accepted step with an :class:`OptimizeResult` holding
        ``x`` and ``cost``; raising ``StopIteration`` or returning True stops
        (``status = -2``).
    verbose : {0, 1, 2}
        SciPy's printout: 1 the termination message and the line
        ``Function evaluations ..., initial cost ..., final cost ...,
        first-order optimality ...``; 2 also SciPy's per-iteration table
        (``trf``, ``gn``).

    Returns
    -------
    OptimizeResult
        ``x, cost, fun, jac, grad, optimality, active_mask, nfev, njev, nit,
        status, message, success``.  ``KeyboardInterrupt`` during the run
        returns the point of lowest cost evaluated so far with ``status = -3``
        (``success`` False); ``jac`` and ``grad`` are then None and
        ``optimality`` NaN (nothing is evaluated after the interrupt), ``nfev``
        counts every call of ``fun`` (finite differences included).  ``lm``: ``nfev`` counts as MINPACK (the
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
    return _least_squares(fun, x0, jac=jac, bounds=bounds, method=method, ftol=ftol,
                          xtol=xtol, gtol=gtol, x_scale=x_scale, loss=loss, f_scale=f_scale,
                          diff_step=diff_step, tr_solver=tr_solver, tr_options=tr_options,
                          jac_sparsity=jac_sparsity, max_nfev=max_nfev, verbose=verbose,
                          args=args, kwargs=kwargs, callback=callback)


def _best_result(watch, status, lb, ub):
    """The best point evaluated so far (:class:`neurenix._ext._lsq.BestPoint`) as
    a result with ``status`` -3 or -4, or None when no finite cost was evaluated:
    nothing is evaluated after the interrupt, so ``jac`` and ``grad`` are None and
    ``optimality`` NaN."""
    best = watch.best()
    if best is None:
        return None
    x, f, cost = best
    return OptimizeResult(
        x=x, cost=cost, fun=f, jac=None, grad=None, optimality=math.nan,
        active_mask=np.zeros(x.size, dtype=int) if lb is None else _active_mask(x, lb, ub),
        nfev=watch.nfev, njev=None, nit=None, status=status)


def _least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf",
                   ftol=1e-8, xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear",
                   f_scale=1.0, diff_step=None, tr_solver=None, tr_options=None,
                   jac_sparsity=None, max_nfev=None, verbose=0, args=(), kwargs=None,
                   callback=None, maxtime=None):
    """:func:`least_squares`, plus ``maxtime`` (seconds of wall time,
    ``minimize(method="gauss-newton")``'s option)."""
    t0 = time.perf_counter()
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    method = method.lower()
    if method == "dogbox":
        # not implemented here: SciPy's own, with the arguments unchanged
        from scipy.optimize._lsq.least_squares import least_squares as scipy_lsq
        return OptimizeResult(scipy_lsq(
            fun, x0, jac=jac, bounds=bounds, method=method, ftol=ftol, xtol=xtol, gtol=gtol,
            x_scale=x_scale, loss=loss, f_scale=f_scale, diff_step=diff_step,
            tr_solver=tr_solver, tr_options=tr_options, jac_sparsity=jac_sparsity,
            max_nfev=max_nfev, verbose=verbose, args=args, kwargs=kwargs, callback=callback))
    if tr_solver not in _TR_SOLVERS:
        raise ValueError(f"tr_solver must be None, 'exact' or 'lsmr', got {tr_solver!r}")
    if tr_options is None:
        tr_options = {}
    elif not isinstance(tr_options, dict):
        raise TypeError(f"tr_options must be a dict, got {type(tr_options).__name__}")
    if jac_sparsity is not None:
        if method == "lm":
            raise ValueError("method='lm' does not support `jac_sparsity`.")
        if tr_solver == "exact":
            raise ValueError("tr_solver='exact' is incompatible with `jac_sparsity`.")
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
        max_nfev = min(int(max_nfev), MAX_COUNT)   # SciPy accepts any integer
    else:
        max_nfev = 100 * n
    if diff_step is not None:
        diff_step = np.broadcast_to(np.asarray(diff_step, dtype=np.float64), (n,)).copy()
        if not np.all(np.isfinite(diff_step)):
            raise ValueError("diff_step must be finite")

    if maxtime is not None:
        if isinstance(maxtime, bool) or not isinstance(maxtime, numbers.Real):
            raise TypeError(f"maxtime must be a number of seconds, got {type(maxtime).__name__}")
        if not maxtime > 0:
            raise ValueError(f"maxtime must be > 0, got {maxtime!r}")
    watch = _k.BestPoint(_wrap(fun, args, kwargs), None,
                         0.0 if maxtime is None else t0 + float(maxtime))
    f_user = watch
    jac_user = _wrap(jac, args, kwargs) if callable(jac) else None
    f0 = check_residuals(f_user(x0.copy()))
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
        J0 = check_jacobian(J0, m, n, allow_sparse=(method == "trf"),
                            check_finite=(method != "lm"), where="x0")
        if tr_solver == "exact" and not isinstance(J0, np.ndarray):
            raise ValueError("tr_solver='exact' works only with dense Jacobian matrices.")
    sparsity = None
    if jac_sparsity is not None and jac_user is None:
        sparsity = _check_sparsity(jac_sparsity, m, n)
    if method == "trf" and tr_solver is None:
        tr_solver = "lsmr" if (sparsity is not None or (
            J0 is not None and not isinstance(J0, np.ndarray))) else "exact"

    try:
        if method == "lm":
            res = _solve_lm(f_user, jac_user, jac, x0, f0, J0, ftol, xtol, gtol, max_nfev,
                            x_scale, diff_step, callback)
        else:
            lossf = _Loss(loss, f_scale, m)
            if not lossf.linear:
                # rank the evaluated points by the robust cost (x0's included)
                watch.lossf = lossf
                watch.best_cost = lossf.cost(f0)
            if lb is None:
                lb, ub = np.full(n, -np.inf), np.full(n, np.inf)
            prob = _Problem(f_user, jac_user, jac, lb, ub, diff_step, m, n, sparsity=sparsity)
            if method == "gn":
                res = _solve_gn(prob, x0, f0, J0, lossf, ftol, xtol, gtol, max_nfev, x_scale,
                                callback, verbose)
            else:
                res = _solve_trf(prob, x0, f0, J0, lossf, ftol, xtol, gtol, max_nfev,
                                 x_scale, callback, verbose, tr_solver=tr_solver,
                                 tr_options=dict(tr_options))
    except KeyboardInterrupt:
        res = _best_result(watch, _LSQ_CODES["INTERRUPTED"], lb, ub)
        if res is None:
            raise
    except MaxTimeExceeded:
        watch.deadline = 0.0
        res = _best_result(watch, _LSQ_CODES["MAXTIME"], lb, ub)
        if res is None:
            raise
    res.message = LSQ_MESSAGES[res.status]
    res.success = res.status > 0
    if verbose >= 1:
        # SciPy's report
        initial_cost = _Loss(loss, f_scale, m).cost(f0) if method != "lm" \
            else 0.5 * float(f0 @ f0)
        print(res.message)
        print(f"Function evaluations {res.nfev}, initial cost {initial_cost:.4e}, "
              f"final cost {res.cost:.4e}, first-order optimality {res.optimality:.2e}.")
    return res


def _check_sparsity(jac_sparsity, m, n):
    """``(structure, groups)`` for grouped finite differences: the structure as a
    CSC matrix and SciPy's column grouping (``group_columns``, Curtis-Powell-Reid)."""
    from scipy.optimize._numdiff import group_columns
    S = jac_sparsity if sparse.issparse(jac_sparsity) else np.atleast_2d(jac_sparsity)
    if S.shape != (m, n):
        raise ValueError(f"jac_sparsity: expected shape {(m, n)}, got {S.shape}")
    return sparse.csc_matrix(S), group_columns(S)


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
    maxtime = options.pop("maxtime", None)
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
    r = _least_squares(fun, x0, jac=jac, method=inner, args=args, callback=cb,
                       maxtime=maxtime, **options)
    out = OptimizeResult(x=r.x, fun=r.cost, jac=r.grad, nit=r.get("nit"), nfev=r.nfev,
                         njev=r.njev, status=r.status, success=r.success,
                         message=r.message, residuals=r.fun, jac_residuals=r.jac)
    return out

