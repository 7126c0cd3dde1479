r"""Learning-rate schedulers with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler adapts ``group["lr"]`` of every param group of an optimizer.
Construction performs an initial step (``last_epoch`` becomes 0, each group
gets ``initial_lr``); call :meth:`LRScheduler.step` after each
``optimizer.step()``.  The values match PyTorch step by step: ``step()`` uses
the recursive ("chainable") form where PyTorch does, ``step(epoch)`` the
closed form where PyTorch has one.  The math lives in
:mod:`neurenix.optim.schedules`; the classes here keep ``last_epoch`` and
write the learning rates.

``state_dict()`` holds plain Python values only, so it goes through
:func:`neurenix.checkpoint.save`; a run resumed with ``load_state_dict``
continues exactly as the uninterrupted one.

Custom schedulers: subclass :class:`LRScheduler` and implement ``get_lr()``
(PyTorch's way), or subclass :class:`ScheduleLR` and implement
``lr_at(step, base_lr)`` (a closed form, used for both ``step()`` and
``step(epoch)``).

Deliberate deviations from PyTorch (documented, by design):

- ``step(epoch)`` is supported without PyTorch's deprecation warning, and no
  warning is raised about calling ``scheduler.step()`` before
  ``optimizer.step()``.
- Hyperparameters PyTorch leaves unchecked are validated, each error naming its
  argument: ``T_max > 0``, ``step_size >= 1``, ``gamma > 0``, ``factor`` in
  ``[0, 1)`` for :class:`ReduceLROnPlateau` and ``(0, 1]`` for
  :class:`ConstantLR` (PyTorch divides by it), ``total_iters >= 1`` where it
  divides, and learning rates computed by a scheduler must be finite and
  ``>= 0`` (checked before any group is written).
- Any object with ``param_groups`` (a list of dicts with ``"lr"``) is accepted
  as the optimizer, so wrappers work.
- :class:`CosineAnnealingWarmRestarts` locates an integer ``epoch`` with exact
  integer arithmetic instead of a floating-point logarithm.
- :class:`OneCycleLR` requires ``pct_start * total_steps > 1`` (PyTorch divides
  by zero otherwise).
"""
import copy
import math
import numbers
import types
from bisect import bisect_right
from collections import Counter

from . import schedules as S
from .._core.validation import _real, check_nonneg, check_unit

__all__ = [
    "LRScheduler", "ScheduleLR", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR",
    "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR", "ReduceLROnPlateau",
    "SequentialLR", "ChainedScheduler", "with_warmup",
]


# ------------------------------------------------------------------- helpers
def _check_optimizer(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise TypeError(f"optimizer must be an Optimizer (an object with a list of dict "
                        f"param_groups), got {type(optimizer).__name__}")
    for i, g in enumerate(groups):
        if "lr" not in g:
            raise ValueError(f"optimizer: param group {i} has no 'lr'; a learning-rate "
                             "scheduler needs an optimizer with a learning rate")


def _per_group(name, optimizer, value, check):
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group ({n}), "
                             f"got {len(value)}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n


def _nonneg_real(name, value):
    return check_nonneg(value, name)


def _unit_real(name, value):
    return check_unit(value, name)


def _plain(value):
    """A deep copy of ``value`` with Counters turned into dicts (checkpoint-safe)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return copy.deepcopy(value)


_FUNCTION_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def _callable_state(fns):
    """PyTorch's convention: a plain function is not saved (None); a callable
    object saves its ``__dict__``."""
    out = []
    for fn in fns:
        if not isinstance(fn, _FUNCTION_TYPES) and hasattr(fn, "__dict__"):
            out.append(_plain(vars(fn)))
        else:
            out.append(None)
    return out


def _restore_callables(fns, saved, name):
    if saved is None:
        return
    if not isinstance(saved, (list, tuple)) or len(saved) != len(fns):
        raise ValueError(f"state_dict: {name} must be a list of {len(fns)} entries")
    for fn, st in zip(fns, saved):
        if st is not None:
            fn.__dict__.update(copy.deepcopy(st))


# ---------------------------------------------------------------------- base
class LRScheduler:
    """Base class of the learning-rate schedulers (``torch.optim.lr_scheduler.LRScheduler``).

    Parameters
    ----------
    optimizer : Optimizer
        Its param groups must have ``"lr"``.
    last_epoch : int, default -1
        Index of the last step taken.  ``-1`` starts a fresh schedule; a value
        ``>= 0`` resumes one and requires ``"initial_lr"`` in every group.

    Attributes
    ----------
    base_lrs : list of float
        ``initial_lr`` of each group.
    last_epoch : int
        Steps taken (0 right after construction).

    Notes
    -----
    Subclasses implement :meth:`get_lr` (the learning rates for the new
    ``last_epoch``) and, optionally, ``_closed_form_lr`` (used by
    ``step(epoch)``).
    """

    _unsaved = ("optimizer", "_is_initial")
    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        last_epoch = S._int("last_epoch", last_epoch, -1)
        groups = optimizer.param_groups
        added = []
        if last_epoch == -1:
            for g in groups:
                if "initial_lr" not in g:
                    g["initial_lr"] = g["lr"]
                    added.append(g)
        else:
            for i, g in enumerate(groups):
                if "initial_lr" not in g:
                    raise ValueError(f"last_epoch={last_epoch} resumes a schedule, but param "
                                     f"group {i} has no 'initial_lr' (load the optimizer's "
                                     "state first, or use last_epoch=-1)")
        self.optimizer = optimizer
        self.base_lrs = [g["initial_lr"] for g in groups]
        self.last_epoch = last_epoch
        try:
            self._initial_step()
        except BaseException:
            for g in added:           # leave the optimizer as it was
                del g["initial_lr"]
            raise

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    # ------------------------------------------------------------ interface
    def get_lr(self):
        """Learning rates of the groups for the current ``last_epoch`` (subclasses)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last :meth:`step` set (a new list)."""
        return list(self._last_lr)

    def _current_lrs(self):
        return [g["lr"] for g in self.optimizer.param_groups]

    def step(self, epoch=None):
        """Advance the schedule by one step (or jump to ``epoch``, closed form).

        Call after ``optimizer.step()``.
        """
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        old = self.last_epoch
        if epoch is None:
            self.last_epoch = old + 1
            compute = self.get_lr
        else:
            self.last_epoch = S._int("epoch", epoch, 0)
            compute = getattr(self, "_closed_form_lr", self.get_lr)
        try:
            values = self._checked(compute())
        except BaseException:
            self.last_epoch = old
            raise
        self._write(values)

    def _checked(self, values):
        values = list(values)
        n = len(self.optimizer.param_groups)
        if len(values) != n:
            raise ValueError(f"{type(self).__name__}: computed {len(values)} learning rates "
                             f"for {n} param groups")
        out = []
        for i, v in enumerate(values):
            v = _real(f"lr of param group {i}", v)
            if v < 0:
                raise ValueError(f"{type(self).__name__} computed a negative lr {v!r} for "
                                 f"param group {i}")
            out.append(v)
        return out

    def _write(self, values):
        for g, v in zip(self.optimizer.param_groups, values):
            g["lr"] = v
        self._last_lr = self._current_lrs()

    # ------------------------------------------------------------ state
    def state_dict(self):
        """The scheduler's state: every attribute but the optimizer (PyTorch's layout),
        as plain Python values (Counters become dicts, functions ``None``)."""
        return {k: _plain(v) for k, v in self.__dict__.items() if k not in self._unsaved}

    def load_state_dict(self, state_dict):
        """Load a state from :meth:`state_dict` (validated first; on error nothing changes)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "last_epoch" not in state_dict:
            raise ValueError("state_dict: missing 'last_epoch'; not a scheduler state")
        bad = set(state_dict) & set(self._unsaved)
        if bad:
            raise ValueError(f"state_dict: unexpected key(s) {sorted(bad)}")
        self._validate_state(state_dict)
        self.__dict__.update(_plain(state_dict))
        self._after_load()

    def _validate_state(self, state_dict):
        if "base_lrs" in state_dict and len(state_dict["base_lrs"]) != len(self.base_lrs):
            raise ValueError(f"state_dict: base_lrs has {len(state_dict['base_lrs'])} entries, "
                             f"the optimizer has {len(self.base_lrs)} param groups")

    def _after_load(self):
        pass

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch})"


class ScheduleLR(LRScheduler):
    """A scheduler from a closed form: subclass and implement ``lr_at(step, base_lr)``,
    or pass ``schedule``, a callable ``lr = schedule(step)`` (one, or one per
    group) such as the objects of :mod:`neurenix.optim.schedules`.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD, schedules
    >>> from neurenix.optim.lr_scheduler import ScheduleLR
    >>> opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    >>> class Halving(ScheduleLR):
    ...     def lr_at(self, step, base_lr):
    ...         return base_lr * 0.5 ** step
    >>> sched = Halving(opt); sched.step(); sched.get_last_lr()
    [0.05]
    >>> sched = ScheduleLR(opt, schedules.CosineAnnealing(1.0, T_max=4)); sched.step()
    >>> round(sched.get_last_lr()[0], 6)
    0.853553
    """

    _unsaved = LRScheduler._unsaved + ("_schedules",)

    def __init__(self, optimizer, schedule=None, last_epoch=-1):
        _check_optimizer(optimizer)
        if schedule is None:
            if type(self).lr_at is ScheduleLR.lr_at:
                raise TypeError("schedule: pass a callable schedule(step), or subclass "
                                "ScheduleLR and implement lr_at(step, base_lr)")
            self._schedules = None
        else:
            n = len(optimizer.param_groups)
            fns = list(schedule) if isinstance(schedule, (list, tuple)) else [schedule] * n
            if len(fns) != n:
                raise ValueError(f"schedule must be one callable or one per param group "
                                 f"({n}), got {len(fns)}")
            for i, f in enumerate(fns):
                if not callable(f):
                    raise TypeError(f"schedule[{i}] must be callable, got {type(f).__name__}")
            self._schedules = fns
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr):
        """The learning rate at ``step`` of a group whose initial lr is ``base_lr``."""
        raise NotImplementedError

    def get_lr(self):
        if self._schedules is not None:
            return [f(self.last_epoch) for f in self._schedules]
        return [self.lr_at(self.last_epoch, b) for b in self.base_lrs]

    _closed_form_lr = get_lr


# ------------------------------------------------------------ the schedulers
class LambdaLR(LRScheduler):
    r"""``lr = initial_lr * lr_lambda(last_epoch)`` (``torch.optim.lr_scheduler.LambdaLR``).

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable or list of callables
        One function of the step, or one per param group.
    last_epoch : int, default -1
    """

    _unsaved = LRScheduler._unsaved + ("lr_lambdas",)

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        sd = super().state_dict()
        sd["lr_lambdas"] = _callable_state(self.lr_lambdas)
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        saved = sd.pop("lr_lambdas", None)
        if saved is not None and (not isinstance(saved, (list, tuple))
                                  or len(saved) != len(self.lr_lambdas)):
            raise ValueError(f"state_dict: lr_lambdas must be a list of "
                             f"{len(self.lr_lambdas)} entries")
        super().load_state_dict(sd)
        _restore_callables(self.lr_lambdas, saved, "lr_lambdas")


def _lambdas(optimizer, lr_lambda):
    n = len(optimizer.param_groups)
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != n:
            raise ValueError(f"lr_lambda: expected {n} functions (one per param group), "
                             f"got {len(lr_lambda)}")
        fns = list(lr_lambda)
    else:
        fns = [lr_lambda] * n
    for i, f in enumerate(fns):
        if not callable(f):
            raise TypeError(f"lr_lambda must be callable, got {type(f).__name__}"
                            + (f" at index {i}" if n > 1 else ""))
    return fns


class MultiplicativeLR(LambdaLR):
    r"""``lr = lr * lr_lambda(last_epoch)`` each step (``MultiplicativeLR``); the
    initial step leaves the learning rates unchanged.

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable or list of callables
    last_epoch : int, default -1
    """

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [g["lr"] * f(self.last_epoch)
                for f, g in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    r"""Decay by ``gamma`` every ``step_size`` steps (``StepLR``; :func:`schedules.step_decay`).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, >= 1.
    gamma : float, default 0.1
        Multiplicative factor, > 0.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = S._int("step_size", step_size, 1)
        self.gamma = S._positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [S.step_decay_chained(lr, self.last_epoch, self.step_size, self.gamma)
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [S.step_decay(self.last_epoch, b, self.step_size, self.gamma)
                for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Decay by ``gamma`` at each milestone (``MultiStepLR``; :func:`schedules.multistep_decay`).

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Steps at which to decay; a repeated milestone decays once per repeat.
    gamma : float, default 0.1
        > 0.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = Counter(S._milestones(milestones))
        self.gamma = S._positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [S.multistep_decay_chained(lr, self.last_epoch, self.milestones, self.gamma)
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        ms = sorted(self.milestones.elements())
        return [S.multistep_decay(self.last_epoch, b, ms, self.gamma) for b in self.base_lrs]

    def _after_load(self):
        self.milestones = Counter({int(k): int(v) for k, v in self.milestones.items()})


class ConstantLR(LRScheduler):
    r"""``lr * factor`` until ``total_iters`` steps, then the initial lr (``ConstantLR``).

    Parameters
    ----------
    optimizer : Optimizer
    factor : float, default 1/3
        In ``(0, 1]`` (PyTorch also admits 0, then divides by it).
    total_iters : int, default 5
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = S._in_range("factor", factor, 0.0, 1.0, lo_open=True)
        self.total_iters = S._int("total_iters", total_iters, 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [S.constant_factor_chained(lr, self.last_epoch, self.factor, self.total_iters)
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [S.constant_factor(self.last_epoch, b, self.factor, self.total_iters)
                for b in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Factor changing linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps (``LinearLR``; :func:`schedules.linear`).

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default 1/3
        In ``(0, 1]``.
    end_factor : float, default 1.0
        In ``[0, 1]``.
    total_iters : int, default 5
        >= 1.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = S._in_range("start_factor", start_factor, 0.0, 1.0, lo_open=True)
        self.end_factor = S._in_range("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = S._int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial and self.last_epoch != 0:
            return self._current_lrs()
        return [S.linear_chained(lr, self.last_epoch, self.start_factor, self.end_factor,
                                 self.total_iters) for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [S.linear(self.last_epoch, b, self.start_factor, self.end_factor,
                         self.total_iters) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Decay by ``gamma`` every step (``ExponentialLR``; :func:`schedules.exponential`).

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        > 0.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = S._positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [S.exponential_chained(lr, self.last_epoch, self.gamma)
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [S.exponential(self.last_epoch, b, self.gamma) for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 over ``total_iters`` steps (``PolynomialLR``).

    Parameters
    ----------
    optimizer : Optimizer
    total_iters : int, default 5
        >= 1.
    power : float, default 1.0
        >= 0.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = S._int("total_iters", total_iters, 1)
        self.power = S._nonneg("power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [S.polynomial_chained(lr, self.last_epoch, self.total_iters, self.power)
                for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [S.polynomial(self.last_epoch, b, self.total_iters, self.power)
                for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` steps
    (``CosineAnnealingLR``; Loshchilov & Hutter 2017, SGDR without restarts).

    Past ``T_max`` the cosine continues (the rate rises again), as in PyTorch.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int or float
        Half period, > 0.
    eta_min : float, default 0.0
        Minimum learning rate, >= 0.
    last_epoch : int, default -1

    References
    ----------
    Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
    restarts", ICLR.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = S._positive("T_max", T_max)
        self.eta_min = S._nonneg("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and self.last_epoch > 0:
            return self._closed_form_lr()
        return [S.cosine_annealing_chained(lr, self.last_epoch, b, self.T_max, self.eta_min)
                for lr, b in zip(self._current_lrs(), self.base_lrs)]

    def _closed_form_lr(self):
        return [S.cosine_annealing(self.last_epoch, b, self.T_max, self.eta_min)
                for b in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR: cosine annealing restarted after ``T_0``, ``T_0 T_mult``, ... steps
    (``CosineAnnealingWarmRestarts``; Loshchilov & Hutter 2017).

    ``step(epoch)`` accepts a fractional epoch (e.g. ``epoch + i / iters``).

    Parameters
    ----------
    optimizer : Optimizer
    T_0 : int
        Length of the first period, >= 1.
    T_mult : int, default 1
        Growth factor of the period, >= 1.
    eta_min : float, default 0.0
        >= 0.
    last_epoch : int, default -1

    References
    ----------
    Loshchilov & Hutter (2017), "SGDR: Stochastic gradient descent with warm
    restarts", ICLR.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        self.T_0 = S._int("T_0", T_0, 1)
        self.T_i = self.T_0
        self.T_mult = S._int("T_mult", T_mult, 1)
        self.eta_min = S._nonneg("eta_min", eta_min)
        self.T_cur = S._int("last_epoch", last_epoch, -1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [S.cosine_annealing(self.T_cur, b, self.T_i, self.eta_min) for b in self.base_lrs]

    def step(self, epoch=None):
        saved = (self.T_cur, self.T_i, self.last_epoch)
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            e = _real("epoch", epoch)
            if e < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch!r}")
            if isinstance(epoch, numbers.Integral):
                self.T_cur, self.T_i = S.warm_restarts_position(int(epoch), self.T_0, self.T_mult)
            elif e >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = e % self.T_0
                else:
                    n = int(math.log(e / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = e - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = e
        self.last_epoch = math.floor(epoch)
        try:
            values = self._checked(self.get_lr())
        except BaseException:
            self.T_cur, self.T_i, self.last_epoch = saved
            raise
        self._write(values)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2019; ``torch.optim.lr_scheduler.OneCycleLR``).

    The learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the
    first ``pct_start`` of ``total_steps``, then anneals to
    ``max_lr / (div_factor * final_div_factor)`` (with ``three_phase``: back
    to the initial lr symmetrically, then down to the minimum).  Momentum (SGD's
    ``momentum``, or Adam's ``betas[0]``) cycles inversely between
    ``max_momentum`` and ``base_momentum``.  Step once per batch.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
        Peak learning rate of each group.
    total_steps : int, optional
        Or ``epochs`` and ``steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float, default 0.3
    anneal_strategy : {"cos", "linear"}, default "cos"
    cycle_momentum : bool, default True
        Needs an optimizer with ``momentum`` or ``betas``.
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25
    final_div_factor : float, default 1e4
    three_phase : bool, default False
    last_epoch : int, default -1

    References
    ----------
    Smith & Topin (2019), "Super-convergence: very fast training of neural
    networks using large learning rates", Proc. SPIE 11006.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        _check_optimizer(optimizer)
        S._int("last_epoch", last_epoch, -1)
        if total_steps is not None:
            total = S._int("total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            total = S._int("epochs", epochs, 1) * S._int("steps_per_epoch", steps_per_epoch, 1)
        else:
            raise ValueError("total_steps: define either total_steps or both epochs and "
                             "steps_per_epoch")
        S._check_one_cycle(total, pct_start, anneal_strategy, three_phase)
        S._positive("div_factor", div_factor)
        S._positive("final_div_factor", final_div_factor)
        max_lrs = _per_group("max_lr", optimizer, max_lr, _nonneg_real)
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"cycle_momentum must be a bool, got {type(cycle_momentum).__name__}")
        defaults = getattr(optimizer, "defaults", {})
        if cycle_momentum:
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("cycle_momentum=True needs an optimizer with 'momentum' or "
                                 "'betas'; pass cycle_momentum=False")
            max_ms = _per_group("max_momentum", optimizer, max_momentum, _unit_real)
            base_ms = _per_group("base_momentum", optimizer, base_momentum, _unit_real)
        self.total_steps = total
        self.pct_start = pct_start
        self.three_phase = three_phase
        self._anneal_func_type = anneal_strategy
        self.cycle_momentum = cycle_momentum
        if last_epoch == -1:
            for m, g in zip(max_lrs, optimizer.param_groups):
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
        if cycle_momentum:
            self.use_beta1 = "betas" in defaults
            if last_epoch == -1:
                for mm, bm, g in zip(max_ms, base_ms, optimizer.param_groups):
                    self._set_momentum(g, mm)
                    g["max_momentum"] = mm
                    g["base_momentum"] = bm
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, the specified number "
                             f"of total steps is {self.total_steps}")
        lrs, moms = [], []
        for g in self.optimizer.param_groups:
            lrs.append(S.one_cycle(step, self.total_steps, g["initial_lr"], g["max_lr"],
                                   g["min_lr"], self.pct_start, self._anneal_func_type,
                                   self.three_phase))
            if self.cycle_momentum:
                moms.append(S.one_cycle(step, self.total_steps, g["max_momentum"],
                                        g["base_momentum"], g["max_momentum"], self.pct_start,
                                        self._anneal_func_type, self.three_phase))
        for g, m in zip(self.optimizer.param_groups, moms):
            self._set_momentum(g, m)
        return lrs


class CyclicLR(LRScheduler):
    r"""Cyclical learning rate (Smith 2017; ``torch.optim.lr_scheduler.CyclicLR``).

    The rate moves between ``base_lr`` and ``max_lr`` in triangles of
    ``step_size_up + step_size_down`` steps; the amplitude is constant
    (``"triangular"``), halves every cycle (``"triangular2"``), decays as
    ``gamma**step`` (``"exp_range"``), or follows ``scale_fn``.  Momentum
    cycles inversely between ``max_momentum`` and ``base_momentum``.  Step once
    per batch.

    Parameters
    ----------
    optimizer : Optimizer
    base_lr, max_lr : float or list of float
    step_size_up : int, default 2000
    step_size_down : int, optional
        Defaults to ``step_size_up``.
    mode : {"triangular", "triangular2", "exp_range"}, default "triangular"
    gamma : float, default 1.0
    scale_fn : callable, optional
    scale_mode : {"cycle", "iterations"}, default "cycle"
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float, default 0.8, 0.9
    last_epoch : int, default -1

    References
    ----------
    Smith (2017), "Cyclical learning rates for training neural networks", WACV.
    """

    _unsaved = LRScheduler._unsaved + ("_scale_fn_custom",)

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        S._int("last_epoch", last_epoch, -1)
        base_lrs = _per_group("base_lr", optimizer, base_lr, _nonneg_real)
        max_lrs = _per_group("max_lr", optimizer, max_lr, _nonneg_real)
        S._check_cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"cycle_momentum must be a bool, got {type(cycle_momentum).__name__}")
        defaults = getattr(optimizer, "defaults", {})
        if cycle_momentum:
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("cycle_momentum=True needs an optimizer with 'momentum' or "
                                 "'betas'; pass cycle_momentum=False")
            base_ms = _per_group("base_momentum", optimizer, base_momentum, _unit_real)
            max_ms = _per_group("max_momentum", optimizer, max_momentum, _unit_real)
        if last_epoch == -1:
            for lr, g in zip(base_lrs, optimizer.param_groups):
                g["lr"] = lr
        self.max_lrs = max_lrs
        self.step_size_up = float(step_size_up)
        self.step_size_down = float(step_size_down) if step_size_down is not None \
            else self.step_size_up
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in defaults
            self.base_momentums = base_ms
            self.max_momentums = max_ms
            if last_epoch == -1:
                for mm, bm, g in zip(max_ms, base_ms, optimizer.param_groups):
                    self._set_momentum(g, mm)
                    g["max_momentum"] = mm
                    g["base_momentum"] = bm
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _cyclic(self, lo, hi):
        return S.cyclic(self.last_epoch, lo, hi, self.step_size_up, self.step_size_down,
                        self.mode, self.gamma, self._scale_fn_custom, self.scale_mode)

    def get_lr(self):
        lrs = [self._cyclic(b, m) for b, m in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            moms = [self._cyclic(mx, bm)
                    for bm, mx in zip(self.base_momentums, self.max_momentums)]
            for g, m in zip(self.optimizer.param_groups, moms):
                self._set_momentum(g, m)
        return lrs

    def state_dict(self):
        sd = super().state_dict()
        sd["_scale_fn_custom"] = (None if self._scale_fn_custom is None
                                  else _callable_state([self._scale_fn_custom])[0])
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        saved = sd.pop("_scale_fn_custom", None)
        super().load_state_dict(sd)
        if saved is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(copy.deepcopy(saved))


class ReduceLROnPlateau(LRScheduler):
    r"""Reduce the learning rate when a metric stops improving (``ReduceLROnPlateau``).

    ``step(metrics)`` after each validation: when the metric has not improved
    (by ``threshold``, relative or absolute) for more than ``patience`` calls,
    every group's lr becomes ``max(lr * factor, min_lr)`` (changes smaller than
    ``eps`` are ignored), then ``cooldown`` calls pass before counting again.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}, default "min"
    factor : float, default 0.1
        In ``[0, 1)``.
    patience : int, default 10
    threshold : float, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int, default 0
    min_lr : float or list of float, default 0
    eps : float, default 1e-8
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        if _real("factor", factor) >= 1.0:
            raise ValueError(f"factor must be < 1.0, got {factor!r}")
        if factor < 0:
            raise ValueError(f"factor must be >= 0, got {factor!r}")
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.min_lrs = _per_group("min_lr", optimizer, min_lr, _nonneg_real)
            self.default_min_lr = None
        else:
            self.default_min_lr = _nonneg_real("min_lr", min_lr)
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = S._int("patience", patience, 0)
        self.cooldown = S._int("cooldown", cooldown, 0)
        self.eps = S._nonneg("eps", eps)
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode, S._nonneg("threshold", threshold), threshold_mode)
        self._reset()

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        """Whether metric ``a`` improves on ``best`` by the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics, epoch=None):
        """Record ``metrics`` (a number) and reduce the lr on a plateau."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"metrics must be a real number, got "
                            f"{type(metrics).__name__}") from None
        epoch = self.last_epoch + 1 if epoch is None else S._int("epoch", epoch, 0)
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(f"min_lr: the optimizer has {len(self.optimizer.param_groups)} "
                                 f"param groups, min_lr has {len(self.min_lrs)} entries")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        self.last_epoch = epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self):
        for i, g in enumerate(self.optimizer.param_groups):
            old = float(g["lr"])
            new = max(old * self.factor, self.min_lrs[i])
            if old - new > self.eps:
                g["lr"] = new

    def _validate_state(self, state_dict):
        mode = state_dict.get("mode", self.mode)
        tm = state_dict.get("threshold_mode", self.threshold_mode)
        if mode not in ("min", "max"):
            raise ValueError(f"state_dict: mode must be 'min' or 'max', got {mode!r}")
        if tm not in ("rel", "abs"):
            raise ValueError(f"state_dict: threshold_mode must be 'rel' or 'abs', got {tm!r}")

    def _after_load(self):
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


def _check_children(owner, optimizer, schedulers):
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError(f"schedulers: {owner} expects at least one scheduler")
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRScheduler):
            raise TypeError(f"schedulers[{i}] must be an LRScheduler, got {type(s).__name__}")
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"schedulers[{i}]: {owner} does not support ReduceLROnPlateau "
                             "(its step needs a metric)")
        if s.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}] belongs to another optimizer than the "
                             f"{owner}'s")
    return schedulers


class _Composite(LRScheduler):
    _unsaved = LRScheduler._unsaved + ("_schedulers",)

    def state_dict(self):
        sd = super().state_dict()
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        sd = dict(state_dict)
        subs = sd.pop("_schedulers", None)
        if not isinstance(subs, (list, tuple)) or len(subs) != len(self._schedulers):
            raise ValueError(f"state_dict: _schedulers must hold {len(self._schedulers)} "
                             "scheduler states")
        for i, s in enumerate(subs):
            if not isinstance(s, dict) or "last_epoch" not in s:
                raise ValueError(f"state_dict: _schedulers[{i}] is not a scheduler state")
        super().load_state_dict(sd)
        for s, st in zip(self._schedulers, subs):
            s.load_state_dict(st)


class SequentialLR(_Composite):
    r"""Run ``schedulers`` one after another, switching at ``milestones``
    (``torch.optim.lr_scheduler.SequentialLR``).

    At a milestone the next scheduler restarts from its step 0 (closed form).

    Parameters
    ----------
    optimizer : Optimizer
    schedulers : list of LRScheduler
        Built on ``optimizer``.
    milestones : list of int
        ``len(schedulers) - 1`` increasing steps.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(optimizer)
        schedulers = _check_children("SequentialLR", optimizer, schedulers)
        milestones = S._breakpoints("milestones", milestones, schedulers, "schedulers", 0)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = S._int("last_epoch", last_epoch, -1) + 1
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            if "initial_lr" not in g:
                raise ValueError("optimizer: param groups have no 'initial_lr'; build the "
                                 "schedulers on this optimizer first")
            g["lr"] = g["initial_lr"]
        self._recursive_undo()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]

    def _recursive_undo(self, sched=None):
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self._recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self):
        """Advance the active scheduler (restarting the next one at a milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        try:
            if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
                sched._update_lr(0)
            else:
                sched.step()
        except BaseException:
            self.last_epoch -= 1
            raise
        self._last_lr = sched.get_last_lr()


class ChainedScheduler(_Composite):
    r"""Step several schedulers together, their changes compounding
    (``torch.optim.lr_scheduler.ChainedScheduler``).

    Parameters
    ----------
    schedulers : list of LRScheduler
        Built on one optimizer, stepped in this order.
    optimizer : Optimizer, optional
        Defaults to the schedulers' optimizer.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers) if not isinstance(schedulers, LRScheduler) else None
        if schedulers is None:
            raise TypeError("schedulers must be a list of LRSchedulers")
        if not schedulers:
            raise ValueError("schedulers: ChainedScheduler expects at least one scheduler")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer",
                                                                    None)
        _check_optimizer(optimizer)
        self._schedulers = _check_children("ChainedScheduler", optimizer, schedulers)
        self.optimizer = optimizer
        self.last_epoch = 0
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self._last_lr = self._current_lrs()

    def step(self):
        """Step every scheduler in order."""
        for s in self._schedulers:
            s.step()
        self.last_epoch += 1
        self._last_lr = self._current_lrs()


def with_warmup(scheduler, warmup_steps, start_factor=0.01):
    r"""Linear warm-up into ``scheduler``.

    For ``warmup_steps`` steps the learning rate rises linearly from
    ``start_factor * initial_lr`` to ``initial_lr`` (Goyal et al. 2017); then
    ``scheduler`` runs from its own step 0.  Built from PyTorch's pieces,
    ``SequentialLR([LinearLR(start_factor, 1, warmup_steps), scheduler],
    [warmup_steps])``, so it steps, saves and resumes like them; the closed
    form is :class:`neurenix.optim.schedules.Warmup`.

    Parameters
    ----------
    scheduler : LRScheduler
        Freshly built on its optimizer.
    warmup_steps : int
        >= 1.
    start_factor : float, default 0.01
        In ``(0, 1]``.

    Returns
    -------
    SequentialLR

    References
    ----------
    Goyal et al. (2017), "Accurate, large minibatch SGD: training ImageNet in
    1 hour", arXiv:1706.02677.
    """
    if not isinstance(scheduler, LRScheduler) or isinstance(scheduler, ReduceLROnPlateau):
        raise TypeError(f"scheduler must be an LRScheduler (not ReduceLROnPlateau), "
                        f"got {type(scheduler).__name__}")
    warmup_steps = S._int("warmup_steps", warmup_steps, 1)
    opt = scheduler.optimizer
    warm = LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(opt, [warm, scheduler], milestones=[warmup_steps])
