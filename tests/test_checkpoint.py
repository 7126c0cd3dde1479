"""Checkpoint files: exact round trip of structure, atomic write, no pickle."""
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import zipfile

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
    assert [f for f in os.listdir(tmp_path) if ".tmp-" in f] == []


def test_object_arrays_refused(tmp_path):
    with pytest.raises(TypeError, match="object"):
        checkpoint.save({"v": np.array([object()])}, tmp_path / "x.npz")


# ------------------------------------------------------------------ hostile files (issue #16)
def _npz_with_meta(path, meta_text, arrays=(), compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(meta_text.encode(), dtype=np.uint8))
        zf.writestr("__neurenix__.npy", buf.getvalue())
        for i, a in enumerate(arrays):
            buf = io.BytesIO()
            np.save(buf, a)
            zf.writestr(f"a{i}.npy", buf.getvalue())


def test_compressed_member_refused_without_inflating(tmp_path):
    # a 1000x bomb: 40 MB of zeros deflate to ~40 kB
    path = tmp_path / "bomb.npz"
    meta = json.dumps({"magic": "neurenix-checkpoint", "version": 1, "root": {"__a__": 0}})
    _npz_with_meta(path, meta, [np.zeros(5_000_000)], compression=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(path) < 200_000
    with pytest.raises(checkpoint.CheckpointError, match="compressed member"):
        checkpoint.load(path)


def test_size_cap(tmp_path):
    path = tmp_path / "o.npz"
    checkpoint.save({"a": np.zeros(1000)}, path)
    with pytest.raises(checkpoint.CheckpointError, match="max_bytes"):
        checkpoint.load(path, max_bytes=1000)


@pytest.mark.parametrize("root", [
    {"__d__": 5}, {"__d__": [[1, 2, 3]]}, {"__a__": 7}, {"__a__": "0"}, {"__f__": 1.5},
    {"__t__": 3}, {"__x__": 1}, {"__f__": "1", "__a__": 0}, {"__d__": [[{"__i__": "k"}, 1]]},
    {"__d__": [[3.5, 1]]}, 1.5,
])
def test_malformed_structure_is_checkpoint_error_naming_path(tmp_path, root):
    path = tmp_path / "bad.npz"
    _npz_with_meta(path, json.dumps({"magic": "neurenix-checkpoint", "version": 1, "root": root}))
    with pytest.raises(checkpoint.CheckpointError, match="bad.npz"):
        checkpoint.load(path)


@pytest.mark.parametrize("depth", [150, 100_000])
def test_deep_nesting_is_checkpoint_error(tmp_path, depth):
    path = tmp_path / "deep.npz"
    text = ('{"magic": "neurenix-checkpoint", "version": 1, "root": ' + "[" * depth + "]" * depth
            + "}")
    _npz_with_meta(path, text)
    with pytest.raises(checkpoint.CheckpointError, match="deep"):
        checkpoint.load(path)


def test_missing_root_and_meta_not_a_dict(tmp_path):
    for i, meta in enumerate(['{"magic": "neurenix-checkpoint", "version": 1}', "[1, 2]", '"x"']):
        path = tmp_path / f"m{i}.npz"
        _npz_with_meta(path, meta)
        with pytest.raises(checkpoint.CheckpointError, match=f"m{i}.npz"):
            checkpoint.load(path)


_KILLED_WRITER = """
import sys, time, numpy as np
from neurenix import checkpoint
real = np.savez
def slow(f, **kw):
    real(f, **kw)
    f.flush()
    print("written", flush=True)
    time.sleep(60)
np.savez = slow
checkpoint.save({"a": np.arange(10.0)}, sys.argv[1])
"""


def test_orphan_temp_file_of_a_killed_writer_is_removed(tmp_path):
    target = tmp_path / "ck.npz"
    checkpoint.save({"v": 1}, target)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=pathlib.Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "written"
        orphans = [f for f in os.listdir(tmp_path) if ".tmp-" in f]
        assert len(orphans) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [f for f in os.listdir(tmp_path) if ".tmp-" in f] == orphans   # left by kill -9
    assert checkpoint.load(target) == {"v": 1}                               # old file intact
    checkpoint.save({"v": 2}, target)
    assert [f for f in os.listdir(tmp_path) if ".tmp-" in f] == []
    assert checkpoint.load(target) == {"v": 2}


def test_live_writers_temp_file_is_left_alone(tmp_path):
    target = tmp_path / "ck.npz"
    live = tmp_path / f".ck.npz.tmp-{os.getppid()}-abc.npz"      # our parent is alive
    live.write_bytes(b"partial")
    checkpoint.save({"v": 1}, target)
    assert live.exists()


def test_save_fsyncs_the_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else True)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    checkpoint.save({"v": 1}, tmp_path / "d.npz")
    assert synced[-1] is True and len(synced) == 2      # the file, then its directory
