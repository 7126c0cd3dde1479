"""CuPy (GPU): the autograd table, an MLP's loss/gradients/Adam step and the DataLoader
on CuPy arrays equal NumPy's.  Skips where CuPy or a GPU is absent (the same xp code
is proven on CPU through array_api_strict)."""
import types

import numpy as np
import pytest

import neurenix
import neurenix.nn.functional as NF
from neurenix import nn, optim
from neurenix.backend import to_numpy

from ..autograd._cases import CASES, check_backend_equals_numpy

cp = pytest.importorskip("cupy")
try:
    if cp.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no GPU", allow_module_level=True)
except Exception:   # pragma: no cover - driver missing
    pytest.skip("no usable CUDA device", allow_module_level=True)

GPU = types.SimpleNamespace(
    F=NF, name="cupy",
    tensor=lambda v, dtype=None: neurenix.tensor(cp.asarray(np.asarray(v)), dtype=dtype))
GENERIC = [c for c in CASES if c[0] != "index_mask"]


@pytest.mark.parametrize("name, fn, shapes, positive", GENERIC, ids=[c[0] for c in GENERIC])
def test_case_on_cupy_equals_numpy(name, fn, shapes, positive):
    check_backend_equals_numpy(fn, shapes, positive, GPU, cp.asarray, rtol=1e-11)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_mlp_step_on_cupy(dtype, tol):
    from neurenix.data import DataLoader, TensorDataset

    def model():
        neurenix.manual_seed(5)
        return nn.Sequential(nn.Linear(6, 8, dtype=dtype), nn.ReLU(), nn.Linear(8, 3, dtype=dtype))

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 6)).astype(dtype), rng.integers(0, 3, 16)
    a, b = model(), model().to(xp=cp)
    la_all, lb_all = [], []
    oa, ob = optim.Adam(a.parameters(), lr=0.05), optim.Adam(b.parameters(), lr=0.05)
    for m, o, data, losses in ((a, oa, (X, y), la_all), (b, ob, (cp.asarray(X), cp.asarray(y)), lb_all)):
        loader = DataLoader(TensorDataset(*data), batch_size=4, shuffle=True, seed=1)
        for xb, yb in loader:
            o.zero_grad()
            loss = nn.CrossEntropyLoss()(m(xb), yb)
            loss.backward()
            o.step()
            losses.append(loss.item())
    np.testing.assert_allclose(lb_all, la_all, rtol=tol)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=tol, atol=tol)
