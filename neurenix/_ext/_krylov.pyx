# cython: language_level=3
"""Compiled loops of the second-order methods (Newton-CG, trust regions).

The second-order code of ``_ext`` is layered kernel -> step -> loop:

* kernels -- ``_vec.pxd`` (vector reductions, ``lanes16`` order),
  ``_tridiag.pxd`` (the trust-region subproblem on a tridiagonal matrix) and
  ``_dense.pxd`` (dense and band Cholesky, triangular solves, bounds of H):
  ``cdef inline`` on raw pointers, compiled into the module that uses them;
* steps -- :mod:`neurenix._ext._subproblems`: Newton-CG's inner CG loop
  (:func:`cg_newton`), Steihaug-Toint CG (:func:`steihaug_cg`), GLTR
  (:class:`Lanczos`, :func:`gltr_solve`, :func:`tridiag_trs`) and the dense
  Moré-Sorensen/dogleg solvers (:class:`DenseSubproblem`);
* loops -- this module.

*Outer loops* -- :func:`trust_region` (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., Algorithm 4.1) and :func:`newton_cg` (N&W
Algorithm 7.1 with the Moré-Thuente strong-Wolfe search of
:mod:`neurenix._ext._linesearch`) -- run the whole iteration in C.  They call
Python only to evaluate the user's ``fun``/``jac``/``hessp``/``hess``
(through :class:`Problem` and the shared evaluator
:class:`neurenix._ext._evaluator.Evaluator`, which validate what comes back) and, when a
callback/``disp``/``maxtime`` is set, once per iteration to report to the
driver.  Work vectors are allocated once per run.  A step is one call into
:mod:`~neurenix._ext._subproblems` per outer iteration (through a function
pointer: nothing on the inner hot paths crosses the module boundary).

The steps' Python faces (``cg_newton``, ``steihaug_cg``, ``gltr``, ``Lanczos``,
``DenseSubproblem``, ``tridiag_trs``, ...) are re-exported here, so
``neurenix._ext._krylov.<name>`` works as before the split.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.string cimport memcpy

from ._evaluator cimport Evaluator
from ._evaluator import MaxTimeExceeded
from ._vec cimport dot_lanes16, nrm2sq_lanes16, asum_lanes16, absmax
from ._linesearch cimport (MTState, mt_start, mt_iterate, mt_nonfinite, MT_FG,
                           MT_CONVERGED, MT_ERROR)
from ._subproblems cimport (C_CONVERGED, C_NEGATIVE, C_MAXITER, C_BOUNDARY, update_radius_c,
                            _copy, _empty, _as_vector, _vec_finite, _Hess, Lanczos,
                            DenseSubproblem, _cg_newton, _steihaug, _gltr_solve, _ds_solve)

import numpy as np

# the steps' Python faces, importable from here as before the split
from ._subproblems import (CG_CONVERGED, CG_NEGATIVE_CURVATURE, CG_MAXITER, CG_BOUNDARY,
                           _PyHess, _dtype_of, _generic_unit, update_radius, cg_newton,
                           steihaug_cg, tridiag_trs, tridiag_lambda_min, gltr_solve, gltr,
                           dense_bounds, bandwidth)
from . import _subproblems

# the classes cimported above are types here, not Python names: bind those as well
globals().update({_name: getattr(_subproblems, _name)
                  for _name in ("_Hess", "Lanczos", "DenseSubproblem")})

cnp.import_array()

# status codes: the one compiled table (values of neurenix.optimize.Status)
from ._status cimport *

# subproblem kinds of :func:`trust_region`
SUB_CG = 0
SUB_GLTR = 1
SUB_PYTHON = 2
SUB_EXACT = 3           # Moré-Sorensen on the dense Hessian (DenseSubproblem)
SUB_DOGLEG = 4


# --------------------------------------------------------------------------
# Hessian access and evaluation
# --------------------------------------------------------------------------
cdef class Problem(_Hess):
    """The compiled loops' view of a :class:`~neurenix._core.objective.ScalarObjective`.

    ``f`` and ``g`` come from the shared evaluator of the compiled ``minimize``
    loops (:class:`neurenix._ext._evaluator.Evaluator`, held as ``ev``, with
    delta counters): ``mode`` 0: ``fun`` returns ``(f, g)``; 1: separate
    ``fun`` and ``jac``; 2: through ``obj.fun``/``obj.grad`` (finite-difference
    gradients, with the objective's cache).  ``hmode`` 0: the user's
    ``hessp(x, p, *args)``; 1: a
    :class:`~neurenix._core.subproblems.HessianOperator` made by
    ``hop_factory(x, first)`` at each new point (``hess`` matrices, the
    objective's finite-difference products, dense assembly); 2: SciPy's
    finite difference ``(g(x + eps p) - g(x)) / eps`` with an absolute step
    ``eps`` (Newton-CG's ``eps`` option).

    The user's functions get a fresh copy of ``x``.  What they return is
    validated as by the objective wrapper (a real scalar; arrays of ``x``'s
    length; finite Hessian products), with a fast path for a Python float and
    a contiguous array of ``x``'s dtype.  Calls made directly are counted in
    ``ev`` and added to the objective's ``nfev``/``njev``/``nhev`` by :meth:`flush`.
    """

    cdef Evaluator ev
    cdef object hp, hop_factory, hop, dtype, hessfn, dense_fallback
    cdef cnp.ndarray xh, g0, gtmp
    cdef int hmode
    cdef double fd_eps

    def __init__(self, obj, int mode, int hmode, fun, jac, hessp, tuple args, hop_factory,
                 double fd_eps, Py_ssize_t n, dtype, hess=None, dense_fallback=None):
        if mode not in (0, 1, 2) or hmode not in (0, 1, 2):
            raise ValueError("Problem: unknown mode")
        self.dtype = np.dtype(dtype)
        self.typenum = self.dtype.num
        self.ev = Evaluator(obj, mode, fun, jac, args, self.typenum, n, False)
        self.hmode = hmode
        self.hp = hessp
        self.hop_factory = hop_factory
        self.hessfn = hess
        self.dense_fallback = dense_fallback
        self.fd_eps = fd_eps
        self.n = n
        self.g0 = _empty(n, self.typenum)
        self.gtmp = _empty(n, self.typenum)
        self.nprod = 0

    @property
    def nfev(self):
        """``fun`` calls made here since the last :meth:`flush`."""
        return self.ev.nfev

    @property
    def njev(self):
        """``jac`` calls made here since the last :meth:`flush`."""
        return self.ev.njev

    @property
    def nhev(self):
        """``hessp``/``hess`` calls made here since the last :meth:`flush`."""
        return self.ev.nhev

    def flush(self):
        """Add the calls made here to the objective's counters (and reset them)."""
        self.ev.flush()

    cdef int at(self, cnp.ndarray x, cnp.ndarray g, bint first) except -1:
        """Make the Hessian products refer to the point ``x`` (gradient ``g``)."""
        if self.hmode == 1:
            if self.hop is not None:
                self.nprod += self.hop.nprod
            self.hop = self.hop_factory(_copy(x), first)
        else:
            self.xh = _copy(x)
            if self.hmode == 2:
                memcpy(cnp.PyArray_DATA(self.g0), cnp.PyArray_DATA(g),
                       self.n * cnp.PyArray_ITEMSIZE(g))
        return 0

    cdef cnp.ndarray dense_at(self, cnp.ndarray x, bint first):
        """The dense Hessian at ``x`` for ``trust-exact``/``dogleg``: a C-contiguous
        (n, n) array of the working dtype.  The user's ``hess`` is called directly;
        a dense array of the working dtype and shape is returned as it is
        (:meth:`DenseSubproblem.set_point` tests it: finite, from its Frobenius
        sum, and symmetric at the first point, over the band for a band matrix);
        anything else (other dtypes, sparse matrices, LinearOperators) goes
        through ``dense_fallback(H, first).dense()`` (a ``HessianOperator``).
        Without ``hess`` the matrix is assembled from ``n`` products
        (``hop_factory(x, first).dense()``)."""
        cdef cnp.ndarray a
        if self.hessfn is None:
            if self.hop is not None:
                self.nprod += self.hop.nprod
            self.hop = self.hop_factory(_copy(x), first)
            return <cnp.ndarray>self.hop.dense()
        H = self.ev.call(self.hessfn, _copy(x))
        self.ev.nhev += 1
        if cnp.PyArray_Check(H):
            a = <cnp.ndarray>H
            if (cnp.PyArray_TYPE(a) == self.typenum and cnp.PyArray_NDIM(a) == 2
                    and cnp.PyArray_DIM(a, 0) == self.n and cnp.PyArray_DIM(a, 1) == self.n
                    and cnp.PyArray_IS_C_CONTIGUOUS(a)):
                return a
        hop = self.dense_fallback(H, first)
        a = <cnp.ndarray>hop.dense()
        self.nprod += hop.nprod        # a LinearOperator is assembled from n products
        return a

    def products(self):
        """Hessian-vector products made so far (``nhessp``)."""
        return self.nprod + (self.hop.nprod if self.hop is not None else 0)

    def set_point(self, cnp.ndarray x, cnp.ndarray g, bint first=False):
        """Python face of :meth:`at` (for the step-wise optimizers)."""
        self.at(x, g, first)

    cdef object apply(self, object d):
        cdef cnp.ndarray a
        if self.ev.deadline != 0.0:
            self.ev.check_time()        # maxtime inside the CG / Lanczos inner loops
        if self.hmode != 1:
            self.nprod += 1
        if self.hmode == 0:
            if self.ev.noargs:
                out = self.hp(self.xh, d)
            else:
                out = self.hp(self.xh, d, *self.ev.args)
            self.ev.nhev += 1
            # finiteness: tested by the kernels through d^T (H d) (see _Hess.nonfinite)
            return _as_vector(out, self.n, self.typenum, "hessp")
        if self.hmode == 1:
            return _as_vector(self.hop.matvec(d), self.n, self.typenum, "hess")
        # SciPy's approx_fhess_p: forward difference with the absolute step eps
        xt = (self.xh + self.fd_eps * np.asarray(d)).astype(self.dtype, copy=False)
        self.ev.g_at(xt, self.gtmp)
        a = np.ascontiguousarray((self.gtmp - self.g0) / self.fd_eps, dtype=self.dtype)
        if not _vec_finite(a):
            raise ValueError("finite-difference Hessian-vector product is not finite "
                             "(the gradient is not finite near x); pass hess or hessp")
        return a

    def hessp(self, d):
        """``H @ d`` at the current point (Python face of :meth:`apply`, with the
        finiteness test the kernels make through ``d^T (H d)``)."""
        out = self.apply(d)
        self.nonfinite(out)
        return out


# --------------------------------------------------------------------------
# outer loops
# --------------------------------------------------------------------------
cdef object _tr(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray g_arr, double f,
                int kind, object factory, object indefinite_exc, double radius, double rmax,
                double eta, double gtol, Py_ssize_t maxiter, Py_ssize_t sub_maxiter,
                bint inexact, object driver, list allvecs, DenseSubproblem ds):
    cdef Py_ssize_t n = prob.n, i, k = 0, it = 0
    cdef cnp.ndarray xt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray gt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray p_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray r_arr = None, d_arr = None        # Steihaug-CG's residual, direction
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(g_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* p = <floating*>cnp.PyArray_DATA(p_arr)
    cdef floating* r = NULL
    cdef floating* pp
    cdef double eps = 2.220446049250313e-16 if floating is double else 1.1920928955078125e-07
    cdef double gn, xn, tol, model, predicted, f_new, actual, rho
    cdef bint hits, got_g
    cdef int status = S_RUNNING
    cdef Lanczos lz = None
    cdef bint fresh = True, first = True
    sub = None
    if kind == 0:
        r_arr = _empty(n, prob.typenum)
        d_arr = _empty(n, prob.typenum)
        r = <floating*>cnp.PyArray_DATA(r_arr)
    gn = sqrt(nrm2sq_lanes16(g, n))
    # Ctrl-C and maxtime (checked before each user call) end the run at the
    # current iterate: x, f, g are consistent at every call into Python
    try:
        while True:
            if gn < gtol:
                status = S_GTOL
                break
            if k >= maxiter:
                status = S_MAXITER
                break
            xn = sqrt(nrm2sq_lanes16(x, n))
            if radius <= eps * (xn if xn > 1.0 else 1.0):
                status = S_TRUST_RADIUS
                break
            if fresh:
                # a new point: Hessian access made here, once the stopping tests have
                # passed (no Hessian is evaluated at a point where the run ends)
                if kind >= 3:
                    # set_point raises on a non-finite H (found in its one pass over H)
                    ds.set_point(prob.dense_at(x_arr, first), g_arr, first)
                else:
                    prob.at(x_arr, g_arr, first)
                if kind == 1:
                    if lz is None:
                        lz = Lanczos(g_arr)
                    else:
                        lz.reset(g_arr)
                elif kind == 2:
                    sub = None
                    sub = factory(_copy(x_arr), f, _copy(g_arr), prob.hop)
                fresh = False
                first = False
            # ---- subproblem
            if kind == 0:
                tol = (0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn
                _steihaug(g, prob, d_arr, r, p, n, radius, tol, sub_maxiter, &hits, &model, &it)
            elif kind == 1:
                tol = ((0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn) if inexact else 1e-8 * gn
                _gltr_solve(lz, prob, radius, tol, sub_maxiter, p, &hits, &model, &it)
            elif kind >= 3:
                if _ds_solve(ds, p, radius, kind == 4, &hits, &model) < 0:
                    status = S_INDEFINITE
                    break
            else:
                try:
                    res = sub.solve(radius)
                except indefinite_exc:
                    status = S_INDEFINITE
                    break
                step_o, hits_o = res
                hits = bool(hits_o)
                model = float(sub.model_value)
                step_o = _as_vector(step_o, n, prob.typenum, "subproblem step")
                pp = <floating*>cnp.PyArray_DATA(<cnp.ndarray>step_o)
                memcpy(p, pp, n * sizeof(floating))
            predicted = -model
            if not predicted > 0.0:
                status = S_PRECISION
                break
            # ---- trial point and ratio of actual to predicted reduction
            for i in range(n):
                xt[i] = <floating>(x[i] + p[i])
            f_new = prob.ev.f_at(xt_arr, gt_arr, &got_g)
            actual = f - f_new if isfinite(f_new) else -INFINITY
            rho = actual / predicted
            radius = update_radius_c(radius, rho, hits, rmax)
            k += 1
            if rho > eta:
                if not got_g:
                    # before the swap: an interrupt in jac leaves x, f, g consistent
                    prob.ev.g_at(xt_arr, gt_arr)
                tmp = x_arr
                x_arr = xt_arr
                xt_arr = tmp
                x = <floating*>cnp.PyArray_DATA(x_arr)
                xt = <floating*>cnp.PyArray_DATA(xt_arr)
                f = f_new
                tmp = g_arr
                g_arr = gt_arr
                gt_arr = tmp
                g = <floating*>cnp.PyArray_DATA(g_arr)
                gn = sqrt(nrm2sq_lanes16(g, n))
                if not isfinite(gn):
                    raise ValueError("jac returned non-finite values at an accepted point "
                                     "(where fun was finite)")
                if allvecs is not None:
                    allvecs.append(_copy(x_arr))
                fresh = True
            if driver is not None:
                st = driver.iteration(k, x_arr, f, g_arr, step=sqrt(nrm2sq_lanes16(p, n)),
                                      trust_radius=radius)
                if st is not None:
                    status = int(st)
                    break
    except KeyboardInterrupt:
        status = S_INTERRUPTED
    except MaxTimeExceeded:
        status = S_MAXTIME
    return status, k, f, radius, x_arr, g_arr


def trust_region(Problem prob, cnp.ndarray x0, cnp.ndarray g0, double f, int kind,
                 object factory=None, object indefinite_exc=None, *, double radius=1.0,
                 double max_radius=1000.0, double eta=0.15, double gtol=1e-4,
                 Py_ssize_t maxiter=1000, Py_ssize_t sub_maxiter=0, bint inexact=True,
                 object driver=None, list allvecs=None, double k_easy=0.1, double k_hard=0.2):
    """The trust-region loop (N&W Algorithm 4.1) from ``x0`` with ``f``, ``g0`` there.

    ``kind``: ``SUB_CG`` (Steihaug-Toint), ``SUB_GLTR`` (Krylov space kept
    across rejected steps), ``SUB_EXACT`` (Moré-Sorensen, :class:`DenseSubproblem`;
    ``sub_maxiter`` factorization rounds per solve, default 25, and ``k_easy``,
    ``k_hard``), ``SUB_DOGLEG``, or ``SUB_PYTHON`` (``factory(x, f, g, hop)`` makes a
    subproblem with ``solve(radius) -> (p, hits)`` and ``model_value``; the
    exception class ``indefinite_exc`` raised by ``solve`` ends the run with
    ``INDEFINITE``).  Stops (status codes of ``neurenix.optimize.Status``) on
    ``||g|| < gtol`` (GTOL), ``maxiter``, a radius below the rounding level of
    ``x`` (TRUST_RADIUS), a model that predicts no decrease (PRECISION), or a
    status returned by ``driver.iteration``.  Options are validated by the
    Python front end.

    Returns
    -------
    status, nit, f, radius, x, g
    """
    cdef Py_ssize_t n = prob.n
    if (x0.shape[0] != n or g0.shape[0] != n or x0.dtype != prob.dtype
            or g0.dtype != prob.dtype):
        raise ValueError("trust_region: x0 and g0 must be vectors of the problem's size and dtype")
    if kind not in (0, 1, 2, 3, 4):
        raise ValueError("trust_region: unknown subproblem kind")
    if kind == 2 and (factory is None or indefinite_exc is None):
        raise ValueError("trust_region: SUB_PYTHON needs factory and indefinite_exc")
    cdef DenseSubproblem ds = None
    if kind >= 3:
        if n == 0:
            raise ValueError("trust_region: empty problem")
        ds = DenseSubproblem(n, prob.dtype, k_easy, k_hard, sub_maxiter if sub_maxiter > 0 else 25)
    if sub_maxiter <= 0:
        sub_maxiter = max(2 * n, 1) if kind == 0 else max(n, 1)
    cdef cnp.ndarray x = _copy(x0)
    cdef cnp.ndarray g = _copy(g0)
    if prob.typenum == cnp.NPY_DOUBLE:
        return _tr(<double>0, prob, x, g, f, kind, factory, indefinite_exc, radius, max_radius,
                   eta, gtol, maxiter, sub_maxiter, inexact, driver, allvecs, ds)
    return _tr(<float>0, prob, x, g, f, kind, factory, indefinite_exc, radius, max_radius,
               eta, gtol, maxiter, sub_maxiter, inexact, driver, allvecs, ds)


cdef int _wolfe(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray xt_arr,
                cnp.ndarray gt_arr, double f, const floating* g, const floating* p,
                double c1, double c2, int maxls, double* alpha_out,
                double* f_out) except -1:
    """Strong-Wolfe search from the unit step along ``p`` (Moré-Thuente, reverse
    communication).  On success (1) ``xt``/``gt`` hold the accepted point and
    its gradient; 0 on failure.  A non-finite value makes the search backtrack.

    Near the rounding floor of ``f`` the sufficient-decrease test cannot be
    decided; a trial point is then also accepted under the approximate Wolfe
    conditions of Hager & Zhang (SIAM J. Optim. 16(1), 2005, eq. 4.1 with
    ``eps_k = 1000 eps_machine |f|``): ``phi(a) <= phi(0) + eps_k`` and
    ``|phi'(a)| <= c2 |phi'(0)|``."""
    cdef Py_ssize_t n = prob.n, i, it
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* gt = <floating*>cnp.PyArray_DATA(gt_arr)
    cdef MTState s
    cdef double dphi0 = dot_lanes16(g, p, n), stp = 1.0, ft = 0.0, alpha = 0.0, dphi
    cdef double eps_f = 1e3 * (2.220446049250313e-16 if floating is double
                               else 1.1920928955078125e-07) * fabs(f)
    cdef bint have = False, got
    cdef int task = mt_start(&s, f, dphi0, &stp, c1, c2, 1e-14, 0.0, 1e10)
    for it in range(maxls):
        if task != MT_FG:
            break
        for i in range(n):
            xt[i] = <floating>(x[i] + stp * p[i])
        ft = prob.ev.f_at(xt_arr, gt_arr, &got)
        if not isfinite(ft):
            mt_nonfinite(&s, &stp)
            have = False
            continue
        if not got:
            prob.ev.g_at(xt_arr, gt_arr)
        dphi = dot_lanes16(gt, p, n)
        if not isfinite(dphi):
            # a non-finite gradient (g . p is NaN/inf whenever g has an inf or NaN):
            # backtrack as for a non-finite f, so no such point is accepted
            mt_nonfinite(&s, &stp)
            have = False
            continue
        have = True
        alpha = stp
        if ft <= f + eps_f and fabs(dphi) <= c2 * fabs(dphi0) and dphi0 < 0.0:
            alpha_out[0] = alpha
            f_out[0] = ft
            return 1
        task = mt_iterate(&s, &stp, ft, dphi)
    if not have:
        return 0
    if task == MT_CONVERGED or (task != MT_FG and task != MT_ERROR and
                                ft <= f + c1 * alpha * dphi0 and ft < f):
        alpha_out[0] = alpha
        f_out[0] = ft
        return 1
    return 0


cdef object _ncg(floating tag, Problem prob, cnp.ndarray x_arr, cnp.ndarray g_arr, double f,
                 double xtol, double gtol, Py_ssize_t maxiter, Py_ssize_t cg_maxiter,
                 double c1, double c2, bint l1, object driver, list allvecs):
    cdef Py_ssize_t n = prob.n, i, k = 0, it = 0
    cdef cnp.ndarray xt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray gt_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray p_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray r_arr = _empty(n, prob.typenum)
    cdef cnp.ndarray d_arr = _empty(n, prob.typenum)
    cdef floating* x = <floating*>cnp.PyArray_DATA(x_arr)
    cdef floating* g = <floating*>cnp.PyArray_DATA(g_arr)
    cdef floating* xt = <floating*>cnp.PyArray_DATA(xt_arr)
    cdef floating* p = <floating*>cnp.PyArray_DATA(p_arr)
    cdef floating* r = <floating*>cnp.PyArray_DATA(r_arr)
    cdef double gn, tol, alpha = 0.0, f_new = 0.0
    cdef int status = S_RUNNING, cg, ok, cg2
    cdef bint small, full_newton, unchanged, minus_g, have_dir = False, got
    # Ctrl-C and maxtime (checked before each user call) end the run at the
    # current iterate: x, f, g are consistent at every call into Python
    try:
        while True:
            if absmax(g, n) <= gtol:
                status = S_GTOL
                break
            if k >= maxiter:
                status = S_MAXITER
                break
            if have_dir:
                # the accurate Newton step of the small-step check, at this same point
                cg = C_CONVERGED
                have_dir = False
            else:
                gn = asum_lanes16(g, n) if l1 else sqrt(nrm2sq_lanes16(g, n))
                tol = (0.5 if sqrt(gn) > 0.5 else sqrt(gn)) * gn
                prob.at(x_arr, g_arr, k == 0)
                cg = _cg_newton(g, prob, d_arr, r, p, n, tol, cg_maxiter, l1, &it)
            minus_g = False
            if not dot_lanes16(g, p, n) < 0.0:
                # rounding made the CG iterate useless: fall back to steepest descent
                for i in range(n):
                    p[i] = -g[i]
                cg = C_NEGATIVE
                minus_g = True
            elif cg == C_NEGATIVE and it == 1:
                minus_g = True          # the first CG direction, -g
            ok = _wolfe(tag, prob, x_arr, xt_arr, gt_arr, f, g, p, c1, c2, 60, &alpha, &f_new)
            if not ok and not (cg == C_NEGATIVE and minus_g):
                # the (truncated) Newton direction failed: retry along steepest descent
                for i in range(n):
                    p[i] = -g[i]
                cg = C_NEGATIVE
                ok = _wolfe(tag, prob, x_arr, xt_arr, gt_arr, f, g, p, c1, c2, 60, &alpha, &f_new)
            if not ok:
                status = S_LINESEARCH
                break
            k += 1
            small = fabs(alpha) * asum_lanes16(p, n) / n <= xtol
            full_newton = alpha == 1.0 and cg == C_CONVERGED
            unchanged = f_new >= f
            if unchanged:
                for i in range(n):
                    if xt[i] != x[i]:
                        unchanged = False
                        break
            x_arr, xt_arr = xt_arr, x_arr       # accept the trial point
            g_arr, gt_arr = gt_arr, g_arr
            x = <floating*>cnp.PyArray_DATA(x_arr)
            xt = <floating*>cnp.PyArray_DATA(xt_arr)
            g = <floating*>cnp.PyArray_DATA(g_arr)
            f = f_new
            if allvecs is not None:
                allvecs.append(_copy(x_arr))
            if driver is not None:
                st = driver.iteration(k, x_arr, f, g_arr, step=fabs(alpha) * sqrt(nrm2sq_lanes16(p, n)))
                if st is not None:
                    status = int(st)
                    break
            if small and full_newton:
                if absmax(g, n) <= gtol:
                    status = S_GTOL
                    break
                # verify with an accurate Newton step at the new point: near a
                # non-degenerate minimizer its length estimates the remaining error
                prob.at(x_arr, g_arr, False)
                cg2 = _cg_newton(g, prob, d_arr, r, p, n, 1e-8 * sqrt(nrm2sq_lanes16(g, n)),
                                 cg_maxiter, False, &it)
                if cg2 == C_CONVERGED:
                    if asum_lanes16(p, n) / n <= xtol:
                        status = S_XTOL
                        # take that small, accurate Newton step when it does not raise f:
                        # the error left is then of second order in it
                        for i in range(n):
                            xt[i] = <floating>(x[i] + p[i])
                        f_new = prob.ev.f_at(xt_arr, gt_arr, &got)
                        if isfinite(f_new) and f_new <= f:
                            if not got:
                                prob.ev.g_at(xt_arr, gt_arr)
                            x_arr, xt_arr = xt_arr, x_arr
                            g_arr, gt_arr = gt_arr, g_arr
                            f = f_new
                            k += 1
                            if allvecs is not None:
                                allvecs.append(_copy(x_arr))
                            if driver is not None:
                                st = driver.iteration(k, x_arr, f, g_arr,
                                                      step=sqrt(nrm2sq_lanes16(p, n)))
                                if st is not None:
                                    status = int(st)
                        break
                    have_dir = not unchanged      # reuse it as the next direction
            if unchanged:
                status = S_PRECISION
                break
    except KeyboardInterrupt:
        status = S_INTERRUPTED
    except MaxTimeExceeded:
        status = S_MAXTIME
    return status, k, f, x_arr, g_arr


def newton_cg(Problem prob, cnp.ndarray x0, cnp.ndarray g0, double f, *, double xtol=1e-5,
              double gtol=1e-5, Py_ssize_t maxiter=1000, Py_ssize_t cg_maxiter=1000,
              double c1=1e-4, double c2=0.9, bint l1=True, object driver=None,
              list allvecs=None):
    """Line-search Newton-CG (N&W Algorithm 7.1) from ``x0`` with ``f``, ``g0`` there.

    Inner CG to the forcing tolerance ``min(0.5, sqrt||g||) ||g||`` (1-norms
    when ``l1``, as SciPy), negative-curvature detection, strong-Wolfe
    search from the unit step (steepest descent when the Newton direction
    fails).  Stops on ``max|g_i| <= gtol`` (GTOL), on a small full Newton step
    confirmed by an accurate Newton solve (XTOL, see
    :mod:`neurenix.optimize._newton_cg`), ``maxiter``, a failed search
    (LINESEARCH), a step that changes nothing (PRECISION), or a status
    returned by ``driver.iteration``.  When the confirming solve does not
    stop the run, its (accurate) Newton step is the next search direction.

    Returns
    -------
    status, nit, f, x, g
    """
    cdef Py_ssize_t n = prob.n
    if (x0.shape[0] != n or g0.shape[0] != n or x0.dtype != prob.dtype
            or g0.dtype != prob.dtype):
        raise ValueError("newton_cg: x0 and g0 must be vectors of the problem's size and dtype")
    if n == 0:
        raise ValueError("newton_cg: empty problem")
    cdef cnp.ndarray x = _copy(x0)
    cdef cnp.ndarray g = _copy(g0)
    if prob.typenum == cnp.NPY_DOUBLE:
        return _ncg(<double>0, prob, x, g, f, xtol, gtol, maxiter, cg_maxiter, c1, c2, l1,
                    driver, allvecs)
    return _ncg(<float>0, prob, x, g, f, xtol, gtol, maxiter, cg_maxiter, c1, c2, l1,
                driver, allvecs)


def wolfe_search(Problem prob, cnp.ndarray x, double f, cnp.ndarray g, cnp.ndarray p,
                 double c1=1e-4, double c2=0.9, int maxls=60):
    """Strong-Wolfe search along ``p`` from ``x`` (the one Newton-CG uses).

    Returns ``(alpha, f_new, x_new, g_new)`` or None when it fails.
    """
    cdef Py_ssize_t n = prob.n
    for a in (x, g, p):
        if a.shape[0] != n or a.dtype != prob.dtype or not a.flags.c_contiguous:
            raise ValueError("wolfe_search: x, g, p must be contiguous vectors of the "
                             "problem's size and dtype")
    cdef cnp.ndarray xt = _empty(n, prob.typenum)
    cdef cnp.ndarray gt = _empty(n, prob.typenum)
    cdef double alpha = 0.0, fn = 0.0
    cdef int ok
    if n == 0:
        return None
    if prob.typenum == cnp.NPY_DOUBLE:
        ok = _wolfe(<double>0, prob, x, xt, gt, f, <double*>cnp.PyArray_DATA(g),
                    <double*>cnp.PyArray_DATA(p), c1, c2, maxls, &alpha, &fn)
    else:
        ok = _wolfe(<float>0, prob, x, xt, gt, f, <float*>cnp.PyArray_DATA(g),
                    <float*>cnp.PyArray_DATA(p), c1, c2, maxls, &alpha, &fn)
    if not ok:
        return None
    return alpha, fn, xt, gt
