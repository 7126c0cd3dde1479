"""CuPy (GPU) path: the generic kernels on CuPy arrays equal the Cython path.

Skips cleanly where CuPy or a GPU is absent (the same generic code is proven on
CPU through array_api_strict in test_array_api.py)."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.backend import to_numpy

from ._cases import CASES
from .test_first_order import make_problem

cp = pytest.importorskip("cupy")
try:
    if cp.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no GPU", allow_module_level=True)
except Exception:   # pragma: no cover - driver missing
    pytest.skip("no usable CUDA device", allow_module_level=True)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_matches_numpy(name, dtype):
    cls, _, cfgs = CASES[name]
    results = []
    for to_xp in (cp.asarray, lambda a: a):
        arrays, grads = make_problem(dtype)
        params = [[optim.Parameter(to_xp(a.copy())) for a in grp] for grp in arrays]
        opt = cls([dict(params=ps, **c) for ps, c in zip(params, cfgs[0])])
        for k in range(10):
            gs = grads(k, [[to_numpy(p.data) for p in ps] for ps in params])
            for ps, gg in zip(params, gs):
                for p, g in zip(ps, gg):
                    p.grad = to_xp(g)
            opt.step()
        results.append([to_numpy(p.data) for ps in params for p in ps])
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
