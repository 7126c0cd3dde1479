"""Broadcast and gather nested state (dicts of arrays and plain values) with buffer calls only.

The structure is encoded as JSON by the checkpoint module's encoder (floats
exact, no pickle, so nothing received is ever executed); the arrays travel as
raw bytes in one contiguous ``uint8`` buffer.
"""
import json

import numpy as np

from ..checkpoint import _encode, _decode
from ._comm import get_comm

__all__ = ["pack_tree", "unpack_tree", "bcast_tree", "gather_tree"]


def pack_tree(obj):
    """Encode ``obj`` into one ``uint8`` array (JSON header + raw array bytes)."""
    arrays = []
    root = _encode(obj, arrays)
    specs = [[a.dtype.str, list(a.shape)] for a in arrays]
    header = json.dumps({"root": root, "arrays": specs}).encode("utf-8")
    total = 8 + len(header) + sum(a.nbytes for a in arrays)
    out = np.empty(total, dtype=np.uint8)
    out[:8] = np.frombuffer(np.array([len(header)], dtype="<u8").tobytes(), dtype=np.uint8)
    out[8:8 + len(header)] = np.frombuffer(header, dtype=np.uint8)
    pos = 8 + len(header)
    for a in arrays:
        n = a.nbytes
        out[pos:pos + n] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        pos += n
    return out


def unpack_tree(buf):
    """Inverse of :func:`pack_tree` (arrays are fresh copies)."""
    buf = np.asarray(buf, dtype=np.uint8)
    hlen = int(buf[:8].view("<u8")[0])
    meta = json.loads(bytes(buf[8:8 + hlen]).decode("utf-8"))
    pos = 8 + hlen
    arrays = {}
    for i, (dt, shape) in enumerate(meta["arrays"]):
        dt = np.dtype(dt)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        arrays[f"a{i}"] = buf[pos:pos + n].copy().view(dt).reshape(shape)
        pos += n
    return _decode(meta["root"], arrays, 0)


def bcast_tree(obj, root=0, comm=None):
    """Broadcast ``obj`` from ``root`` (two ``Bcast`` calls); every rank returns a copy."""
    comm = get_comm(comm)
    if comm.Get_size() == 1:
        return unpack_tree(pack_tree(obj))
    n = np.zeros(1, dtype=np.int64)
    buf = None
    if comm.Get_rank() == root:
        buf = pack_tree(obj)
        n[0] = buf.size
    comm.Bcast(n, root=root)
    if buf is None:
        buf = np.empty(int(n[0]), dtype=np.uint8)
    comm.Bcast(buf, root=root)
    return unpack_tree(buf)


def gather_tree(obj, root=0, comm=None):
    """Gather every rank's ``obj`` on ``root`` (``Gather`` of sizes, ``Gatherv`` of bytes).

    Returns the list of objects in rank order on ``root``, ``None`` elsewhere.
    """
    comm = get_comm(comm)
    buf = pack_tree(obj)
    size = comm.Get_size()
    if size == 1:
        return [unpack_tree(buf)]
    counts = np.zeros(size, dtype=np.int64)
    comm.Allgather(np.array([buf.size], dtype=np.int64), counts)
    if comm.Get_rank() == root:
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        recv = np.empty(int(counts.sum()), dtype=np.uint8)
        comm.Gatherv(buf, [recv, counts, displs, _byte_type()], root=root)
        return [unpack_tree(recv[d:d + c]) for d, c in zip(displs, counts)]
    comm.Gatherv(buf, None, root=root)
    return None


def _byte_type():
    from ._comm import mpi
    return getattr(mpi(), "BYTE", None)
