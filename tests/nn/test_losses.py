"""CrossEntropyLoss and MSELoss: PyTorch's values, options and errors."""
import numpy as np
import pytest

import neurenix
from neurenix import nn
from neurenix.nn import functional as F


def test_cross_entropy_matches_closed_form_and_is_stable():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    t = np.array([0, 2])
    loss = nn.CrossEntropyLoss(reduction="none")(neurenix.tensor(x), neurenix.tensor(t))
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(3)], atol=1e-12)
    assert np.isfinite(nn.CrossEntropyLoss()(neurenix.tensor(x * 10), neurenix.tensor(t)).item())


def test_cross_entropy_all_options_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 3, -100, 1, 1, 2])
    w = np.array([1.0, 0.5, 2.0, 3.0])
    for kw in ({}, {"weight": w}, {"reduction": "sum"}, {"weight": w, "reduction": "none"}):
        ours = nn.CrossEntropyLoss(**kw)(neurenix.tensor(x), neurenix.tensor(t))
        tkw = dict(kw)
        if "weight" in tkw:
            tkw["weight"] = torch.tensor(w)
        ref = torch.nn.CrossEntropyLoss(**tkw)(torch.tensor(x), torch.tensor(t))
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-13)


def test_cross_entropy_bad_targets():
    x = neurenix.tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(TypeError, match="integer class indices"):
        nn.CrossEntropyLoss()(x, neurenix.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="outside \\[0, 4\\)"):
        nn.CrossEntropyLoss()(x, neurenix.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        nn.CrossEntropyLoss()(x, neurenix.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape \\(N, C\\)"):
        nn.CrossEntropyLoss()(neurenix.tensor(np.zeros((2, 3, 4))), neurenix.tensor([0, 1]))
    with pytest.raises(TypeError, match="logits"):
        nn.CrossEntropyLoss()(neurenix.tensor([[1, 2]]), neurenix.tensor([0]))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, neurenix.tensor([0, 1, 2]), weight=np.ones(3))


def test_mse_loss_and_broadcast_warning():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    for red in ("mean", "sum", "none"):
        ours = nn.MSELoss(reduction=red)(neurenix.tensor(a), neurenix.tensor(b))
        ref = torch.nn.MSELoss(reduction=red)(torch.tensor(a), torch.tensor(b))
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-13)
    with pytest.warns(UserWarning, match="different to the input size"):
        nn.MSELoss()(neurenix.tensor(a), neurenix.tensor(b[:, :1]))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="max")
