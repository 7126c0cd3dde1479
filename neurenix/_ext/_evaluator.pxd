# The objective evaluator shared by the compiled minimize loops (_lbfgs.pyx, _krylov.pyx).
cimport cython
cimport numpy as cnp


# the one check of a vector returned by a user callable (jac, hessp, hess @ d, a subproblem step)
cdef object _check_vector(object value, Py_ssize_t n, object dtype, str what)


@cython.final
cdef class Evaluator:
    cdef object obj, fun, jac, args, dtype
    cdef int mode, typenum
    cdef bint noargs, absolute
    cdef Py_ssize_t n
    cdef public Py_ssize_t nfev, njev, nhev
    #: the run's wall-clock deadline (``time.perf_counter`` scale; 0: none)
    cdef public double deadline

    cdef int check_time(self) except -1

    cdef object call(self, object fn, object x)
    cdef double fval(self, object fo) except? -1.0
    cdef int gval(self, object go, cnp.ndarray g) except -1
    cpdef sync(self)
    cdef int _mirror(self) except -1
    cdef double evaluate(self, cnp.ndarray x, cnp.ndarray g) except? -1.0
    cdef double f_at(self, cnp.ndarray x, cnp.ndarray g, bint* got_g) except? -1.0
    cdef int g_at(self, cnp.ndarray x, cnp.ndarray g) except -1
