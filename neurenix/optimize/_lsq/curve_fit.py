"""``curve_fit``: weighted nonlinear regression on top of :func:`least_squares`
(kept apart from the solvers, as SciPy keeps it in ``_minpack_py``)."""
import warnings

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ..._ext import _lsq as _k
from .common import _as_x0, _prepare_bounds
from .least_squares import least_squares


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
    nparams, nrequired = _fit_parameters(f)
    if p0 is None:
        if nparams is None:
            raise ValueError("p0: cannot determine the number of fit parameters from f's "
                             "signature; pass p0")
        if nparams < 1:
            raise ValueError("p0: f must take xdata and at least one parameter")
        p0 = np.ones(nparams)
    p0 = _as_x0(p0)
    n = p0.size
    if nparams is not None and not nrequired <= n <= nparams:
        takes = f"{nparams}" if nrequired == nparams else f"{nrequired} to {nparams}"
        raise ValueError(f"p0 has {n} values, but the model f takes {takes} fit "
                         f"parameter{'s' if nparams != 1 else ''} after xdata")
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
    if isinstance(xdata, np.ndarray) and xdata.ndim == 1 and xdata.size != m:
        raise ValueError(f"xdata and ydata must have the same length, got {xdata.size} "
                         f"and {m}")
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
        fx = _k.as_real(f(xdata, *p), "f")
        if fx.shape != ydata.shape:
            if fx.size != m:
                raise ValueError(f"f(xdata, *p) returned {fx.size} values, but ydata has "
                                 f"{m}: they must describe the same points")
            fx = fx.reshape(m)
        return white(fx - ydata)

    if callable(jac):
        def jac_w(p):
            J = _k.as_real(jac(xdata, *p), "jac")
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


def _fit_parameters(f):
    """``(most, required)``: how many fit parameters ``f(xdata, p1, p2, ...)``
    takes (its positional parameters after the first; SciPy's count for a
    default ``p0``) and how many of them have no default; ``(None, None)`` when
    its signature does not fix the number (``*args``, or no signature)."""
    import inspect
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return None, None
    params = list(sig.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None, None
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in pos if p.default is p.empty)
    return max(len(pos) - 1, 0), max(required - 1, 0)
