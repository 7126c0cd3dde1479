"""The generic (namespace-only) path runs on array_api_strict and equals the
Cython path on the same numbers; this is how the CuPy path is proven without a GPU."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.backend import to_numpy

from ._cases import CASES, PARAMS
from .test_first_order import run_on as run

xps = pytest.importorskip("array_api_strict")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,k", PARAMS)
def test_array_api_strict_matches_numpy_path(name, k, dtype):
    cls, _, cfgs = CASES[name]
    strict, opt = run(cls, cfgs[k], dtype, lambda a: xps.asarray(a))
    fast, _ = run(cls, cfgs[k], dtype, lambda a: a)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for s, f in zip(strict, fast):
        assert s.dtype == dtype
        np.testing.assert_allclose(s, f, rtol=tol, atol=tol)
    # state lives in the same namespace as the parameters
    st = next(iter(opt.state.values()))
    for v in st.values():
        if hasattr(v, "shape") and v.shape:
            assert type(v).__module__.startswith("array_api_strict")


def test_state_dict_round_trip_on_array_api_strict(tmp_path):
    p = optim.Parameter(xps.asarray(np.ones(3)))
    opt = optim.Adam([p], lr=0.1)
    p.grad = xps.asarray(np.ones(3))
    opt.step()
    optim.save(opt.state_dict(), tmp_path / "s.npz")
    q = optim.Parameter(xps.asarray(np.ones(3)))
    opt2 = optim.Adam([q], lr=0.1)
    opt2.load_state_dict(optim.load(tmp_path / "s.npz"))
    assert type(opt2.state[q]["exp_avg"]).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(to_numpy(opt2.state[q]["exp_avg"]),
                                  to_numpy(opt.state[p]["exp_avg"]))


def test_clip_and_guard_on_array_api_strict():
    p = optim.Parameter(xps.asarray(np.ones(4)))
    p.grad = xps.asarray(np.full(4, 3.0))
    total = optim.clip_grad_norm_([p], 1.0)
    assert total == pytest.approx(6.0)
    assert float(xps.sum(p.grad ** 2)) == pytest.approx(1.0, rel=1e-5)
    p.grad = xps.asarray(np.array([1.0, np.nan, 0, 0]))
    assert not optim.grads_finite([p])
