"""First-order rules as ``minimize`` methods (``"adam"``, ``"sgd"``, ...).

Each method drives the matching :mod:`neurenix.optim` optimizer (and so the
same fused kernel) on a single parameter that views the iterate: there is no
second copy of any update rule here.

Options: ``lr`` (a float, or a callable ``schedule(step) -> lr`` called with
the 0-based step before each update), ``maxiter`` (default 1000), ``gtol``
(stop when ``max|g| <= gtol``, default 1e-5), and the optimizer's own
hyperparameters by their PyTorch names (``momentum``, ``betas``, ``eps``,
``weight_decay``, ...).  The result's ``x`` is the last iterate (as a
training loop would leave it); ``nit`` counts updates.  These rules rarely
meet ``gtol``, so reaching ``maxiter`` (``Status.MAXITER``, ``success=False``)
is their usual end.
"""
import inspect
import math
import numbers

import numpy as np

from .. import optim as _optim
from ._minimize import register_method
from ._result import Status

__all__ = ["FIRST_ORDER"]

#: method name -> optimizer class
FIRST_ORDER = {
    "sgd": _optim.SGD, "adagrad": _optim.Adagrad, "rmsprop": _optim.RMSprop,
    "adam": _optim.Adam, "adamw": _optim.AdamW, "nadam": _optim.NAdam,
    "radam": _optim.RAdam, "adabelief": _optim.AdaBelief, "lamb": _optim.LAMB,
    "lars": _optim.LARS,
}


def _hyper(cls):
    sig = inspect.signature(cls.__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.name not in ("self", "params", "skip_nonfinite")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _make(name, cls):
    hyper = _hyper(cls)

    def _minimize_first_order(obj, x0, *, bounds, driver, **options):
        maxiter = options.pop("maxiter", 1000)
        gtol = options.pop("gtol", 1e-5)
        if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 0:
            raise ValueError(f"options['maxiter'] must be a non-negative integer, got {maxiter!r}")
        if isinstance(gtol, bool) or not isinstance(gtol, numbers.Real) or not gtol >= 0:
            raise ValueError(f"options['gtol'] must be a non-negative number, got {gtol!r}")
        lr = options.pop("lr", hyper.get("lr"))
        schedule = lr if callable(lr) else None
        kw = dict(options)
        kw["lr"] = float(schedule(0)) if schedule is not None else lr
        x = np.array(x0, copy=True)
        p = _optim.Parameter(x)
        try:
            opt = cls([p], **kw)
        except (TypeError, ValueError) as e:
            raise type(e)(f"options: {e}") from None
        group = opt.param_groups[0]
        f, g = obj.fun_and_grad(x)
        driver.record(x, f, g)
        status = Status.MAXITER
        nit = 0
        for k in range(int(maxiter)):
            if float(np.max(np.abs(g))) <= gtol:
                status = Status.GTOL
                break
            if schedule is not None:
                v = schedule(k)
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"options['lr'] schedule returned {v!r} at step {k}; "
                                     "expected a finite number >= 0")
                group["lr"] = float(v)
            p.grad = g
            opt.step()
            nit = k + 1
            f, g = obj.fun_and_grad(x)
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                status = Status.NONFINITE
                return driver.result(status, driver.best_x, driver.best_f, driver.best_g, nit)
            st = driver.iteration(nit, x, f, g)
            if st is not None:
                status = st
                break
        else:
            if maxiter == 0 or float(np.max(np.abs(g))) <= gtol:
                status = Status.GTOL if float(np.max(np.abs(g))) <= gtol else Status.MAXITER
        return driver.result(status, x, f, g, nit)

    _minimize_first_order.__name__ = f"_minimize_{name}"
    _minimize_first_order.__doc__ = (f"``minimize(method={name!r})``: drives "
                                     f":class:`neurenix.optim.{cls.__name__}`; see the module doc.")
    opts = dict(hyper)
    opts.update(maxiter=1000, gtol=1e-5)
    register_method(name, _minimize_first_order, tol=("gtol",), options=opts)


for _name, _cls in FIRST_ORDER.items():
    _make(_name, _cls)
