"""What every ``minimize`` method shares around its iteration loop.

:class:`Driver` owns the user-facing side of a run: the callback (new style
``callback(intermediate_result)`` or legacy ``callback(xk)``), ``StopIteration``
raised by it, the wall-time limit ``maxtime``, the ``disp`` progress line and
progress bar, the best point seen (returned on ``KeyboardInterrupt``), and the
assembly of the final :class:`OptimizeResult` with the call counters of the
:class:`~neurenix._core.objective.ScalarObjective`.

A method calls :meth:`Driver.iteration` once per completed iteration and
stops when it returns a :class:`Status`; it builds its result with
:meth:`Driver.result`.  See :mod:`neurenix.optimize._minimize` for the full
contract.
"""
import inspect
import math
import sys
import time

import numpy as np

from .._core.result import Status, OptimizeResult, ROWS, status_row

__all__ = ["Driver", "wants_intermediate_result"]

_new_result = dict.__new__
#: the fields ``Driver.result`` sets itself (before the method's own)
_CORE = frozenset(("status", "success", "message", "x", "fun", "nit", "nfev", "njev", "nhev"))


def wants_intermediate_result(callback):
    """True when ``callback`` has a parameter named ``intermediate_result`` (SciPy's rule)."""
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    return set(sig.parameters) == {"intermediate_result"} or (
        "intermediate_result" in sig.parameters)


class Driver:
    """Callback, time limit, progress display, best point and result assembly.

    Parameters
    ----------
    obj : ScalarObjective
        Supplies ``nfev``, ``njev``, ``nhev``.
    x0 : ndarray
        Starting point (the best point until an iteration reports one).
    callback : callable or None
        ``callback(intermediate_result)`` when its signature names a parameter
        ``intermediate_result``, otherwise ``callback(xk)``.
    maxtime : float or None
        Wall-time limit in seconds, checked after each iteration.
    disp : bool or int
        Print a progress line (iteration, f, |g|, step); a run longer than a
        second also shows a progress bar toward the nearest limit.
    method : str
        Name shown in the display.
    maxiter, maxfun : int or None
        Used only for the progress bar.
    """

    # Defaults of a run with nothing to report to, as class attributes: the
    # common case sets only what differs per run (each instance attribute
    # costs a small run time); the reporting path sets its own below.
    callback = None
    new_style = False
    maxtime = None
    disp = 0
    _next_print = 1
    #: whether a method must call :meth:`iteration` at all (fast loops skip it)
    active = False
    maxiter = None
    maxfun = None
    best_g = None
    best_f = math.inf
    nit = 0
    #: where ``disp`` prints (sys.stdout when the run starts, unless given)
    stream = None
    #: SciPy's ``return_all``: x0 and every iterate (see :meth:`keep_iterates`)
    allvecs = None

    def __init__(self, obj, x0, *, callback=None, maxtime=None, disp=False, method="",
                 maxiter=None, maxfun=None, stream=None):
        self.obj = obj
        self.method = method
        # not copied: ``record`` copies what it keeps, and until a point is
        # recorded ``interrupted`` evaluates ``fun`` at this one
        self.best_x = x0
        self.t0 = time.perf_counter()
        if callback is None and maxtime is None and not disp:
            # nothing to report to (the common case): no checks, no display state
            # (nothing is printed without ``disp``)
            if stream is not None:
                self.stream = stream
            if maxiter is not None or maxfun is not None:
                self.maxiter = maxiter
                self.maxfun = maxfun
            return
        self.stream = stream if stream is not None else sys.stdout
        self.maxiter = maxiter
        self.maxfun = maxfun
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if maxtime is not None:
            if isinstance(maxtime, bool) or not isinstance(maxtime, (int, float, np.integer, np.floating)):
                raise TypeError(f"maxtime must be a number of seconds, got {type(maxtime).__name__}")
            if not maxtime > 0:
                raise ValueError(f"maxtime must be > 0, got {maxtime!r}")
            maxtime = float(maxtime)
            if obj is not None:
                # checked before every call of the user's functions, so that the
                # limit also holds inside line searches and inner loops
                obj.deadline = self.t0 + maxtime
        self.callback = callback
        self.new_style = callback is not None and wants_intermediate_result(callback)
        self.maxtime = maxtime
        self.disp = int(disp) if disp else 0
        self.active = True

    # ------------------------------------------------------------ per iteration
    def keep_iterates(self, x0):
        """SciPy's ``return_all``: keep a copy of ``x0`` and of every iterate
        reported to :meth:`iteration` in :attr:`allvecs` (and so make the run
        report each iteration)."""
        self.allvecs = [np.array(x0, copy=True)]
        self.active = True

    def record(self, x, f, g=None):
        """Remember ``x`` as the best point if ``f`` is lower (copies)."""
        if f <= self.best_f or not math.isfinite(self.best_f):
            self.best_f = float(f)
            self.best_x = np.array(x, copy=True)
            self.best_g = None if g is None else np.array(g, copy=True)

    def iteration(self, nit, x, f, g=None, step=None, **extra):
        """Report iteration ``nit`` (x, f and optionally g, step length).

        Returns
        -------
        Status or None
            ``Status.CALLBACK`` when the callback raised ``StopIteration``,
            ``Status.MAXTIME`` when the time limit has passed, else None.
        """
        self.nit = nit
        if self.allvecs is not None:
            self.allvecs.append(np.array(x, copy=True))
        self.record(x, f, g)
        if self.disp:
            self._show(nit, f, g, step)
        if self.callback is not None:
            try:
                if self.new_style:
                    res = OptimizeResult(x=np.array(x, copy=True), fun=float(f), nit=nit)
                    if g is not None:
                        res["jac"] = np.array(g, copy=True)
                    res.update(extra)
                    self.callback(intermediate_result=res)
                else:
                    self.callback(np.array(x, copy=True))
            except StopIteration:
                return Status.CALLBACK
        if self.maxtime is not None and time.perf_counter() - self.t0 >= self.maxtime:
            return Status.MAXTIME
        return None

    def elapsed(self):
        return time.perf_counter() - self.t0

    # ------------------------------------------------------------------ display
    def _fraction(self):
        fr = 0.0
        if self.maxiter:
            fr = max(fr, self.nit / self.maxiter)
        if self.maxfun:
            fr = max(fr, self.obj.nfev / self.maxfun)
        if self.maxtime:
            fr = max(fr, self.elapsed() / self.maxtime)
        return min(fr, 1.0)

    def _show(self, nit, f, g, step):
        if nit == 1:
            print(f"{self.method:>10s}  {'iter':>6s} {'f':>14s} {'|g|':>10s} {'step':>10s}",
                  file=self.stream)
        if nit < self._next_print:
            return
        # every iteration at first, then 10, 20, ..., 100, 200, ...
        self._next_print = nit + (1 if nit < 10 else 10 ** int(math.log10(nit)))
        gn = float(np.max(np.abs(g))) if g is not None and np.size(g) else float("nan")
        st = float("nan") if step is None else float(step)
        line = f"{'':>10s}  {nit:6d} {f:14.6e} {gn:10.3e} {st:10.3e}"
        if self.elapsed() > 1.0:
            fr = self._fraction()
            filled = int(round(20 * fr))
            line += f"  [{'#' * filled}{'.' * (20 - filled)}] {100 * fr:3.0f}%"
        print(line, file=self.stream)
        self.stream.flush()

    # ------------------------------------------------------------------ result
    def result(self, status, x, f, g=None, nit=None, **fields):
        """The final :class:`OptimizeResult`: status/success/message from the table,
        counters from the objective."""
        obj = self.obj
        row = ROWS.get(status) if type(status) is int or type(status) is Status else None
        if row is None:
            row = status_row(status)
        # make_result's fields, stored one by one (cheaper than a keyword call;
        # the same keys in the same order: status ... nhev, the method's, jac)
        res = _new_result(OptimizeResult)
        res["status"] = row[0]
        res["success"] = row[1]
        res["message"] = row[2]
        res["x"] = x
        res["fun"] = float(f)
        res["nit"] = self.nit if nit is None else (nit if type(nit) is int else int(nit))
        res["nfev"] = obj.nfev
        res["njev"] = obj.njev
        res["nhev"] = obj.nhev
        if fields:
            if not _CORE.isdisjoint(fields):    # as the keyword call this replaces
                k = next(k for k in fields if k in _CORE)
                raise TypeError(f"OptimizeResult() got multiple values for keyword argument '{k}'")
            res.update(fields)
        if g is not None:
            res["jac"] = g
        if self.disp:
            print(f"{res.message}\n         Current function value: {res.fun:.6e}\n"
                  f"         Iterations: {res.nit}\n         Function evaluations: {res.nfev}\n"
                  f"         Gradient evaluations: {res.njev}", file=self.stream)
        return res

    def interrupted(self, status=Status.INTERRUPTED):
        """Result after ``KeyboardInterrupt`` (or, with ``status=Status.MAXTIME``,
        after the time limit passed inside an iteration): the best point reported
        so far."""
        x = self.best_x
        f = self.best_f
        if not math.isfinite(f):
            x = np.array(x, copy=True)
            if self.obj is not None:
                self.obj.deadline = 0.0         # that one evaluation is allowed
                f = self.obj.fun(x)
            else:
                f = float("nan")
        return self.result(status, x, f, self.best_g)
