"""Every differentiable operation: gradients against central finite differences and
values and gradients against PyTorch (float64, the same inputs)."""
import numpy as np
import pytest

import neurenix

from ._cases import CASES, NEURENIX, inputs, torch_lib
from ._gradcheck import check_grads

IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, fn, shapes, positive", CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, fn, shapes, positive):
    # large logits saturate the softmax: differences of float64 losses near 1e2
    rtol = 1e-5 if name == "ce_large_logits" else 1e-6
    check_grads(lambda *ts: fn(NEURENIX, *ts), inputs(shapes, positive), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("name, fn, shapes, positive", CASES, ids=IDS)
def test_value_and_gradient_match_torch(name, fn, shapes, positive):
    torch = pytest.importorskip("torch")
    L = torch_lib()
    arrays = inputs(shapes, positive, seed=1)
    ours = [neurenix.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, rout = fn(NEURENIX, *ours), fn(L, *ref)
    assert out.shape == tuple(rout.shape)
    np.testing.assert_allclose(out.detach().numpy(), rout.detach().numpy(), rtol=1e-12, atol=1e-13)
    seed = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(neurenix.tensor(seed))
    rout.backward(torch.tensor(seed))
    for k, (a, b) in enumerate(zip(ours, ref)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-11, atol=1e-12,
                                   err_msg=f"gradient of argument {k}")
