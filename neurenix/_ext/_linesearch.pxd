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


# Nocedal–Wright bracketing/zoom search (SciPy's line_search_wolfe2): reverse-communication
# state shared with _lbfgs.pyx
cdef struct W2State:
    double phi0, derphi0, c1, c2, amax
    double alpha0, alpha1, phi_a0, phi_a1, derphi_a0, derphi_a1   # bracketing phase
    double a_lo, a_hi, phi_lo, phi_hi, derphi_lo, a_rec, phi_rec   # zoom phase
    double a_j, phi_aj, derphi_aj
    double stp, phi, derphi          # the result (derphi only for W2_DONE)
    int i, maxiter, j, stage, extra

# task codes returned by w2_start / w2_phi / w2_dphi / w2_extra
cdef enum:
    W2_F = 10            # evaluate phi at stp, then call w2_phi
    W2_G = 11            # evaluate phi' at stp (phi there was just passed), then call w2_dphi
    W2_EXTRA = 12        # stp satisfies the strong Wolfe conditions: test the caller's extra
                         # condition there, then call w2_extra
    W2_DONE = 13         # stp accepted; phi and phi' there in the state
    W2_DONE_NOG = 14     # bracketing iteration limit: stp is the last trial (phi known, phi' not)
    W2_ROUNDING = 15     # failure: a zero trial step
    W2_AMAX = 16         # failure: the step passed amax
    W2_ZOOM = 17         # failure: zoom iteration limit

cdef int w2_start(W2State* s, double phi0, double old_phi0, bint has_old, double derphi0,
                  double c1, double c2, double amax, int maxiter, bint extra,
                  double* stp) noexcept nogil
cdef int w2_phi(W2State* s, double phi, double* stp) noexcept nogil
cdef int w2_dphi(W2State* s, double derphi, double* stp) noexcept nogil
cdef int w2_extra(W2State* s, bint ok, double* stp) noexcept nogil
cdef double first_step(double phi0, double old_phi0, double derphi0) noexcept nogil
