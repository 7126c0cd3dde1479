r"""The learning-rate range test (Smith 2017, sec. 3.3).

Train for a few hundred steps while the learning rate grows from tiny to huge
(geometrically by default), record the loss at each rate, and stop once the
loss has clearly diverged.  The useful learning rates lie where the loss
falls fastest; :func:`lr_range_test` returns the whole curve and a suggested
rate, and :meth:`LRRangeTestResult.plot` draws it (matplotlib is optional).

By default the parameters and the optimizer state are restored afterwards, so
the test can run right before the real training.

References
----------
Smith (2017), "Cyclical learning rates for training neural networks", WACV.
"""
import copy
import math
import warnings

import numpy as np

from . import schedules as S
from .._core.validation import _real

__all__ = ["lr_range_test", "LRRangeTestResult"]


class LRRangeTestResult:
    """The curve of a learning-rate range test.

    Attributes
    ----------
    lrs : ndarray
        Learning rates tried, in order.
    losses : ndarray
        Loss returned by the closure at each rate (before that step's update).
    smoothed : ndarray
        Exponentially smoothed losses (what the suggestion and divergence use).
    suggested_lr : float or None
        The rate where the smoothed loss falls fastest against ``log(lr)``
        (``suggestion="steepest"``), or a tenth of the rate of the minimum
        loss (``"min/10"``); None when the curve is too short.
    diverged : bool
        Whether the test stopped early because the loss diverged.
    """

    def __init__(self, lrs, losses, smoothed, suggested_lr, diverged, suggestion):
        self.lrs = np.asarray(lrs, dtype=float)
        self.losses = np.asarray(losses, dtype=float)
        self.smoothed = np.asarray(smoothed, dtype=float)
        self.suggested_lr = suggested_lr
        self.diverged = diverged
        self.suggestion = suggestion

    def __repr__(self):
        return (f"LRRangeTestResult(steps={len(self.lrs)}, suggested_lr={self.suggested_lr!r}, "
                f"diverged={self.diverged})")

    def plot(self, ax=None, log_lr=True, show_suggestion=True):
        """Plot the smoothed loss against the learning rate.

        Returns the matplotlib ``Axes``, or None (with a warning) when
        matplotlib is not installed.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            warnings.warn("matplotlib is not installed; skipping the plot", RuntimeWarning,
                          stacklevel=2)
            return None
        if ax is None:
            _, ax = plt.subplots()
        ax.plot(self.lrs, self.smoothed, label="smoothed loss")
        if log_lr:
            ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        if show_suggestion and self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, color="red", linestyle="--",
                       label=f"suggested lr {self.suggested_lr:.3g}")
        ax.legend()
        return ax


def _suggest(lrs, smoothed, skip_start, skip_end, suggestion):
    n = len(lrs)
    if suggestion == "min/10":
        return float(lrs[int(np.argmin(smoothed))] / 10) if n else None
    lo, hi = skip_start, n - skip_end
    if hi - lo < 3:
        return None
    x = np.log(lrs[lo:hi])
    y = smoothed[lo:hi]
    slope = np.gradient(y, x)
    return float(lrs[lo + int(np.argmin(slope))])


def lr_range_test(optimizer, closure, start_lr=1e-7, end_lr=10.0, num_steps=100, mode="exp",
                  smooth_f=0.05, diverge_th=5.0, skip_start=10, skip_end=5,
                  suggestion="steepest", restore=True, plot=False):
    r"""Sweep the learning rate and record the loss (Smith 2017).

    At step :math:`k` every param group gets the rate
    :func:`schedules.range_sweep` ``(k, start_lr, end_lr, num_steps, mode)``;
    ``closure()`` computes the loss and fills the gradients, then
    ``optimizer.step()`` runs.  The loss is smoothed as
    :math:`s_k = f\,\ell_k + (1-f)\,s_{k-1}` and the test stops early when
    :math:`s_k > \text{diverge\_th}\cdot\min_{j<k} s_j` or the loss is not finite.

    Parameters
    ----------
    optimizer : Optimizer
        Any optimizer with ``lr`` in its param groups.
    closure : callable
        ``closure() -> loss``: evaluates a (mini-)batch and fills ``p.grad``.
    start_lr, end_lr : float, default 1e-7, 10
        ``0 < start_lr < end_lr``.
    num_steps : int, default 100
        Length of the sweep, >= 2.
    mode : {"exp", "linear"}, default "exp"
    smooth_f : float, default 0.05
        Smoothing factor in ``(0, 1]`` (1 = no smoothing).
    diverge_th : float, default 5
        Divergence threshold, > 1.
    skip_start, skip_end : int, default 10, 5
        Points left out at each end when looking for the steepest descent.
    suggestion : {"steepest", "min/10"}, default "steepest"
    restore : bool, default True
        Put back the parameters, the optimizer state and learning rates afterwards.
    plot : bool, default False
        Call :meth:`LRRangeTestResult.plot` (skipped if matplotlib is missing).

    Returns
    -------
    LRRangeTestResult

    References
    ----------
    Smith (2017), "Cyclical learning rates for training neural networks", WACV.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD
    >>> from neurenix.optim.lr_finder import lr_range_test
    >>> w = Parameter(np.ones(4))
    >>> def closure():
    ...     w.grad = 4.0 * w.data          # f = 2 |w|^2, diverges for lr > 0.5
    ...     return float(2.0 * w.data @ w.data)
    >>> res = lr_range_test(SGD([w], lr=0.1), closure, start_lr=1e-4, end_lr=10, num_steps=80)
    >>> res.diverged, 1e-3 < res.suggested_lr < 0.5, bool(np.all(w.data == 1.0))
    (True, True, True)
    """
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
        raise TypeError("optimizer must be an Optimizer whose param groups have 'lr'")
    if not callable(closure):
        raise TypeError(f"closure must be callable, got {type(closure).__name__}")
    start_lr = S._positive("start_lr", start_lr)
    end_lr = S._positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr, got end_lr={end_lr!r}, "
                         f"start_lr={start_lr!r}")
    num_steps = S._int("num_steps", num_steps, 2)
    if mode not in ("exp", "linear"):
        raise ValueError(f"mode must be 'exp' or 'linear', got {mode!r}")
    S._in_range("smooth_f", smooth_f, 0.0, 1.0, lo_open=True)
    if _real("diverge_th", diverge_th) <= 1:
        raise ValueError(f"diverge_th must be > 1, got {diverge_th!r}")
    skip_start = S._int("skip_start", skip_start, 0)
    skip_end = S._int("skip_end", skip_end, 0)
    if suggestion not in ("steepest", "min/10"):
        raise ValueError(f"suggestion must be 'steepest' or 'min/10', got {suggestion!r}")

    if restore:
        saved_data = [(p, copy.deepcopy(p.data)) for g in groups for p in g["params"]]
        saved_state = copy.deepcopy(optimizer.state_dict())
    lrs, losses, smoothed = [], [], []
    best = math.inf
    diverged = False
    try:
        for k in range(num_steps):
            lr = S.range_sweep(k, start_lr, end_lr, num_steps, mode)
            for g in groups:
                g["lr"] = lr
            loss = closure()
            try:
                loss = float(loss)
            except (TypeError, ValueError):
                raise TypeError(f"closure must return the loss as a real number, got "
                                f"{type(loss).__name__}") from None
            if not math.isfinite(loss):
                diverged = True
                break
            s = loss if not smoothed else smooth_f * loss + (1 - smooth_f) * smoothed[-1]
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(s)
            if s > diverge_th * best:
                diverged = True
                break
            best = min(best, s)
            optimizer.step()
    finally:
        if restore:
            for p, d in saved_data:
                if isinstance(p.data, np.ndarray) and isinstance(d, np.ndarray):
                    p.data[...] = d
                else:
                    p.data = d
            optimizer.load_state_dict(saved_state)
    res = LRRangeTestResult(lrs, losses, smoothed,
                            _suggest(np.asarray(lrs), np.asarray(smoothed), skip_start,
                                     skip_end, suggestion), diverged, suggestion)
    if plot:
        res.plot()
    return res
