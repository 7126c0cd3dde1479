"""``OptimizeResult`` and the status table shared by every solver."""
import enum

import numpy as np

__all__ = ["OptimizeResult", "Status", "MESSAGES", "make_result", "OptimizeWarning"]


class OptimizeWarning(UserWarning):
    """Warning issued by solvers (unknown options, x0 outside the bounds, ...), as
    ``scipy.optimize.OptimizeWarning``."""


class OptimizeResult(dict):
    """SciPy's result object: a dict with attribute access.

    Common fields: ``x, fun, jac, hess_inv, nit, nfev, njev, nhev, status,
    success, message``; solvers add their own.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __repr__(self):
        if not self:
            return self.__class__.__name__ + "()"
        order = ["message", "success", "status", "fun", "x", "nit", "jac", "hess_inv",
                 "nfev", "njev", "nhev"]
        keys = [k for k in order if k in self] + sorted(k for k in self if k not in order)
        width = max(map(len, keys)) + 1
        lines = []
        for k in keys:
            v = self[k]
            s = repr(v)
            if isinstance(v, np.ndarray) and v.size > 8:
                s = np.array2string(v, threshold=8, edgeitems=3)
            s = s.replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{k.rjust(width)}: {s}")
        return "\n".join(lines)

    def __dir__(self):
        return list(self.keys())


class Status(enum.IntEnum):
    """Termination status codes (0 and the convergence codes mean success)."""

    SUCCESS = 0            # generic convergence
    MAXITER = 1            # iteration limit
    MAXFUN = 2             # function-evaluation limit
    LINESEARCH = 3         # line search could not make progress
    NONFINITE = 4          # a non-finite value was met and could not be backtracked
    CALLBACK = 5           # callback raised StopIteration
    MAXTIME = 6            # wall-time limit
    INTERRUPTED = 7        # KeyboardInterrupt (Ctrl-C): best point so far returned
    GTOL = 8               # projected gradient norm <= gtol
    FTOL = 9               # relative reduction of f <= ftol
    XTOL = 10              # step size <= xtol
    TRUST_RADIUS = 11      # trust radius fell below the smallest meaningful value
    NOT_DESCENT = 12       # a search direction was not a descent direction
    INDEFINITE = 13        # negative curvature a method cannot handle (e.g. dogleg)
    PRECISION = 14         # desired precision not reached due to rounding

    @property
    def ok(self):
        return _OK[self]

    @property
    def message(self):
        return MESSAGES[self]


_SUCCESS = frozenset({Status.SUCCESS, Status.GTOL, Status.FTOL, Status.XTOL})
_OK = {s: s in _SUCCESS for s in Status}
#: int code -> Status, a dict lookup instead of the (slow) enum call
_BY_CODE = {int(s): s for s in Status}

MESSAGES = {
    Status.SUCCESS: "Optimization terminated successfully.",
    Status.MAXITER: "Maximum number of iterations has been exceeded.",
    Status.MAXFUN: "Maximum number of function evaluations has been exceeded.",
    Status.LINESEARCH: "Line search failed to find a point satisfying the Wolfe conditions.",
    Status.NONFINITE: "A non-finite value was encountered and could not be avoided.",
    Status.CALLBACK: "`callback` raised `StopIteration`.",
    Status.MAXTIME: "Maximum wall time has been exceeded.",
    Status.INTERRUPTED: "Interrupted by the user (KeyboardInterrupt); best point so far returned.",
    Status.GTOL: "Optimization terminated successfully: gradient norm <= gtol.",
    Status.FTOL: "Optimization terminated successfully: relative reduction of f <= ftol.",
    Status.XTOL: "Optimization terminated successfully: step size <= xtol.",
    Status.TRUST_RADIUS: "Trust radius became too small to make progress.",
    Status.NOT_DESCENT: "Search direction is not a descent direction.",
    Status.INDEFINITE: "The Hessian is not positive definite; the method requires it.",
    Status.PRECISION: "Desired error not necessarily achieved due to precision loss.",
}


def make_result(status, **fields):
    """Build an :class:`OptimizeResult` whose status, success and message come from
    the table."""
    row = _ROWS.get(status) if type(status) is int or type(status) is Status else None
    if row is None:
        row = _row(status)
    return OptimizeResult(status=row[0], success=row[1], message=row[2], **fields)


def _row(status):
    """``(code, success, message)`` of any status (raises ValueError for an unknown one)."""
    st = Status(status)
    return (int(st), _OK[st], MESSAGES[st])


#: Status (or its int code; they hash alike) -> (code, success, message)
_ROWS = {s: (int(s), _OK[s], MESSAGES[s]) for s in Status}
