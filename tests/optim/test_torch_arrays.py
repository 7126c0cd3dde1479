"""PyTorch tensors as parameters: the generic Array-API kernels through
``array_api_compat.torch``.  A torch tensor, like a CuPy array, has no
``__array_namespace__`` attribute, so this runs on the CPU the code path that
CuPy arrays take on a GPU (tests/optim/test_cupy.py, skipped without one)."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.backend import is_foreign_array, to_numpy

from ._cases import CASES
from .test_first_order import run_on

torch = pytest.importorskip("torch")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_torch_tensor_is_foreign_array():
    t = torch.zeros(3)
    assert not hasattr(t, "__array_namespace__")
    assert is_foreign_array(t)
    assert not is_foreign_array(np.zeros(3)) and not is_foreign_array([1.0, 2.0])
    p = optim.Parameter(t)
    assert p.data is t                      # kept, not converted to NumPy
    with pytest.raises(TypeError, match="params"):
        optim.SGD(t, lr=0.1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_tensors_match_numpy(name, dtype, device):
    cls, _, cfgs = CASES[name]
    on_torch, _ = run_on(cls, cfgs[0], dtype, lambda a: torch.asarray(a, device=device),
                         steps=10)
    on_numpy, _ = run_on(cls, cfgs[0], dtype, lambda a: a, steps=10)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip(on_torch, on_numpy):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_state_dict_clip_and_noise_keep_the_device(device):
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal(50)
    gs = [rng.standard_normal(50) for _ in range(6)]

    def run(to, resume_at=None):
        p = optim.Parameter(to(x0.copy()))
        opt = optim.Adam([p], lr=1e-2, amsgrad=True)
        for k, g in enumerate(gs):
            if k == resume_at:              # rebuild from a state_dict mid-run
                sd = opt.state_dict()
                opt = optim.Adam([p], lr=1e-2, amsgrad=True)
                opt.load_state_dict(sd)
            p.grad = to(g.copy())           # clipping scales it in place
            optim.clip_grad_norm_([p], 1.0)
            opt.step()
        return p, opt

    ref, _ = run(np.asarray)
    p, opt = run(lambda a: torch.asarray(a, device=device), resume_at=3)
    assert p.data.device.type == device
    for v in opt.state[p].values():
        if hasattr(v, "device"):
            assert v.device.type == device
    np.testing.assert_allclose(to_numpy(p.data), ref.data, rtol=1e-12, atol=1e-12)
    # annealed noise lands on the gradient's device, with the requested spread
    p.grad = torch.zeros(20000, dtype=torch.float64, device=device)
    optim.add_gradient_noise_([p], 0.5, np.random.default_rng(2))
    assert p.grad.device.type == device
    assert abs(float(to_numpy(p.grad).std()) - 0.5) < 0.02
