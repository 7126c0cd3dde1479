"""SciPy's ``status`` and ``message`` per ``minimize`` method.

neurenix's solvers end with a :class:`~neurenix.optimize.Status` (the precise
reason: ``GTOL``, ``FTOL``, ``MAXFUN``, ...).  Client code reads ``status`` the way
SciPy sets it for each method (scikit-learn, for one, treats any non-zero
L-BFGS-B status as non-convergence), so :func:`minimize` returns SciPy's integer
and text for the method in ``status``/``message`` and keeps the precise reason in
``result.reason`` (a :class:`Status`).  ``success`` is ``reason.ok``, which agrees
with SciPy's ``success`` for every row below.

The tables (SciPy 1.17):

- ``L-BFGS-B``: 0 converged (``"CONVERGENCE: NORM OF PROJECTED GRADIENT <=
  PGTOL"`` or ``"CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"``),
  1 a limit (``"STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"`` or ``"STOP: TOTAL
  NO. OF F,G EVALUATIONS EXCEEDS LIMIT"``), 2 anything else (``"ABNORMAL: "``).
- ``BFGS``, ``CG`` and neurenix's own methods (first-order rules,
  ``natural-gradient``, ``gauss-newton``): 0 success, 1 iteration (or
  evaluation) limit, 2 precision loss (failed line search), 3 NaN.
- ``Newton-CG``: 0, 1 and 2 as BFGS with SciPy's ``"Warning: "`` prefix, 3 NaN
  or a Hessian that is not positive definite.
- ``trust-ncg``, ``trust-krylov``, ``trust-exact``, ``dogleg``: 0 success,
  1 iteration limit, 2 ``"A bad approximation caused failure to predict
  improvement."``, 3 ``"A linalg error occurred, such as a non-psd Hessian."``.
- Every method: 99 ``"`callback` raised `StopIteration`."`` when the callback
  stopped the run (SciPy's ``minimize`` sets it after any method).

neurenix's extra stops (``maxtime``, Ctrl-C) have no SciPy code: they get the
method's "other" code (2 for L-BFGS-B and BFGS-like methods, 2 for the trust
regions) with neurenix's own message.
"""
from .._core.result import Status, MESSAGES

__all__ = ["scipy_row", "to_scipy"]

_SUCCESS = "Optimization terminated successfully."
_MAXITER = "Maximum number of iterations has been exceeded."
_MAXFEV = "Maximum number of function evaluations has been exceeded."
_PR_LOSS = "Desired error not necessarily achieved due to precision loss."
_NAN = "NaN result encountered."
_CALLBACK = (99, "`callback` raised `StopIteration`.")

_LBFGSB = {
    Status.SUCCESS: (0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    Status.GTOL: (0, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    Status.FTOL: (0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    Status.XTOL: (0, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
    Status.MAXITER: (1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"),
    Status.MAXFUN: (1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"),
    Status.LINESEARCH: (2, "ABNORMAL: "),
    Status.NONFINITE: (2, "ABNORMAL: "),
    Status.NOT_DESCENT: (2, "ABNORMAL: "),
    Status.PRECISION: (2, "ABNORMAL: "),
    Status.INDEFINITE: (2, "ABNORMAL: "),
    Status.TRUST_RADIUS: (2, "ABNORMAL: "),
}

_QUASI_NEWTON = {
    Status.SUCCESS: (0, _SUCCESS), Status.GTOL: (0, _SUCCESS), Status.FTOL: (0, _SUCCESS),
    Status.XTOL: (0, _SUCCESS),
    Status.MAXITER: (1, _MAXITER), Status.MAXFUN: (1, _MAXFEV),
    Status.LINESEARCH: (2, _PR_LOSS), Status.PRECISION: (2, _PR_LOSS),
    Status.NOT_DESCENT: (2, _PR_LOSS), Status.TRUST_RADIUS: (2, _PR_LOSS),
    Status.INDEFINITE: (2, _PR_LOSS),
    Status.NONFINITE: (3, _NAN),
}

_NEWTON_CG = {
    Status.SUCCESS: (0, _SUCCESS), Status.GTOL: (0, _SUCCESS), Status.FTOL: (0, _SUCCESS),
    Status.XTOL: (0, _SUCCESS),
    Status.MAXITER: (1, "Warning: " + _MAXITER), Status.MAXFUN: (1, "Warning: " + _MAXFEV),
    Status.LINESEARCH: (2, "Warning: " + _PR_LOSS), Status.PRECISION: (2, "Warning: " + _PR_LOSS),
    Status.NOT_DESCENT: (2, "Warning: " + _PR_LOSS),
    Status.TRUST_RADIUS: (2, "Warning: " + _PR_LOSS),
    Status.INDEFINITE: (3, "Warning: CG iterations didn't converge. The Hessian is not "
                           "positive definite."),
    Status.NONFINITE: (3, _NAN),
}

_BAD_APPROX = "A bad approximation caused failure to predict improvement."
_LINALG = "A linalg error occurred, such as a non-psd Hessian."
_TRUST = {
    Status.SUCCESS: (0, _SUCCESS), Status.GTOL: (0, _SUCCESS), Status.FTOL: (0, _SUCCESS),
    Status.XTOL: (0, _SUCCESS),
    Status.MAXITER: (1, _MAXITER), Status.MAXFUN: (1, _MAXFEV),
    Status.TRUST_RADIUS: (2, _BAD_APPROX), Status.PRECISION: (2, _BAD_APPROX),
    Status.LINESEARCH: (2, _BAD_APPROX), Status.NOT_DESCENT: (2, _BAD_APPROX),
    Status.INDEFINITE: (3, _LINALG), Status.NONFINITE: (3, _LINALG),
}

#: method display name -> table (methods not listed use _QUASI_NEWTON)
_TABLES = {"L-BFGS-B": _LBFGSB, "BFGS": _QUASI_NEWTON, "CG": _QUASI_NEWTON,
           "Newton-CG": _NEWTON_CG, "trust-ncg": _TRUST, "trust-krylov": _TRUST,
           "trust-exact": _TRUST, "dogleg": _TRUST}

#: (method, Status) -> (code, message), filled on first use
_ROWS = {}


def scipy_row(method, reason):
    """``(status, message)`` that SciPy's ``minimize(method=method)`` reports for
    the termination ``reason`` (a :class:`Status`)."""
    key = (method, reason)
    row = _ROWS.get(key)
    if row is None:
        if reason is Status.CALLBACK:
            row = _CALLBACK
        else:
            table = _TABLES.get(method, _QUASI_NEWTON)
            row = table.get(reason)
            if row is None:          # MAXTIME, INTERRUPTED: no SciPy code
                row = (2, MESSAGES[reason])
        _ROWS[key] = row
    return row


def to_scipy(method, res):
    """Rewrite ``res.status``/``res.message`` (neurenix's Status) as SciPy's for
    ``method``; the Status goes to ``res.reason``.  Returns ``res``."""
    reason = res.get("reason")
    if reason is None:
        reason = _as_status(res["status"])
        if reason is None:          # not one of ours (a custom method's code)
            return res
        res["reason"] = reason
    res["status"], res["message"] = scipy_row(method, reason)
    return res


_BY_INT = {int(s): s for s in Status}


def _as_status(code):
    if type(code) is Status:
        return code
    try:
        return _BY_INT.get(int(code))
    except (TypeError, ValueError):
        return None
