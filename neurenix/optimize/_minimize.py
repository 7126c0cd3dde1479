"""``minimize``: SciPy's dispatcher over the registered methods.

Contract for method implementers
--------------------------------
A method is registered with :func:`register_method` and is then reachable by
its name and aliases, case-insensitively (``"L-BFGS-B"``, ``"l_bfgs_b"`` and
``"lbfgsb"`` are the same key: case, ``-``, ``_`` and spaces are ignored).

Driver-side methods (the default, ``raw=False``) have the signature::

    def _minimize_xxx(obj, x0, *, bounds, driver, <option>=<default>, ...):
        ...
        return driver.result(status, x, f, g, nit, **extra)  # an OptimizeResult

- ``obj`` is a :class:`~neurenix._core.objective.ScalarObjective` (cached
  f/g, counters, finite differences, ``hessp``); ``obj.fun(x0)`` has already
  been evaluated and validated (its value is cached).
- ``x0`` is a fresh 1-D float32/float64 array (projected into the bounds);
  keep its dtype.  A method registered with ``x0_read_only=True`` promises
  never to modify ``x0`` in place; the objective's cache and the driver's
  starting point then hold ``x0`` itself instead of copies of it.
- ``bounds`` is ``None`` or a :class:`Bounds` with ``lb``/``ub`` arrays of
  x0's size and dtype (``-inf``/``inf`` where unbounded).  Methods registered
  with ``bounds=False`` always get ``None`` (``minimize`` warns that the bounds
  are ignored, as SciPy does).
- ``driver`` is a :class:`~neurenix.optimize._driver.Driver`: call
  ``status = driver.iteration(nit, x, f, g, step)`` after each iteration and
  stop when it returns a status (callback ``StopIteration``, ``maxtime``);
  ``driver.active`` is False when there is nothing to report to, so compiled
  loops may skip the call.  ``KeyboardInterrupt`` may be left to propagate:
  ``minimize`` catches it and returns ``driver.interrupted()`` (the best
  point reported to ``driver.iteration``/``driver.record``), or the method
  may catch it itself and return ``Status.INTERRUPTED``.
- The keyword options are the method's own options; their names and defaults
  are read from the signature (everything after ``driver``), so unknown
  options can be warned about (:class:`OptimizeWarning`, as SciPy).
  ``maxtime`` and ``disp`` are handled by ``minimize`` (given to the driver)
  and need not appear in the signature; ``maxiter``/``maxfun`` (when the method
  has them) are validated here as non-negative integers.
- ``tol`` is mapped by ``minimize`` to the option names given as ``tol=`` at
  registration (only when the user did not set those options).

Raw methods (``raw=True``) take SciPy's callable-method signature
``func(fun, x0, args=, jac=, hess=, hessp=, bounds=, callback=, **options)``
and do everything themselves; they may be registered lazily as a
``"module:function"`` string so that import order does not matter.
"""
import inspect
import math
from collections.abc import Mapping
import numbers
import warnings

import numpy as np

from .._ext._lbfgs import prepare_box as _prepare_box
from .._core.objective import ScalarObjective, NonFiniteStart, as_float_array
from .._core.result import OptimizeWarning, Status, make_result, LSQ_TO_STATUS
from .._ext._evaluator import MaxTimeExceeded
from .._core.validation import MAX_COUNT
from .._ext._lbfgs import _infinite_bound_msg, gnorm as _gnorm
from ._driver import Driver
from ._scipy_status import to_scipy
from ._delegate import DELEGATED, delegated_method, delegate_minimize, has_constraints

__all__ = ["minimize", "register_method", "Bounds", "available_methods", "METHODS"]


class Bounds:
    """Bounds on the variables, ``lb <= x <= ub`` (as ``scipy.optimize.Bounds``).

    Parameters
    ----------
    lb, ub : float or array_like
        Lower and upper bounds; ``-np.inf``/``np.inf`` (or None) for none.
    keep_feasible : bool or array_like of bool
        Accepted for SciPy compatibility; every method here that handles bounds
        keeps its iterates feasible anyway.
    """

    def __init__(self, lb=-np.inf, ub=np.inf, keep_feasible=False):
        self.lb = lb
        self.ub = ub
        self.keep_feasible = keep_feasible

    def __repr__(self):
        return f"Bounds({self.lb!r}, {self.ub!r})"


def _canon(name):
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


class _Method:
    __slots__ = ("name", "func", "options", "tol", "bounds", "raw", "has_maxiter", "hess",
                 "x0_read_only")

    def __init__(self, name, func, options, tol, bounds, raw, hess=True, x0_read_only=False):
        self.hess = hess
        self.x0_read_only = x0_read_only
        self.name = name
        self.func = func
        self.options = options
        self.tol = tuple(tol)
        self.bounds = bounds
        self.raw = raw

    def resolve(self):
        if isinstance(self.func, str):
            import importlib
            mod, _, attr = self.func.partition(":")
            self.func = getattr(importlib.import_module(mod), attr)
        if self.options is None:
            self.options = _signature_options(self.func, self.raw)
        return self.func


#: canonical key -> _Method (aliases point at the same object)
METHODS = {}


def _signature_options(func, raw):
    sig = inspect.signature(func)
    out = {}
    skip = {"fun", "x0", "args", "jac", "hess", "hessp", "bounds", "callback", "obj",
            "driver", "constraints"}
    for p in sig.parameters.values():
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[p.name] = None if p.default is p.empty else p.default
    return out


def register_method(name, func, aliases=(), *, tol=(), bounds=False, raw=False, options=None,
                    hess=True, x0_read_only=False):
    """Make ``func`` reachable as ``minimize(..., method=name)``.

    Parameters
    ----------
    name : str
        Display name (e.g. ``"L-BFGS-B"``); matched case-insensitively, ignoring
        ``-``, ``_`` and spaces.
    func : callable or str
        The method (see the module docstring for the contract), or
        ``"package.module:function"`` imported on first use.
    aliases : iterable of str
        Other names (SciPy's spellings).
    tol : iterable of str
        Option names that ``minimize``'s ``tol`` sets.
    bounds : bool
        Whether the method handles bounds.
    raw : bool
        ``func`` has SciPy's callable-method signature and does everything itself.
    options : dict, optional
        Option names and defaults; by default read from ``func``'s signature.
    hess : bool
        Whether the method uses ``hess``/``hessp``; when False, ``minimize``
        warns (``RuntimeWarning``, as SciPy) that they are not used.
    x0_read_only : bool
        The method never modifies its ``x0`` argument in place (driver-side
        methods only): the objective then caches its value at ``x0`` on ``x0``
        itself and the driver keeps ``x0`` as its starting point, without copies.
    """
    if not callable(func) and not (isinstance(func, str) and ":" in func):
        raise TypeError("func must be callable or a 'module:function' string")
    m = _Method(name, func, options, tol, bounds, raw, hess, bool(x0_read_only) and not raw)
    _RESOLVED.clear()
    for key in (name, *aliases):
        METHODS[_canon(key)] = m
    return func


def available_methods():
    """Display names of the registered methods."""
    _ensure_builtin()
    seen = []
    for m in METHODS.values():
        if m.name not in seen:
            seen.append(m.name)
    # SciPy's methods that minimize hands to SciPy
    return seen + [name for name in DELEGATED if name not in seen]


def _lookup(method):
    m = _RESOLVED.get(method)
    if m is not None:
        return m
    _ensure_builtin()
    key = _canon(method)
    m = METHODS.get(key)
    if m is None:
        raise ValueError(f"Unknown solver {method!r} (method); available: "
                         f"{', '.join(sorted(available_methods()))}")
    m.resolve()
    _RESOLVED[method] = m
    return m


#: the method names already looked up and resolved, as the user spelled them
_RESOLVED = {}

_BUILTIN_LOADED = False


def _ensure_builtin():
    """Import the modules that register the built-in methods (once)."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import importlib
    for mod in ("_lbfgs", "_bfgs", "_cg", "_first_order", "_newton", "_newton_cg", "_trustregion", "_lsq",
                "_natural_gradient"):
        try:
            importlib.import_module(f"neurenix.optimize.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"neurenix.optimize.{mod}":
                raise


def _minimize_gauss_newton(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None,
                           callback=None, **options):
    """``minimize(method="gauss-newton")``: ``fun`` returns the residual vector and
    the method minimizes ``0.5 * ||fun(x)||**2``; see
    :func:`neurenix.optimize._lsq._minimize_gauss_newton` (one home: this entry
    only adapts ``minimize``'s calling convention).  ``hess``/``hessp`` and
    ``bounds`` never arrive here: ``minimize`` warns that this method does not
    use them."""
    from ._lsq import _minimize_gauss_newton as impl
    r = impl(fun, x0, args=args, jac=jac, callback=callback, **options)
    # least_squares' status codes -> this package's Status table, so that a
    # ``minimize`` result reads the same whatever the method
    st = LSQ_TO_STATUS.get(int(r.status))
    if st is not None:
        r.update(make_result(st))
    return r


# ------------------------------------------------------------------ bounds
def prepare_bounds(bounds, n, dtype):
    """``bounds`` as a :class:`Bounds` with float arrays (lb, ub) of length n, or None.

    Accepts a sequence of ``(lo, hi)`` pairs (None or NaN meaning unbounded, as
    in SciPy) or any object with ``lb``/``ub`` attributes.  Raises ``ValueError``
    naming ``bounds`` on a wrong length or ``lo > hi``.
    """
    if bounds is None:
        return None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lb, ub = bounds.lb, bounds.ub
        lb = np.full(n, -np.inf) if lb is None else np.asarray(lb, dtype=float)
        ub = np.full(n, np.inf) if ub is None else np.asarray(ub, dtype=float)
        try:
            lb = np.broadcast_to(lb, (n,)).astype(float)
            ub = np.broadcast_to(ub, (n,)).astype(float)
        except ValueError:
            raise ValueError(f"bounds: lb and ub must be scalars or have length {n}, got shapes "
                             f"{np.shape(bounds.lb)} and {np.shape(bounds.ub)}") from None
    else:
        try:
            pairs = list(bounds)
        except TypeError:
            raise TypeError("bounds must be a sequence of (min, max) pairs or a Bounds object, "
                            f"got {type(bounds).__name__}") from None
        if len(pairs) != n:
            raise ValueError(f"bounds: got {len(pairs)} (min, max) pairs for {n} variables")
        lb = np.empty(n)
        ub = np.empty(n)
        for i, pr in enumerate(pairs):
            try:
                lo, hi = pr
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{i}] must be a (min, max) pair, got {pr!r}") from None
            lb[i] = -np.inf if lo is None else float(lo)
            ub[i] = np.inf if hi is None else float(hi)
    # a NaN bound is no bound on that side (SciPy's L-BFGS-B reads it so)
    if np.isnan(lb).any() or np.isnan(ub).any():
        lb = np.where(np.isnan(lb), -np.inf, lb)
        ub = np.where(np.isnan(ub), np.inf, ub)
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds: lower bound {lb[i]} > upper bound {ub[i]} for variable {i}")
    bad = np.flatnonzero((lb == np.inf) | (ub == -np.inf))
    if bad.size:
        i = int(bad[0])
        raise ValueError(_infinite_bound_msg(float(lb[i]), float(ub[i]), i))
    return Bounds(lb.astype(dtype), ub.astype(dtype))


def _box(bounds, x0):
    """``(Bounds, outside)``: the bounds prepared for ``x0`` (see
    :func:`prepare_bounds`) and whether ``x0`` was outside them; ``x0`` is
    projected into them in place.  Float bounds (a :class:`Bounds`-like object
    whose ``lb``/``ub`` are None, Python floats or float64 arrays of shape (),
    (1,) or (n,)) take one compiled pass (:func:`neurenix._ext._lbfgs.prepare_box`);
    everything else the NumPy path.  Both give the same arrays and errors."""
    lb = getattr(bounds, "lb", _NOATTR)
    ub = getattr(bounds, "ub", _NOATTR)
    if lb is not _NOATTR and ub is not _NOATTR:
        try:
            out = _prepare_box(lb, ub, x0)
        except ValueError as e:
            # a NaN bound: the NumPy path reads it as no bound (SciPy's rule);
            # the compiled pass raises before it modifies x0
            if "NaN" not in str(e):
                raise
            out = None
        if out is not None:
            return Bounds(out[0], out[1]), out[2]
    b = prepare_bounds(bounds, x0.size, x0.dtype)
    outside = bool(np.any(x0 < b.lb) or np.any(x0 > b.ub))
    if outside:
        np.clip(x0, b.lb, b.ub, out=x0)
    return b, outside


_NOATTR = object()


# ----------------------------------------------------------------- options
def _is_int(v):
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _check_int_option(options, name):
    v = options.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        if isinstance(v, float) and v == math.inf:
            return
        raise TypeError(f"options['{name}'] must be an integer, got {type(v).__name__}")
    if v < 0:
        raise ValueError(f"options['{name}'] must be >= 0, got {v!r}")
    if v > MAX_COUNT:
        # SciPy accepts any integer: a huge limit is clipped to one no run reaches
        options[name] = MAX_COUNT


def _check_tol(tol):
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    return float(tol)


# ----------------------------------------------------------------- minimize
def minimize(fun, x0, args=(), method=None, jac=None, hess=None, hessp=None, bounds=None,
             constraints=(), tol=None, callback=None, options=None):
    """Minimize a scalar function of one or more variables (``scipy.optimize.minimize``).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``; with ``jac=True`` it returns ``(f, g)``.
    x0 : array_like, shape (n,)
        Initial guess; float32 stays float32, other real types become float64.
        Clipped into ``bounds`` when outside them, silently (as SciPy).
    args : tuple
        Extra arguments of ``fun``, ``jac``, ``hess``, ``hessp``.
    method : str or callable, optional
        ``"L-BFGS"`` (aliases ``"L-BFGS-B"``, ``"lbfgs"``), ``"BFGS"``, ``"CG"``,
        the first-order rules (``"sgd"``, ``"adam"``, ...) and whatever else is
        registered (:func:`available_methods`).  SciPy's ``"Nelder-Mead"``,
        ``"Powell"``, ``"TNC"``, ``"COBYLA"``, ``"COBYQA"``, ``"SLSQP"`` and
        ``"trust-constr"`` are delegated to ``scipy.optimize.minimize`` with the
        arguments unchanged (:mod:`neurenix.optimize._delegate`).  Default (SciPy's
        rule): ``"SLSQP"`` when ``constraints`` are given, else ``"L-BFGS-B"``
        when ``bounds`` are given, else ``"BFGS"``.  A callable is called as
        ``method(fun, x0, args=, jac=, hess=, hessp=, bounds=, constraints=,
        callback=, **options)`` and must return an :class:`OptimizeResult`.
    jac : callable, True, None, "2-point" or "3-point"
        Gradient: a function, ``True`` (``fun`` returns ``(f, g)``), or finite
        differences with steps scaled to the dtype's precision.
    hess, hessp : callable, optional
        Hessian / Hessian-vector product for the methods that use them.
    bounds : sequence of (min, max) pairs or Bounds, optional
    constraints : dict, sequence of dicts or SciPy constraint objects, optional
        For the delegated constrained methods (``SLSQP``, ``COBYLA``,
        ``COBYQA``, ``trust-constr``).  The native methods cannot handle
        constraints: given any, they warn (``RuntimeWarning``, as SciPy) and
        ignore them; the default ``()`` means none.
    tol : float, optional
        Mapped to each method's own tolerance(s) (e.g. ``gtol`` and ``ftol`` of
        L-BFGS-B, ``gtol`` of BFGS and CG).
    callback : callable, optional
        ``callback(intermediate_result)`` (an :class:`OptimizeResult` with ``x``
        and ``fun``) when its only parameter is named ``intermediate_result``,
        else ``callback(xk)``.  Raising ``StopIteration`` stops the run cleanly.
    options : dict, optional
        The method's options, plus ``maxtime`` (seconds of wall time) and
        ``disp`` (print a progress line per iteration; a long run shows a
        progress bar) and ``finite_diff_rel_step`` (relative step of the
        finite differences).  Unknown options trigger an :class:`OptimizeWarning`.

    Returns
    -------
    OptimizeResult
        ``x, fun, jac, nit, nfev, njev, status, success, message`` and the
        method's extra fields (``hess_inv`` for the quasi-Newton methods).
        ``KeyboardInterrupt`` during the run returns the best point so far
        with ``status == Status.INTERRUPTED``.
    """
    constrained = has_constraints(constraints)
    if method is None:
        method = "SLSQP" if constrained else "L-BFGS-B" if bounds is not None else "BFGS"
    if isinstance(method, str):
        scipy_name = delegated_method(method)
        if scipy_name is not None:
            if not isinstance(args, tuple):
                args = (args,)
            return delegate_minimize(fun, x0, args, method, jac, hess, hessp, bounds,
                                     constraints, tol, callback, options)
    x0 = as_float_array(x0, "x0")
    if x0.size == 0:
        raise ValueError("x0 must have at least one element")
    if not isinstance(args, tuple):
        args = (args,)
    if options is None:
        options = {}
    elif isinstance(options, Mapping):
        options = dict(options)
    else:
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    if tol is not None:
        tol = _check_tol(tol)

    if callable(method):
        if tol is not None:
            options.setdefault("tol", tol)
        return method(fun, x0, args=args, jac=jac, hess=hess, hessp=hessp, bounds=bounds,
                      constraints=constraints, callback=callback, **options)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string or a callable, got {type(method).__name__}")
    m = _lookup(method)
    if constrained:
        warnings.warn(f"Method {method} cannot handle constraints.", RuntimeWarning,
                      stacklevel=2)

    if not m.hess and (hess is not None or hessp is not None):
        for what, given in (("hess", hess), ("hessp", hessp)):
            if given is not None:
                warnings.warn(f"Method {m.name} does not use Hessian information ({what}); "
                              "it is ignored.", RuntimeWarning, stacklevel=2)
        hess = hessp = None
    b = None
    narrow = grad_dtype = None
    if m.name == "L-BFGS-B" and x0.dtype == np.float32 and not m.raw:
        if bounds is not None:
            # SciPy's L-BFGS-B clips x0 against float64 bounds (np.clip promotes it),
            # so a float32 x0 with bounds runs, and is evaluated, wholly in float64: so
            # here, with x and jac given back in float32 (docs/minimize.md)
            narrow = x0.dtype
            x0 = x0.astype(np.float64)
        else:
            # it iterates in float64 and uses the gradients unrounded (that at x0 too)
            grad_dtype = np.float64
    if bounds is not None:
        if not m.bounds:
            # SciPy's warning (category and text); the bounds are ignored
            warnings.warn(f"Method {method} cannot handle bounds.", RuntimeWarning,
                          stacklevel=2)
        else:
            # x0 outside the bounds is clipped into them silently, as SciPy's L-BFGS-B
            b, _ = _box(bounds, x0)

    # options: split driver-level ones, warn about unknown ones, map tol
    maxtime = fd_step = None
    disp = False
    if options:
        maxtime = options.pop("maxtime", None)
        disp = options.pop("disp", False)
        fd_step = options.pop("finite_diff_rel_step", None)
    if m.raw:
        if fd_step is not None:
            options["finite_diff_rel_step"] = fd_step
        if tol is not None:
            for name in m.tol:
                options.setdefault(name, tol)
        if maxtime is not None:
            options["maxtime"] = maxtime
        if disp:
            options["disp"] = disp
        return to_scipy(m.name, m.func(fun, x0, args=args, jac=jac, hess=hess, hessp=hessp,
                                       bounds=b, callback=callback, **options))
    unknown = sorted(k for k in options if k not in m.options) if options else None
    if unknown:
        warnings.warn(f"Unknown solver options: {', '.join(unknown)}", OptimizeWarning,
                      stacklevel=2)
        for k in unknown:
            del options[k]
    if tol is not None:
        for name in m.tol:
            options.setdefault(name, tol)
    if options:
        _check_int_option(options, "maxiter")
        _check_int_option(options, "maxfun")

    if fd_step is not None and not (isinstance(fd_step, numbers.Real) and fd_step > 0):
        raise ValueError(f"options['finite_diff_rel_step'] must be > 0, got {fd_step!r}")
    try:
        obj = ScalarObjective(fun, x0, args=args, jac=jac, hess=hess, hessp=hessp,
                              fd_step=fd_step, share_x0=m.x0_read_only, grad_dtype=grad_dtype)
    except NonFiniteStart as e:
        # SciPy returns a result (no exception) when f(x0) is not finite; L-BFGS-B,
        # BFGS and CG test the gradient first, so with a gradient function and a
        # gradient already small enough at x0 their run ends there by that test, as
        # SciPy's (status 0; BFGS/CG: 3 when f is NaN)
        obj = e.obj
        if not (m.name in _GRADIENT_FIRST and obj is not None and obj.mode in
                ("combined", "callable") and _small_start_gradient(m.name, obj, x0, b, options)):
            xr = x0 if narrow is None else x0.astype(narrow)
            return to_scipy(m.name, make_result(
                Status.NONFINITE, x=xr, fun=e.f, jac=np.full(x0.size, np.nan, dtype=xr.dtype),
                nit=0, nfev=1, njev=0))
    if disp:
        # the limits only size the progress bar
        maxiter = options.get("maxiter", m.options.get("maxiter"))
        maxfun = options.get("maxfun", m.options.get("maxfun"))
        driver = Driver(obj, x0, callback=callback, maxtime=maxtime, disp=disp, method=m.name,
                        maxiter=maxiter if _is_int(maxiter) else None,
                        maxfun=maxfun if _is_int(maxfun) else None)
    else:
        driver = Driver(obj, x0, callback=callback, maxtime=maxtime, method=m.name)
    # the objective has just evaluated x0 (check_x0) and caches that value
    cx, cf, _, _ = obj.cache()
    if cx is x0:
        # cached on x0 itself: the method never modifies x0, so the driver keeps it
        # too (``record`` would copy it)
        driver.best_f = cf
    else:
        driver.record(x0, cf if cx is not None else obj.fun(x0))
    try:
        if options:
            res = m.func(obj, x0, bounds=b, driver=driver, **options)
        else:
            res = m.func(obj, x0, bounds=b, driver=driver)
    except KeyboardInterrupt:
        res = driver.interrupted()
    except MaxTimeExceeded:
        # maxtime passed inside an iteration (a line search, an inner loop)
        res = driver.interrupted(Status.MAXTIME)
    if narrow is not None:
        for k in ("x", "jac"):
            if isinstance(res.get(k), np.ndarray):
                res[k] = res[k].astype(narrow)
        h = res.get("hess_inv")
        if h is not None and hasattr(h, "_from_memory"):
            # the LbfgsInvHessProduct in x0's dtype too (rho, gamma as the loop had them)
            res["hess_inv"] = type(h)._from_memory(h.sk.astype(narrow), h.yk.astype(narrow),
                                                   h.rho, h.gamma, narrow, h.shape[0], h.n_corrs)
    # SciPy's status and message for the method; the Status goes to res.reason
    return to_scipy(m.name, res)

#: methods whose first test is the gradient at x0 (before f is used)
_GRADIENT_FIRST = ("L-BFGS-B", "BFGS", "CG")


def _small_start_gradient(name, obj, x0, bounds, options):
    """Whether the gradient at x0 (its projection on the bounds for L-BFGS-B) passes
    the method's first convergence test, ``max|g| <= gtol`` (BFGS/CG: in the
    ``norm`` option's order), for a start where f is not finite."""
    g = np.asarray(obj.grad(x0), dtype=float)
    if bounds is not None and name == "L-BFGS-B":
        g = x0 - np.clip(x0 - g, bounds.lb, bounds.ub)
    gtol = options.get("gtol", 1e-5) if options else 1e-5
    norm = (options.get("norm", np.inf) if options else np.inf) if name != "L-BFGS-B" else np.inf
    try:
        return bool(_gnorm(g, float(norm)) <= gtol)
    except (TypeError, ValueError):
        return False


register_method("gauss-newton", _minimize_gauss_newton, aliases=("gaussnewton", "gn"),
                tol=("ftol", "xtol", "gtol"), raw=True, hess=False)
