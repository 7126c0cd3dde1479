"""Backend layer: namespace resolution, moving arrays, kernel table, threads."""
import numpy as np
import pytest

import neurenix
from neurenix import backend
from neurenix.backend import _generic

xps = pytest.importorskip("array_api_strict")


def test_array_namespace():
    assert backend.array_namespace(np.ones(2), np.ones(3)) is np
    assert backend.array_namespace(np.ones(2), 1.0) is np
    a = xps.asarray([1.0])
    assert backend.array_namespace(a) is xps
    with pytest.raises(TypeError):
        backend.array_namespace(a, np.ones(1))


def test_moving_between_namespaces():
    a = np.arange(3.0, dtype=np.float32)
    s = backend.to_namespace(a, xps)
    assert s.dtype == xps.float32
    back = backend.to_numpy(s)
    np.testing.assert_array_equal(back, a)
    assert back.dtype == np.float32


def test_kernel_table():
    assert backend.kernels_for(np, np.float32) is backend.numpy_kernels
    assert backend.kernels_for(np, np.float64) is backend.numpy_kernels
    assert isinstance(backend.kernels_for(np, np.float16), _generic.GenericKernels)
    assert isinstance(backend.kernels_for(xps, xps.float64), _generic.GenericKernels)


def test_threads_control():
    old = neurenix.get_num_threads()
    with neurenix.num_threads(1):
        assert neurenix.get_num_threads() == 1
    assert neurenix.get_num_threads() == old
    with pytest.raises(ValueError, match="n"):
        neurenix.set_num_threads(0)
    with pytest.raises(TypeError, match="n"):
        neurenix.set_num_threads(1.5)


def test_kernels_refuse_structurally_bad_arrays():
    """Defence in depth: even called directly, the Cython layer refuses input that
    could make it read or write out of bounds."""
    k = backend.numpy_kernels
    sc = np.ones((1, 3))
    p, g = np.ones(4), np.ones(4)
    with pytest.raises(ValueError):
        k.adam([p], [np.ones(3)], [np.ones(4)], [np.ones(4)], None, sc, 0.9, 0.99, 1e-8, 0, False, False, False)
    with pytest.raises(TypeError):
        k.adam([p], [g.astype(np.float32)], [np.ones(4)], [np.ones(4)], None, sc, 0.9, 0.99, 1e-8, 0, False, False, False)
    with pytest.raises(ValueError):
        k.adam([np.ones(8)[::2]], [g], [np.ones(4)], [np.ones(4)], None, sc, 0.9, 0.99, 1e-8, 0, False, False, False)
    with pytest.raises(ValueError):
        k.adam([p], [g], [np.ones(4)], [np.ones(4)], None, np.ones((2, 3)), 0.9, 0.99, 1e-8, 0, False, False, False)
    ro = np.ones(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        k.adam([ro], [g], [np.ones(4)], [np.ones(4)], None, sc, 0.9, 0.99, 1e-8, 0, False, False, False)
    with pytest.raises(TypeError):
        k.adam([np.ones(4, dtype=np.int64)], [g], [np.ones(4)], [np.ones(4)], None, sc, 0.9, 0.99, 1e-8, 0, False, False, False)
