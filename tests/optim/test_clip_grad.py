"""Gradient clipping against direct formulas (and torch where installed)."""
import math

import numpy as np
import pytest

from neurenix import optim
from neurenix.optim import Parameter


def params_with_grads(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    ps = [Parameter(np.zeros(s, dtype=dtype)) for s in [(5,), (3, 4), (2,)]]
    for p in ps:
        p.grad = rng.standard_normal(p.shape).astype(dtype) * 3
    return ps


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm(norm_type, dtype):
    ps = params_with_grads(dtype=dtype)
    flat = np.concatenate([p.grad.ravel().astype(np.float64) for p in ps])
    expected = np.linalg.norm(flat, ord=norm_type)
    total = optim.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
    assert total == pytest.approx(expected, rel=1e-6)
    after = np.concatenate([p.grad.ravel().astype(np.float64) for p in ps])
    np.testing.assert_allclose(after, flat * (1.0 / (expected + 1e-6)), rtol=1e-6)
    assert all(p.grad.dtype == dtype for p in ps)


def test_clip_grad_norm_no_op_below_threshold():
    ps = params_with_grads()
    before = [p.grad.copy() for p in ps]
    optim.clip_grad_norm_(ps, 1e6)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad, b)


def test_clip_grad_norm_nonfinite():
    ps = params_with_grads()
    ps[1].grad[0, 0] = np.inf
    before = [p.grad.copy() for p in ps]
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad, b)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    ps = params_with_grads()
    tps = [torch.nn.Parameter(torch.zeros(p.shape, dtype=torch.float64)) for p in ps]
    for tp, p in zip(tps, ps):
        tp.grad = torch.tensor(p.grad.copy())
    t = torch.nn.utils.clip_grad_norm_(tps, 2.0)
    o = optim.clip_grad_norm_(ps, 2.0)
    assert o == pytest.approx(float(t), rel=1e-12)
    for tp, p in zip(tps, ps):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_value():
    ps = params_with_grads()
    raw = [p.grad.copy() for p in ps]
    optim.clip_grad_value_(ps, 0.5)
    for p, r in zip(ps, raw):
        np.testing.assert_array_equal(p.grad, np.minimum(np.maximum(r, -0.5), 0.5))


@pytest.mark.parametrize("kw,exc,match", [
    (dict(max_norm=-1.0), ValueError, "max_norm"),
    (dict(max_norm=float("nan")), ValueError, "max_norm"),
    (dict(max_norm=1.0, norm_type=0.0), ValueError, "norm_type"),
    (dict(max_norm=1.0, norm_type="fro"), TypeError, "norm_type"),
])
def test_clip_bad_input(kw, exc, match):
    with pytest.raises(exc, match=match):
        optim.clip_grad_norm_(params_with_grads(), **kw)
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_(params_with_grads(), -1.0)
