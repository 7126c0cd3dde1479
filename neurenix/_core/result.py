"""``OptimizeResult``, ``OptimizeWarning`` and the status tables shared by every solver.

:data:`STATUS_TABLE` is the one table of ``minimize``'s status codes (success and
message of each :class:`Status`); :data:`MESSAGES`, :data:`BY_CODE` and
:data:`ROWS` are views of it.  :data:`LSQ_MESSAGES` is ``least_squares``'
(SciPy's codes -2 ... 4).
"""
import enum
from typing import NamedTuple

import numpy as np

__all__ = ["OptimizeResult", "Status", "StatusRow", "STATUS_TABLE", "MESSAGES", "BY_CODE",
           "ROWS", "as_status", "status_row", "make_result", "OptimizeWarning",
           "LSQ_MESSAGES", "LSQ_TO_STATUS"]


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
    """Termination status codes of ``minimize`` (0 and the convergence codes mean success).

    The codes are also the compiled loops' (``neurenix/_ext/_status.pxd``, ``S_<NAME>``);
    a test checks that the two agree.  Success and message of each code come from
    :data:`STATUS_TABLE`.
    """

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
        return STATUS_TABLE[self].success

    @property
    def message(self):
        return STATUS_TABLE[self].message


class StatusRow(NamedTuple):
    """One row of :data:`STATUS_TABLE` (a column may be added, e.g. per-method codes)."""

    success: bool
    message: str


#: THE status table of ``minimize``: every other view below is derived from it.
STATUS_TABLE = {
    Status.SUCCESS: StatusRow(True, "Optimization terminated successfully."),
    Status.MAXITER: StatusRow(False, "Maximum number of iterations has been exceeded."),
    Status.MAXFUN: StatusRow(False, "Maximum number of function evaluations has been exceeded."),
    Status.LINESEARCH: StatusRow(
        False, "Line search failed to find a point satisfying the Wolfe conditions."),
    Status.NONFINITE: StatusRow(
        False, "A non-finite value was encountered and could not be avoided."),
    Status.CALLBACK: StatusRow(False, "`callback` raised `StopIteration`."),
    Status.MAXTIME: StatusRow(False, "Maximum wall time has been exceeded."),
    Status.INTERRUPTED: StatusRow(
        False, "Interrupted by the user (KeyboardInterrupt); best point so far returned."),
    Status.GTOL: StatusRow(True, "Optimization terminated successfully: gradient norm <= gtol."),
    Status.FTOL: StatusRow(
        True, "Optimization terminated successfully: relative reduction of f <= ftol."),
    Status.XTOL: StatusRow(True, "Optimization terminated successfully: step size <= xtol."),
    Status.TRUST_RADIUS: StatusRow(False, "Trust radius became too small to make progress."),
    Status.NOT_DESCENT: StatusRow(False, "Search direction is not a descent direction."),
    Status.INDEFINITE: StatusRow(
        False, "The Hessian is not positive definite; the method requires it."),
    Status.PRECISION: StatusRow(
        False, "Desired error not necessarily achieved due to precision loss."),
}

#: Status -> message (public, as before)
MESSAGES = {s: row.message for s, row in STATUS_TABLE.items()}
#: int code -> Status, a dict lookup instead of the (slow) enum call
BY_CODE = {int(s): s for s in STATUS_TABLE}
#: Status (or its int code; they hash alike) -> (code, success, message)
ROWS = {s: (int(s), row.success, row.message) for s, row in STATUS_TABLE.items()}


def as_status(code):
    """The :class:`Status` of an int code (ValueError for an unknown one)."""
    st = BY_CODE.get(code)
    return st if st is not None else Status(code)


def status_row(status):
    """``(code, success, message)`` of a :class:`Status` or int code
    (ValueError for an unknown one)."""
    row = ROWS.get(status) if type(status) is int or type(status) is Status else None
    if row is None:
        row = ROWS[Status(status)]
    return row


def make_result(status, **fields):
    """Build an :class:`OptimizeResult` whose status, success and message come from
    the table."""
    row = status_row(status)
    return OptimizeResult(status=row[0], success=row[1], message=row[2], **fields)


#: ``least_squares`` status code -> message (SciPy's codes and texts: the contract)
LSQ_MESSAGES = {
    -4: "Maximum wall time (maxtime) has been exceeded; best point so far returned.",
    -3: "Interrupted by the user (KeyboardInterrupt); best point so far returned.",
    -2: "Stopped because `callback` function raised `StopIteration` or returned `True`",
    -1: "Improper input parameters status returned from `leastsq`",
    0: "The maximum number of function evaluations is exceeded.",
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
}

#: ``least_squares`` status code -> :class:`Status` (``minimize(method="gauss-newton")``)
LSQ_TO_STATUS = {0: Status.MAXFUN, 1: Status.GTOL, 2: Status.FTOL, 3: Status.XTOL,
                 4: Status.FTOL, -2: Status.CALLBACK, -3: Status.INTERRUPTED,
                 -4: Status.MAXTIME}
