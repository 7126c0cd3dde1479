"""Pieces shared by the least-squares drivers (``lm``, ``gn``, ``trf``) and
``curve_fit``: robust losses, input validation, the problem wrapper of the Python
drivers, and the trust-region reflective geometry (Coleman-Li scaling, steps to a
bound, the 1-D quadratic minimizer).

Robust losses follow SciPy's conventions: ``rho(z)`` with ``z = (f / f_scale)**2``,
cost ``0.5 * f_scale**2 * sum(rho(z))``, and the IRLS-style rescaling of residuals
and Jacobian by ``sqrt(rho' + 2 rho'' f**2)`` (Triggs et al., "Bundle adjustment —
a modern synthesis", 2000, section 4.3).
"""
import math
import numbers
import warnings

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ..._ext import _lsq as _k
from ..._core.result import OptimizeResult
from ..._core.objective import as_float_array
from ..._core.residuals import check_jacobian, check_residuals

EPS = np.finfo(float).eps



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
            r = _k.as_real(r, "loss")
            if r.shape != (3, self.m):
                raise ValueError(f"loss must return an array of shape (3, {self.m}), got "
                                 f"{r.shape}")
            if not np.isfinite(r).all():
                raise ValueError("loss returned non-finite values (rho, rho' and rho'' "
                                 "must be finite)")
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


# ---------------------------------------------------------------------------
# Problem wrapper of the Python drivers (gn, trf)
# ---------------------------------------------------------------------------
class _Problem:
    def __init__(self, fun, jac_user, jac, lb, ub, diff_step, m, n, sparsity=None):
        self.sparsity = sparsity      # (structure, groups) of jac_sparsity, or None
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
        return check_residuals(self.fun(x.copy()), self.m)

    def J(self, x, f, first=None):
        if self.jac_user is not None:
            self.njev += 1
            if first is not None:
                return first
            return check_jacobian(self.jac_user(x.copy()), self.m, self.n,
                                  allow_sparse=True)
        return self.fd_jac(x, f)

    def fd_jac(self, x, f):
        if self.sparsity is not None:
            # grouped columns (jac_sparsity): SciPy's approx_derivative does the
            # Curtis-Powell-Reid differencing; the result is a sparse matrix
            from scipy.optimize._numdiff import approx_derivative
            return sparse.csr_matrix(approx_derivative(
                lambda z: check_residuals(self.fun(z), self.m), x, method=self.fd,
                rel_step=self.diff_step, f0=f, bounds=(self.lb, self.ub),
                sparsity=self.sparsity))
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
# Trust-region reflective geometry (Branch, Coleman & Li 1999)
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


def _active_mask(x, lb, ub):
    active = np.zeros(x.size, dtype=int)
    tol = 1e-10
    with np.errstate(invalid="ignore"):
        active[np.isfinite(lb) & (x - lb <= tol * np.maximum(1.0, np.abs(lb)))] = -1
        active[np.isfinite(ub) & (ub - x <= tol * np.maximum(1.0, np.abs(ub)))] = 1
    return active

