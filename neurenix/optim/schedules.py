r"""Learning-rate schedules as pure functions of the step.

This module is the single home of the schedule math.  Each schedule appears in
up to two forms:

- a **closed form** ``f(step, base_lr, ...) -> lr`` (PyTorch's
  ``_get_closed_form_lr``), and
- where PyTorch's ``step()`` uses one, a **chained form**
  ``f_chained(lr, step, ...) -> lr`` that maps the previous learning rate to
  the next one (PyTorch's recursive ``get_lr``).  Chained forms compose
  (:class:`~neurenix.optim.lr_scheduler.ChainedScheduler`) and respect
  learning rates changed by hand between steps.

The stateful schedulers of :mod:`neurenix.optim.lr_scheduler` only keep
``last_epoch`` and call these functions.

The classes at the end (:class:`StepDecay`, :class:`CosineAnnealing`,
:class:`OneCycle`, :class:`Warmup`, ...) bind the hyperparameters of a closed
form into a callable ``lr = schedule(step)``, usable on their own or as
``minimize(method="adam", options={"lr": schedule})``.  ``step`` counts
completed updates: ``schedule(0)`` is the learning rate of the first update,
the value a PyTorch scheduler holds right after construction.

References
----------
Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
restarts", ICLR.  Smith (2017), "Cyclical learning rates for training neural
networks", WACV.  Smith & Topin (2019), "Super-convergence: very fast training
of neural networks using large learning rates", SPIE 11006.
"""
import math
import numbers
from bisect import bisect_right

from .._core.validation import _real, check_positive, check_nonneg

__all__ = [
    # closed forms
    "constant", "step_decay", "multistep_decay", "constant_factor", "linear", "exponential",
    "polynomial", "cosine_annealing", "warm_restarts_position", "cosine_warm_restarts",
    "one_cycle", "cyclic_position", "cyclic", "range_sweep", "linear_warmup",
    # chained forms
    "step_decay_chained", "multistep_decay_chained", "constant_factor_chained",
    "linear_chained", "exponential_chained", "polynomial_chained", "cosine_annealing_chained",
    # schedule objects
    "Schedule", "Constant", "StepDecay", "MultiStepDecay", "ConstantFactor", "Linear",
    "Exponential", "Polynomial", "CosineAnnealing", "CosineWarmRestarts", "OneCycle",
    "Cyclic", "Warmup", "Sequence", "Lambda",
]


# ----------------------------------------------------------------- validation
def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _breakpoints(name, values, parts, what, minimum):
    """The sorted int breakpoints between ``parts`` consecutive pieces (``len(parts)
    - 1`` of them, each ``>= minimum``), checked with messages naming ``name``."""
    values = [_int(f"{name}[{i}]", b, minimum) for i, b in enumerate(values)]
    if len(values) != len(parts) - 1:
        raise ValueError(f"{name} must have len({what}) - 1 = {len(parts) - 1} "
                         f"entries, got {len(values)}")
    if values != sorted(values):
        raise ValueError(f"{name} must be increasing, got {values}")
    return values


def _positive(name, value):
    return check_positive(value, name)


def _nonneg(name, value):
    return check_nonneg(value, name)


def _in_range(name, value, lo, hi, lo_open=False, hi_open=False):
    v = _real(name, value)
    if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}, got {value!r}")
    return value


def _step(step):
    return _int("step", step, 0)


def _milestones(milestones):
    try:
        ms = list(milestones)
    except TypeError:
        raise TypeError(f"milestones must be an iterable of ints, got "
                        f"{type(milestones).__name__}") from None
    for i, m in enumerate(ms):
        _int(f"milestones[{i}]", m, 0)
    return sorted(int(m) for m in ms)


# ------------------------------------------------------------- closed forms
def constant(step, base_lr):
    """The constant schedule: ``base_lr`` at every step."""
    return base_lr


def step_decay(step, base_lr, step_size, gamma=0.1):
    r"""Step decay: :math:`\eta_t = \eta_0\,\gamma^{\lfloor t / s \rfloor}` (``StepLR``)."""
    return base_lr * gamma ** (step // step_size)


def multistep_decay(step, base_lr, milestones, gamma=0.1):
    r"""Decay by ``gamma`` at each milestone passed: :math:`\eta_0\gamma^{|\{m \le t\}|}`.

    ``milestones`` must be sorted (repeats count twice, as in PyTorch).
    """
    return base_lr * gamma ** bisect_right(milestones, step)


def constant_factor(step, base_lr, factor=1.0 / 3, total_iters=5):
    r"""``base_lr * factor`` for ``step < total_iters``, then ``base_lr`` (``ConstantLR``)."""
    return base_lr * (factor + (step >= total_iters) * (1 - factor))


def linear(step, base_lr, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
    r"""Linear change of the factor from ``start_factor`` to ``end_factor`` (``LinearLR``).

    :math:`\eta_t = \eta_0\,(f_s + (f_e - f_s)\min(t, T)/T)`.
    """
    return base_lr * (start_factor + (end_factor - start_factor)
                      * min(total_iters, step) / total_iters)


def exponential(step, base_lr, gamma):
    r""":math:`\eta_t = \eta_0\gamma^t` (``ExponentialLR``)."""
    return base_lr * gamma ** step


def polynomial(step, base_lr, total_iters=5, power=1.0):
    r""":math:`\eta_t = \eta_0 (1 - \min(t, T)/T)^p` (``PolynomialLR``)."""
    return base_lr * (1.0 - min(total_iters, step) / total_iters) ** power


def cosine_annealing(step, base_lr, T_max, eta_min=0.0):
    r"""Cosine annealing (Loshchilov & Hutter 2017, eq. 5, without restarts).

    :math:`\eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi t / T_{max}))`.
    """
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / T_max)) / 2


def warm_restarts_position(step, T_0, T_mult=1):
    """Position ``(T_cur, T_i)`` of ``step`` inside the SGDR cycles.

    Cycle ``i`` lasts :math:`T_i = T_0 T_{mult}^i` steps; exact integer arithmetic.
    """
    t_i = T_0
    if T_mult == 1:
        return step % T_0, T_0
    t_cur = step
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return t_cur, t_i


def cosine_warm_restarts(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    r"""SGDR: cosine annealing restarted every :math:`T_i = T_0 T_{mult}^i` steps.

    :math:`\eta_t = \eta_{min} + \tfrac12(\eta_0-\eta_{min})(1+\cos(\pi T_{cur}/T_i))`
    (Loshchilov & Hutter 2017, eq. 5).
    """
    t_cur, t_i = warm_restarts_position(step, T_0, T_mult)
    return cosine_annealing(t_cur, base_lr, t_i, eta_min)


def _anneal(start, end, pct, strategy):
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def _one_cycle_ends(total_steps, pct_start, three_phase):
    first = float(pct_start * total_steps) - 1
    if three_phase:
        return (first, float(2 * pct_start * total_steps) - 2, total_steps - 1)
    return (first, total_steps - 1)


def one_cycle(step, total_steps, start, peak, end, pct_start=0.3, anneal_strategy="cos",
              three_phase=False):
    r"""The 1cycle policy (Smith & Topin 2019) as PyTorch's ``OneCycleLR`` computes it.

    Two phases (default): ``start -> peak`` over the first ``pct_start`` of the
    steps, then ``peak -> end``.  With ``three_phase``: ``start -> peak``,
    ``peak -> start`` (symmetric), then ``start -> end``.  Each phase anneals
    by a half cosine (``"cos"``) or linearly (``"linear"``).

    For learning rates, ``start = max_lr / div_factor``, ``peak = max_lr``,
    ``end = start / final_div_factor``; for momentum, ``start = end =
    max_momentum`` and ``peak = base_momentum``.
    """
    if step > total_steps:
        raise ValueError(f"step: tried to step {step} times, the specified number of "
                         f"total steps is {total_steps}")
    ends = _one_cycle_ends(total_steps, pct_start, three_phase)
    anchors = ((start, peak), (peak, start), (start, end)) if three_phase else \
        ((start, peak), (peak, end))
    begin = 0.0
    for i, stop in enumerate(ends):
        if step <= stop or i == len(ends) - 1:
            span = stop - begin
            pct = (step - begin) / span if span != 0 else 1.0
            return _anneal(anchors[i][0], anchors[i][1], pct, anneal_strategy)
        begin = stop
    raise AssertionError("unreachable")  # pragma: no cover


def cyclic_position(step, step_size_up, step_size_down=None):
    """``(cycle, scale_factor)`` of CLR (Smith 2017): the cycle number (from 1)
    and the height in the triangle, 0 at the base, 1 at the peak."""
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    total = up + down
    ratio = up / total
    cycle = math.floor(1 + step / total)
    x = 1.0 + step / total - cycle
    if x <= ratio:
        return cycle, x / ratio
    return cycle, (x - 1) / (ratio - 1)


_CYCLIC_MODES = {
    "triangular": (lambda gamma, x: 1.0, "cycle"),
    "triangular2": (lambda gamma, x: 1 / (2.0 ** (x - 1)), "cycle"),
    "exp_range": (lambda gamma, x: gamma ** x, "iterations"),
}


def cyclic(step, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
           gamma=1.0, scale_fn=None, scale_mode="cycle"):
    r"""Cyclical learning rate (Smith 2017, "triangular", "triangular2", "exp_range").

    :math:`\eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\,h_t\,s(\cdot)`, where
    :math:`h_t` is the triangle height of :func:`cyclic_position` and the
    amplitude scale :math:`s` is 1 (triangular), :math:`2^{1-c}` (triangular2,
    cycle :math:`c`) or :math:`\gamma^t` (exp_range).  A custom ``scale_fn``
    takes the cycle number (``scale_mode="cycle"``) or the step
    (``"iterations"``).  Swapping ``base_lr`` and ``max_lr`` gives the
    inverted cycle PyTorch applies to momentum.
    """
    cycle, height = cyclic_position(step, step_size_up, step_size_down)
    if scale_fn is None:
        fn, scale_mode = _CYCLIC_MODES[mode]
        scale = fn(gamma, cycle if scale_mode == "cycle" else step)
    else:
        scale = scale_fn(cycle if scale_mode == "cycle" else step)
    return base_lr + (max_lr - base_lr) * height * scale


def range_sweep(step, start_lr, end_lr, num_steps, mode="exp"):
    r"""The learning-rate range test's sweep (Smith 2017, sec. 3.3).

    Step ``0`` gives ``start_lr``, step ``num_steps - 1`` gives ``end_lr``;
    geometric (``"exp"``) or arithmetic (``"linear"``) in between.
    """
    if num_steps <= 1:
        return start_lr
    frac = step / (num_steps - 1)
    if mode == "exp":
        return start_lr * (end_lr / start_lr) ** frac
    return start_lr + (end_lr - start_lr) * frac


def linear_warmup(step, base_lr, warmup_steps, start_factor=0.01):
    r"""Linear warm-up factor: ``base_lr * (f0 + (1 - f0) * step / warmup_steps)`` for
    ``step < warmup_steps``, then ``base_lr`` (Goyal et al. 2017, "Accurate,
    large minibatch SGD")."""
    if step >= warmup_steps:
        return base_lr
    return base_lr * (start_factor + (1.0 - start_factor) * step / warmup_steps)


# ------------------------------------------------------------ chained forms
# PyTorch's recursive get_lr: the lr after step ``step`` from the lr before it.
def step_decay_chained(lr, step, step_size, gamma=0.1):
    """Chained :func:`step_decay`: multiply by ``gamma`` when ``step`` is a positive
    multiple of ``step_size``."""
    if step == 0 or step % step_size != 0:
        return lr
    return lr * gamma


def multistep_decay_chained(lr, step, counts, gamma=0.1):
    """Chained :func:`multistep_decay`; ``counts`` maps a milestone to how often it
    appears."""
    k = counts.get(step, 0)
    if k == 0:
        return lr
    return lr * gamma ** k


def constant_factor_chained(lr, step, factor=1.0 / 3, total_iters=5):
    """Chained :func:`constant_factor`: times ``factor`` at step 0, divided back at
    ``total_iters``."""
    if step == 0:
        return lr * factor
    if step != total_iters:
        return lr
    return lr * (1.0 / factor)


def linear_chained(lr, step, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
    """Chained :func:`linear`: the ratio of consecutive factors."""
    if step == 0:
        return lr * start_factor
    if step > total_iters:
        return lr
    return lr * (1.0 + (end_factor - start_factor)
                 / (total_iters * start_factor + (step - 1) * (end_factor - start_factor)))


def exponential_chained(lr, step, gamma):
    """Chained :func:`exponential`: times ``gamma`` (``step`` >= 1)."""
    return lr * gamma


def polynomial_chained(lr, step, total_iters=5, power=1.0):
    """Chained :func:`polynomial`: the ratio of consecutive factors (``step`` >= 1)."""
    if step > total_iters:
        return lr
    return lr * ((1.0 - step / total_iters) / (1.0 - (step - 1) / total_iters)) ** power


def cosine_annealing_chained(lr, step, base_lr, T_max, eta_min=0.0):
    r"""Chained :func:`cosine_annealing` (``step`` >= 1):

    :math:`\eta_{t} = \eta_{min} + (\eta_{t-1} - \eta_{min})
    \frac{1 + \cos(\pi t/T)}{1 + \cos(\pi (t-1)/T)}`, and, where the
    denominator vanishes (the bottom of a period), the closed-form increment.
    """
    if (step - 1 - T_max) % (2 * T_max) == 0:
        return lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
    return ((1 + math.cos(math.pi * step / T_max))
            / (1 + math.cos(math.pi * (step - 1) / T_max)) * (lr - eta_min) + eta_min)


# --------------------------------------------------------- schedule objects
class Schedule:
    """A learning-rate schedule: ``lr = schedule(step)`` for ``step = 0, 1, ...``.

    Subclasses implement :meth:`value` (one method); ``__call__`` checks the step.
    """

    def __call__(self, step):
        return float(self.value(_step(step)))

    def value(self, step):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Constant(Schedule):
    """``base_lr`` at every step."""

    def __init__(self, base_lr):
        self.base_lr = _nonneg("base_lr", base_lr)

    def value(self, step):
        return constant(step, self.base_lr)


class StepDecay(Schedule):
    """:func:`step_decay` bound to its hyperparameters (``StepLR``'s schedule)."""

    def __init__(self, base_lr, step_size, gamma=0.1):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.step_size = _int("step_size", step_size, 1)
        self.gamma = _positive("gamma", gamma)

    def value(self, step):
        return step_decay(step, self.base_lr, self.step_size, self.gamma)


class MultiStepDecay(Schedule):
    """:func:`multistep_decay` bound to its hyperparameters (``MultiStepLR``'s schedule)."""

    def __init__(self, base_lr, milestones, gamma=0.1):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.milestones = _milestones(milestones)
        self.gamma = _positive("gamma", gamma)

    def value(self, step):
        return multistep_decay(step, self.base_lr, self.milestones, self.gamma)


class ConstantFactor(Schedule):
    """:func:`constant_factor` bound to its hyperparameters (``ConstantLR``'s schedule)."""

    def __init__(self, base_lr, factor=1.0 / 3, total_iters=5):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.factor = _in_range("factor", factor, 0.0, 1.0)
        self.total_iters = _int("total_iters", total_iters, 0)

    def value(self, step):
        return constant_factor(step, self.base_lr, self.factor, self.total_iters)


class Linear(Schedule):
    """:func:`linear` bound to its hyperparameters (``LinearLR``'s schedule)."""

    def __init__(self, base_lr, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.start_factor = _in_range("start_factor", start_factor, 0.0, 1.0, lo_open=True)
        self.end_factor = _in_range("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _int("total_iters", total_iters, 1)

    def value(self, step):
        return linear(step, self.base_lr, self.start_factor, self.end_factor, self.total_iters)


class Exponential(Schedule):
    """:func:`exponential` bound to its hyperparameters (``ExponentialLR``'s schedule)."""

    def __init__(self, base_lr, gamma):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.gamma = _positive("gamma", gamma)

    def value(self, step):
        return exponential(step, self.base_lr, self.gamma)


class Polynomial(Schedule):
    """:func:`polynomial` bound to its hyperparameters (``PolynomialLR``'s schedule)."""

    def __init__(self, base_lr, total_iters=5, power=1.0):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.total_iters = _int("total_iters", total_iters, 1)
        self.power = _nonneg("power", power)

    def value(self, step):
        return polynomial(step, self.base_lr, self.total_iters, self.power)


class CosineAnnealing(Schedule):
    """:func:`cosine_annealing` bound to its hyperparameters (``CosineAnnealingLR``)."""

    def __init__(self, base_lr, T_max, eta_min=0.0):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.T_max = _positive("T_max", T_max)
        self.eta_min = _nonneg("eta_min", eta_min)

    def value(self, step):
        return cosine_annealing(step, self.base_lr, self.T_max, self.eta_min)


class CosineWarmRestarts(Schedule):
    """:func:`cosine_warm_restarts` bound to its hyperparameters (SGDR)."""

    def __init__(self, base_lr, T_0, T_mult=1, eta_min=0.0):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.T_0 = _int("T_0", T_0, 1)
        self.T_mult = _int("T_mult", T_mult, 1)
        self.eta_min = _nonneg("eta_min", eta_min)

    def value(self, step):
        return cosine_warm_restarts(step, self.base_lr, self.T_0, self.T_mult, self.eta_min)


def _check_one_cycle(total_steps, pct_start, anneal_strategy, three_phase):
    _int("total_steps", total_steps, 1)
    _in_range("pct_start", pct_start, 0.0, 1.0)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
    if not isinstance(three_phase, bool):
        raise TypeError(f"three_phase must be a bool, got {type(three_phase).__name__}")
    if float(pct_start * total_steps) - 1 <= 0:
        raise ValueError(f"pct_start * total_steps must be > 1 so that the warm-up phase has "
                         f"at least one step, got pct_start={pct_start!r}, "
                         f"total_steps={total_steps!r}")


class OneCycle(Schedule):
    """The 1cycle learning rate of :func:`one_cycle`, from ``max_lr`` as ``OneCycleLR``
    sets it up (``start = max_lr/div_factor``, ``end = start/final_div_factor``)."""

    def __init__(self, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False):
        self.max_lr = _nonneg("max_lr", max_lr)
        _check_one_cycle(total_steps, pct_start, anneal_strategy, three_phase)
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = _positive("div_factor", div_factor)
        self.final_div_factor = _positive("final_div_factor", final_div_factor)
        self.three_phase = three_phase

    def value(self, step):
        start = self.max_lr / self.div_factor
        return one_cycle(step, self.total_steps, start, self.max_lr,
                         start / self.final_div_factor, self.pct_start, self.anneal_strategy,
                         self.three_phase)


def _check_cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    _positive("step_size_up", step_size_up)
    if step_size_down is not None:
        _positive("step_size_down", step_size_down)
    if scale_fn is None and mode not in _CYCLIC_MODES:
        raise ValueError(f"mode must be one of {sorted(_CYCLIC_MODES)} when scale_fn is None, "
                         f"got {mode!r}")
    if scale_fn is not None and not callable(scale_fn):
        raise TypeError(f"scale_fn must be callable, got {type(scale_fn).__name__}")
    if scale_mode not in ("cycle", "iterations"):
        raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
    _positive("gamma", gamma)


class Cyclic(Schedule):
    """:func:`cyclic` bound to its hyperparameters (``CyclicLR``'s learning rate)."""

    def __init__(self, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle"):
        self.base_lr = _nonneg("base_lr", base_lr)
        self.max_lr = _nonneg("max_lr", max_lr)
        _check_cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
        self.step_size_up = step_size_up
        self.step_size_down = step_size_down
        self.mode = mode
        self.gamma = gamma
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode

    def value(self, step):
        return cyclic(step, self.base_lr, self.max_lr, self.step_size_up, self.step_size_down,
                      self.mode, self.gamma, self.scale_fn, self.scale_mode)


class Warmup(Schedule):
    """Linear warm-up into any schedule.

    For ``step < warmup_steps`` the rate rises linearly from
    ``start_factor * schedule(0)`` towards ``schedule(0)``; afterwards it is
    ``schedule(step - warmup_steps)`` (the wrapped schedule starts when the
    warm-up ends, as with PyTorch's ``SequentialLR([LinearLR, ...])``).
    """

    def __init__(self, schedule, warmup_steps, start_factor=0.01):
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        self.schedule = schedule
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        self.start_factor = _in_range("start_factor", start_factor, 0.0, 1.0)

    def value(self, step):
        if step < self.warmup_steps:
            return linear_warmup(step, self.schedule(0), self.warmup_steps, self.start_factor)
        return self.schedule(step - self.warmup_steps)


class Sequence(Schedule):
    """Schedules one after another: ``schedules[i]`` runs from ``boundaries[i-1]``,
    restarted at step 0 there (PyTorch's ``SequentialLR``, closed form)."""

    def __init__(self, schedules, boundaries):
        schedules = list(schedules)
        if not schedules:
            raise ValueError("schedules must not be empty")
        for i, s in enumerate(schedules):
            if not callable(s):
                raise TypeError(f"schedules[{i}] must be callable, got {type(s).__name__}")
        boundaries = _breakpoints("boundaries", boundaries, schedules, "schedules", 1)
        self.schedules = schedules
        self.boundaries = boundaries

    def value(self, step):
        i = bisect_right(self.boundaries, step)
        start = self.boundaries[i - 1] if i > 0 else 0
        return self.schedules[i](step - start)


class Lambda(Schedule):
    """``base_lr * fn(step)`` (``LambdaLR``'s schedule)."""

    def __init__(self, base_lr, fn):
        self.base_lr = _nonneg("base_lr", base_lr)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def value(self, step):
        return self.base_lr * self.fn(step)
