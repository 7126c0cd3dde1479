"""Python front of the strong-Wolfe line searches.

:func:`scalar_search_wolfe` searches along a 1-D function given ``phi(t)`` and
``phi'(t)``, driving the compiled reverse-communication kernel
:class:`neurenix._ext._linesearch.MoreThuente` (Moré & Thuente 1994, ACM TOMS
20(3):286-307), which the compiled quasi-Newton loops use directly.

:func:`scalar_search_wolfe2` is the second search of BFGS and CG, tried when the
first fails: bracketing and zoom (Nocedal & Wright 2006, Algorithms 3.5 and 3.6)
as SciPy's function of that name, driving the compiled kernel
:class:`neurenix._ext._linesearch.Wolfe2`.  :func:`line_search` is SciPy's public
``scipy.optimize.line_search`` (``line_search_wolfe2``) over it.
"""
import math
import operator
import warnings

import numpy as np

try:
    # SciPy's own class (private there), so that a filter set on it applies to ours
    from scipy.optimize._linesearch import LineSearchWarning
except ImportError:         # pragma: no cover - a SciPy that moved it
    class LineSearchWarning(RuntimeWarning):
        """The line search did not converge."""

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
    try:
        maxiter = operator.index(maxiter)       # (SciPy's range(maxiter) refuses 2.5 too)
    except TypeError:
        raise TypeError(f"maxiter must be an integer, got {maxiter!r}") from None
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
        warnings.warn("The line search algorithm did not converge", LineSearchWarning,
                      stacklevel=2)
        return alpha, last, phi0, None
    if task == "ZOOM":
        return None, None, phi0, None
    # a zero step or amax passed: SciPy returns phi0 as phi_star and old_phi0 as phi0
    if task == "ROUNDING":
        msg = "Rounding errors prevent the line search from converging"
    else:
        msg = f"The line search algorithm could not find a solution less than or equal to amax: {amax}"
    warnings.warn(msg, LineSearchWarning, stacklevel=2)
    return None, phi0, old_phi0, None


def line_search(f, myfprime, xk, pk, gfk=None, old_fval=None, old_old_fval=None, args=(),
                c1=1e-4, c2=0.9, amax=None, extra_condition=None, maxiter=10):
    """A step along ``pk`` satisfying the strong Wolfe conditions (SciPy's public
    ``scipy.optimize.line_search``, its ``line_search_wolfe2``).

    The bracketing and zoom search of :func:`scalar_search_wolfe2` (Nocedal &
    Wright 2006, Algorithms 3.5 and 3.6) on ``phi(a) = f(xk + a pk)``, with SciPy's
    arguments, defaults, counts and return values.

    Parameters
    ----------
    f, myfprime : callable
        The objective and its gradient, called as ``f(x, *args)``.
    xk, pk : ndarray
        The start and the search direction.
    gfk : ndarray, optional
        The gradient at ``xk`` (computed when None, not counted in ``gc``).
    old_fval, old_old_fval : float, optional
        ``f(xk)`` (computed when None) and the previous value, which sets the
        first trial ``min(1, 2.02 (f_k - f_{k-1}) / phi'(0))``.
    args : tuple
        Extra arguments of ``f`` and ``myfprime``.
    c1, c2 : float
        The sufficient-decrease and curvature parameters, ``0 < c1 < c2 < 1``.
    amax : float, optional
        The largest step.
    extra_condition : callable ``(alpha, x, f, g) -> bool``, optional
        A step satisfying the strong Wolfe conditions is accepted only where
        this also holds.
    maxiter : int
        Bracketing iterations.

    Returns
    -------
    alpha : float or None
        The step; None when the search failed (``LineSearchWarning``).
    fc, gc : int
        The numbers of ``f`` and ``myfprime`` evaluations.
    new_fval : float or None
        ``f(xk + alpha pk)``.
    old_fval : float
        ``f(xk)``.
    new_slope : ndarray or None
        As SciPy returns it, the gradient at the new point (not its slope).
    """
    xk = np.asarray(xk)
    pk = np.asarray(pk)
    if xk.shape != pk.shape:
        raise ValueError(f"pk must have the shape of xk {xk.shape}, got {pk.shape}")
    fc = [0]
    gc = [0]
    gval = [None, None]             # the last gradient asked for and its step

    def phi(alpha):
        fc[0] += 1
        return f(xk + alpha * pk, *args)

    def derphi(alpha):
        gc[0] += 1
        gval[0] = myfprime(xk + alpha * pk, *args)
        gval[1] = alpha
        return np.dot(gval[0], pk)

    if gfk is None:
        gfk = myfprime(xk, *args)
    derphi0 = np.dot(gfk, pk)
    extra = None
    if extra_condition is not None:
        def extra(alpha, phi_alpha):
            if gval[1] != alpha:
                derphi(alpha)
            return extra_condition(alpha, xk + alpha * pk, phi_alpha, gval[0])
    alpha, new_fval, old_fval, slope = scalar_search_wolfe2(
        phi, derphi, old_fval, old_old_fval, derphi0, c1, c2, amax, extra, maxiter=maxiter)
    if slope is None:
        warnings.warn("The line search algorithm did not converge", LineSearchWarning,
                      stacklevel=2)
        return alpha, fc[0], gc[0], new_fval, old_fval, None
    return alpha, fc[0], gc[0], new_fval, old_fval, gval[0]
