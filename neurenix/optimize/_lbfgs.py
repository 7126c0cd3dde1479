"""L-BFGS and L-BFGS-B for ``minimize`` (the loop runs in :mod:`neurenix._ext._lbfgs`).

References
----------
Liu & Nocedal (1989), "On the limited memory BFGS method for large scale
optimization", Math. Programming 45.
Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm for bound
constrained optimization", SIAM J. Sci. Comput. 16(5):1190-1208.
Morales & Nocedal (2011), "Remark on Algorithm 778", ACM TOMS 38(1).
Moré & Thuente (1994), "Line search algorithms with guaranteed sufficient
decrease", ACM TOMS 20(3).
"""
import math
import warnings

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._ext import _lbfgs as _k
from .._core.objective import make_evaluator, check_finite_grad
from .._core.result import BY_CODE as _BY_CODE
from .._core.validation import int_option as _int_opt, real_option as _real_opt, MAX_INT, MAX_COUNT
from ._minimize import register_method

__all__ = ["LbfgsInvHessProduct"]

#: SciPy's default absolute finite-difference step of BFGS and CG (``eps``)
EPSILON = float(np.sqrt(np.finfo(float).eps))

#: ``maxiter``/``maxfun = inf`` (accepted, as SciPy): a limit never reached
_NO_LIMIT = MAX_COUNT           # (the clip of every count option)


def _limit_opt(name, v, lo):
    """An iteration or evaluation limit: an integer ``>= lo`` or ``inf`` (SciPy
    accepts it: no limit)."""
    if isinstance(v, float) and v == math.inf:
        return _NO_LIMIT
    return _int_opt(name, v, lo)


def _gradient_norm_order(norm):
    """BFGS/CG's ``norm`` option (SciPy's ``vecnorm`` order: ``inf``, ``-inf`` or a
    non-zero real) as a float."""
    try:
        v = float(norm)
    except (TypeError, ValueError):
        raise TypeError(f"options: norm must be a real number (np.inf: the largest "
                        f"|g_i|), got {norm!r}") from None
    if v != v or v == 0.0:
        raise ValueError(f"options: norm must be non-zero and not NaN, got {norm!r}")
    return v


def _gtol_maxiter_wolfe(n, gtol, maxiter, c1, c2):
    """The options shared by BFGS and CG: ``gtol >= 0``, ``maxiter`` (default
    ``200 * n``), the Wolfe constants ``0 < c1 < c2 < 1``."""
    gtol = _real_opt("gtol", gtol)
    maxiter = 200 * n if maxiter is None else _limit_opt("maxiter", maxiter, 0)
    c1 = _real_opt("c1", c1, 0.0, 1.0, open_lo=True)
    c2 = _real_opt("c2", c2, 0.0, 1.0, open_lo=True)
    if not c1 < c2:
        raise ValueError(f"options: c1 must be < c2, got c1={c1}, c2={c2}")
    return gtol, maxiter, c1, c2


_LINOP_ATTRS = {}


def _linop_attrs(dtype):
    """The attributes ``LinearOperator.__init__(dtype, shape)`` sets, for ``dtype``.

    Made once per dtype by the real ``__init__`` on a throw-away operator and then
    copied (``shape`` is overwritten by the caller): the real call costs about 2 µs,
    more than the rest of building a small run's result, and copying keeps up with
    whatever the installed SciPy stores (SciPy 1.18 adds the array namespace
    ``_xp``, which its products read)."""
    attrs = _LINOP_ATTRS.get(dtype)
    if attrs is None:
        proto = object.__new__(LbfgsInvHessProduct)
        LinearOperator.__init__(proto, dtype, (1, 1))
        attrs = _LINOP_ATTRS[dtype] = dict(proto.__dict__)
    return attrs


class LbfgsInvHessProduct(LinearOperator):
    r"""The L-BFGS inverse-Hessian approximation as a linear operator.

    :math:`H` built from the stored pairs ``(s_k, y_k)``
    (oldest first) with :math:`H_0 = \gamma I`, :math:`\gamma = s^Ty / y^Ty` of
    the newest pair; products by the two-loop recursion (Nocedal & Wright
    Algorithm 7.4).  ``todense()`` returns the (n, n) matrix.

    Deviation from ``scipy.optimize.LbfgsInvHessProduct``, on purpose: SciPy's
    operator applies :math:`H_0 = I`; this one applies the scaled
    :math:`H_0 = \gamma I` that the iteration itself used, so it is the
    matrix whose product gave the last search direction.

    Parameters
    ----------
    sk, yk : ndarray, shape (k, n)
    """

    def __new__(cls, *args, **kwargs):
        # LinearOperator.__new__ only checks that a subclass defines _matvec or
        # _matmat; this one does, and skipping the check keeps small runs cheap
        return object.__new__(cls)

    def __init__(self, sk, yk):
        sk = np.ascontiguousarray(sk)
        yk = np.ascontiguousarray(yk, dtype=sk.dtype)
        if sk.ndim != 2 or sk.shape != yk.shape:
            raise ValueError("sk and yk must be 2-D arrays of the same shape")
        rho = np.ascontiguousarray(1.0 / np.einsum("ij,ij->i", sk, yk, dtype=np.float64))
        if sk.shape[0]:
            y = yk[-1].astype(np.float64)
            gamma = float(sk[-1].astype(np.float64) @ y / (y @ y))
        else:
            gamma = 1.0
        self._set(sk, yk, rho, gamma)

    def _set(self, sk, yk, rho, gamma):
        k, n = sk.shape
        self.__dict__ = {**_linop_attrs(sk.dtype), "shape": (n, n), "sk": sk, "yk": yk,
                         "n_corrs": k, "rho": rho, "gamma": gamma}

    @classmethod
    def _from_memory(cls, sk, yk, rho, gamma, dtype, n, k):
        """From the loop's own memory: ``k`` pairs of length ``n`` (contiguous,
        ``dtype``), rho = 1/s.y and gamma (a float) already known."""
        self = object.__new__(cls)
        # the attributes of _set: a copy of the per-dtype dict, filled in and assigned
        # in one go (cheaper than merging dicts; a small run feels each step)
        d = _LINOP_ATTRS.get(dtype)
        d = (d if d is not None else _linop_attrs(dtype)).copy()
        d["shape"] = (n, n)
        d["sk"] = sk
        d["yk"] = yk
        d["n_corrs"] = k
        d["rho"] = rho
        d["gamma"] = gamma if k else 1.0
        self.__dict__ = d
        return self

    def _matvec(self, x):
        q = np.array(np.ravel(x), dtype=self.dtype, copy=True)
        if self.n_corrs:
            _k.two_loop(self.sk, self.yk, self.rho, self.n_corrs - 1, self.n_corrs, self.gamma, q)
        return q.reshape(np.shape(x)) if np.ndim(x) == 2 else q

    def _matmat(self, X):
        return np.column_stack([self._matvec(X[:, j]) for j in range(X.shape[1])])

    def _adjoint(self):
        return self

    def todense(self):
        """The dense (n, n) matrix."""
        return self._matmat(np.eye(self.shape[0], dtype=self.dtype))


def _start(obj, x0, driver, gtype=None):
    """f and a fresh copy of g at ``x0`` (the loop's gradient buffer), checked
    finite, with x0 recorded as the driver's best point.

    ``minimize`` has evaluated the objective at ``x0``; when it cached that
    value on ``x0`` itself (a method registered ``x0_read_only``, see
    :func:`~neurenix.optimize._minimize.register_method`) the cache is read
    directly, else through ``fun_and_grad`` (bitwise comparison).  x0 is
    never modified here, nor by the loops below (they run on a copy)."""
    cx, cf, cxg, cg = obj.cache()
    if cxg is x0 and cx is x0:
        f = cf
        g = cg
    else:
        f, g = obj.fun_and_grad(x0)
    if obj.mode != "callable" and obj.mode != "combined":
        # gradients are counted as SciPy's ScalarFunction counts them (ngev),
        # finite differences included: the one at x0 is the first
        obj.njev += 1
    gtype = x0.dtype if gtype is None else gtype
    g = g.copy() if type(g) is np.ndarray and g.dtype == gtype else \
        np.array(g, dtype=gtype, copy=True)
    check_finite_grad(g)
    if driver.best_f == f and driver.best_g is None:
        # minimize recorded x0 (or a copy) with this f: only the gradient is new
        driver.best_g = g.astype(x0.dtype)
    else:
        driver.record(x0, f, g if g.dtype == x0.dtype else g.astype(x0.dtype))
    return f, g


def run_compiled(obj, x0, driver, method, *, bounds=None, **kw):
    """Evaluate f, g at x0 and run the compiled loop; returns (status, nit, f, x, g, state)."""
    f, g = _start(obj, x0, driver)
    x = x0.copy()
    ev = make_evaluator(obj)
    lo = hi = None
    if bounds is not None:
        lo, hi = bounds.lb, bounds.ub
    status, nit, f, state = _k.run(ev, x, g, float(f), method, lo=lo, hi=hi, driver=driver,
                                   report=driver.active, **kw)
    obj.reset_cache()          # the loop evaluated around the cache
    return _BY_CODE[status], nit, f, x, g, state


def _minimize_lbfgsb(obj, x0, *, bounds, driver, maxcor=10, ftol=2.2204460492503131e-09,
                     gtol=1e-5, maxfun=15000, maxiter=15000, maxls=20, eps=1e-8,
                     iprint=None, workers=None):
    """L-BFGS-B: for float64, with or without bounds, L-BFGS-B 3.0's iteration in
    its order of operations (SciPy's iterates bit for bit); for float32, the
    same iteration in float64, as SciPy runs a float32 x0: unbounded, the
    objective sees the float32 casts of the iterates (SciPy's ``ScalarFunction``
    keeps x0's dtype); with bounds wholly in float64 (SciPy's ``np.clip`` of x0
    against float64 bounds promotes it; :func:`~neurenix.optimize.minimize`
    does the same).  The result's ``x`` and ``jac`` are float32 for a float32 x0
    (SciPy's are float64: ``r.x == s.x.astype(np.float32)``), the callback
    receives the float64 iterate, as SciPy's.

    Options (SciPy's names and defaults): ``maxcor`` (m, stored pairs),
    ``ftol`` (stop when :math:`(f_k - f_{k+1})/\\max(|f_k|,|f_{k+1}|,1) \\le ftol`),
    ``gtol`` (stop when the projected gradient's largest component is
    :math:`\\le gtol`), ``maxfun``, ``maxiter``, ``maxls`` (line-search
    evaluations per iteration), ``eps`` (absolute step of the finite-difference
    gradient when no ``jac`` function is given, as SciPy; the steps stay in the
    bounds), ``workers`` (an int or a map-like callable evaluating the points of a
    finite-difference gradient in parallel, as SciPy's; the iterates are
    unchanged), ``iprint`` (accepted with SciPy's ``DeprecationWarning`` and, as in
    SciPy >= 1.15, without effect).  ``tol`` sets ``ftol`` and ``gtol``.  As in SciPy, ``maxiter=0``
    still runs one iteration and ``maxiter``/``maxfun`` may be ``inf``.
    Line search: Moré–Thuente with ``ftol=1e-3, gtol=0.9, xtol=0.1`` as in
    L-BFGS-B.  The result's ``hess_inv`` is an :class:`LbfgsInvHessProduct`.

    The iteration follows the driver of L-BFGS-B 3.0 (Morales & Nocedal 2011) as
    SciPy runs it, so that ``nit``/``nfev``/``status`` agree with SciPy's: limits
    tested when an iteration ends and before convergence (``maxfun`` once
    exceeded), a line-search warning accepted as the new point, no pair stored
    after the last iteration, and no evaluation at a trial point equal to the
    one last evaluated (see ``docs/scipy_compat.md``).
    """
    m = maxcor
    defaults = (maxcor is _DEFAULTS[0] and ftol is _DEFAULTS[1] and gtol is _DEFAULTS[2]
                and maxfun is _DEFAULTS[3] and maxiter is _DEFAULTS[4] and maxls is _DEFAULTS[5])
    if not defaults:
        # something was set (the defaults themselves need no checks)
        m = _int_opt("maxcor", maxcor, 1)
        ftol = _real_opt("ftol", ftol)
        gtol = _real_opt("gtol", gtol)
        maxfun = _limit_opt("maxfun", maxfun, 0)
        maxiter = _limit_opt("maxiter", maxiter, 0)
        maxls = min(_int_opt("maxls", maxls, 1), MAX_INT)
        if maxiter == 0:
            maxiter = 1         # SciPy's L-BFGS-B tests the limit after an iteration
        # no more pairs are ever stored than iterations are made: a larger memory
        # (maxcor=10**30, which SciPy accepts) would only be allocated and unused
        m = min(m, maxiter + 1)
    if iprint is not None:
        # SciPy >= 1.15 ignores it too (its Fortran printout is gone) and warns so
        warnings.warn("scipy.optimize: The `disp` and `iprint` options of the L-BFGS-B "
                      "solver are deprecated and will be removed in SciPy 1.18.0.",
                      DeprecationWarning, stacklevel=3)
    if obj.mode != "callable" and obj.mode != "combined":
        obj.use_abs_step(eps, bounds)
    obj.set_workers(workers)
    lo = hi = None
    if bounds is not None and _k.bounds_kind(bounds.lb, bounds.ub):
        lo = bounds.lb          # (no finite bound at all: the unbounded iteration)
        hi = bounds.ub
    # L-BFGS-B's compact form, bounded or not, as SciPy runs it (its iterates bit for
    # bit); a float32 x0 (unbounded: minimize runs a bounded one in float64, as SciPy)
    # iterates in float64 with the objective at the float32 casts of the iterates and
    # the gradients used unrounded, as SciPy's ScalarFunction gives them
    narrow = x0.dtype == np.float32
    if narrow:
        obj.grad_dtype = np.dtype(np.float64)   # (minimize has set it already)
    # run_compiled's steps, inline (a small run feels each call and keyword)
    f, g = _start(obj, x0, driver, np.float64 if narrow else None)
    x = x0.copy()
    ev = make_evaluator(obj)
    if driver.active or not defaults or not _RUN_DEFAULTS_OK:
        status, nit, f, st = _k.run(
            ev, x, g, f, 3, m=m, gtol=gtol, ftol=ftol, maxiter=maxiter,
            maxfun=maxfun, maxls=maxls, c1=1e-3, c2=0.9, xtol=0.1, lo=lo, hi=hi,
            driver=driver, report=driver.active)
    elif lo is None:
        # every option at its default: m, gtol, maxls and c2 are also the compiled
        # loop's defaults (checked at import, _RUN_DEFAULTS_OK) and are left out
        status, nit, f, st = _k.run(ev, x, g, f, 3, ftol=ftol, maxiter=maxiter,
                                    maxfun=maxfun, c1=1e-3, xtol=0.1)
    else:
        status, nit, f, st = _k.run(ev, x, g, f, 3, ftol=ftol, maxiter=maxiter, maxfun=maxfun,
                                    c1=1e-3, xtol=0.1, lo=lo, hi=hi)
    obj.reset_cache()          # the loop evaluated around the cache
    if narrow:
        obj.grad_dtype = x0.dtype
        g = g.astype(x0.dtype)  # x (cast back by the loop) and jac in x0's dtype
        st["sk"] = st["sk"].astype(x0.dtype)
        st["yk"] = st["yk"].astype(x0.dtype)
    hess_inv = LbfgsInvHessProduct._from_memory(st["sk"], st["yk"], st["rho"], st["gamma"],
                                                x0.dtype, x0.shape[0], st["count"])
    return driver.result(_BY_CODE[status], x, f, g, nit, hess_inv=hess_inv)


#: the default objects of maxcor, ftol, gtol, maxfun, maxiter, maxls (identity tested)
_DEFAULTS = tuple(_minimize_lbfgsb.__kwdefaults__[k]
                  for k in ("maxcor", "ftol", "gtol", "maxfun", "maxiter", "maxls"))

#: whether the compiled loop's own defaults of m, gtol, maxls, c2 are L-BFGS-B's
#: (10, 1e-5, 20, 0.9): then a run with every option at its default leaves them out
_RUN_DEFAULTS_OK = (lambda d: d.get("m") == _DEFAULTS[0] and d.get("gtol") == _DEFAULTS[2]
                    and d.get("maxls") == _DEFAULTS[5] and d.get("c2") == 0.9)(
    getattr(_k.run, "__kwdefaults__", None) or {})

register_method("L-BFGS-B", _minimize_lbfgsb, aliases=("L-BFGS", "lbfgs", "lbfgsb"),
                tol=("ftol", "gtol"), bounds=True, hess=False, x0_read_only=True)
