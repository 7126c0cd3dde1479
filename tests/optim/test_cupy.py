"""CuPy (GPU) path: the generic kernels on CuPy arrays equal the Cython path.

Skips cleanly where CuPy or a GPU is absent (the same generic code is proven on
CPU through array_api_strict in test_array_api.py)."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.backend import to_numpy

from ._cases import CASES
from .test_first_order import run_on

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
    on_gpu, _ = run_on(cls, cfgs[0], dtype, cp.asarray, steps=10)
    on_cpu, _ = run_on(cls, cfgs[0], dtype, lambda a: a, steps=10)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip(on_gpu, on_cpu):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_cupy_arrays_use_the_fused_kernels():
    from neurenix.backend import array_namespace, kernels_for
    from neurenix.backend._cupy import CupyKernels

    xp = array_namespace(cp.zeros(1))
    for dt in (cp.float32, cp.float64):
        assert isinstance(kernels_for(xp, dt), CupyKernels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("flags", [
    dict(cls=optim.SGD, lr=0.1),
    dict(cls=optim.SGD, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01, maximize=True),
    dict(cls=optim.SGD, lr=0.1, momentum=0.9, nesterov=True),
    dict(cls=optim.Adam, lr=0.01),
    dict(cls=optim.Adam, lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True),
    dict(cls=optim.Adam, lr=0.01, betas=(0.3, 0.99)),          # lerp weight >= 0.5
    dict(cls=optim.AdamW, lr=0.01, amsgrad=True),
    dict(cls=optim.AdaBelief, lr=0.01, weight_decay=0.05),
])
def test_fused_cupy_kernels_match_generic_and_numpy(flags, dtype, monkeypatch):
    import neurenix.optim.optimizer as O
    from neurenix.backend import generic_kernels, kernels_for
    flags = dict(flags)
    cls = flags.pop("cls")
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal(10_007).astype(dtype)
    gs = [rng.standard_normal(x0.size).astype(dtype) for _ in range(8)]
    out = {}
    for label in ("fused", "generic", "numpy"):
        to = np.asarray if label == "numpy" else cp.asarray
        # "generic": the unfused namespace kernels on the same CuPy arrays
        monkeypatch.setattr(O, "kernels_for", (lambda xp, dt: generic_kernels(xp))
                            if label == "generic" else kernels_for)
        p = optim.Parameter(to(x0.copy()))
        opt = cls([p], **flags)
        for g in gs:
            p.grad = to(g.copy())
            opt.step()
        out[label] = to_numpy(p.data)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out["fused"], out["numpy"], rtol=tol, atol=tol)
    np.testing.assert_allclose(out["fused"], out["generic"], rtol=tol, atol=tol)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, betas=(0.3, 0.99), maximize=True),
    lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.AdaBelief(ps, lr=0.01, weight_decay=0.05),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multi_array_adam_matches_numpy(dtype, make):
    # one launch over arrays of mixed sizes: empty, tiny, and on and across chunk
    # edges; a strided (non-contiguous) group takes the per-array kernels
    rng = np.random.default_rng(9)
    sizes = [0, 1, 3, 4095, 4096, 4097, 200_001]
    x0 = [rng.standard_normal(n).astype(dtype) for n in sizes]
    gs = [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(5)]
    for strided in (False, True):
        out = []
        for to in (cp.asarray, np.asarray):
            if strided and to is cp.asarray:
                ps = [optim.Parameter(cp.asarray(np.repeat(x, 2))[::2]) for x in x0]
                assert all(not p.data.flags.c_contiguous for p in ps if p.data.size > 1)
            else:
                ps = [optim.Parameter(to(x.copy())) for x in x0]
            opt = make(ps)
            for k in range(5):
                for p, g in zip(ps, gs[k]):
                    p.grad = to(g.copy()) if not (strided and to is cp.asarray) \
                        else cp.asarray(np.repeat(g, 2))[::2]
                opt.step()
            out.append([to_numpy(p.data) for p in ps])
        tol = 1e-12 if dtype == np.float64 else 2e-6
        for a, b in zip(*out):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
