# cython: language_level=3
"""The compiled loops' status codes (``_status.pxd``) as a Python dict, so that a test
can check them against :class:`neurenix.optimize.Status`."""

#: name (without the ``S_`` prefix) -> code, for every code a loop may return
CODES = {
    "SUCCESS": S_SUCCESS, "MAXITER": S_MAXITER, "MAXFUN": S_MAXFUN,
    "LINESEARCH": S_LINESEARCH, "NONFINITE": S_NONFINITE, "CALLBACK": S_CALLBACK,
    "MAXTIME": S_MAXTIME, "INTERRUPTED": S_INTERRUPTED, "GTOL": S_GTOL, "FTOL": S_FTOL,
    "XTOL": S_XTOL, "TRUST_RADIUS": S_TRUST_RADIUS, "NOT_DESCENT": S_NOT_DESCENT,
    "INDEFINITE": S_INDEFINITE, "PRECISION": S_PRECISION,
}

#: the internal "still running" code (never returned)
RUNNING = S_RUNNING

#: ``least_squares``' codes (``L_*`` in ``_status.pxd``): name -> code
LSQ_CODES = {
    "CALLBACK": L_CALLBACK, "IMPROPER": L_IMPROPER, "MAXFEV": L_MAXFEV, "GTOL": L_GTOL,
    "FTOL": L_FTOL, "XTOL": L_XTOL, "FTOL_XTOL": L_FTOL_XTOL,
    "INTERRUPTED": L_INTERRUPTED, "MAXTIME": L_MAXTIME,
}

#: the internal "still running" code of the least-squares loops (never returned)
LSQ_RUNNING = L_RUNNING
