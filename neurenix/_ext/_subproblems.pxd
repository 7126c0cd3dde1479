# cython: language_level=3
# Declarations of the subproblem steps (_subproblems.pyx) for the loops of _krylov.pyx.
cimport numpy as cnp
from cython cimport floating

from ._dense cimport DenseState

# return codes of the CG loops (the values of CG_CONVERGED, ... in Python)
cdef enum:
    C_CONVERGED = 0
    C_NEGATIVE = 1
    C_MAXITER = 2
    C_BOUNDARY = 3


cdef inline double update_radius_c(double radius, double rho, bint hits,
                                   double max_radius) noexcept nogil:
    """N&W Algorithm 4.1: quarter the radius when ``rho < 1/4``, double it (up to
    ``max_radius``) when ``rho > 3/4`` and the step reached the boundary."""
    if rho < 0.25 or rho != rho:
        return 0.25 * radius
    if rho > 0.75 and hits:
        return 2.0 * radius if 2.0 * radius < max_radius else max_radius
    return radius




cdef inline cnp.ndarray _copy(cnp.ndarray a):
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef inline cnp.ndarray _empty(Py_ssize_t n, int typenum):
    """``np.empty(n, dtype)`` without the Python call."""
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return <cnp.ndarray>cnp.PyArray_EMPTY(1, dims, typenum, 0)




from ._evaluator cimport _check_vector


cdef inline object _as_vector(object out, Py_ssize_t n, int typenum, str name):
    """``out`` as a C-contiguous ``(n,)`` array of type ``typenum``: the objective's one
    vector check (``_evaluator._check_vector``), keyed by type number."""
    return _check_vector(out, n, cnp.PyArray_DescrFromType(typenum), name)
cdef bint _vec_finite(cnp.ndarray a)


cdef class _Hess:
    cdef Py_ssize_t n
    cdef int typenum
    cdef public Py_ssize_t nprod

    cdef object apply(self, object d)
    cdef int nonfinite(self, object hd) except -1


cdef class Lanczos:
    cdef cnp.ndarray Q_arr, ab_arr, work_arr, w_arr, v_arr, g_arr
    cdef Py_ssize_t n, cap, k
    cdef int restarts, max_restarts, typenum
    cdef bint terminal, empty
    cdef double gamma, tscale, bnorm
    cdef public double lam

    cdef _alloc(self, Py_ssize_t cap)
    cpdef reset(self, g)
    cdef int _grow_to(self, Py_ssize_t need) except -1


cdef class DenseSubproblem:
    cdef cnp.ndarray H_arr, L_arr, g_arr, work_arr, acc_arr, rd_arr, bw_arr
    cdef Py_ssize_t n
    cdef int typenum
    cdef DenseState s
    cdef bint ready

    cpdef set_point(self, cnp.ndarray H, cnp.ndarray g, bint check_symmetric=*)


cdef int _cg_newton(const floating* g, _Hess H, cnp.ndarray d_arr, floating* r, floating* p,
                    Py_ssize_t n, double tol, Py_ssize_t maxiter, bint l1,
                    Py_ssize_t* iters) except -1
cdef int _steihaug(const floating* g, _Hess H, cnp.ndarray d_arr, floating* r, floating* p,
                   Py_ssize_t n, double radius, double tol, Py_ssize_t maxiter,
                   bint* hits, double* model, Py_ssize_t* iters) except -1
cdef int _gltr_solve(Lanczos lz, _Hess H, double radius, double tol, Py_ssize_t maxiter,
                     floating* p, bint* hits, double* model, Py_ssize_t* iters) except -1
cdef int _ds_solve(DenseSubproblem ds, floating* p, double radius, bint dogleg, bint* hits,
                   double* model) noexcept
