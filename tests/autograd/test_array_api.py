"""The generic path: every case of the table on ``array_api_strict`` gives NumPy's
values and gradients (same float64 inputs), and results stay in that namespace."""
import types

import numpy as np
import pytest

import neurenix
import neurenix.nn.functional as NF
from ._cases import CASES, check_backend_equals_numpy

xps = pytest.importorskip("array_api_strict")

STRICT = types.SimpleNamespace(
    F=NF, name="strict",
    tensor=lambda v, dtype=None: neurenix.tensor(xps.asarray(np.asarray(v)), dtype=dtype))

GENERIC = [c for c in CASES if c[0] != "index_mask"]


@pytest.mark.parametrize("name, fn, shapes, positive", GENERIC, ids=[c[0] for c in GENERIC])
def test_case_on_array_api_strict_equals_numpy(name, fn, shapes, positive):
    check_backend_equals_numpy(fn, shapes, positive, STRICT, xps.asarray)


def test_mask_index_gradient_is_numpy_only():
    x = neurenix.tensor(xps.asarray(np.ones((2, 2))), requires_grad=True)
    with pytest.raises(NotImplementedError, match="integer-array indexing"):
        x[x > 0]
    with neurenix.no_grad():
        assert x[x > 0].shape == (4,)
