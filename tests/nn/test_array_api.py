"""The same MLP on ``array_api_strict`` (through ``Module.to(xp=...)``): forward,
backward and an optimizer step equal NumPy's."""
import numpy as np
import pytest

import neurenix
from neurenix import nn, optim
from neurenix.backend import to_numpy

xps = pytest.importorskip("array_api_strict")


def _model():
    neurenix.manual_seed(5)
    return nn.Sequential(nn.Linear(6, 8, dtype="float64"), nn.ReLU(), nn.Linear(8, 3, dtype="float64"))


def test_mlp_forward_backward_step_on_array_api_strict():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    a, b = _model(), _model().to(xp=xps)
    assert all(type(p.data) is type(xps.asarray(1.0)) for p in b.parameters())
    la = nn.CrossEntropyLoss()(a(neurenix.tensor(X)), neurenix.tensor(y))
    lb = nn.CrossEntropyLoss()(b(neurenix.tensor(xps.asarray(X))), neurenix.tensor(xps.asarray(y)))
    np.testing.assert_allclose(float(lb.item()), la.item(), rtol=1e-13)
    la.backward()
    lb.backward()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-12, atol=1e-14)
    oa, ob = optim.Adam(a.parameters(), lr=0.1), optim.Adam(b.parameters(), lr=0.1)
    oa.step()
    ob.step()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-12, atol=1e-14)
    sd = b.state_dict()
    c = _model()
    c.load_state_dict(sd)                                   # strict arrays into NumPy params
    for p, q in zip(a.parameters(), c.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-12)


def test_dataloader_on_array_api_strict():
    from neurenix.data import DataLoader, TensorDataset

    X = xps.reshape(xps.arange(20, dtype=xps.float64), (10, 2))
    y = xps.arange(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=0)
    seen = []
    for xb, yb in loader:
        assert type(xb.data) is type(X)
        np.testing.assert_array_equal(to_numpy(xb.data)[:, 0], 2 * to_numpy(yb.data))
        seen += to_numpy(yb.data).tolist()
    assert sorted(seen) == list(range(10))
