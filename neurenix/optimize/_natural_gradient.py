"""Damped natural gradient, ``minimize(method="natural-gradient")``.

Each iteration solves ``(F(x) + lambda I) p = -g(x)`` by conjugate gradients on
Fisher-vector products (the package's one CG loop,
:func:`neurenix._ext._krylov.cg_newton`; compiled products
:class:`neurenix._ext._natgrad.FisherOperator` for Jacobian / per-sample
gradient input) and moves to ``x + lr p`` (Amari 1998).  The damping
``lambda`` follows the Levenberg-Marquardt rule of Martens (2010), section 4.1,
on the reduction ratio ``rho = (f(x + s) - f(x)) / (g^T s + s^T F s / 2)``
of the undamped quadratic model (Martens & Grosse 2015, section 6.5): ``lambda
*= 3/2`` when ``rho < 1/4``, ``lambda *= 2/3`` when ``rho > 3/4``; a step
with ``rho <= 0`` (``f`` not decreased) is rejected (counted as an iteration).
When both the predicted and the actual change are within ``10 eps max(1, |f|)``
(the rounding level of ``f``) the ratio carries no information and ``rho = 1``
is used, so that the final Newton-like steps near a minimizer are not rejected
on rounding noise.

Differences from Martens (2010): CG starts from zero at every iteration (no
warm start, no CG-iterate backtracking), so the model value comes from CG's
Galerkin identity without an extra product; the minibatch machinery of
Hessian-free training is left to the caller (``fun``/``jac``/curvature
callables may subsample).

For a generalized linear model with canonical link (logistic, Poisson, ...)
the Fisher equals the Hessian of the negative log-likelihood, so with ``lr=1,
damping=0, adapt_damping=False`` and an exact CG solve each step is Newton's
step, i.e. one iteration of IRLS (Martens 2020, section 9.2).
"""
import math

import numpy as np

from .._core.natural_gradient import (CallableFisher, empirical_fisher, jacobian_fisher,
                                      natural_direction, predicted_change)
from .._core.natural_gradient import adapt_damping as _lm_update
from .._core.result import Status
from .._core.validation import check_bool, int_option, real_option

__all__ = ["_minimize_natural_gradient"]



def _finite(name, v, lo, open_lo=False):
    """A finite real option ``>= lo`` (``> lo`` with ``open_lo``)."""
    v = real_option(name, v, lo, None, open_lo)
    if not math.isfinite(v):
        raise ValueError(f"options['{name}'] must be finite, got {v!r}")
    return v


class _Curvature:
    """Builds the damped Fisher operator at a point from whichever source was given."""

    def __init__(self, fvp, sample_grads, ggn, args, n, dtype):
        given = [k for k, v in (("fvp", fvp), ("sample_grads", sample_grads), ("ggn", ggn))
                 if v is not None]
        if len(given) != 1:
            raise ValueError("natural-gradient needs exactly one curvature source among "
                             "options 'fvp', 'sample_grads' and 'ggn', got "
                             f"{given if given else 'none'}")
        self.kind = given[0]
        self.fn = {"fvp": fvp, "sample_grads": sample_grads, "ggn": ggn}[self.kind]
        if not callable(self.fn):
            raise TypeError(f"options['{self.kind}'] must be callable, got "
                            f"{type(self.fn).__name__}")
        self.args = args
        self.n = n
        self.dtype = dtype
        self.ncalls = 0      # calls of sample_grads / ggn
        self.nprod = 0       # Fisher-vector products of the operators retired so far
        self.op = None

    def at(self, x):
        if self.op is not None:
            self.nprod += self.op.nprod
        xc = np.array(x, copy=True)
        if self.kind == "fvp":
            fn, args = self.fn, self.args
            self.op = CallableFisher(lambda v: fn(xc, v, *args), self.n, self.dtype)
            return self.op
        self.ncalls += 1
        out = self.fn(xc, *self.args)
        if self.kind == "sample_grads":
            self.op = empirical_fisher(out, self.n, self.dtype)
        else:
            if isinstance(out, tuple) and len(out) == 2:
                J, H = out
            else:
                raise TypeError("ggn must return a pair (J, H) (H may be None), got "
                                f"{type(out).__name__}")
            self.op = jacobian_fisher(J, H, self.n, self.dtype)
        return self.op

    def products(self):
        return self.nprod + (self.op.nprod if self.op is not None else 0)


def _minimize_natural_gradient(obj, x0, *, bounds=None, driver, fvp=None, sample_grads=None,
                               ggn=None, lr=1.0, damping=1e-3, adapt_damping=True,
                               damping_boost=1.5, damping_drop=2.0 / 3.0, gtol=1e-5,
                               maxiter=None, cg_tol=None, cg_maxiter=None):
    """Natural gradient with damped CG solves and Levenberg-Marquardt damping.

    Parameters (``options``)
    ------------------------
    fvp : callable ``fvp(x, v, *args) -> F(x) v``
        Fisher-vector product.  Exactly one of ``fvp``, ``sample_grads``, ``ggn``.
    sample_grads : callable ``sample_grads(x, *args) -> G``, shape ``(N, n)``
        Per-sample gradients of the per-sample losses whose mean is ``fun``;
        the curvature is the empirical Fisher ``G^T G / N``.
    ggn : callable ``ggn(x, *args) -> (J, H)``
        Model output Jacobian ``J`` (``(m, n)``, or ``(N, K, n)``) and the Fisher
        of the loss in the outputs ``H`` (``(m,)`` diagonal, ``(N, K, K)``
        blocks, or None for the identity); the curvature is exactly ``J^T H J``,
        so ``H`` carries the loss's scaling (``1/N`` for a mean).
    lr : float, default 1
        Step scale: ``x <- x + lr p``.
    damping : float, default 1e-3
        Initial Tikhonov damping ``lambda >= 0`` (``> 0`` with ``adapt_damping``).
    adapt_damping : bool, default True
        Levenberg-Marquardt adaptation (Martens 2010, section 4.1) and rejection
        of steps that do not decrease ``f``.  When False, ``lambda`` stays fixed
        and every step is taken (the plain damped natural-gradient iteration).
    damping_boost, damping_drop : float, default 3/2 and 2/3
        Factors applied to ``lambda`` when ``rho < 1/4`` / ``rho > 3/4``.
    gtol : float, default 1e-5
        Success when ``max|g_i| <= gtol``.
    maxiter : int, default 200 n
        Iterations (rejected steps included).
    cg_tol : float, optional
        CG stops when ``||r|| <= cg_tol ||g||``; default the forcing term
        ``min(0.5, sqrt||g||)`` (Nocedal & Wright, Algorithm 7.1).
    cg_maxiter : int, default 20 n

    Returns
    -------
    OptimizeResult
        SciPy's fields plus ``damping`` (final ``lambda``), ``nfvp`` (Fisher-vector
        products), ``ncg`` (CG iterations) and ``nfisher`` (calls of
        ``sample_grads``/``ggn``).

    Raises
    ------
    SingularFisherError
        ``F + lambda I`` is singular or indefinite along a CG direction.
    ValueError, TypeError
        A curvature callable returned an array of the wrong shape, NaN or inf.
    """
    n = x0.size
    dtype = x0.dtype
    lr = _finite("lr", lr, 0.0, open_lo=True)
    lam = _finite("damping", damping, 0.0)
    adapt = check_bool(adapt_damping, "options['adapt_damping']")
    if adapt and lam == 0.0:
        raise ValueError("options['damping'] must be > 0 when adapt_damping is True (a zero "
                         "damping cannot be adapted multiplicatively)")
    boost = _finite("damping_boost", damping_boost, 1.0, open_lo=True)
    drop = real_option("damping_drop", damping_drop, 0.0, 1.0, open_lo=True)
    gtol = real_option("gtol", gtol, 0.0)
    if cg_tol is not None:
        cg_tol = _finite("cg_tol", cg_tol, 0.0)
    maxiter = 200 * n if maxiter is None else maxiter
    maxiter = int(min(maxiter, 2 ** 62))
    cg_maxiter = int_option("cg_maxiter", 20 * max(n, 1) if cg_maxiter is None else cg_maxiter,
                            1)
    curv = _Curvature(fvp, sample_grads, ggn, obj.args, n, dtype)

    x = x0.copy()
    f, g = obj.fun_and_grad(x)
    g = np.array(g, copy=True)
    op = curv.at(x)
    eps = float(np.finfo(dtype).eps)
    nit = 0
    ncg = 0
    status = Status.MAXITER
    while True:
        if n == 0 or float(np.max(np.abs(g))) <= gtol:
            status = Status.GTOL
            break
        if nit >= maxiter:
            status = Status.MAXITER
            break
        gn = float(np.linalg.norm(g))
        tol = (cg_tol if cg_tol is not None else min(0.5, math.sqrt(gn))) * gn
        op.damping = lam
        p, it = natural_direction(op, g, tol, cg_maxiter, name=curv.kind)
        ncg += it
        s = (lr * p).astype(dtype, copy=False)
        x_new = x + s
        f_new = obj.fun(x_new)
        pred = predicted_change(g, p, lam, lr)
        nit += 1
        if adapt:
            noise = 10.0 * eps * max(1.0, abs(f))
            if not math.isfinite(f_new):
                rho = -math.inf
            elif -pred <= noise and f_new - f <= noise:
                # both changes are at the rounding level of f: the ratio is
                # meaningless there, and the step (a near-Newton step) is kept
                rho = 1.0
            else:
                rho = (f_new - f) / pred if pred < 0 else -math.inf
            lam = _lm_update(lam, rho, boost, drop)
            accept = rho > 0.0
        else:
            if not math.isfinite(f_new):
                status = Status.NONFINITE
                break
            accept = True
        if accept:
            x = x_new
            f = f_new
            g = np.array(obj.grad(x), copy=True)
            op = curv.at(x)
        elif float(np.max(np.abs(s))) <= eps * (1.0 + float(np.max(np.abs(x)))):
            # the damped step no longer moves x: no decrease is possible in this precision
            status = Status.PRECISION
            break
        if driver.active:
            st = driver.iteration(nit, x, f, g, float(np.linalg.norm(s)), damping=lam)
            if st is not None:
                status = st
                break
    return driver.result(status, x, f, g, nit, damping=lam, nfvp=curv.products(), ncg=ncg,
                         nfisher=curv.ncalls)


def _register():
    try:
        from ._minimize import register_method
    except ImportError:
        return
    register_method("natural-gradient", _minimize_natural_gradient,
                    ("naturalgradient", "natgrad", "ngd"), tol=("gtol",), hess=False)


_register()
