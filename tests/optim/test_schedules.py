"""Pure schedules (neurenix.optim.schedules): closed forms against formulas written
from the papers / PyTorch docs, chained forms against closed forms, schedule
objects as callables, and bad input."""
import math

import numpy as np
import pytest

from neurenix.optim import schedules as S

STEPS = range(0, 400)


def test_closed_forms_match_formulas():
    for t in STEPS:
        assert S.step_decay(t, 0.1, 25, 0.5) == pytest.approx(0.1 * 0.5 ** (t // 25))
        assert S.exponential(t, 0.1, 0.99) == pytest.approx(0.1 * 0.99 ** t)
        assert S.cosine_annealing(t, 0.1, 50, 0.01) == pytest.approx(
            0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * t / 50)))
        assert S.polynomial(t, 0.1, 100, 0.5) == pytest.approx(
            0.1 * max(0.0, 1 - t / 100) ** 0.5)
        assert S.linear(t, 0.1, 0.2, 1.0, 40) == pytest.approx(
            0.1 * (0.2 + 0.8 * min(t, 40) / 40))
        assert S.constant_factor(t, 0.1, 0.5, 30) == pytest.approx(0.05 if t < 30 else 0.1)
        assert S.multistep_decay(t, 1.0, [10, 100, 100], 0.5) == pytest.approx(
            0.5 ** ((t >= 10) + 2 * (t >= 100)))


def test_warm_restart_positions_and_sgdr():
    # T_0 = 3, T_mult = 2: cycles of 3, 6, 12, ...
    starts = [0, 3, 9, 21, 45]
    for t in range(45):
        k = max(i for i, s in enumerate(starts) if s <= t)
        assert S.warm_restarts_position(t, 3, 2) == (t - starts[k], 3 * 2 ** k)
    assert S.cosine_warm_restarts(9, 1.0, 3, 2) == pytest.approx(1.0)  # a restart
    assert S.cosine_warm_restarts(12, 1.0, 3, 2, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 *
                                                                        (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize("name,closed,chained", [
    ("step", lambda t: S.step_decay(t, 0.3, 7, 0.8),
     lambda lr, t: S.step_decay_chained(lr, t, 7, 0.8)),
    ("multistep", lambda t: S.multistep_decay(t, 0.3, [5, 40, 40], 0.5),
     lambda lr, t: S.multistep_decay_chained(lr, t, {5: 1, 40: 2}, 0.5)),
    ("exp", lambda t: S.exponential(t, 0.3, 0.97),
     lambda lr, t: S.exponential_chained(lr, t, 0.97)),
    ("poly", lambda t: S.polynomial(t, 0.3, 150, 1.5),
     lambda lr, t: S.polynomial_chained(lr, t, 150, 1.5)),
    ("linear", lambda t: S.linear(t, 0.3, 0.25, 0.9, 60),
     lambda lr, t: S.linear_chained(lr, t, 0.25, 0.9, 60)),
    ("constant", lambda t: S.constant_factor(t, 0.3, 0.4, 20),
     lambda lr, t: S.constant_factor_chained(lr, t, 0.4, 20)),
    ("cosine", lambda t: S.cosine_annealing(t, 0.3, 33, 0.02),
     lambda lr, t: S.cosine_annealing_chained(lr, t, 0.3, 33, 0.02)),
])
def test_chained_form_reproduces_closed_form(name, closed, chained):
    lr = closed(0)
    for t in range(1, 300):
        lr = chained(lr, t)
        assert lr == pytest.approx(closed(t), rel=1e-9, abs=1e-14), (name, t)


def test_one_cycle_shape():
    f = S.OneCycle(max_lr=1.0, total_steps=100, pct_start=0.3)
    vals = np.array([f(t) for t in range(101)])
    assert vals[0] == pytest.approx(1 / 25)
    assert vals.argmax() == 29 and vals.max() == pytest.approx(1.0)
    assert vals[99] == pytest.approx(1 / 25 / 1e4)
    assert np.all(np.diff(vals[:30]) > 0) and np.all(np.diff(vals[29:100]) < 0)
    with pytest.raises(ValueError, match="step"):
        f(101)


def test_cyclic_triangle():
    f = S.Cyclic(0.0, 1.0, step_size_up=4)
    assert [f(t) for t in range(10)] == pytest.approx([0, .25, .5, .75, 1, .75, .5, .25, 0, .25])
    g = S.Cyclic(0.0, 1.0, step_size_up=4, mode="triangular2")
    assert g(12) == pytest.approx(0.5)


def test_schedule_objects_are_callables_of_the_step():
    objs = [S.Constant(0.1), S.StepDecay(0.1, 10), S.MultiStepDecay(0.1, [3, 9]),
            S.ConstantFactor(0.1), S.Linear(0.1), S.Exponential(0.1, 0.9),
            S.Polynomial(0.1, 10), S.CosineAnnealing(0.1, 10), S.CosineWarmRestarts(0.1, 5, 2),
            S.OneCycle(0.1, 50), S.Cyclic(0.01, 0.1, 5), S.Lambda(0.1, lambda t: 1 / (t + 1)),
            S.Warmup(S.CosineAnnealing(0.1, 10), 5), S.Sequence([S.Constant(0.1),
                                                                 S.Exponential(0.1, 0.5)], [3])]
    for o in objs:
        v = o(3)
        assert isinstance(v, float) and v >= 0
        assert type(o).__name__ in repr(o)
    seq = objs[-1]
    assert [seq(t) for t in range(6)] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.025])
    warm = objs[-2]
    assert warm(0) == pytest.approx(0.001) and warm(5) == pytest.approx(0.1)
    assert warm(2) == pytest.approx(0.1 * (0.01 + 0.99 * 2 / 5))


def test_custom_schedule_by_one_method():
    class InvSqrt(S.Schedule):
        def value(self, step):
            return 0.1 / math.sqrt(step + 1)
    assert InvSqrt()(3) == pytest.approx(0.05)


def test_range_sweep():
    assert S.range_sweep(0, 1e-6, 1.0, 7) == pytest.approx(1e-6)
    assert S.range_sweep(6, 1e-6, 1.0, 7) == pytest.approx(1.0)
    assert S.range_sweep(3, 1e-6, 1.0, 7) == pytest.approx(1e-3)
    assert S.range_sweep(3, 0.0, 1.0, 7, mode="linear") == pytest.approx(0.5)


@pytest.mark.parametrize("build,exc,name", [
    (lambda: S.StepDecay(0.1, 0), ValueError, "step_size"),
    (lambda: S.StepDecay(0.1, 5, gamma=0), ValueError, "gamma"),
    (lambda: S.CosineAnnealing(0.1, -3), ValueError, "T_max"),
    (lambda: S.Exponential(0.1, -1.0), ValueError, "gamma"),
    (lambda: S.Constant(-0.1), ValueError, "base_lr"),
    (lambda: S.OneCycle(0.1, 0), ValueError, "total_steps"),
    (lambda: S.OneCycle(0.1, 3, pct_start=0.3), ValueError, "pct_start"),
    (lambda: S.Cyclic(0.1, 1.0, mode="bogus"), ValueError, "mode"),
    (lambda: S.Warmup(3.0, 5), TypeError, "schedule"),
    (lambda: S.Sequence([S.Constant(1.0)], [3]), ValueError, "boundaries"),
    (lambda: S.Constant(0.1)(-1), ValueError, "step"),
    (lambda: S.Constant(0.1)(1.5), TypeError, "step"),
])
def test_bad_input(build, exc, name):
    with pytest.raises(exc, match=name):
        build()
