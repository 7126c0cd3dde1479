"""Schedulers of neurenix.optim.lr_scheduler against references written from
PyTorch's documented closed-form equations, and (when installed) against
torch.optim.lr_scheduler itself, step by step over a few hundred steps with
several param groups."""
import math
from bisect import bisect_right

import numpy as np
import pytest

from neurenix import checkpoint
from neurenix.optim import SGD, Adam, AdaGrad, Parameter
from neurenix.optim import lr_scheduler as ours

# torch warns when a scheduler steps without an optimizer step; irrelevant here
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")

N = 300
BASE = [0.1, 0.05, 0.2]


# ------------------------------------------------------------ optimizers
def make_ours(kind="sgd", lrs=BASE):
    groups = [{"params": [Parameter(np.full(3, 1.0 + i))], "lr": lr} for i, lr in enumerate(lrs)]
    if kind == "adam":
        return Adam(groups, betas=(0.9, 0.999))
    return SGD(groups, momentum=0.9)


def make_torch(kind="sgd", lrs=BASE):
    torch = pytest.importorskip("torch")
    groups = [{"params": [torch.nn.Parameter(torch.full((3,), 1.0 + i, dtype=torch.float64))],
               "lr": lr} for i, lr in enumerate(lrs)]
    if kind == "adam":
        return torch.optim.Adam(groups, betas=(0.9, 0.999))
    return torch.optim.SGD(groups, momentum=0.9)


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def run(sched, opt, n=N):
    """lrs (and momenta) after construction and after each of n steps."""
    lrs = [sched.get_last_lr()]
    moms = [momenta(opt)]
    for _ in range(n):
        sched.step()
        lrs.append(sched.get_last_lr())
        moms.append(momenta(opt))
    return np.array(lrs, dtype=float), np.array(moms, dtype=float)


# ---------------------------------------------- references from the docs
def cos_ref(t, b, T, eta):
    return eta + (b - eta) * (1 + math.cos(math.pi * t / T)) / 2


def sgdr_ref(t, b, T0, Tmult, eta):
    # restart points: T0, T0 + T0*Tmult, ...
    start, length = 0, T0
    while t >= start + length:
        start += length
        length *= Tmult
    return cos_ref(t - start, b, length, eta)


def one_cycle_ref(t, total, lo, hi, end, pct, strategy, three):
    def ann(a, z, p):
        if strategy == "cos":
            return z + (a - z) * (1 + math.cos(math.pi * p)) / 2
        return a + (z - a) * p
    up_end = pct * total - 1
    if three:
        down_end = 2 * pct * total - 2
        if t <= up_end:
            return ann(lo, hi, t / up_end)
        if t <= down_end:
            return ann(hi, lo, (t - up_end) / (down_end - up_end))
        return ann(lo, end, (t - down_end) / (total - 1 - down_end))
    if t <= up_end:
        return ann(lo, hi, t / up_end)
    return ann(hi, end, (t - up_end) / (total - 1 - up_end))


def clr_ref(t, lo, hi, up, down, scale):
    # Smith (2017) triangle: position inside the cycle of length up + down.
    period = up + down
    cyc = t // period + 1
    pos = t - (cyc - 1) * period
    h = pos / up if pos <= up else (period - pos) / down
    return lo + (hi - lo) * h * scale(cyc, t)


LAM = lambda t: 0.97 ** t  # noqa: E731
MUL = lambda t: 0.99  # noqa: E731

# id, optimizer kind, build(module, opt), reference(t, base, group index) or None,
# momentum reference(t, group index) or None
CASES = [
    ("LambdaLR", "sgd", lambda m, o: m.LambdaLR(o, LAM), lambda t, b, i: b * 0.97 ** t, None),
    ("LambdaLR-per-group", "sgd",
     lambda m, o: m.LambdaLR(o, [LAM, lambda t: 1 / (1 + t), lambda t: 1.0]),
     lambda t, b, i: b * [0.97 ** t, 1 / (1 + t), 1.0][i], None),
    ("MultiplicativeLR", "sgd", lambda m, o: m.MultiplicativeLR(o, MUL),
     lambda t, b, i: b * 0.99 ** t, None),
    ("StepLR", "sgd", lambda m, o: m.StepLR(o, step_size=30, gamma=0.5),
     lambda t, b, i: b * 0.5 ** (t // 30), None),
    ("MultiStepLR", "sgd", lambda m, o: m.MultiStepLR(o, milestones=[50, 120, 120, 250],
                                                      gamma=0.3),
     lambda t, b, i: b * 0.3 ** bisect_right([50, 120, 120, 250], t), None),
    ("ConstantLR", "sgd", lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=40),
     lambda t, b, i: b * (0.25 if t < 40 else 1.0), None),
    ("LinearLR", "sgd", lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.8,
                                                total_iters=100),
     lambda t, b, i: b * (0.1 + 0.7 * min(t, 100) / 100), None),
    ("ExponentialLR", "sgd", lambda m, o: m.ExponentialLR(o, gamma=0.985),
     lambda t, b, i: b * 0.985 ** t, None),
    ("PolynomialLR", "sgd", lambda m, o: m.PolynomialLR(o, total_iters=200, power=2.0),
     lambda t, b, i: b * (1 - min(t, 200) / 200) ** 2.0, None),
    ("CosineAnnealingLR", "sgd", lambda m, o: m.CosineAnnealingLR(o, T_max=70, eta_min=0.001),
     lambda t, b, i: cos_ref(t, b, 70, 0.001), None),
    ("CosineAnnealingWarmRestarts", "sgd",
     lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.002),
     lambda t, b, i: sgdr_ref(t, b, 10, 2, 0.002), None),
    ("CosineAnnealingWarmRestarts-Tmult1", "sgd",
     lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=37),
     lambda t, b, i: sgdr_ref(t, b, 37, 1, 0.0), None),
    ("OneCycleLR-cos", "sgd",
     lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5, 2.0], total_steps=N),
     lambda t, b, i: one_cycle_ref(t, N, [1.0, .5, 2.][i] / 25, [1.0, .5, 2.][i],
                                   [1.0, .5, 2.][i] / 25 / 1e4, 0.3, "cos", False),
     lambda t, i: one_cycle_ref(t, N, 0.95, 0.85, 0.95, 0.3, "cos", False)),
    ("OneCycleLR-linear-3phase-adam", "adam",
     lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=N, pct_start=0.25,
                               anneal_strategy="linear", three_phase=True, div_factor=10.0,
                               final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9),
     lambda t, b, i: one_cycle_ref(t, N, 0.03, 0.3, 0.0003, 0.25, "linear", True),
     lambda t, i: one_cycle_ref(t, N, 0.9, 0.8, 0.9, 0.25, "linear", True)),
    ("CyclicLR-triangular", "sgd",
     lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2, 0.05], step_size_up=20),
     lambda t, b, i: clr_ref(t, 0.01, [0.1, 0.2, 0.05][i], 20, 20, lambda c, s: 1.0),
     lambda t, i: clr_ref(t, 0.9, 0.8, 20, 20, lambda c, s: 1.0)),
    ("CyclicLR-triangular2-asym", "sgd",
     lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=15, step_size_down=35,
                             mode="triangular2", cycle_momentum=False),
     lambda t, b, i: clr_ref(t, 0.01, 0.1, 15, 35, lambda c, s: 0.5 ** (c - 1)), None),
    ("CyclicLR-exp_range-adam", "adam",
     lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=25, mode="exp_range",
                             gamma=0.995),
     lambda t, b, i: clr_ref(t, 0.001, 0.01, 25, 25, lambda c, s: 0.995 ** s),
     lambda t, i: clr_ref(t, 0.9, 0.8, 25, 25, lambda c, s: 0.995 ** s)),
    ("SequentialLR", "sgd",
     lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=20),
                                     m.ExponentialLR(o, gamma=0.99),
                                     m.CosineAnnealingLR(o, T_max=50)], milestones=[20, 120]),
     lambda t, b, i: (b * (0.1 + 0.9 * t / 20) if t < 20 else
                      b * 0.99 ** (t - 20) if t < 120 else cos_ref(t - 120, b, 50, 0.0)),
     None),
    ("ChainedScheduler", "sgd",
     lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=30),
                                      m.ExponentialLR(o, gamma=0.99)]),
     lambda t, b, i: b * (0.5 if t < 30 else 1.0) * 0.99 ** t, None),
    ("ChainedScheduler-step-multistep", "sgd",
     lambda m, o: m.ChainedScheduler([m.StepLR(o, 40, 0.7), m.MultiStepLR(o, [55, 200], 0.5)]),
     lambda t, b, i: b * 0.7 ** (t // 40) * 0.5 ** bisect_right([55, 200], t), None),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_documented_closed_form(case):
    _, kind, build, ref, mref = case
    opt = make_ours(kind)
    sched = build(ours, opt)
    lrs, moms = run(sched, opt)
    bases = [g["initial_lr"] for g in opt.param_groups]
    expected = np.array([[ref(t, bases[i], i) for i in range(3)] for t in range(N + 1)])
    np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-15)
    if mref is not None:
        expected_m = np.array([[mref(t, i) for i in range(3)] for t in range(N + 1)])
        np.testing.assert_allclose(moms, expected_m, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_step_by_step(case):
    torch = pytest.importorskip("torch")
    _, kind, build, _, _ = case
    opt, topt = make_ours(kind), make_torch(kind)
    ours_l, ours_m = run(build(ours, opt), opt)
    torch_l, torch_m = run(build(torch.optim.lr_scheduler, topt), topt)
    np.testing.assert_allclose(ours_l, torch_l, rtol=1e-14, atol=0)
    np.testing.assert_allclose(ours_m, torch_m, rtol=1e-14, atol=0)


def test_reduce_lr_on_plateau_matches_reference_and_torch():
    rng = np.random.default_rng(0)
    # a metric that improves, stalls, improves a little, stalls ...
    metrics = np.concatenate([np.linspace(1, 0.5, 20), np.full(30, 0.5),
                              np.linspace(0.5, 0.499, 10), 0.6 + 0.01 * rng.random(60)])
    kw = dict(mode="min", factor=0.5, patience=4, threshold=1e-3, cooldown=3,
              min_lr=[0.0, 0.02, 0.0])

    def reference(ms, base):
        # the documented rule, written out
        lrs, lr = [], list(base)
        best, bad, cool = math.inf, 0, 0
        for m in ms:
            if m < best * (1 - 1e-3):
                best, bad = m, 0
            else:
                bad += 1
            if cool > 0:
                cool -= 1
                bad = 0
            if bad > 4:
                for i in range(3):
                    new = max(lr[i] * 0.5, kw["min_lr"][i])
                    if lr[i] - new > 1e-8:
                        lr[i] = new
                cool, bad = 3, 0
            lrs.append(list(lr))
        return np.array(lrs)

    opt = make_ours()
    s = ours.ReduceLROnPlateau(opt, **kw)
    got = []
    for m in metrics:
        s.step(m)
        got.append(s.get_last_lr())
    np.testing.assert_allclose(got, reference(metrics, BASE), rtol=1e-15)
    assert np.min(got) < 0.1 * BASE[0]  # it did reduce, several times
    torch = pytest.importorskip("torch")
    topt = make_torch()
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    tgot = []
    for m in metrics:
        ts.step(float(m))
        tgot.append(ts.get_last_lr())
    np.testing.assert_array_equal(got, tgot)


def test_reduce_lr_on_plateau_max_abs_mode():
    opt = make_ours(lrs=[1.0])
    s = ours.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.5,
                               threshold_mode="abs")
    s.step(1.0)      # best 1.0
    s.step(1.4)      # not better by 0.5 -> bad epoch > patience 0 -> reduce
    assert s.get_last_lr() == [pytest.approx(0.1)]
    s.step(2.0)      # better
    assert s.get_last_lr() == [pytest.approx(0.1)]


# ------------------------------------------------ closed form == chained
CLOSED = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
          "CosineAnnealingLR", "LambdaLR", "CosineAnnealingWarmRestarts", "CyclicLR-triangular"]


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in CLOSED], ids=lambda c: c[0])
def test_step_epoch_uses_closed_form(case):
    _, kind, build, ref, _ = case
    opt = make_ours(kind)
    sched = build(ours, opt)
    bases = [g["initial_lr"] for g in opt.param_groups]
    for t in [0, 7, 33, 120, 251, 17]:
        sched.step(t)
        assert sched.last_epoch == t
        np.testing.assert_allclose(sched.get_last_lr(), [ref(t, bases[i], i) for i in range(3)],
                                   rtol=1e-12)


def test_warm_restarts_fractional_epoch_matches_torch():
    torch = pytest.importorskip("torch")
    opt, topt = make_ours(), make_torch()
    s = ours.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)
    ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=10, T_mult=2)
    for e in [0.5, 3.25, 12.5, 31.0, 45.75, 9.9]:
        s.step(e)
        ts.step(e)
        np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-14)


# ---------------------------------------------------------------- resume
def _train(opt, sched, steps):
    for _ in range(steps):
        for g in opt.param_groups:
            for p in g["params"]:
                p.grad = np.sin(p.data) + 0.1
        opt.step()
        sched.step()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_resume_through_checkpoint_equals_uninterrupted(case, tmp_path):
    _, kind, build, _, _ = case
    opt_a = make_ours(kind)
    sched_a = build(ours, opt_a)
    _train(opt_a, sched_a, N)

    opt_b = make_ours(kind)
    sched_b = build(ours, opt_b)
    _train(opt_b, sched_b, 137)
    path = tmp_path / "ckpt.npz"
    model = [g["params"][0].data for g in opt_b.param_groups]
    checkpoint.save({"model": model, "optimizer": opt_b.state_dict(),
                     "scheduler": sched_b.state_dict()}, path)
    del opt_b, sched_b

    opt_c = make_ours(kind)
    sched_c = build(ours, opt_c)
    state = checkpoint.load(path)
    for g, data in zip(opt_c.param_groups, state["model"]):
        g["params"][0].data[...] = data
    opt_c.load_state_dict(state["optimizer"])
    sched_c.load_state_dict(state["scheduler"])
    _train(opt_c, sched_c, N - 137)

    assert sched_c.get_last_lr() == sched_a.get_last_lr()
    assert sched_c.last_epoch == sched_a.last_epoch
    assert momenta(opt_c) == momenta(opt_a)
    for ga, gc in zip(opt_a.param_groups, opt_c.param_groups):
        np.testing.assert_array_equal(ga["params"][0].data, gc["params"][0].data)


def test_resume_with_last_epoch_matches_torch():
    torch = pytest.importorskip("torch")
    opt, topt = make_ours(), make_torch()
    for o in (opt, topt):
        for g in o.param_groups:
            g["initial_lr"] = g["lr"]
    s = ours.CosineAnnealingLR(opt, T_max=40, last_epoch=12)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=40, last_epoch=12)
    a, _ = run(s, opt, 60)
    b, _ = run(ts, topt, 60)
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_reduce_on_plateau_resume(tmp_path):
    ms = list(np.linspace(1, 0.9, 5)) + [0.95] * 20
    a_opt = make_ours()
    a = ours.ReduceLROnPlateau(a_opt, patience=2, cooldown=1)
    for m in ms:
        a.step(m)
    b_opt = make_ours()
    b = ours.ReduceLROnPlateau(b_opt, patience=2, cooldown=1)
    for m in ms[:9]:
        b.step(m)
    checkpoint.save({"o": b_opt.state_dict(), "s": b.state_dict()}, tmp_path / "c.npz")
    c_opt = make_ours()
    c = ours.ReduceLROnPlateau(c_opt, patience=2, cooldown=1)
    st = checkpoint.load(tmp_path / "c.npz")
    c_opt.load_state_dict(st["o"])
    c.load_state_dict(st["s"])
    for m in ms[9:]:
        c.step(m)
    assert c.get_last_lr() == a.get_last_lr()
    assert c.best == a.best and c.num_bad_epochs == a.num_bad_epochs


# ---------------------------------------------------- custom and warm-up
def test_custom_scheduler_by_one_method():
    class Halving(ours.ScheduleLR):
        def lr_at(self, step, base_lr):
            return base_lr / 2 ** (step // 10)

    opt = make_ours()
    lrs, _ = run(Halving(opt), opt, 50)
    np.testing.assert_allclose(lrs[:, 1], [0.05 / 2 ** (t // 10) for t in range(51)])

    class TorchStyle(ours.LRScheduler):
        def get_lr(self):
            return [b * (1 + self.last_epoch) ** -0.5 for b in self.base_lrs]

    opt = make_ours()
    lrs, _ = run(TorchStyle(opt), opt, 20)
    np.testing.assert_allclose(lrs[:, 2], [0.2 / math.sqrt(1 + t) for t in range(21)])


def test_schedule_lr_from_schedule_objects():
    from neurenix.optim import schedules
    opt = make_ours()
    cos = schedules.CosineAnnealing(0.3, T_max=25)
    lrs, _ = run(ours.ScheduleLR(opt, cos), opt, 60)
    np.testing.assert_allclose(lrs[:, 0], [cos(t) for t in range(61)])


def test_with_warmup_equals_sequential_and_closed_form():
    from neurenix.optim import schedules
    opt = make_ours()
    sched = ours.with_warmup(ours.CosineAnnealingLR(opt, T_max=100), warmup_steps=15,
                             start_factor=0.05)
    lrs, _ = run(sched, opt, 200)
    for i, b in enumerate(BASE):
        closed = schedules.Warmup(schedules.CosineAnnealing(b, T_max=100), 15, 0.05)
        np.testing.assert_allclose(lrs[:, i], [closed(t) for t in range(201)], rtol=1e-9)
    assert lrs[0, 0] == pytest.approx(0.05 * BASE[0])
    assert lrs[15, 0] == pytest.approx(BASE[0])


# ------------------------------------------------------------- bad input
BAD = [
    (lambda o: ours.CosineAnnealingLR(o, T_max=-5), ValueError, "T_max"),
    (lambda o: ours.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: ours.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: ours.StepLR(o, step_size=2.5), TypeError, "step_size"),
    (lambda o: ours.StepLR(o, step_size=3, gamma=0.0), ValueError, "gamma"),
    (lambda o: ours.ExponentialLR(o, gamma=-0.9), ValueError, "gamma"),
    (lambda o: ours.MultiStepLR(o, [3, 5], gamma=0), ValueError, "gamma"),
    (lambda o: ours.MultiStepLR(o, [3, -5]), ValueError, "milestones"),
    (lambda o: ours.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: ours.ReduceLROnPlateau(o, factor=1.5), ValueError, "factor"),
    (lambda o: ours.ReduceLROnPlateau(o, mode="median"), ValueError, "mode"),
    (lambda o: ours.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold_mode"),
    (lambda o: ours.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
    (lambda o: ours.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "min_lr"),
    (lambda o: ours.LinearLR(o, start_factor=0.0), ValueError, "start_factor"),
    (lambda o: ours.LinearLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: ours.ConstantLR(o, factor=1.5), ValueError, "factor"),
    (lambda o: ours.PolynomialLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: ours.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0"),
    (lambda o: ours.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=0), ValueError, "T_mult"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=100, pct_start=1.5), ValueError,
     "pct_start"),
    (lambda o: ours.OneCycleLR(o, max_lr=[1.0], total_steps=100), ValueError, "max_lr"),
    (lambda o: ours.OneCycleLR(o, max_lr=1.0, total_steps=100, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda o: ours.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), ValueError, "mode"),
    (lambda o: ours.LambdaLR(o, 3.0), TypeError, "lr_lambda"),
    (lambda o: ours.LambdaLR(o, [abs]), ValueError, "lr_lambda"),
    (lambda o: ours.StepLR(o, 3, last_epoch=-2), ValueError, "last_epoch"),
    (lambda o: ours.StepLR(o, 3, last_epoch=5), ValueError, "last_epoch"),
    (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 3)], milestones=[4]), ValueError,
     "milestones"),
    (lambda o: ours.SequentialLR(o, [], milestones=[]), ValueError, "schedulers"),
    (lambda o: ours.ChainedScheduler([ours.ReduceLROnPlateau(o)]), ValueError, "schedulers"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_arguments_name_the_argument(i):
    build, exc, name = BAD[i]
    opt = make_ours()
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(exc, match=name):
        build(opt)
    if name not in ("schedulers", "milestones"):
        assert [dict(g) for g in opt.param_groups] == before


def test_optimizer_without_lr():
    class NoLR:
        param_groups = [{"params": [], "momentum": 0.9}]
    with pytest.raises(ValueError, match="'lr'"):
        ours.StepLR(NoLR(), 3)
    with pytest.raises(ValueError, match="'lr'"):
        ours.ReduceLROnPlateau(NoLR())
    with pytest.raises(TypeError, match="optimizer"):
        ours.StepLR(object(), 3)


def test_cycle_momentum_needs_momentum():
    opt = AdaGrad([Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum"):
        ours.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    ours.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)


def test_one_cycle_past_total_steps_raises_and_keeps_state():
    opt = make_ours()
    s = ours.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        s.step()
    last = s.get_last_lr()
    with pytest.raises(ValueError, match="total steps"):
        s.step()
    assert s.last_epoch == 10 and s.get_last_lr() == last


def test_failed_initial_step_leaves_optimizer_untouched():
    opt = make_ours()
    with pytest.raises(ValueError, match="negative lr"):
        ours.LambdaLR(opt, lambda t: -1.0)
    assert all("initial_lr" not in g for g in opt.param_groups)
    assert [g["lr"] for g in opt.param_groups] == BASE
    with pytest.raises(ValueError, match="last_epoch"):
        ours.OneCycleLR(opt, max_lr=1.0, total_steps=10, last_epoch=-3)
    assert all("max_lr" not in g for g in opt.param_groups)


def test_negative_lr_from_lambda_is_rejected_before_writing():
    opt = make_ours()
    s = ours.LambdaLR(opt, lambda t: 1.0 - 0.5 * t)
    s.step()
    with pytest.raises(ValueError, match="negative lr"):
        s.step(5)
    assert s.last_epoch == 1
    assert [g["lr"] for g in opt.param_groups] == [b * 0.5 for b in BASE]


def test_reduce_on_plateau_bad_metric():
    s = ours.ReduceLROnPlateau(make_ours())
    with pytest.raises(TypeError, match="metrics"):
        s.step("loss")


def test_load_state_dict_validates():
    s = ours.StepLR(make_ours(), 3)
    with pytest.raises(ValueError, match="last_epoch"):
        s.load_state_dict({"foo": 1})
    with pytest.raises(TypeError, match="state_dict"):
        s.load_state_dict([1])
    seq_opt = make_ours()
    seq = ours.SequentialLR(seq_opt, [ours.StepLR(seq_opt, 3), ours.StepLR(seq_opt, 4)], [5])
    sd = seq.state_dict()
    sd["_schedulers"] = sd["_schedulers"][:1]
    with pytest.raises(ValueError, match="_schedulers"):
        seq.load_state_dict(sd)


def test_state_dict_is_plain_and_has_torch_keys():
    opt = make_ours()
    s = ours.MultiStepLR(opt, [3, 3, 8])
    sd = s.state_dict()
    for key in ("last_epoch", "base_lrs", "_last_lr", "_step_count", "milestones", "gamma"):
        assert key in sd
    assert type(sd["milestones"]) is dict and sd["milestones"] == {3: 2, 8: 1}
    s2 = ours.MultiStepLR(make_ours(), [1])
    s2.load_state_dict(sd)
    assert s2.milestones[3] == 2
