"""Gradient accumulation, annealed gradient noise, and the finiteness check."""
import math

import numpy as np
import pytest

from neurenix import optim
from neurenix.optim import Parameter


@pytest.mark.parametrize("k", [1, 3, 4])
def test_accumulation_equals_large_batch(k):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12 * k, 4))
    y = rng.standard_normal(12 * k)

    def grad(w, Xb, yb):          # gradient of the mean squared error
        return 2 * Xb.T @ (Xb @ w - yb) / len(yb)

    big = Parameter(np.zeros(4))
    opt_big = optim.Adam([big], lr=0.05)
    small = Parameter(np.zeros(4))
    acc = optim.GradientAccumulator(optim.Adam([small], lr=0.05), accumulation_steps=k)
    for _ in range(5):
        big.grad = grad(big.data, X, y)
        opt_big.step()
        stepped = []
        for Xb, yb in zip(np.split(X, k), np.split(y, k)):
            small.grad = grad(small.data, Xb, yb)
            stepped.append(acc.step())
        assert stepped == [False] * (k - 1) + [True]
    np.testing.assert_allclose(small.data, big.data, rtol=1e-12, atol=1e-14)


def test_accumulator_bad_input():
    opt = optim.SGD([Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="accumulation_steps"):
        optim.GradientAccumulator(opt, 0)
    with pytest.raises(TypeError, match="optimizer"):
        optim.GradientAccumulator(object(), 2)
    acc = optim.GradientAccumulator(opt, 2)
    opt.param_groups[0]["params"][0].grad = np.zeros(3)
    with pytest.raises(ValueError, match="grad of parameter 0"):
        acc.step()
    assert acc.count == 0


def test_gradient_noise_schedule_and_statistics():
    gn = optim.GradientNoise(eta=0.3, gamma=0.55, seed=1)
    assert gn.std(0) == pytest.approx(math.sqrt(0.3))
    assert gn.std(10) == pytest.approx(math.sqrt(0.3 / 11 ** 0.55))
    p = Parameter(np.zeros(200000))
    samples = []
    for t in range(3):
        p.grad = np.zeros(200000)
        gn([p])
        samples.append(p.grad.std())
    for t, s in enumerate(samples):
        assert s == pytest.approx(math.sqrt(0.3 / (1 + t) ** 0.55), rel=0.01)
    assert gn.t == 3


def test_gradient_noise_reproducible_and_resumable():
    def run(n, gn):
        p = Parameter(np.zeros(5))
        out = []
        for _ in range(n):
            p.grad = np.zeros(5)
            gn([p])
            out.append(p.grad.copy())
        return out

    full = run(4, optim.GradientNoise(seed=7))
    gn = optim.GradientNoise(seed=7)
    first = run(2, gn)
    st = gn.state_dict()
    gn2 = optim.GradientNoise(seed=123)
    gn2.load_state_dict(st)
    rest = run(2, gn2)
    for a, b in zip(full, first + rest):
        np.testing.assert_array_equal(a, b)


def test_grads_finite():
    p = Parameter(np.zeros(3, dtype=np.float32))
    p.grad = np.ones(3, dtype=np.float32)
    assert optim.grads_finite([p])
    p.grad[1] = -np.inf
    assert not optim.grads_finite([p])
    q = Parameter(np.zeros((4, 2)))
    q.grad = np.ones((4, 4))[:, ::2]   # non-contiguous
    assert optim.grads_finite([q])
    q.grad = np.full((4, 4), np.nan)[:, ::2]
    assert not optim.grads_finite([q])
