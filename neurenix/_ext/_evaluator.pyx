# cython: language_level=3
"""The objective evaluator of the compiled ``minimize`` loops, and the checks of
what a user's objective returns.

:func:`check_scalar` and :func:`check_vector` validate the value and gradient
returned by a user's ``fun``/``jac`` (a real scalar; an array of ``x``'s
shape, errors naming the callable).  They are the one home of these checks:
:class:`neurenix._core.objective.ScalarObjective` calls them, and so does
:class:`Evaluator` behind its fast paths for a Python / NumPy float and a
C-contiguous array of ``x``'s dtype.

One class, :class:`Evaluator`, calls the user's ``fun``/``jac`` from Cython
for both compiled drivers -- the quasi-Newton loop of :mod:`._lbfgs`
(L-BFGS(-B), BFGS, CG: f and g together, :meth:`Evaluator.evaluate`) and the
second-order loops of :mod:`._krylov` (Newton-CG, trust regions: f and g
apart, :meth:`Evaluator.f_at` / :meth:`Evaluator.g_at`; the Hessian access
lives in ``_krylov.Problem``, which holds one of these).  It is the compiled
twin of :class:`~neurenix._core.objective.ScalarObjective`: every user call
gets a fresh copy of ``x`` (as SciPy's wrappers pass ``np.copy(x)``), and
what comes back goes through the same checks.

This module imports nothing from the rest of neurenix.
"""
import numbers
from time import perf_counter

import numpy as np

cimport numpy as cnp
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from libc.string cimport memcpy

cnp.import_array()


cdef double _check_scalar(object value, str what) except? -1.0:
    cdef cnp.ndarray a
    if PyFloat_Check(value):            # float and numpy.float64: the common case
        return PyFloat_AS_DOUBLE(value)
    if cnp.PyArray_Check(value):
        a = <cnp.ndarray>value
        if cnp.PyArray_SIZE(a) != 1:
            raise ValueError(f"{what} must return a scalar, got an array of shape {np.shape(value)}")
        value = a.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{what} must return a real scalar, got {type(value).__name__}")
    return float(value)


def check_scalar(value, what="fun"):
    """``value`` (what ``what`` returned) as a Python float.

    A real scalar or an array of size 1; ``ValueError`` for a larger array,
    ``TypeError`` for anything else (bools included), naming ``what``.
    """
    return _check_scalar(value, what)


cdef object _check_vector(object value, Py_ssize_t n, object dtype, str what):
    cdef cnp.ndarray a
    if cnp.PyArray_CheckExact(value):
        a = <cnp.ndarray>value
        if (cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == n
                and cnp.PyArray_STRIDE(a, 0) == cnp.PyArray_ITEMSIZE(a)
                and (<object>cnp.PyArray_DESCR(a) is dtype or a.dtype == dtype)):
            return a                    # already what the methods need (the common case)
    g = np.asarray(value)
    if g.shape != (n,):
        if g.size == n and g.ndim <= 2:
            g = g.reshape(n)
        else:
            raise ValueError(f"{what} must return an array of shape ({n},), got {g.shape}")
    if g.dtype.kind not in "fiub":
        raise TypeError(f"{what} must return a real array, got dtype {g.dtype}")
    return np.ascontiguousarray(g, dtype=dtype)


def check_vector(value, Py_ssize_t n, dtype, what="jac"):
    """``value`` (what ``what`` returned) as a C-contiguous array of shape ``(n,)``
    and type ``dtype``: returned as is when it already is one, else converted
    (an array of ``n`` elements in up to two dimensions is flattened);
    ``ValueError`` naming ``what`` for another size."""
    return _check_vector(value, n, dtype, what)


class MaxTimeExceeded(Exception):
    """Raised before a call of the user's function once the run's wall-time limit
    (``minimize``'s ``maxtime``) has passed, so that a limit is honoured inside
    line searches and inner loops too; the drivers catch it and return the best
    point so far with ``Status.MAXTIME``."""


def time_is_up(double deadline):
    """Raise :class:`MaxTimeExceeded` when ``deadline`` (``time.perf_counter``
    scale; 0 means none) has passed."""
    if deadline != 0.0 and perf_counter() >= deadline:
        raise MaxTimeExceeded("maxtime")


cdef inline cnp.ndarray _copy(cnp.ndarray a):
    return <cnp.ndarray>cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef class Evaluator:
    """Evaluates f and g of a :class:`~neurenix._core.objective.ScalarObjective`
    ``obj`` and counts the calls.

    ``mode`` 0: ``fun`` returns ``(f, g)``; 1: separate ``fun`` and ``jac``;
    2: through the objective (``obj.fun_and_grad`` / ``obj.fun`` /
    ``obj.grad``: finite-difference gradients, the objective's cache and
    counters).

    Calls made directly (modes 0 and 1) are counted in the C integers
    ``nfev``/``njev`` (``nhev`` is the Hessian calls of ``_krylov.Problem``).
    Two bookkeeping styles, fixed by ``absolute``:

    - ``absolute=True`` (the quasi-Newton loop, which tests ``nfev`` against
      ``maxfun``): the counters start at the objective's and always hold the
      totals; in mode 2 they are refreshed from the objective after each
      call.  :meth:`sync` writes them back (modes 0 and 1).
    - ``absolute=False`` (the second-order loops, whose Hessian operators
      count on the objective themselves): the counters start at 0 and hold
      the calls made here; :meth:`flush` adds them to the objective's and
      resets them.
    """

    def __init__(self, obj, int mode, fun, jac, tuple args, int typenum, Py_ssize_t n,
                 bint absolute=True):
        self.obj = obj
        self.mode = mode
        self.fun = fun
        self.jac = jac
        self.args = args
        self.noargs = len(args) == 0
        self.typenum = typenum
        self.dtype = cnp.PyArray_DescrFromType(typenum)
        self.n = n
        self.absolute = absolute
        if absolute:
            self.nfev = obj.nfev
            self.njev = obj.njev
        self.nhev = 0
        self.deadline = getattr(obj, "deadline", 0.0) or 0.0

    cdef int check_time(self) except -1:
        """Raise :class:`MaxTimeExceeded` once the deadline has passed (a clock
        read only when a deadline is set)."""
        if self.deadline != 0.0 and perf_counter() >= self.deadline:
            raise MaxTimeExceeded("maxtime")
        return 0

    cpdef sync(self):
        """Write the (absolute) counters back to the objective wrapper."""
        if self.mode != 2:
            self.obj.nfev = self.nfev
            self.obj.njev = self.njev

    def flush(self):
        """Add the calls counted here to the objective's counters (and reset them)."""
        self.obj.nfev += self.nfev
        self.obj.njev += self.njev
        self.obj.nhev += self.nhev
        self.nfev = self.njev = self.nhev = 0

    cdef object call(self, object fn, object x):
        if self.deadline != 0.0:
            self.check_time()
        if self.noargs:
            return fn(x)
        return fn(x, *self.args)

    cdef double fval(self, object fo) except? -1.0:
        if PyFloat_Check(fo):           # float and numpy.float64
            return PyFloat_AS_DOUBLE(fo)
        return _check_scalar(fo, "fun")

    cdef int gval(self, object go, cnp.ndarray g) except -1:
        """Validate a gradient and copy it into ``g`` (converted to ``g``'s dtype: x's,
        or float64 for the float32 L-BFGS-B run, which iterates in float64 as SciPy)."""
        cdef cnp.ndarray a
        cdef int gt = cnp.PyArray_TYPE(g)
        if cnp.PyArray_Check(go):
            a = <cnp.ndarray>go
            if (cnp.PyArray_TYPE(a) == gt and cnp.PyArray_NDIM(a) == 1
                    and cnp.PyArray_DIM(a, 0) == self.n and cnp.PyArray_IS_C_CONTIGUOUS(a)):
                memcpy(cnp.PyArray_DATA(g), cnp.PyArray_DATA(a), self.n * cnp.PyArray_ITEMSIZE(g))
                return 0
        a = _check_vector(go, self.n, self.dtype if gt == self.typenum else g.dtype, "jac")
        memcpy(cnp.PyArray_DATA(g), cnp.PyArray_DATA(a), self.n * cnp.PyArray_ITEMSIZE(g))
        return 0

    cdef int _mirror(self) except -1:
        if self.absolute:
            self.nfev = self.obj.nfev
            self.njev = self.obj.njev
        return 0

    cdef double evaluate(self, cnp.ndarray x, cnp.ndarray g) except? -1.0:
        """f(x), with g(x) written to ``g`` (the quasi-Newton loop's call)."""
        cdef double f
        cdef bint got
        if self.mode == 0:
            return self.f_at(x, g, &got)
        if self.mode == 1:
            fo = self.call(self.fun, _copy(x))
            self.nfev += 1
            f = self.fval(fo)
            go = self.call(self.jac, _copy(x))              # jac gets its own copy too
            self.gval(go, g)
            self.njev += 1
            return f
        fo, go = self.obj.fun_and_grad(_copy(x))
        self._mirror()
        f = fo
        self.gval(go, g)
        return f

    cdef double f_at(self, cnp.ndarray x, cnp.ndarray g, bint* got_g) except? -1.0:
        """f(x); in mode 0 the gradient comes with it (written to ``g``, ``got_g``)."""
        cdef double f
        got_g[0] = False
        if self.mode == 0:
            out = self.call(self.fun, _copy(x))
            self.nfev += 1
            try:
                fo, go = out
            except (TypeError, ValueError):
                raise TypeError("fun must return a pair (f, g) when jac is True") from None
            f = self.fval(fo)
            self.gval(go, g)
            self.njev += 1
            got_g[0] = True
            return f
        if self.mode == 1:
            fo = self.call(self.fun, _copy(x))
            self.nfev += 1
            return self.fval(fo)
        f = self.obj.fun(_copy(x))
        self._mirror()
        return f

    cdef int g_at(self, cnp.ndarray x, cnp.ndarray g) except -1:
        """g(x) written to ``g``."""
        cdef bint got
        if self.mode == 1:
            go = self.call(self.jac, _copy(x))
            self.njev += 1
            self.gval(go, g)
        elif self.mode == 0:
            self.f_at(x, g, &got)
        else:
            go = self.obj.grad(_copy(x))
            self._mirror()
            self.gval(go, g)
        return 0
