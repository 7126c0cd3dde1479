"""All-reduce algorithms on buffer calls: MPI's own, a ring on ``Sendrecv``, hierarchical.

- :func:`allreduce` — ``Allreduce(MPI.IN_PLACE, buf, op=SUM)`` when MPI can
  reduce the dtype itself, else :func:`ring_allreduce`.
- :func:`ring_allreduce` — reduce-scatter then all-gather around a ring, one
  ``Sendrecv`` per step (Patarasuk & Yuan 2009, "Bandwidth optimal all-reduce
  algorithms for clusters of workstations", JPDC 69(2)).  Each rank sends and
  receives ``2 (p-1)/p n`` bytes for an ``n``-byte buffer, in ``2 (p-1)`` steps.
  It takes any element-wise ``combine``, so it reduces payloads MPI has no
  operation for (``float16``, ``bfloat16`` stored as ``uint16``).
- :class:`HierarchicalAllreduce` — ``Reduce`` to a leader inside each node
  (``Split_type(COMM_TYPE_SHARED)``), ``Allreduce`` among the leaders, ``Bcast``
  inside the node: inter-node traffic is one buffer per node instead of one
  per rank.
"""
import numpy as np

from ._comm import get_comm, mpi, mpi_dtype_ok, as_flat

__all__ = ["allreduce", "ring_allreduce", "HierarchicalAllreduce"]


def _add(acc, incoming):
    np.add(acc, incoming, out=acc)


def allreduce(buf, comm=None, stats=None):
    """Sum ``buf`` over all ranks, in place (``MPI.IN_PLACE``).

    Parameters
    ----------
    buf : ndarray
        C-contiguous; overwritten with the sum.
    comm : communicator, optional
    stats : CommStats, optional
        Records the traffic.

    Returns
    -------
    buf
    """
    comm = get_comm(comm)
    flat = as_flat(buf, "buf")
    if comm.Get_size() > 1:
        if mpi_dtype_ok(flat.dtype):
            MPI = mpi()
            comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            if stats is not None:
                stats.collective("Allreduce", flat.nbytes, comm.Get_size())
        else:
            ring_allreduce(flat, comm, stats=stats)
    elif stats is not None:
        stats.collective("Allreduce", flat.nbytes, 1)
    return buf


def _chunks(n, p):
    base, extra = divmod(n, p)
    sizes = np.full(p, base, dtype=np.int64)
    sizes[:extra] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return starts, sizes


def ring_allreduce(buf, comm=None, combine=None, stats=None):
    """Ring all-reduce of a 1-D buffer in place, on ``Sendrecv`` only.

    Parameters
    ----------
    buf : ndarray
        C-contiguous, any dtype (MPI only moves bytes); overwritten with the
        reduction.
    comm : communicator, optional
    combine : callable, optional
        ``combine(acc, incoming)`` folds ``incoming`` into ``acc`` in place;
        default ``np.add(acc, incoming, out=acc)``.  Must be associative and
        commutative up to rounding.
    stats : CommStats, optional
        Records the bytes actually sent and received.

    Returns
    -------
    buf

    Notes
    -----
    The buffer is cut into ``p`` chunks.  Reduce-scatter: at step ``s`` rank
    ``r`` sends chunk ``(r - s) mod p`` to ``r + 1`` and folds chunk
    ``(r - s - 1) mod p`` received from ``r - 1``; after ``p - 1`` steps it
    holds the full reduction of chunk ``(r + 1) mod p``.  All-gather: ``p - 1``
    more steps pass the reduced chunks around.  Every rank ends with the same
    bits (each chunk is reduced once, by one rank, then copied).
    """
    comm = get_comm(comm)
    flat = as_flat(buf, "buf")
    p = comm.Get_size()
    if p == 1:
        return buf
    combine = _add if combine is None else combine
    r = comm.Get_rank()
    right, left = (r + 1) % p, (r - 1) % p
    starts, sizes = _chunks(flat.shape[0], p)
    tmp = np.empty(int(sizes.max()), dtype=flat.dtype)
    item = flat.dtype.itemsize
    sent = received = 0
    for s in range(p - 1):
        si, ri = (r - s) % p, (r - s - 1) % p
        send = flat[starts[si]:starts[si] + sizes[si]]
        recv = tmp[:sizes[ri]]
        comm.Sendrecv(send, dest=right, sendtag=s, recvbuf=recv, source=left, recvtag=s)
        combine(flat[starts[ri]:starts[ri] + sizes[ri]], recv)
        sent += send.shape[0] * item
        received += recv.shape[0] * item
    for s in range(p - 1):
        si, ri = (r + 1 - s) % p, (r - s) % p
        send = flat[starts[si]:starts[si] + sizes[si]]
        comm.Sendrecv(send, dest=right, sendtag=p + s,
                      recvbuf=flat[starts[ri]:starts[ri] + sizes[ri]], source=left, recvtag=p + s)
        sent += send.shape[0] * item
        received += int(sizes[ri]) * item
    if stats is not None:
        stats.point_to_point("ring_allreduce", sent, received)
    return buf


class HierarchicalAllreduce:
    """Two-level all-reduce: inside each node, then among node leaders.

    Parameters
    ----------
    comm : communicator, optional
    local_size : int, optional
        Ranks per node.  Default: the node's shared-memory group
        (``comm.Split_type(MPI.COMM_TYPE_SHARED)``).  Setting it groups
        consecutive ranks instead, which emulates several nodes on one
        machine (for tests and benchmarks).

    Attributes
    ----------
    node : communicator
        The ranks of this node.
    leaders : communicator or None
        The node leaders (local rank 0), ``None`` on the other ranks.
    """

    def __init__(self, comm=None, local_size=None):
        self.comm = comm = get_comm(comm)
        MPI = mpi()
        rank = comm.Get_rank()
        if local_size is None:
            self.node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        else:
            if isinstance(local_size, bool) or not isinstance(local_size, int) or local_size < 1:
                raise ValueError(f"local_size must be a positive int, got {local_size!r}")
            self.node = comm.Split(rank // local_size, rank)
        is_leader = self.node.Get_rank() == 0
        lead = comm.Split(0 if is_leader else MPI.UNDEFINED, rank)
        self.leaders = lead if is_leader else None

    def __call__(self, buf, stats=None):
        """Sum ``buf`` over every rank of ``comm``, in place; return it."""
        MPI = mpi()
        flat = as_flat(buf, "buf")
        if not mpi_dtype_ok(flat.dtype):
            raise TypeError(f"buf: HierarchicalAllreduce needs a dtype MPI can reduce, got {flat.dtype}")
        node = self.node
        if node.Get_size() > 1:
            if node.Get_rank() == 0:
                node.Reduce(MPI.IN_PLACE, flat, op=MPI.SUM, root=0)
            else:
                node.Reduce(flat, None, op=MPI.SUM, root=0)
            if stats is not None:
                stats.collective("Reduce", flat.nbytes, node.Get_size())
        if self.leaders is not None:
            allreduce(flat, self.leaders, stats=stats)
        if node.Get_size() > 1:
            node.Bcast(flat, root=0)
            if stats is not None:
                stats.collective("Bcast", flat.nbytes, node.Get_size())
        return buf

    def free(self):
        """Free the split communicators."""
        for c in (self.node, self.leaders):
            if c is not None and hasattr(c, "Free"):
                c.Free()
        self.node = self.leaders = None

