"""An MLP with the same weights in neurenix and torch: the same loss, the same
gradients, and the same parameters after a few optimizer steps."""
import numpy as np
import pytest

import neurenix
from neurenix import nn, optim

torch = pytest.importorskip("torch")


class SimpleNN(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.fc1 = nn.Linear(8, 16, dtype=dtype)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(16, 4, dtype=dtype)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _pair(dtype):
    neurenix.manual_seed(3)
    ours = SimpleNN(dtype)
    tdt = getattr(torch, dtype)
    ref = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).to(tdt)
    with torch.no_grad():
        for (_, p), q in zip(ours.named_parameters(), ref.parameters()):
            q.copy_(torch.from_numpy(p.data.copy()))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 8)).astype(dtype)
    y = rng.integers(0, 4, 32)
    return ours, ref, X, y


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_mlp_loss_and_gradients_match_torch(dtype, rtol):
    ours, ref, X, y = _pair(dtype)
    loss = nn.CrossEntropyLoss()(ours(neurenix.tensor(X)), neurenix.tensor(y))
    tloss = torch.nn.CrossEntropyLoss()(ref(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward()
    tloss.backward()
    assert loss.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=rtol)
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert p.grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=1e-2))])
def test_training_steps_match_torch(name, kw):
    ours, ref, X, y = _pair("float64")
    opt = getattr(optim, name)(ours.parameters(), **kw)
    topt = getattr(torch.optim, name)(ref.parameters(), **kw)
    crit, tcrit = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for step in range(5):
        xb, yb = X[step * 6:step * 6 + 6], y[step * 6:step * 6 + 6]
        opt.zero_grad()
        crit(ours(neurenix.tensor(xb)), neurenix.tensor(yb)).backward()
        opt.step()
        topt.zero_grad()
        tcrit(ref(torch.from_numpy(xb)), torch.from_numpy(yb)).backward()
        topt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)
