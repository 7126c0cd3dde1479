"""Communicators, the size-1 fallback, traffic accounting and the reliability helpers.

Everything in :mod:`neurenix.distributed` talks to MPI through the objects of
this module, so that the same code runs

- under ``mpiexec -n K python -m mpi4py script.py`` on an mpi4py communicator, and
- in a plain ``python`` process without mpi4py installed, on :class:`SelfComm`,
  a size-1 communicator with the same buffer-collective methods.

Only buffer collectives (the capitalised mpi4py methods: ``Allreduce``,
``Bcast``, ``Allgatherv``, ``Reduce_scatter_block``, ``Sendrecv``, ...) on
contiguous arrays are used on hot paths; the pickle-based lowercase calls are
kept for small metadata only.

Reliability
-----------
An exception on one rank must not leave the other ranks waiting forever in
the next collective.  Two helpers make failures collective:

- :func:`collective_errors` (a context manager) and :func:`run_collective`
  run a body, then all-reduce a per-rank failure flag; if any rank failed,
  every rank raises (the failing ranks their own exception, the others a
  :class:`DistributedError` naming the failing ranks).
- :func:`wait_all` and :func:`barrier` wait on non-blocking requests by
  polling them against a deadline and call ``comm.Abort(1)`` past it, so a
  rank that never arrives ends the job with a non-zero exit status instead
  of a hang.

The deadline is ``timeout`` when given, else :func:`get_default_timeout`
(``None`` = wait forever, or the environment variable
``NEURENIX_DIST_TIMEOUT`` in seconds, or :func:`set_default_timeout`).
"""
import contextlib
import os
import sys
import time

import numpy as np

__all__ = [
    "get_comm", "mpi", "have_mpi", "SelfComm", "CommStats", "DistributedError",
    "collective_errors", "run_collective", "failed_ranks", "wait_all", "barrier",
    "get_default_timeout", "set_default_timeout", "as_flat", "mpi_dtype_ok",
]

# ----------------------------------------------------------------- mpi4py probe
_MPI = None          # the mpi4py.MPI module once imported, or the fallback namespace
_DEFAULT_COMM = None


class _InPlace:
    """Stand-in for ``MPI.IN_PLACE`` when mpi4py is not installed."""

    def __repr__(self):
        return "IN_PLACE"


class _Op:
    """Stand-in for a predefined reduction ``MPI.Op`` (size 1: the identity)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class _DoneRequest:
    """A request that is already complete (what a size-1 non-blocking call returns)."""

    def Wait(self, status=None):
        return None

    def Test(self, status=None):
        return True

    def Free(self):
        return None

    def Cancel(self):
        return None

    @staticmethod
    def Waitall(requests, statuses=None):
        return None

    @staticmethod
    def Testall(requests, statuses=None):
        return True


def mpi():
    """The ``mpi4py.MPI`` module, or the size-1 fallback namespace without mpi4py.

    The fallback has the constants the library uses (``IN_PLACE``, ``SUM``,
    ``MAX``, ``MIN``, ``PROD``, ``LAND``, ``LOR``, ``BAND``, ``BOR``,
    ``UNDEFINED``, ``COMM_TYPE_SHARED``), ``COMM_WORLD``/``COMM_SELF`` (a
    :class:`SelfComm`), ``Request`` (``Waitall``/``Testall``) and ``Wtime``.
    Setting the environment variable ``NEURENIX_NO_MPI=1`` forces the fallback
    even where mpi4py is installed.
    """
    global _MPI
    if _MPI is None:
        mod = None
        if os.environ.get("NEURENIX_NO_MPI", "") not in ("1", "true", "yes"):
            try:
                from mpi4py import MPI as mod
            except ImportError:
                mod = None
        _MPI = mod if mod is not None else _fallback_namespace()
    return _MPI


def have_mpi():
    """True when mpi4py is importable (and not disabled by ``NEURENIX_NO_MPI``)."""
    return not isinstance(mpi(), _FallbackMPI)


class _FallbackMPI:
    """The subset of ``mpi4py.MPI`` that a size-1 run needs."""

    def __init__(self):
        self.IN_PLACE = _InPlace()
        for name in ("SUM", "MAX", "MIN", "PROD", "LAND", "LOR", "BAND", "BOR", "MAXLOC", "MINLOC"):
            setattr(self, name, _Op(name))
        self.UNDEFINED = -32766
        self.COMM_TYPE_SHARED = 1
        self.Request = _DoneRequest
        self.COMM_WORLD = SelfComm("COMM_WORLD")
        self.COMM_SELF = SelfComm("COMM_SELF")

    @staticmethod
    def Wtime():
        return time.perf_counter()

    @staticmethod
    def Is_initialized():
        return True

    @staticmethod
    def Is_finalized():
        return False

    def __repr__(self):
        return "<neurenix size-1 MPI fallback>"


def _fallback_namespace():
    return _FallbackMPI()


# ---------------------------------------------------------------- buffer helpers
def _spec_array(spec):
    """The array of an mpi4py buffer specification (``arr`` or ``[arr, ...]``)."""
    if isinstance(spec, (list, tuple)):
        return spec[0]
    return spec


def _spec_counts(spec):
    """``(counts, displs)`` of a vector buffer spec, or ``None``."""
    if not isinstance(spec, (list, tuple)) or len(spec) < 2:
        return None
    rest = [x for x in spec[1:] if not isinstance(x, str) and not hasattr(x, "Get_size")]
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)) and len(rest[0]) == 2 \
            and isinstance(rest[0][0], (list, tuple, np.ndarray)):
        return rest[0][0], rest[0][1]
    if len(rest) >= 2:
        return rest[0], rest[1]
    return None


def as_flat(a, name="buffer"):
    """A flat view of a C-contiguous array (no copy); ``ValueError`` otherwise."""
    if isinstance(a, np.ndarray):
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous array")
        return a.reshape(-1)
    flat = a.reshape(-1)   # CuPy and other Array-API arrays: a view when contiguous
    return flat


def _copy(dst_spec, src_spec, dst_offset=0, count=None):
    dst = as_flat(_spec_array(dst_spec), "recvbuf")
    src = as_flat(_spec_array(src_spec), "sendbuf")
    n = src.shape[0] if count is None else count
    if dst_offset + n > dst.shape[0] or n > src.shape[0]:
        raise ValueError(f"message truncated: {n} items into a buffer of {dst.shape[0] - dst_offset}")
    dst[dst_offset:dst_offset + n] = src[:n]


def _copy_v(recvbuf, sendbuf):
    """Size-1 vector collective: ``sendbuf`` into ``recvbuf`` at rank 0's displacement."""
    cd = _spec_counts(recvbuf)
    if cd is None:
        _copy(recvbuf, sendbuf)
    else:
        counts, displs = cd
        _copy(recvbuf, sendbuf, dst_offset=int(displs[0]) if displs is not None else 0,
              count=int(counts[0]))


def mpi_dtype_ok(dtype):
    """True when MPI can reduce arrays of ``dtype`` itself (predefined numeric types)."""
    dt = np.dtype(dtype)
    return dt.kind in "biufc" and dt.itemsize <= 16 and dt != np.float16


# ------------------------------------------------------------------- SelfComm
class SelfComm:
    """A size-1 communicator with mpi4py's buffer-collective methods.

    Used by :func:`get_comm` when mpi4py is not installed, so size-1 code runs
    unchanged without MPI: every collective copies ``sendbuf`` into
    ``recvbuf`` (or does nothing with ``IN_PLACE``), non-blocking calls return
    a completed request, ``Split``/``Dup``/``Split_type`` return a new
    ``SelfComm``.  Buffer specifications are mpi4py's: an array, or a list
    ``[array, ...]`` (``[array, counts, displs, type]`` or
    ``[array, (counts, displs), type]`` for the vector variants).
    """

    def __init__(self, name="SelfComm"):
        self._name = name

    # ----------------------------------------------------------- info
    rank = property(lambda self: 0)
    size = property(lambda self: 1)

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Get_name(self):
        return self._name

    def Set_name(self, name):
        self._name = str(name)

    def __repr__(self):
        return f"<SelfComm {self._name!r} size=1>"

    # ----------------------------------------------------- management
    def Dup(self):
        return SelfComm(self._name + "_dup")

    def Split(self, color=0, key=0):
        return SelfComm(self._name + "_split")

    def Split_type(self, split_type, key=0, info=None):
        return SelfComm(self._name + "_shared")

    def Free(self):
        return None

    def Abort(self, errorcode=1):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(int(errorcode))

    # ---------------------------------------------------- collectives
    def Barrier(self):
        return None

    def Ibarrier(self):
        return _DoneRequest()

    def Bcast(self, buf, root=0):
        self._check_root(root)

    def Ibcast(self, buf, root=0):
        self._check_root(root)
        return _DoneRequest()

    def Allreduce(self, sendbuf, recvbuf, op=None):
        if not isinstance(sendbuf, _InPlace):
            _copy(recvbuf, sendbuf)

    def Iallreduce(self, sendbuf, recvbuf, op=None):
        self.Allreduce(sendbuf, recvbuf, op)
        return _DoneRequest()

    def Reduce(self, sendbuf, recvbuf, op=None, root=0):
        self._check_root(root)
        if not isinstance(sendbuf, _InPlace):
            _copy(recvbuf, sendbuf)

    def Allgather(self, sendbuf, recvbuf):
        if not isinstance(sendbuf, _InPlace):
            _copy(recvbuf, sendbuf)

    def Iallgather(self, sendbuf, recvbuf):
        self.Allgather(sendbuf, recvbuf)
        return _DoneRequest()

    def Allgatherv(self, sendbuf, recvbuf):
        if not isinstance(sendbuf, _InPlace):
            _copy_v(recvbuf, sendbuf)

    def Iallgatherv(self, sendbuf, recvbuf):
        self.Allgatherv(sendbuf, recvbuf)
        return _DoneRequest()

    def Gather(self, sendbuf, recvbuf, root=0):
        self._check_root(root)
        if not isinstance(sendbuf, _InPlace):
            _copy(recvbuf, sendbuf)

    def Gatherv(self, sendbuf, recvbuf, root=0):
        self._check_root(root)
        if not isinstance(sendbuf, _InPlace):
            _copy_v(recvbuf, sendbuf)

    def Scatter(self, sendbuf, recvbuf, root=0):
        self._check_root(root)
        if not isinstance(recvbuf, _InPlace):
            src = as_flat(_spec_array(sendbuf), "sendbuf")
            n = as_flat(_spec_array(recvbuf), "recvbuf").shape[0]
            _copy(recvbuf, src, count=n)

    def Reduce_scatter_block(self, sendbuf, recvbuf, op=None):
        if isinstance(sendbuf, _InPlace):
            return
        n = as_flat(_spec_array(recvbuf), "recvbuf").shape[0]
        _copy(recvbuf, sendbuf, count=n)

    def Ireduce_scatter_block(self, sendbuf, recvbuf, op=None):
        self.Reduce_scatter_block(sendbuf, recvbuf, op)
        return _DoneRequest()

    def Alltoall(self, sendbuf, recvbuf):
        if not isinstance(sendbuf, _InPlace):
            _copy(recvbuf, sendbuf)

    def Sendrecv(self, sendbuf, dest, sendtag=0, recvbuf=None, source=-2, recvtag=-1, status=None):
        if dest != 0 or source not in (0, -2):   # -2 is MPI.ANY_SOURCE
            raise ValueError(f"SelfComm has only rank 0 (dest={dest!r}, source={source!r})")
        if recvbuf is not None:
            _copy(recvbuf, sendbuf)

    # -------------------------------------- pickle-based (metadata only)
    def bcast(self, obj, root=0):
        self._check_root(root)
        return obj

    def allgather(self, obj):
        return [obj]

    def gather(self, obj, root=0):
        self._check_root(root)
        return [obj]

    def allreduce(self, obj, op=None):
        return obj

    def _check_root(self, root):
        if root != 0:
            raise ValueError(f"root must be 0 on a size-1 communicator, got {root!r}")


# ------------------------------------------------------------------ get_comm
def get_comm(comm=None):
    """The communicator to use.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or SelfComm, optional
        Returned as is (after checking that it has the buffer collectives).
        ``None`` selects the library's own communicator: a duplicate of
        ``MPI.COMM_WORLD`` (``COMM_WORLD.Dup()``, created once and cached,
        so the library's messages never match the user's), or a
        :class:`SelfComm` when mpi4py is not installed.

    Returns
    -------
    comm
    """
    global _DEFAULT_COMM
    if comm is not None:
        for attr in ("Get_size", "Get_rank", "Allreduce", "Bcast"):
            if not callable(getattr(comm, attr, None)):
                raise TypeError("comm must be an mpi4py communicator (or a SelfComm), "
                                f"got {type(comm).__name__}")
        return comm
    if _DEFAULT_COMM is None:
        MPI = mpi()
        if isinstance(MPI, _FallbackMPI):
            _DEFAULT_COMM = SelfComm("neurenix")
        else:
            c = MPI.COMM_WORLD.Dup()
            c.Set_name("neurenix")
            _DEFAULT_COMM = c
    return _DEFAULT_COMM


# --------------------------------------------------------------- CommStats
class CommStats:
    """Bytes sent and received by one rank, per operation and per step.

    Collective traffic is recorded with the bandwidth-optimal (ring) cost of
    each collective on ``p`` ranks for an ``n``-byte local payload, the model
    behind the alpha-beta estimates of the benchmark script:

    ============================  ====================  ====================
    operation                     sent per rank         received per rank
    ============================  ====================  ====================
    Allreduce                     2 (p-1)/p n           2 (p-1)/p n
    Reduce_scatter_block (n in)   (p-1)/p n             (p-1)/p n
    Allgather(v) (n out, total)   (p-1)/p n             (p-1)/p n
    Bcast (n)                     (p-1)/p n             (p-1)/p n
    Sendrecv                      bytes sent            bytes received
    ============================  ====================  ====================

    ``payload`` counts the bytes handed to each call, independent of the
    algorithm MPI picks.  Nothing is counted on a size-1 communicator's
    collectives except ``payload``.

    Attributes
    ----------
    sent, received, payload : int
        Totals since construction or :meth:`reset`.
    calls : dict
        Number of calls per operation name.
    steps : list of dict
        One ``{"sent", "received", "payload"}`` record per :meth:`end_step`.
    """

    _FACTORS = {
        "Allreduce": 2.0, "Iallreduce": 2.0, "Reduce_scatter_block": 1.0,
        "Allgather": 1.0, "Allgatherv": 1.0, "Bcast": 1.0, "Reduce": 1.0,
    }

    def __init__(self):
        self.reset()

    def reset(self):
        """Zero every counter and forget the per-step history."""
        self.sent = 0
        self.received = 0
        self.payload = 0
        self.calls = {}
        self.steps = []
        self._mark = (0, 0, 0)

    def collective(self, op, nbytes, size):
        """Record a collective ``op`` on ``size`` ranks whose total payload is ``nbytes``."""
        nbytes = int(nbytes)
        self.calls[op] = self.calls.get(op, 0) + 1
        self.payload += nbytes
        if size > 1:
            f = self._FACTORS.get(op, 1.0)
            t = int(round(f * (size - 1) / size * nbytes))
            self.sent += t
            self.received += t

    def point_to_point(self, op, sent, received):
        """Record a point-to-point exchange (``Sendrecv``, ``Send``, ...)."""
        self.calls[op] = self.calls.get(op, 0) + 1
        self.sent += int(sent)
        self.received += int(received)
        self.payload += int(sent)

    def end_step(self):
        """Close the current step: append its traffic to :attr:`steps` and return it."""
        s0, r0, p0 = self._mark
        rec = {"sent": self.sent - s0, "received": self.received - r0,
               "payload": self.payload - p0}
        self.steps.append(rec)
        self._mark = (self.sent, self.received, self.payload)
        return rec

    @property
    def last_step(self):
        """The traffic of the most recent closed step (``None`` before the first)."""
        return self.steps[-1] if self.steps else None

    def __repr__(self):
        return (f"CommStats(sent={self.sent}, received={self.received}, "
                f"payload={self.payload}, steps={len(self.steps)})")


# ---------------------------------------------------------------- reliability
class DistributedError(RuntimeError):
    """Raised on every rank when an operation failed on some rank(s).

    Attributes
    ----------
    ranks : list of int
        The ranks on which the operation raised.
    """

    def __init__(self, message, ranks=()):
        super().__init__(message)
        self.ranks = list(ranks)


_DEFAULT_TIMEOUT = "env"


def get_default_timeout():
    """The default deadline in seconds of :func:`wait_all` (``None``: wait forever)."""
    if _DEFAULT_TIMEOUT == "env":
        v = os.environ.get("NEURENIX_DIST_TIMEOUT", "")
        if not v:
            return None
        try:
            t = float(v)
        except ValueError:
            raise ValueError(f"NEURENIX_DIST_TIMEOUT must be a number of seconds, got {v!r}") from None
        return t if t > 0 else None
    return _DEFAULT_TIMEOUT


def set_default_timeout(seconds):
    """Set the default deadline of :func:`wait_all` (``None``: wait forever)."""
    global _DEFAULT_TIMEOUT
    _DEFAULT_TIMEOUT = _check_timeout(seconds)


def _check_timeout(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def _abort(comm, what, timeout):
    rank = comm.Get_rank()
    try:
        sys.stderr.write(f"neurenix.distributed: rank {rank}: {what} did not complete within "
                         f"{timeout:g} s; calling Abort(1)\n")
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        comm.Abort(1)


def wait_all(requests, comm=None, timeout="default", what="communication"):
    """Wait for non-blocking requests; past the deadline call ``comm.Abort(1)``.

    Parameters
    ----------
    requests : request or list of requests
        mpi4py ``Request`` objects (or completed size-1 requests).
    comm : communicator, optional
        Aborted on timeout (default: :func:`get_comm`).
    timeout : float or None, optional
        Seconds; ``None`` waits forever (a plain ``Waitall``).  Default:
        :func:`get_default_timeout`.
    what : str
        Named in the message written to stderr before aborting.
    """
    if not isinstance(requests, (list, tuple)):
        requests = [requests]
    if timeout == "default":
        timeout = get_default_timeout()
    timeout = _check_timeout(timeout)
    if not requests:
        return
    MPI = mpi()
    if timeout is None:
        if isinstance(requests[0], _DoneRequest):
            return
        MPI.Request.Waitall(list(requests))
        return
    if all(isinstance(r, _DoneRequest) for r in requests):
        return
    reqs = list(requests)
    deadline = time.monotonic() + timeout
    spins = 0
    while not MPI.Request.Testall(reqs):
        spins += 1
        if spins > 64:
            if time.monotonic() > deadline:
                _abort(get_comm(comm), what, timeout)
                return   # pragma: no cover - Abort does not return
            time.sleep(min(1e-3, 1e-6 * spins))


def barrier(comm=None, timeout="default"):
    """``Barrier`` with a deadline (``Ibarrier`` polled by :func:`wait_all`)."""
    comm = get_comm(comm)
    if timeout == "default":
        timeout = get_default_timeout()
    if timeout is None or not hasattr(comm, "Ibarrier"):
        comm.Barrier()
        return
    wait_all(comm.Ibarrier(), comm, timeout, what="barrier")


def failed_ranks(failed, comm=None, timeout="default"):
    """All-reduce a per-rank failure flag; return the sorted list of failing ranks.

    Every rank must call it (it is a collective).  The reduction is an
    ``Iallreduce`` waited on with :func:`wait_all`, so a rank that never
    arrives aborts the job after ``timeout`` seconds.
    """
    comm = get_comm(comm)
    size = comm.Get_size()
    flags = np.zeros(size, dtype=np.int32)
    flags[comm.Get_rank()] = 1 if failed else 0
    if size > 1:
        MPI = mpi()
        if hasattr(comm, "Iallreduce"):
            wait_all(comm.Iallreduce(MPI.IN_PLACE, flags, op=MPI.SUM), comm, timeout,
                     what="error-flag all-reduce")
        else:   # pragma: no cover - communicators without MPI-3 non-blocking collectives
            comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.SUM)
    return [int(r) for r in np.flatnonzero(flags)]


@contextlib.contextmanager
def collective_errors(comm=None, what="operation", timeout="default"):
    """Run the ``with`` body, then raise on every rank if it raised on any rank.

    The body should be local work (validation, computing); put collectives
    after the ``with`` block, once every rank knows that every rank succeeded.
    The rank(s) whose body raised re-raise their own exception; the others
    raise :class:`DistributedError` naming the failing ranks.

    Examples
    --------
    >>> from neurenix.distributed import collective_errors, DistributedError
    >>> with collective_errors(what="validation"):
    ...     x = 1 + 1
    >>> x
    2
    """
    comm = get_comm(comm)
    exc = None
    try:
        yield
    except Exception as e:   # KeyboardInterrupt/SystemExit propagate uncollected
        exc = e
    failed = failed_ranks(exc is not None, comm, timeout)
    if exc is not None:
        raise exc
    if failed:
        raise DistributedError(f"{what} failed on rank(s) {failed}", ranks=failed)


def run_collective(fn, *args, comm=None, what=None, timeout="default", **kwargs):
    """Call ``fn(*args, **kwargs)`` under :func:`collective_errors`; return its result."""
    with collective_errors(comm, what=what or getattr(fn, "__name__", "operation"), timeout=timeout):
        out = fn(*args, **kwargs)
    return out
