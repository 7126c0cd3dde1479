# Moré–Thuente line search: reverse-communication state shared with _lbfgs.pyx.
cdef struct MTState:
    double ftol, gtol, xtol, stpmin, stpmax
    double finit, ginit, gtest, width, width1
    double stx, fx, gx, sty, fy, gy, stmin, stmax
    int brackt, stage

# task codes returned by mt_start / mt_iterate
cdef enum:
    MT_FG = 0            # evaluate phi and phi' at the new stp, then call mt_iterate
    MT_CONVERGED = 1     # strong Wolfe conditions hold at stp
    MT_ROUNDING = 2      # warning: rounding errors prevent progress
    MT_XTOL = 3          # warning: interval of uncertainty below xtol
    MT_STPMAX = 4        # warning: stp == stpmax with sufficient decrease and negative slope
    MT_STPMIN = 5        # warning: stp == stpmin without sufficient decrease
    MT_ERROR = 6         # bad input (g >= 0 at 0, stp out of range, ...)

cdef int mt_start(MTState* s, double f, double g, double* stp, double ftol, double gtol,
                  double xtol, double stpmin, double stpmax) noexcept nogil
cdef int mt_iterate(MTState* s, double* stp, double f, double g) noexcept nogil
cdef void mt_nonfinite(MTState* s, double* stp) noexcept nogil
