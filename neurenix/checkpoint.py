"""Checkpoints that loading never executes: arrays + plain values in an ``.npz`` file.

:func:`save` writes nested dicts/lists/tuples of arrays and plain Python values
(``None``, bool, int, float, str) — an optimizer's or scheduler's
``state_dict()`` — to a NumPy ``.npz`` archive: every array is its own entry,
the structure is a JSON document in the entry ``__neurenix__``.  Loading uses
``allow_pickle=False``, so a file can never run code.  The file is written to a
temporary name in the same directory, flushed to disk and renamed over the
target (atomic on POSIX), so a crash never leaves a half-written checkpoint.
Floats round-trip exactly (JSON keeps ``repr``), arrays bit for bit.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save", "load", "CheckpointError"]

_MAGIC = "neurenix-checkpoint"
_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a (complete) neurenix checkpoint."""


def _encode(obj, arrays):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return {"__f__": repr(float(obj))}
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, np.integer)) or isinstance(k, bool):
                raise TypeError(f"obj: dict keys must be str or int, got {type(k).__name__}")
            items.append([k if isinstance(k, str) else {"__i__": int(k)}, _encode(v, arrays)])
        return {"__d__": items}
    if isinstance(obj, tuple):
        return {"__t__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, arrays) for v in obj]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        from .backend import to_numpy

        a = to_numpy(obj)
        if a.dtype == object:
            raise TypeError("obj: object arrays cannot be saved")
        arrays.append(np.ascontiguousarray(a))
        return {"__a__": len(arrays) - 1}
    raise TypeError(f"obj: cannot save a value of type {type(obj).__name__} "
                    "(arrays and plain Python values only)")


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if "__f__" in node:
            return float(node["__f__"])
        if "__d__" in node:
            out = {}
            for k, v in node["__d__"]:
                key = k["__i__"] if isinstance(k, dict) else k
                out[key] = _decode(v, arrays)
            return out
        if "__t__" in node:
            return tuple(_decode(v, arrays) for v in node["__t__"])
        if "__a__" in node:
            return arrays[f"a{int(node['__a__'])}"]
        raise CheckpointError("unknown node in checkpoint structure")
    return node


def save(obj, path):
    """Write ``obj`` (arrays and plain values, nested) to ``path`` atomically.

    Parameters
    ----------
    obj : dict, list, tuple, array or plain value
        Typically ``optimizer.state_dict()``.
    path : str or os.PathLike
    """
    path = os.fspath(path)
    arrays = []
    meta = {"magic": _MAGIC, "version": _VERSION, "root": _encode(obj, arrays)}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries["__neurenix__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path):
    """Read a checkpoint written by :func:`save`; never executes code.

    Raises
    ------
    CheckpointError (a ValueError)
        When ``path`` is truncated, corrupt, or not a neurenix checkpoint.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            if "__neurenix__" not in z.files:
                raise CheckpointError(f"path: {path!r} is not a neurenix checkpoint")
            meta = json.loads(bytes(z["__neurenix__"]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("magic") != _MAGIC:
                raise CheckpointError(f"path: {path!r} is not a neurenix checkpoint")
            if meta.get("version") != _VERSION:
                raise CheckpointError(f"path: {path!r} has unsupported checkpoint version "
                                      f"{meta.get('version')!r}")
            arrays = {name: z[name] for name in z.files if name != "__neurenix__"}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError) as exc:
        raise CheckpointError(f"path: {path!r} is truncated, corrupt or not a neurenix "
                              f"checkpoint ({type(exc).__name__}: {exc})") from None
    return _decode(meta["root"], arrays)
