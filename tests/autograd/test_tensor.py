"""Tensor semantics the tutorials rely on, PyTorch's rules for gradients and errors."""
import threading

import numpy as np
import pytest

import neurenix
from neurenix import Tensor, tensor


def test_dtype_inference_follows_torch():
    assert tensor([1.0, 2.0]).dtype == np.float32
    assert tensor([1, 2]).dtype == np.int64
    assert tensor([True]).dtype == np.bool_
    assert tensor(np.zeros(2)).dtype == np.float64          # arrays keep their dtype
    assert tensor(np.zeros(2), dtype=neurenix.float32).dtype == np.float32
    assert tensor([1, 2], dtype="float64").dtype == np.float64
    a = np.ones(3)
    t = tensor(a)
    a[0] = 5
    assert t.data[0] == 1                                   # tensor() copies
    assert Tensor(a).data is a                              # Tensor() wraps


def test_size_shape_item_eq_sum():
    out = tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    targets = tensor([1, 0, 0])
    values, predicted = out.max(1)
    assert predicted.dtype == np.int64 and predicted.tolist() == [1, 0, 2]
    np.testing.assert_allclose(values.numpy(), [0.9, 0.8, 0.5])
    assert out.max(1).indices is not None and out.max(1).values.shape == (3,)
    assert targets.size(0) == 3 and targets.size() == (3,) and out.shape == (3, 3)
    assert out.size(-1) == 3 and out.dim() == 2 and out.numel() == 9 and len(out) == 3
    correct = predicted.eq(targets).sum().item()
    assert correct == 2 and isinstance(correct, int)
    assert (predicted == targets).sum().dtype == np.int64
    assert out.argmax(1).tolist() == [1, 0, 2] and out.argmax().item() == 1
    assert isinstance(out.sum().item(), float)
    with pytest.raises(IndexError, match="dim 2"):
        targets.size(2)
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        out.item()


def test_comparisons_do_not_record():
    x = tensor([1.0, -2.0], requires_grad=True)
    for r in (x > 0, x >= 0, x < 0, x <= 0, x == 1.0, x != 1.0, x.ne(x), x.lt(0.5)):
        assert r.dtype == np.bool_ and not r.requires_grad and r.grad_fn is None


def test_grad_accumulates_and_zero_grad():
    w = tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    (3 * w).sum().backward()
    np.testing.assert_allclose(w.grad, [2 + 3, 4 + 3])
    assert isinstance(w.grad, np.ndarray) and w.grad.dtype == np.float32


def test_shared_leaf_gradients_are_distinct_arrays():
    a = tensor([1.0], requires_grad=True)
    b = tensor([2.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad += 1
    assert b.grad[0] == 1.0


def test_backward_on_non_scalar_raises_like_torch():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(tensor([1.0, 1.0]))
    np.testing.assert_allclose(x.grad, [2, 2])
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(np.ones(3, dtype=np.float32))


def test_backward_without_grad_and_second_pass():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).sum().backward()
    x = tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4, 8])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_requires_grad_only_for_floats():
    with pytest.raises(RuntimeError, match="floating point"):
        tensor([1, 2], requires_grad=True)


def test_no_grad_enable_grad_and_decorator():
    x = tensor([1.0], requires_grad=True)
    with neurenix.no_grad():
        y = x * 2
        assert not neurenix.is_grad_enabled()
        with neurenix.enable_grad():
            z = x * 2
    assert neurenix.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @neurenix.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    prev = neurenix.set_grad_enabled(False)
    assert not neurenix.is_grad_enabled()
    neurenix.set_grad_enabled(True)
    with neurenix.set_grad_enabled(False):
        assert not (x * 1).requires_grad
    assert neurenix.is_grad_enabled() and prev is not None


def test_grad_mode_is_thread_local():
    seen = []
    with neurenix.no_grad():
        t = threading.Thread(target=lambda: seen.append(neurenix.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_mixed_dtypes_promote_and_leaf_gradient_keeps_its_dtype():
    a = tensor([1.0, 2.0], requires_grad=True)                  # float32
    b = tensor(np.array([3.0, 4.0]), requires_grad=True)        # float64
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, [3, 4])


def test_float32_stays_float32():
    x = tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = (x * 2.0 + 1.0).exp().mean(0).log_softmax(0).sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_detach_numpy_and_non_leaf_grad():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.numpy()
    assert y.detach().numpy().tolist() == [2.0, 4.0]
    assert not y.is_leaf and x.is_leaf
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad, [4, 8])
    np.testing.assert_allclose(x.grad, [8, 16])


def test_numpy_operands_and_reflected_ops():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x                 # ndarray defers to Tensor.__rmul__
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3, 4])


def test_repr_and_iteration():
    x = tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(x) == "tensor([[1., 2.]], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(x * 2)
    assert [r.tolist() for r in x] == [[1.0, 2.0]]
    assert repr(tensor([1, 2])) == "tensor([1, 2])"


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match="not aligned"):
        tensor(np.ones((2, 3))) @ tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="out of range"):
        tensor(np.ones((2, 3))).sum(2)
    with pytest.raises(TypeError, match="unsupported operand"):
        tensor([1.0]) + "a"


def test_leaf_gradient_is_c_contiguous():
    w = tensor(np.ones((3, 2)), requires_grad=True)
    x = tensor(np.ones((4, 3)))
    (x @ w).sum().backward()           # dW = x^T g arrives as a transposed product
    assert w.grad.flags.c_contiguous


def test_relu_propagates_nan_and_has_zero_slope_at_zero():
    x = tensor([np.nan, 0.0, -1.0, 2.0], requires_grad=True)
    y = x.relu()
    assert np.isnan(y.data[0]) and y.data[1:].tolist() == [0.0, 0.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0]
