"""First-order rules as ``minimize`` methods (``"adam"``, ``"sgd"``, ...).

Each method runs the update rule of the :mod:`neurenix.optim` class of the same
name (:data:`neurenix._core.first_order.RULES`: the same hyperparameters,
defaults, checks, state and fused kernel call) on the one flat iterate: there is
no second copy of any update rule here.

Options
-------
lr : float or callable
    Learning rate, or a schedule ``lr(step) -> float`` called with the 0-based
    step before each update.  Default: the optimizer's own default.
maxiter : int, default 1000
    Largest number of updates (``Status.MAXITER``).
maxfun : int or None, default None
    Largest number of objective evaluations, counted as ``result.nfev`` (the
    evaluation at ``x0`` included; a finite-difference gradient costs ``n``
    more each).  Checked before each update: once ``nfev >= maxfun`` the run
    stops with ``Status.MAXFUN``, so with an analytic gradient ``nfev`` never
    exceeds ``maxfun`` (with finite differences it may, by up to ``n``).
    None (or ``inf``): no limit.
gtol : float, default 1e-5
    Convergence test: the run stops with ``Status.GTOL`` (``success=True``)
    as soon as the gradient's infinity norm ``max|g_i|`` at the current
    iterate is ``<= gtol``, the same norm and default as SciPy's BFGS/CG
    (``tol`` sets it).  It is tested at ``x0`` and after every update, before
    the limits, so a run that converges on its last allowed update still
    reports success.
the optimizer's hyperparameters
    By their PyTorch names (``momentum``, ``betas``, ``eps``,
    ``weight_decay``, ...).

The result's ``x`` is the last iterate (as a training loop would leave it);
``nit`` counts updates.  With a constant learning rate stochastic-style rules
such as Adam often hover around a minimizer without meeting a tight ``gtol``;
then ``maxiter`` ends the run (``success=False``).
"""
import math
import numbers

import numpy as np

from ..backend import kernels_for
from .._core.first_order import RULES
from .._core.result import Status
from ._minimize import register_method

__all__ = ["FIRST_ORDER"]

#: method name -> update rule (:class:`neurenix._core.first_order.Rule`)
FIRST_ORDER = RULES


def _make(name, rule):
    hyper = rule.defaults

    def _minimize_first_order(obj, x0, *, bounds, driver, **options):
        maxiter = options.pop("maxiter", 1000)
        maxfun = options.pop("maxfun", None)
        if maxfun == math.inf:
            maxfun = None
        gtol = options.pop("gtol", 1e-5)
        if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 0:
            raise ValueError(f"options['maxiter'] must be a non-negative integer, got {maxiter!r}")
        if maxfun is not None and (isinstance(maxfun, bool) or not isinstance(maxfun, numbers.Integral)
                                   or maxfun < 0):
            raise ValueError(f"options['maxfun'] must be a non-negative integer or None, "
                             f"got {maxfun!r}")
        if isinstance(gtol, bool) or not isinstance(gtol, numbers.Real) or not gtol >= 0:
            raise ValueError(f"options['gtol'] must be a non-negative number, got {gtol!r}")
        lr = options.pop("lr", hyper.get("lr"))
        schedule = lr if callable(lr) else None
        kw = dict(options)
        kw["lr"] = float(schedule(0)) if schedule is not None else lr
        group = rule.group(kw)
        try:
            rule.check(group)
        except (TypeError, ValueError) as e:
            raise type(e)(f"options: {e}") from None
        x = np.array(x0, copy=True)
        data = [x]
        states = [rule.init_state(x, group)]
        kernels = kernels_for(np, x.dtype)
        f, g = obj.fun_and_grad(x)
        driver.record(x, f, g)
        nit = 0
        while True:
            # convergence first, then the limits
            if float(np.max(np.abs(g))) <= gtol:
                status = Status.GTOL
                break
            if nit >= maxiter:
                status = Status.MAXITER
                break
            if maxfun is not None and obj.nfev >= maxfun:
                status = Status.MAXFUN
                break
            if schedule is not None:
                v = schedule(nit)
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"options['lr'] schedule returned {v!r} at step {nit}; "
                                     "expected a finite number >= 0")
                group["lr"] = float(v)
            rule.update(kernels, data, [g], states, group)
            nit += 1
            f, g = obj.fun_and_grad(x)
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                return driver.result(Status.NONFINITE, driver.best_x, driver.best_f,
                                     driver.best_g, nit)
            st = driver.iteration(nit, x, f, g)
            if st is not None:
                status = st
                break
        return driver.result(status, x, f, g, nit)

    _minimize_first_order.__name__ = f"_minimize_{name}"
    _minimize_first_order.__doc__ = (f"``minimize(method={name!r})``: the update rule of "
                                     f"``neurenix.optim``'s class of that name; see the module "
                                     f"doc.")
    opts = dict(hyper)
    opts.update(maxiter=1000, maxfun=None, gtol=1e-5)
    register_method(name, _minimize_first_order, tol=("gtol",), options=opts, hess=False)


for _name, _rule in FIRST_ORDER.items():
    _make(_name, _rule)
