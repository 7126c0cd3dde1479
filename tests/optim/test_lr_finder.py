"""The learning-rate range test (Smith 2017) on quadratics whose stability limit is
known in closed form: gradient descent on 0.5 * sum(h_i x_i^2) diverges exactly
for lr > 2 / max(h)."""
import sys

import numpy as np
import pytest

from neurenix.optim import SGD, Adam, Parameter
from neurenix.optim import schedules
from neurenix.optim.lr_finder import lr_range_test

H = np.linspace(1.0, 8.0, 16)          # divergence for lr > 2/8 = 0.25


def setup(seed=0):
    rng = np.random.default_rng(seed)
    w = Parameter(rng.standard_normal(H.size))

    def closure():
        w.grad = H * w.data
        return float(0.5 * np.sum(H * w.data ** 2))

    return w, closure


def test_finds_the_stable_region_and_stops_at_divergence():
    w, closure = setup()
    x0 = w.data.copy()
    opt = SGD([w], lr=0.123, momentum=0.0)
    res = lr_range_test(opt, closure, start_lr=1e-4, end_lr=10.0, num_steps=200)
    assert res.diverged
    limit = 2 / H.max()
    # the sweep stops soon after the stability limit, never before it
    assert limit < res.lrs[-1] < 20 * limit
    assert 1e-3 < res.suggested_lr < limit
    # the curve: sweep values follow the geometric schedule, loss fell before diverging
    np.testing.assert_allclose(res.lrs, [schedules.range_sweep(k, 1e-4, 10.0, 200)
                                         for k in range(len(res.lrs))])
    assert res.smoothed.min() < 0.5 * res.smoothed[0]
    # restored: parameters, optimizer lr and state
    np.testing.assert_array_equal(w.data, x0)
    assert opt.param_groups[0]["lr"] == 0.123


def test_no_restore_and_linear_mode_and_min10():
    w, closure = setup(1)
    opt = Adam([w], lr=1e-3)
    x0 = w.data.copy()
    res = lr_range_test(opt, closure, start_lr=1e-4, end_lr=1.0, num_steps=60, mode="linear",
                        suggestion="min/10", restore=False)
    assert not np.array_equal(w.data, x0)
    assert res.lrs[1] - res.lrs[0] == pytest.approx((1.0 - 1e-4) / 59)
    assert res.suggested_lr == pytest.approx(res.lrs[np.argmin(res.smoothed)] / 10)
    assert len(res.lrs) == len(res.losses) == len(res.smoothed)


def test_reproducible():
    a = lr_range_test(SGD([setup()[0]], lr=0.1), setup()[1], num_steps=50)
    w, closure = setup()
    b = lr_range_test(SGD([w], lr=0.1), closure, num_steps=50)
    w2, closure2 = setup()
    c = lr_range_test(SGD([w2], lr=0.1), closure2, num_steps=50)
    np.testing.assert_array_equal(b.losses, c.losses)
    assert b.suggested_lr == c.suggested_lr
    assert isinstance(a.suggested_lr, float)


def test_nan_loss_stops():
    w = Parameter(np.ones(2))
    calls = []

    def closure():
        calls.append(1)
        w.grad = np.ones(2)
        return float("nan") if len(calls) > 5 else 1.0

    res = lr_range_test(SGD([w], lr=0.1), closure, num_steps=50)
    assert res.diverged and len(res.lrs) == 5


def test_plot_with_matplotlib():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    w, closure = setup()
    res = lr_range_test(SGD([w], lr=0.1), closure, start_lr=1e-4, num_steps=80)
    ax = res.plot()
    assert ax.get_xscale() == "log"


def test_plot_without_matplotlib_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    w, closure = setup()
    res = lr_range_test(SGD([w], lr=0.1), closure, num_steps=20)
    with pytest.warns(RuntimeWarning, match="matplotlib"):
        assert res.plot() is None


@pytest.mark.parametrize("kw,exc,name", [
    (dict(start_lr=0.0), ValueError, "start_lr"),
    (dict(start_lr=1.0, end_lr=0.5), ValueError, "end_lr"),
    (dict(num_steps=1), ValueError, "num_steps"),
    (dict(mode="cubic"), ValueError, "mode"),
    (dict(smooth_f=0.0), ValueError, "smooth_f"),
    (dict(diverge_th=1.0), ValueError, "diverge_th"),
    (dict(suggestion="best"), ValueError, "suggestion"),
])
def test_bad_input(kw, exc, name):
    w, closure = setup()
    with pytest.raises(exc, match=name):
        lr_range_test(SGD([w], lr=0.1), closure, **kw)


def test_bad_closure():
    w, _ = setup()
    with pytest.raises(TypeError, match="closure"):
        lr_range_test(SGD([w], lr=0.1), 3)
    x0 = w.data.copy()

    def closure():
        w.grad = np.ones_like(w.data)
        return "loss"
    with pytest.raises(TypeError, match="closure"):
        lr_range_test(SGD([w], lr=0.1), closure)
    np.testing.assert_array_equal(w.data, x0)
