# The status codes of the compiled minimize loops: the values of
# neurenix.optimize.Status (neurenix/_core/result.py holds the table of success flags and
# messages; tests/test_architecture.py checks that the two agree).  A loop cimports them:
#     from ._status cimport *
cdef enum:
    S_RUNNING = -1          # internal: the loop goes on
    S_SUCCESS = 0
    S_MAXITER = 1
    S_MAXFUN = 2
    S_LINESEARCH = 3
    S_NONFINITE = 4
    S_CALLBACK = 5
    S_MAXTIME = 6
    S_INTERRUPTED = 7
    S_GTOL = 8
    S_FTOL = 9
    S_XTOL = 10
    S_TRUST_RADIUS = 11
    S_NOT_DESCENT = 12
    S_INDEFINITE = 13
    S_PRECISION = 14

# least_squares' status codes (SciPy's; the messages are neurenix._core.result.LSQ_MESSAGES,
# checked by tests/test_architecture.py)
cdef enum:
    L_RUNNING = -100        # internal: the loop goes on
    L_MAXTIME = -4          # neurenix's: options maxtime reached (best point returned)
    L_INTERRUPTED = -3      # neurenix's: KeyboardInterrupt (best point returned)
    L_CALLBACK = -2         # the callback asked to stop
    L_IMPROPER = -1         # improper input parameters
    L_MAXFEV = 0            # max_nfev reached
    L_GTOL = 1
    L_FTOL = 2
    L_XTOL = 3
    L_FTOL_XTOL = 4
