"""Python front of the strong-Wolfe line searches.

:func:`scalar_search_wolfe` searches along a 1-D function given ``phi(t)`` and
``phi'(t)``; :func:`line_search` is SciPy's ``scipy.optimize.line_search``
signature over ``f``/``fprime`` (or a :class:`ScalarObjective`).  Both drive
the compiled reverse-communication kernel :class:`neurenix._ext._linesearch.MoreThuente`
(Moré & Thuente 1994, ACM TOMS 20(3):286-307), which the compiled quasi-Newton
loops use directly.

:func:`scalar_search_wolfe2` is the second search of BFGS and CG, tried when the
first fails: bracketing and zoom (Nocedal & Wright 2006, Algorithms 3.5 and 3.6)
as SciPy's function of that name, driving the compiled kernel
:class:`neurenix._ext._linesearch.Wolfe2`.
"""
import math

import numpy as np

from .._ext._linesearch import MoreThuente, Wolfe2

__all__ = ["scalar_search_wolfe", "scalar_search_wolfe2", "line_search"]


def scalar_search_wolfe(phi_dphi, phi0, dphi0, stp=1.0, *, c1=1e-4, c2=0.9, xtol=1e-14,
                        stpmin=0.0, stpmax=1e100, maxls=100):
    """Find a step satisfying the strong Wolfe conditions.

    Parameters
    ----------
    phi_dphi : callable ``t -> (phi(t), phi'(t))``
    phi0, dphi0 : float
        ``phi(0)`` and ``phi'(0) < 0``.
    stp : float
        First trial step, in ``[stpmin, stpmax]``.
    c1, c2 : float
        Sufficient-decrease and curvature constants, ``0 < c1 <= c2 < 1``.
    xtol : float
        Relative width of the interval of uncertainty at which to stop.
    maxls : int
        Largest number of evaluations.

    Returns
    -------
    stp, phi, dphi, nev, task
        ``stp`` is None when no acceptable step was found (``task`` says why);
        a trial where ``phi``/``phi'`` is not finite is backtracked, never accepted.
    """
    if not dphi0 < 0:
        raise ValueError(f"dphi0 must be negative (a descent direction), got {dphi0!r}")
    if not 0 < c1 <= c2 < 1:
        raise ValueError(f"need 0 < c1 <= c2 < 1, got c1={c1!r}, c2={c2!r}")
    if not stpmin <= stp <= stpmax:
        raise ValueError(f"stp must be in [stpmin, stpmax], got {stp!r}")
    ls = MoreThuente()
    task, stp = ls.start(float(phi0), float(dphi0), float(stp), c1, c2, xtol, stpmin, stpmax)
    nev = 0
    phi = dphi = None
    while task == "FG" and nev < maxls:
        phi, dphi = phi_dphi(stp)
        nev += 1
        phi, dphi = float(phi), float(dphi)
        if not (math.isfinite(phi) and math.isfinite(dphi)):
            stp = ls.nonfinite()
            task = "FG"
            continue
        task, new = ls.iterate(phi, dphi)
        if task == "FG":
            stp = new
    if task == "CONVERGENCE" or (task.startswith("WARNING") and phi is not None
                                 and math.isfinite(phi) and phi <= phi0 + c1 * stp * dphi0):
        return stp, phi, dphi, nev, task
    return None, phi, dphi, nev, task if task != "FG" else "MAXLS"


def scalar_search_wolfe2(phi, derphi, phi0=None, old_phi0=None, derphi0=None, c1=1e-4,
                         c2=0.9, amax=None, extra_condition=None, maxiter=10):
    """Find a step satisfying the strong Wolfe conditions by bracketing and zoom.

    The search of SciPy's ``scalar_search_wolfe2`` (Nocedal & Wright 2006,
    Algorithms 3.5 and 3.6): the first trial is 1, or
    :math:`\\min(1, 2.02 (\\phi_0 - \\phi_{old}) / \\phi'(0))` when ``old_phi0``
    is given (1 if negative), capped at ``amax``; the step doubles (capped at
    ``amax``) until an interval containing an acceptable step is found, which is
    then narrowed by cubic, quadratic or bisection trials (at most 10).  ``phi``
    may be evaluated at a step without ``derphi``.

    Parameters
    ----------
    phi, derphi : callable ``t -> float``
    phi0, derphi0 : float, optional
        phi(0) and phi'(0) (evaluated when None).
    old_phi0 : float, optional
        The previous value (sets the first trial).
    c1, c2 : float
        ``0 < c1 < c2 < 1``.
    amax : float, optional
        Largest step.
    extra_condition : callable ``(t, phi) -> bool``, optional
        A strong-Wolfe step is accepted only where it holds (else the search
        goes on).
    maxiter : int
        Bracketing iterations.

    Returns
    -------
    alpha, phi_star, phi0, derphi_star
        As SciPy: ``alpha`` None when the search failed; ``derphi_star`` None
        when it failed or when the bracketing ran out of iterations (then
        ``alpha`` is the last trial, as SciPy returns it).
    """
    if not 0 < c1 < c2 < 1:
        raise ValueError("'c1' and 'c2' do not satisfy'0 < c1 < c2 < 1'.")
    if phi0 is None:
        phi0 = phi(0.0)
    if derphi0 is None:
        derphi0 = derphi(0.0)
    ls = Wolfe2()
    task, stp = ls.start(float(phi0), old_phi0, float(derphi0), c1, c2, amax, int(maxiter),
                         extra_condition is not None)
    last = None
    while True:
        if task == "F":
            last = phi(stp)
            task, stp = ls.phi(float(last))
        elif task == "G":
            task, stp = ls.dphi(float(derphi(stp)))
        elif task == "EXTRA":
            task, stp = ls.extra(bool(extra_condition(stp, last)))
        else:
            break
    alpha, phi_star, derphi_star = ls.result
    if task == "DONE":
        return alpha, last, phi0, derphi_star
    if task == "DONE_NOG":
        return alpha, last, phi0, None
    if task == "ZOOM":
        return None, None, phi0, None
    # a zero step or amax passed: SciPy returns phi0 as phi_star and old_phi0 as phi0
    return None, phi0, old_phi0, None


def line_search(f, myfprime, xk, pk, gfk=None, old_fval=None, old_old_fval=None, args=(),
                c1=1e-4, c2=0.9, amax=1e100, maxiter=100):
    """SciPy's ``line_search``: a strong-Wolfe step along ``pk`` from ``xk``.

    Returns ``(alpha, fc, gc, new_fval, old_fval, new_slope)``; ``alpha`` is None
    when the search fails.  The first trial is 1, or SciPy's
    ``min(1, 2.02 (f_k - f_{k-1}) / phi'(0))`` when ``old_old_fval`` is given.
    """
    xk = np.asarray(xk)
    pk = np.asarray(pk)
    if xk.shape != pk.shape:
        raise ValueError(f"pk must have the shape of xk {xk.shape}, got {pk.shape}")
    cnt = {"f": 0, "g": 0}
    cache = {}

    def phi_dphi(t):
        x = xk + t * pk
        fv = f(x, *args)
        g = np.asarray(myfprime(x, *args))
        cnt["f"] += 1
        cnt["g"] += 1
        cache["g"] = g
        return fv, float(np.dot(g, pk))

    if old_fval is None:
        old_fval = f(xk, *args)
        cnt["f"] += 1
    if gfk is None:
        gfk = np.asarray(myfprime(xk, *args))
        cnt["g"] += 1
    d0 = float(np.dot(gfk, pk))
    stp = 1.0
    if old_old_fval is not None and d0 != 0:
        stp = min(1.0, 1.01 * 2 * (old_fval - old_old_fval) / d0)
        if not stp > 0:
            stp = 1.0
    stp = min(stp, amax)
    alpha, phi, dphi, nev, task = scalar_search_wolfe(phi_dphi, old_fval, d0, stp, c1=c1, c2=c2,
                                                      stpmax=amax, maxls=maxiter)
    if alpha is None:
        return None, cnt["f"], cnt["g"], None, old_fval, None
    return alpha, cnt["f"], cnt["g"], phi, old_fval, dphi
