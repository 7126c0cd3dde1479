"""The generic path: every case of the table on ``array_api_strict`` gives NumPy's
values and gradients (same float64 inputs), and results stay in that namespace."""
import types

import numpy as np
import pytest

import neurenix
import neurenix.nn.functional as NF
from neurenix.backend import to_numpy

from ._cases import CASES, NEURENIX, inputs

xps = pytest.importorskip("array_api_strict")

STRICT = types.SimpleNamespace(
    F=NF, name="strict",
    tensor=lambda v, dtype=None: neurenix.tensor(xps.asarray(np.asarray(v)), dtype=dtype))

GENERIC = [c for c in CASES if c[0] != "index_mask"]


@pytest.mark.parametrize("name, fn, shapes, positive", GENERIC, ids=[c[0] for c in GENERIC])
def test_case_on_array_api_strict_equals_numpy(name, fn, shapes, positive):
    arrays = inputs(shapes, positive, seed=3)
    ours = [neurenix.tensor(a, requires_grad=True) for a in arrays]
    strict = [neurenix.tensor(xps.asarray(a), requires_grad=True) for a in arrays]
    out, sout = fn(NEURENIX, *ours), fn(STRICT, *strict)
    assert type(sout.data) is type(xps.asarray(1.0))
    np.testing.assert_allclose(to_numpy(sout.data), out.detach().numpy(), rtol=1e-13, atol=1e-14)
    seed = np.random.default_rng(4).standard_normal(out.shape)
    out.backward(neurenix.tensor(seed))
    sout.backward(neurenix.tensor(xps.asarray(seed)))
    for a, b in zip(ours, strict):
        assert type(b.grad) is type(b.data) and b.grad.dtype == b.data.dtype
        np.testing.assert_allclose(to_numpy(b.grad), a.grad, rtol=1e-12, atol=1e-13)


def test_mask_index_gradient_is_numpy_only():
    x = neurenix.tensor(xps.asarray(np.ones((2, 2))), requires_grad=True)
    with pytest.raises(NotImplementedError, match="integer-array indexing"):
        x[x > 0]
    with neurenix.no_grad():
        assert x[x > 0].shape == (4,)
