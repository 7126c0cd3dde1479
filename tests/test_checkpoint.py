"""Checkpoint files: exact round trip of structure, atomic write, no pickle."""
import os

import numpy as np
import pytest

from neurenix import checkpoint


def test_round_trip_exact(tmp_path):
    obj = {"a": np.arange(5, dtype=np.float32), 3: [1, 2.5, None, True, "s", (1, 2)],
           "nested": {"x": 0.1 + 0.2, "inf": float("inf"), "e": np.float64(1e-300),
                      "i": np.int64(7)}}
    path = tmp_path / "o.npz"
    checkpoint.save(obj, path)
    back = checkpoint.load(path)
    assert set(back) == {"a", 3, "nested"}
    np.testing.assert_array_equal(back["a"], obj["a"])
    assert back["a"].dtype == np.float32
    assert back[3] == [1, 2.5, None, True, "s", (1, 2)]
    assert back["nested"]["x"] == 0.1 + 0.2
    assert back["nested"]["inf"] == float("inf")
    assert back["nested"]["e"] == 1e-300 and back["nested"]["i"] == 7


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "o.npz"
    checkpoint.save({"v": 1}, path)

    class Bad:
        pass

    with pytest.raises(TypeError, match="obj"):
        checkpoint.save({"v": Bad()}, path)
    assert checkpoint.load(path) == {"v": 1}
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


def test_object_arrays_refused(tmp_path):
    with pytest.raises(TypeError, match="object"):
        checkpoint.save({"v": np.array([object()])}, tmp_path / "x.npz")
