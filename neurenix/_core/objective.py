"""The objective: one wrapper of a user's scalar function for every solver.

Used by every ``minimize`` method, by the closure-driven second-order
optimizers of :mod:`neurenix.optim` (through a thin adapter that flattens the
parameters) and, as its compiled twin :class:`neurenix._ext._evaluator.Evaluator`
(:func:`make_evaluator`), by the compiled loops.  The checks of what the user's
callables return are the compiled ones (:func:`~neurenix._ext._evaluator.check_scalar`,
:func:`~neurenix._ext._evaluator.check_vector`), shared by both.

:class:`ScalarObjective` evaluates ``fun`` (and ``jac``, ``hess``, ``hessp``),
caches f and g at the last point, counts calls (``nfev``, ``njev``, ``nhev``),
passes every user function a fresh copy of its array arguments (as SciPy does,
so a function may keep or modify them),
validates what the user's callables return, and supplies derivatives by finite
differences when they are not given: gradients by forward (``"2-point"``) or
central (``"3-point"``) differences with steps scaled to the dtype's precision
(as SciPy's ``approx_derivative``: ``h = r * sign(x) * max(1, |x|)`` with
``r = sqrt(eps)`` or ``eps ** (1/3)``), Hessian-vector products by forward
differences of the gradient.
"""
import math

import numpy as np

from .._ext._evaluator import Evaluator, check_scalar, check_vector, time_is_up
from .._ext._lbfgs import same_point as _same_point, all_finite as _all_finite

__all__ = ["ScalarObjective", "NonFiniteStart", "as_float_array", "make_evaluator", "fd_steps",
           "FD_METHODS", "check_finite_grad"]

FD_METHODS = ("2-point", "3-point", "cs")

#: machine epsilon of the working dtypes
_EPS = {np.dtype(np.float64): float(np.finfo(np.float64).eps),
        np.dtype(np.float32): float(np.finfo(np.float32).eps)}


#: (dtype, mode) -> (default finite-difference step, Hessian-vector step)
_STEPS = {}


def fd_steps(dtype, mode="2-point"):
    """``(h, t)``: the default relative finite-difference step of a gradient by
    ``mode`` (``sqrt(eps)`` for ``"2-point"``, ``eps ** (1/3)`` for
    ``"3-point"``) and the relative step of a Hessian-vector product
    (``sqrt(eps)``), ``eps`` being ``dtype``'s machine epsilon."""
    steps = _STEPS.get((dtype, mode))
    if steps is None:
        eps = _EPS.get(dtype)
        if eps is None:
            eps = float(np.finfo(dtype).eps)
        # the gradient's step as SciPy's approx_derivative computes it: a power of
        # finfo(dtype).eps in that dtype (for float32, the float32 rounding of sqrt(eps))
        e = np.finfo(dtype).eps
        steps = (float(e ** 0.5 if mode != "3-point" else e ** (1 / 3)), eps ** 0.5)
        _STEPS[(dtype, mode)] = steps
    return steps


def as_float_array(x0, name="x0"):
    """``x0`` as a 1-D contiguous float array; float32 stays float32, others float64."""
    if type(x0) is np.ndarray and x0.ndim == 1 and x0.dtype in _EPS:
        x = x0.copy()                               # the common case (C order), checked in C
        if not _all_finite(x):
            raise ValueError(f"{name} must contain only finite values")
        return x
    try:
        x = np.asarray(x0)
    except (ValueError, TypeError) as e:
        # a ragged nested sequence, or an object NumPy cannot take as an array
        raise ValueError(f"{name} must be a 1-D array of real numbers; it could not be "
                         f"converted to one ({e})") from None
    if x.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {x.dtype}")
    if x.dtype not in (np.float32, np.float64):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    if x.ndim > 1:
        raise ValueError(f"{name} must be 1-D (or a scalar), got shape {x.shape}")
    x = np.array(np.atleast_1d(x), dtype=x.dtype, order="C", copy=True)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must contain only finite values")
    return x


class NonFiniteStart(ValueError):
    """``fun(x0)`` is not finite (``.f`` holds the value, ``.obj`` the objective,
    its value at x0 cached): ``minimize`` turns it into a result, as SciPy."""

    def __init__(self, message, f, obj=None):
        super().__init__(message)
        self.f = f
        self.obj = obj


class ScalarObjective:
    """Wrapper of a scalar objective with cached value/gradient and call counters.

    Parameters
    ----------
    fun : callable ``fun(x, *args) -> float`` (or ``(float, ndarray)`` when ``jac is True``)
    x0 : ndarray
        Starting point (already validated by :func:`as_float_array`); its dtype is
        the working dtype.
    args : tuple
    jac : callable, True, None, "2-point", "3-point"
    hess : callable returning an (n, n) array, sparse matrix or LinearOperator, optional
    hessp : callable ``hessp(x, p, *args)``, optional
    fd_step : float, optional
        Relative finite-difference step (default: dtype-scaled, see module doc).
    check_x0 : bool
        Evaluate at ``x0`` now and raise if ``fun`` returns a non-finite value.
    share_x0 : bool
        With ``check_x0``: cache that evaluation on ``x0`` itself, not on a copy
        (the caller promises that ``x0`` is not modified in place while cached).
    """

    # counters and the cache start as class attributes (the first assignment
    # makes them the instance's): a small run feels each attribute set here
    nfev = 0
    njev = 0
    nhev = 0
    _x = None
    _f = None
    _g = None
    _xg = None
    _jac = None
    _hess = None
    _hessp = None
    #: SciPy's absolute finite-difference step (the ``eps`` option of BFGS, CG and
    #: L-BFGS-B, see :meth:`use_abs_step`); None: the relative steps
    abs_step = None
    #: (lb, ub) that the forward-difference steps keep within, or None
    fd_bounds = None
    #: whether the user gave ``finite_diff_rel_step``
    rel_step_given = False
    #: the run's wall-clock deadline (``time.perf_counter`` scale), set by the
    #: driver of a run with ``maxtime``; 0: none.  Checked before each call of
    #: ``fun`` (:class:`~neurenix._ext._evaluator.MaxTimeExceeded`).
    deadline = 0.0
    #: SciPy's ``workers`` (see :meth:`set_workers`): the map-like callable (or
    #: process count) that evaluates the points of a finite-difference gradient;
    #: None: one after another
    workers = None

    def __init__(self, fun, x0, args=(), jac=None, hess=None, hessp=None, fd_step=None,
                 check_x0=True, share_x0=False, grad_dtype=None):
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        if not isinstance(args, tuple):
            args = (args,)
        self._fun = fun
        self.args = args
        self.dtype = x0.dtype
        #: the dtype of the gradients (given or finite differences): x's dtype, or float64
        #: where a float32 run iterates in float64 as SciPy's L-BFGS-B (``_lbfgs.py``),
        #: which uses them unrounded
        self.grad_dtype = x0.dtype if grad_dtype is None else np.dtype(grad_dtype)
        self.n = x0.size
        if jac is True:
            self.mode = "combined"
        elif callable(jac):
            self.mode = "callable"
            self._jac = jac
        elif jac is None or jac is False or (isinstance(jac, str) and jac in ("2-point", "3-point", "cs")):
            self.mode = "3-point" if jac == "3-point" else "2-point"
        else:
            raise ValueError(f"jac must be True, a callable, None, '2-point' or '3-point', got {jac!r}")
        if hess is not None:
            if callable(hess):
                self._hess = hess
            elif not isinstance(hess, str):
                raise TypeError(f"hess must be callable, got {type(hess).__name__}")
        if hessp is not None:
            if not callable(hessp):
                raise TypeError(f"hessp must be callable, got {type(hessp).__name__}")
            self._hessp = hessp
        steps = _STEPS.get((self.dtype, self.mode))
        if steps is None:
            steps = fd_steps(self.dtype, self.mode)
        if fd_step is None:
            self.fd_step = steps[0]
        else:
            self.fd_step = float(fd_step)
            self.rel_step_given = True
        self._hvp_step = steps[1]
        if check_x0:
            if share_x0:
                # self.fun(x0) with the cache on x0 itself (nothing is cached yet)
                f, g = self._call(x0)
                self._x = x0
                self._f = f
                if g is not None:
                    self._g = g
                    self._xg = x0
                    self.njev += 1
            else:
                f = self.fun(x0)
            if not math.isfinite(f):
                raise NonFiniteStart(f"fun returned a non-finite value ({f}) at x0", f, self)

    # ----------------------------------------------------------- evaluation
    def _call(self, x):
        if self.deadline:
            time_is_up(self.deadline)
        # a fresh copy per call, as SciPy: the user may keep or modify the argument
        out = self._fun(x.copy() if type(x) is np.ndarray else np.array(x, copy=True), *self.args)
        self.nfev += 1
        if self.mode == "combined":
            try:
                f, g = out
            except (TypeError, ValueError):
                raise TypeError("fun must return a pair (f, g) when jac is True") from None
            return check_scalar(f, "fun"), check_vector(g, self.n, self.grad_dtype, "jac")
        return check_scalar(out, "fun"), None

    def _same(self, x, y):
        """Whether ``x`` is the cached point ``y``: a bitwise comparison in C for
        contiguous arrays of the working dtype, ``np.array_equal`` otherwise."""
        if y is None:
            return False
        r = _same_point(x, y)
        return np.array_equal(x, y) if r is None else r

    # ---------------------------------------------------------------- cache
    def cache(self):
        """``(x, f, xg, g)``: the point whose value is cached and that value, the
        point whose gradient is cached and that gradient (None where nothing is
        cached).  The points are the arrays the cache holds (a method registered
        ``x0_read_only`` finds ``x0`` itself there: test with ``is``); do not
        modify them."""
        return self._x, self._f, self._xg, self._g

    def restore_cache(self, state):
        """Put back a cache returned by :meth:`cache`."""
        self._x, self._f, self._xg, self._g = state

    def reset_cache(self):
        """Forget the cached value and gradient (after a loop that evaluated the
        function without this wrapper's cache, so that it claims no stale values)."""
        self._x = self._xg = None

    def callables(self):
        """``(fun, jac, hess, hessp)``: the user's callables (``jac`` None unless
        it is a callable; ``fun`` returns ``(f, g)`` when :attr:`mode` is
        ``"combined"``), for the compiled loops that call them directly."""
        return self._fun, self._jac, self._hess, self._hessp

    def fun(self, x):
        """f(x), cached at the last point."""
        if self._same(x, self._x):
            return self._f
        f, g = self._call(x)
        self._x = x.copy() if type(x) is np.ndarray else np.array(x, copy=True)
        self._f = f
        if g is not None:
            self._g = g
            self._xg = self._x
            self.njev += 1
        return f

    def grad(self, x):
        """g(x), cached at the last point."""
        if self._same(x, self._xg):
            return self._g
        if self.mode == "combined":
            self._x = None
            self.fun(x)
            return self._g
        if self.mode == "callable":
            g = check_vector(self._jac(np.array(x, copy=True), *self.args), self.n,
                             self.grad_dtype, "jac")
            self.njev += 1
        else:
            g = self._fd_grad(x)
        self._xg = np.array(x, copy=True)
        self._g = g
        return g

    def fun_and_grad(self, x):
        f = self.fun(x)
        return f, self.grad(x)

    def start(self, x0):
        """``(f, g)`` at the starting point, with ``ValueError`` naming ``jac``
        when the gradient there is not finite (the methods' first check: a NaN
        gradient is otherwise blamed on whatever uses it first, e.g. ``hessp``)."""
        f, g = self.fun_and_grad(x0)
        check_finite_grad(g)
        return f, g

    def _fd_grad(self, x):
        f0 = self.fun(x)
        n = self.n
        g = np.empty(n, dtype=self.grad_dtype)
        xt = np.array(x, dtype=self.dtype, copy=True)
        sign = np.where(x >= 0, 1.0, -1.0)
        h = self.fd_step * sign * np.maximum(1.0, np.abs(x))
        if self.abs_step is not None:
            # SciPy's absolute step; where it vanishes against x (tested in x's dtype,
            # as approx_derivative), the relative one
            h = np.where((x + self.abs_step) - x == 0, h, self.abs_step)
        if self.fd_bounds is not None and self.mode != "3-point":
            h = _one_sided_in_bounds(x, h, *self.fd_bounds)
        if self.workers is not None:
            return self._fd_grad_mapped(x, f0, h, g)
        for i in range(n):
            xi = xt[i]
            if self.mode == "3-point":
                xt[i] = xi + h[i]
                hp = xt[i] - xi
                fp, _ = self._call(xt)
                xt[i] = xi - h[i]
                hm = xi - xt[i]
                fm, _ = self._call(xt)
                g[i] = (fp - fm) / (hp + hm)
            else:
                xt[i] = xi + h[i]
                # approx_derivative's step (xi + h) - xi: the step taken for float64,
                # in float64 (not the float32 one taken) for float32
                hh = (xi + h[i]) - xi
                fp, _ = self._call(xt)
                g[i] = (fp - f0) / hh
            xt[i] = xi
        return g

    def _fd_grad_mapped(self, x, f0, h, g):
        """The finite-difference gradient of :meth:`_fd_grad` (same points, same
        arithmetic) with the values computed as ``workers(fun, points)``, as
        SciPy's ``approx_derivative`` computes them when given ``workers``: one
        fresh copy of x per point, in the order of the serial loop (for
        ``"3-point"`` the forward point of each coordinate, then its backward one)."""
        n = self.n
        three = self.mode == "3-point"
        xs = np.array(x, dtype=self.dtype, copy=True)
        steps = np.empty((n, 2))

        def points():
            for i in range(n):
                xp = xs.copy()
                xp[i] = xs[i] + h[i]
                steps[i, 0] = xp[i] - xs[i] if three else (xs[i] + h[i]) - xs[i]  # as _fd_grad
                yield xp
                if three:
                    xm = xs.copy()
                    xm[i] = xs[i] - h[i]
                    steps[i, 1] = xs[i] - xm[i]
                    yield xm

        if self.deadline:
            time_is_up(self.deadline)
        with _map_wrapper(self.workers) as mapped:
            values = [check_scalar(v, "fun") for v in mapped(_ValueAt(self._fun, self.args),
                                                             points())]
        self.nfev += len(values)
        for i in range(n):
            if three:
                g[i] = (values[2 * i] - values[2 * i + 1]) / (steps[i, 0] + steps[i, 1])
            else:
                g[i] = (values[i] - f0) / steps[i, 0]
        return g

    def set_workers(self, workers):
        """SciPy's ``workers`` option: evaluate the points of each finite-difference
        gradient in parallel, as ``workers(fun, points)`` for a map-like callable
        (e.g. ``multiprocessing.Pool.map``), or on a ``multiprocessing.Pool`` of
        ``workers`` processes for an int (-1: every CPU; 1: one after another), a
        new pool for each gradient as in SciPy.  The points and the arithmetic are
        the serial ones, so the iterates are unchanged.  Without finite
        differences (a ``jac`` given) it has nothing to do, as in SciPy."""
        if workers is None:
            self.workers = None
            return
        if isinstance(workers, (bool, np.bool_)) or not (
                callable(workers) or isinstance(workers, (int, np.integer))):
            raise TypeError("options['workers'] must be an int or a map-like callable, "
                            f"got {type(workers).__name__}")
        if not callable(workers) and not (workers == -1 or workers >= 1):
            raise ValueError(f"options['workers'] must be -1 or a positive int, got {workers}")
        self.workers = workers

    def use_abs_step(self, eps, bounds=None):
        """Finite-difference gradients with SciPy's absolute step ``eps`` (the
        ``eps`` option of BFGS, CG and L-BFGS-B: SciPy differentiates with it
        whenever no gradient function is given), unless the user set
        ``finite_diff_rel_step``; with ``bounds`` (an object with ``lb``/``ub``)
        the forward steps stay inside them, as SciPy's ``approx_derivative``."""
        if self.mode not in ("2-point", "3-point"):
            return
        if not self.rel_step_given:
            eps = float(eps)
            if not (math.isfinite(eps) and eps != 0.0):
                raise ValueError(f"options['eps'] must be a finite non-zero number, got {eps!r}")
            self.abs_step = eps
        if bounds is not None:
            self.fd_bounds = (np.asarray(bounds.lb, dtype=float), np.asarray(bounds.ub, dtype=float))

    # ------------------------------------------------------------ Hessian
    @property
    def has_hessian(self):
        return self._hess is not None

    @property
    def has_hessp(self):
        return self._hessp is not None

    def hess(self, x):
        """The user's Hessian at x (dense array, sparse matrix or LinearOperator)."""
        H = self._hess(np.array(x, copy=True), *self.args)
        self.nhev += 1
        return H

    def hessp(self, x, p):
        """Hessian-vector product: user ``hessp``, ``hess(x) @ p``, or finite
        differences of the gradient."""
        if self._hessp is not None:
            if self.deadline:
                time_is_up(self.deadline)
            out = self._hessp(np.array(x, copy=True), np.array(p, copy=True), *self.args)
            self.nhev += 1
            out = check_vector(out, self.n, self.dtype, "hessp")
            if not np.all(np.isfinite(out)):
                raise ValueError("hessp returned non-finite values")
            return out
        if self._hess is not None:
            H = self.hess(x)
            return np.ascontiguousarray(H @ p, dtype=self.dtype).reshape(self.n)
        return self.fd_hessp(x, p)

    def fd_hessp(self, x, p):
        """Forward difference of the gradient along ``p``."""
        pn = float(np.linalg.norm(p))
        if pn == 0.0:
            return np.zeros(self.n, dtype=self.dtype)
        g0 = self.grad(x).copy()
        t = self._hvp_step * (1.0 + float(np.linalg.norm(x))) / pn
        xt = (x + t * p).astype(self.dtype, copy=False)
        gt = self._grad_uncached(xt)
        return ((gt - g0) / t).astype(self.dtype, copy=False)

    def _grad_uncached(self, x):
        saved = self.cache()
        g = self.grad(x).copy()
        self.restore_cache(saved)       # the cache stays at the main iterate
        return g


def check_finite_grad(g):
    """``ValueError`` naming ``jac`` when the gradient at x0 is not finite."""
    if not _all_finite(g):
        raise ValueError("jac returned non-finite values at x0")


_EVAL_MODES = {"combined": 0, "callable": 1}


def make_evaluator(obj):
    """The compiled quasi-Newton loop's view of a :class:`ScalarObjective`: an
    :class:`~neurenix._ext._evaluator.Evaluator` calling the user's ``fun``/``jac``
    directly (through the objective for finite-difference gradients), with
    absolute counters (:meth:`Evaluator.sync` writes them back)."""
    return Evaluator(obj, _EVAL_MODES.get(obj.mode, 2), obj._fun, obj._jac, obj.args,
                     obj.dtype.num, obj.n)


class _ValueAt:
    """``fun(x, *args)``: the function a ``workers`` map receives (picklable when
    ``fun`` and ``args`` are, for a process pool)."""

    def __init__(self, fun, args):
        self.fun = fun
        self.args = args

    def __call__(self, x):
        return self.fun(x, *self.args)


def _map_wrapper(workers):
    """A context giving ``mapped(fun, iterable)`` for SciPy's ``workers`` (SciPy's
    own ``MapWrapper``: a map-like callable as is, an int as a process pool)."""
    try:
        from scipy._lib._util import MapWrapper
    except ImportError:         # pragma: no cover - a SciPy that moved it
        MapWrapper = _OwnMapWrapper
    return MapWrapper(workers)


class _OwnMapWrapper:
    """``MapWrapper``'s behaviour, for a SciPy without it."""

    def __init__(self, workers):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if callable(self.workers):
            return self.workers
        if self.workers == 1:
            return map
        import multiprocessing
        self.pool = multiprocessing.Pool(None if self.workers == -1 else int(self.workers))
        return self.pool.map

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _one_sided_in_bounds(x, h, lb, ub):
    """Forward-difference steps adjusted to the bounds as SciPy's
    ``approx_derivative`` does for ``"2-point"``: a step that leaves the box is
    reversed when the reversed one fits, otherwise it is shrunk to the larger
    distance to a bound."""
    lower = x - lb
    upper = ub - x
    xh = x + h
    violated = (xh < lb) | (xh > ub)
    if not violated.any():
        return h
    h = h.copy()
    fitting = np.abs(h) <= np.maximum(lower, upper)
    h[violated & fitting] *= -1
    forward = (upper >= lower) & ~fitting
    h[forward] = upper[forward]
    backward = (upper < lower) & ~fitting
    h[backward] = -lower[backward]
    return h
