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
#: deepest nesting :func:`load` accepts (a state_dict is 4-5 levels deep)
_MAX_DEPTH = 100
#: default cap on a checkpoint's size
_MAX_BYTES = 16 * 2 ** 30
#: temporary files of :func:`save` are ``.<target name>.tmp-<pid>-<random>.npz``
_TMP_INFIX = ".tmp-"


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


def _decode(node, arrays, depth):
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"structure nested deeper than {_MAX_DEPTH} levels")
    depth += 1
    if isinstance(node, list):
        return [_decode(v, arrays, depth) for v in node]
    if isinstance(node, dict):
        if len(node) != 1:
            raise CheckpointError(f"malformed node with keys {sorted(node)[:5]}")
        (tag, body), = node.items()
        if tag == "__f__":
            if not isinstance(body, str):
                raise CheckpointError("malformed float node")
            return float(body)
        if tag == "__d__":
            out = {}
            for item in body:
                if not isinstance(item, list) or len(item) != 2:
                    raise CheckpointError("malformed dict item")
                k, v = item
                if isinstance(k, dict):
                    if set(k) != {"__i__"} or type(k["__i__"]) is not int:
                        raise CheckpointError("malformed dict key")
                    key = k["__i__"]
                elif isinstance(k, str):
                    key = k
                else:
                    raise CheckpointError("malformed dict key")
                out[key] = _decode(v, arrays, depth)
            return out
        if tag == "__t__":
            if not isinstance(body, list):
                raise CheckpointError("malformed tuple node")
            return tuple(_decode(v, arrays, depth) for v in body)
        if tag == "__a__":
            if type(body) is not int or f"a{body}" not in arrays:
                raise CheckpointError(f"array reference {body!r} names no array in the file")
            return arrays[f"a{body}"]
        raise CheckpointError(f"unknown node {tag!r} in checkpoint structure")
    if node is None or isinstance(node, (bool, int, str)):
        return node
    raise CheckpointError(f"unexpected value of type {type(node).__name__} in the structure")


def _depth_checked_encode(obj, arrays):
    try:
        return _encode(obj, arrays)
    except RecursionError:
        raise TypeError("obj: structure nested too deeply to save") from None


def _clean_orphans(directory, base):
    """Remove temporary files of earlier :func:`save` calls on the same target whose
    process is gone (killed between writing and renaming, e.g. by ``kill -9``)."""
    prefix = f".{base}{_TMP_INFIX}"
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".npz")):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        pid = int(pid)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue                          # its writer is alive: leave it
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue                          # alive under another user, or unknown
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _fsync_dir(directory):
    """Make the rename durable: fsync the directory entry (POSIX; a no-op where a
    directory cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(obj, path):
    """Write ``obj`` (arrays and plain values, nested) to ``path`` atomically.

    The file is written under a temporary name in the same directory, flushed and
    fsync'ed, renamed over ``path``, and the directory is fsync'ed so that the rename
    survives a power loss. Temporary files left by an earlier writer of the same
    ``path`` that was killed (its process no longer exists) are removed.

    Parameters
    ----------
    obj : dict, list, tuple, array or plain value
        Typically ``optimizer.state_dict()``.
    path : str or os.PathLike
    """
    path = os.fspath(path)
    arrays = []
    meta = {"magic": _MAGIC, "version": _VERSION, "root": _depth_checked_encode(obj, arrays)}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries["__neurenix__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _clean_orphans(directory, base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}{_TMP_INFIX}{os.getpid()}-", suffix=".npz",
                               dir=directory)
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
    _fsync_dir(directory)


def load(path, *, max_bytes=_MAX_BYTES):
    """Read a checkpoint written by :func:`save`; never executes code.

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int, optional
        Refuse files (and archive members) larger than this (default 16 GiB): a cap
        against files crafted to exhaust memory.

    Raises
    ------
    CheckpointError (a ValueError)
        When ``path`` is truncated, corrupt, not a neurenix checkpoint, holds compressed
        members (:func:`save` never writes any, and a compressed member can inflate
        without bound), members that overlap or claim more bytes than the file holds, a
        malformed structure, or nesting deeper than 100 levels.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > max_bytes:
        raise CheckpointError(f"path: {path!r} is {size} bytes, over max_bytes={max_bytes}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"path: {path!r} has a compressed member "
                                          f"{info.filename!r}; neurenix checkpoints store "
                                          "members uncompressed (refused: decompression bomb)")
                total += info.file_size
            if total > len(raw):
                raise CheckpointError(f"path: {path!r}: its members claim {total} bytes, more "
                                      f"than the file's {len(raw)} (overlapping members)")
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            if "__neurenix__" not in z.files:
                raise CheckpointError(f"path: {path!r} is not a neurenix checkpoint")
            meta = json.loads(bytes(z["__neurenix__"]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("magic") != _MAGIC:
                raise CheckpointError(f"path: {path!r} is not a neurenix checkpoint")
            if meta.get("version") != _VERSION:
                raise CheckpointError(f"path: {path!r} has unsupported checkpoint version "
                                      f"{meta.get('version')!r}")
            if "root" not in meta:
                raise CheckpointError(f"path: {path!r} has no 'root' in its structure")
            arrays = {name: z[name] for name in z.files if name != "__neurenix__"}
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"path: {path!r}: its structure is nested too deeply") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError) as exc:
        raise CheckpointError(f"path: {path!r} is truncated, corrupt or not a neurenix "
                              f"checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        return _decode(meta["root"], arrays, 0)
    except CheckpointError as exc:
        raise CheckpointError(f"path: {path!r}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"path: {path!r}: malformed checkpoint structure "
                              f"({type(exc).__name__}: {exc})") from None
