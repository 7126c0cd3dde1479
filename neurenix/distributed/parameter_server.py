"""A parameter server on MPI: rank 0 holds the parameters and the optimizer.

Protocol (point-to-point, buffer-based; no pickle for parameters or gradients)
-------------------------------------------------------------------------------
Workers (ranks ``1..K-1``) send *requests* to the server (rank 0) and block on
its answer; a worker never has more than one request outstanding, and the
server answers every request it receives, so the exchange cannot deadlock:

============  ==========================================  =============================
request       worker sends                                 server answers
============  ==========================================  =============================
``PULL``      header                                       ``PARAMS`` (header + values)
``PUSH``      header (base version) + flat gradient        ``PARAMS``, ``STOP`` or ``ABORT``
``DONE``      header                                       ``STOP`` (or ``ABORT``)
``FAIL``      header + the error message (bytes)           ``ABORT``
============  ==========================================  =============================

A request is an ``int64`` header ``[kind, base_version, step, rank, nbytes]``
(tag ``TAG_REQ``) followed, for ``PUSH``, by the flat gradient (``TAG_GRAD``,
the parameters' dtype) and, for ``FAIL``, by the message bytes (``TAG_MSG``).
An answer is an ``int64`` header ``[kind, version]`` (``TAG_REP``) followed,
for ``PARAMS``, by the flat parameters (``TAG_PARAMS``).  The stop signal is
always sent *as an answer*, so a worker is never left waiting for a message
that will not come.  A worker stops after ``STOP`` or ``ABORT``.

- ``mode="sync"``: the server collects one gradient from every active worker,
  applies their mean with one optimizer step and answers all of them (a
  worker that finished its steps leaves the round; staleness is always 0).
- ``mode="async"``: each gradient is applied as it arrives.  Its *staleness*
  is the number of updates since the worker's parameters were pulled; a
  gradient staler than ``max_staleness`` is dropped (the worker gets fresh
  parameters back and recomputes), otherwise the step uses the learning rate
  scaled by ``staleness_lr(s)`` (default ``1 / (1 + s)``, the staleness-aware
  rule of Zhang et al. 2016).

Failures: a worker whose ``compute`` raises sends ``FAIL``; an exception on
the server (in ``optimizer.step``) puts it in an aborting state.  Either way
the server answers every further request with ``ABORT`` until every worker has
stopped, then all ranks agree on the failure (an all-reduced flag, with the
deadline of :func:`neurenix.distributed.wait_all`) and every rank raises.
"""
import time

import numpy as np

from ..optim import Optimizer
from ._flat import FlatParams
from ._comm import get_comm, mpi, collective_errors, DistributedError, wait_all, get_default_timeout

__all__ = ["ParameterServer", "staleness_inverse"]

TAG_REQ, TAG_GRAD, TAG_MSG, TAG_REP, TAG_PARAMS = 7101, 7102, 7103, 7104, 7105
PULL, PUSH, DONE, FAIL = 0, 1, 2, 3
PARAMS, STOP, ABORT = 0, 1, 2


def staleness_inverse(staleness):
    """Learning-rate factor ``1 / (1 + staleness)`` (Zhang et al. 2016, smoothed at 0).

    Zhang, Gupta, Lian & Liu (2016), "Staleness-aware async-SGD for distributed
    deep learning", IJCAI, divide the learning rate by the staleness; the
    ``1 +`` keeps fresh gradients (staleness 0) at the full rate.

    >>> staleness_inverse(0), staleness_inverse(3)
    (1.0, 0.25)
    """
    return 1.0 / (1.0 + staleness)


class ParameterServer:
    """Parameter server training: workers compute gradients, rank 0 updates.

    Every rank constructs it with the same parameters (same shapes and dtype)
    and calls :meth:`run`; on rank 0 it serves, on the other ranks it runs the
    worker loop.  After :meth:`run` every rank's parameters hold the server's
    final values.

    Parameters
    ----------
    params : iterable of Parameter
        The model's parameters (NumPy arrays of one dtype).
    optimizer : neurenix.optim.Optimizer
        Over ``params``; only rank 0's is stepped (the workers' optimizers are
        not used: build the same one on every rank).
    mode : {"sync", "async"}, default "sync"
    max_staleness : int or None, default None
        ``async`` only: gradients staler than this are dropped (None: never).
    staleness_lr : "inverse", None or callable, default "inverse"
        ``async`` only: the learning rate of a step with staleness ``s`` is
        multiplied by ``staleness_lr(s)``; ``"inverse"`` is
        :func:`staleness_inverse`, ``None`` keeps the learning rate.
    comm : communicator, optional
    timeout : float or None, optional
        Deadline in seconds of every wait on a message; past it the job is
        aborted (``comm.Abort(1)``).  Default:
        :func:`neurenix.distributed.get_default_timeout`.

    Attributes
    ----------
    stats : dict
        After :meth:`run` (the same on every rank): ``updates`` (optimizer
        steps), ``pushes`` (gradients received), ``dropped`` (too stale),
        ``staleness`` (histogram: a list, index = staleness, of applied
        gradients), ``seconds`` (the server's wall time).

    References
    ----------
    Li et al. (2014), "Scaling distributed machine learning with the parameter
    server", OSDI.  Zhang, Gupta, Lian & Liu (2016), "Staleness-aware
    async-SGD for distributed deep learning", IJCAI.

    Examples
    --------
    One process: the server computes its own gradients (plain training).

    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD
    >>> from neurenix.distributed import ParameterServer
    >>> w = Parameter(np.array([4.0]))
    >>> def compute(params, step):
    ...     params[0].grad = 2 * params[0].data      # d/dw of w**2
    ...     return float(params[0].data[0] ** 2)
    >>> ps = ParameterServer([w], SGD([w], lr=0.25), mode="async", max_staleness=2)
    >>> ps.run(compute, steps=3).stats["updates"]
    3
    >>> w.data
    array([0.5])
    """

    def __init__(self, params, optimizer, mode="sync", max_staleness=None,
                 staleness_lr="inverse", comm=None, timeout="default"):
        self.flat = FlatParams(params)
        self.params, self.dtype = self.flat.params, self.flat.dtype
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a neurenix.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        opt_ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not {id(p) for p in self.params} <= opt_ids:
            raise ValueError("optimizer must hold every parameter in params")
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        if max_staleness is not None:
            if mode == "sync":
                raise ValueError("max_staleness applies to mode='async' only (sync updates "
                                 "have staleness 0)")
            if isinstance(max_staleness, bool) or not isinstance(max_staleness, (int, np.integer)) \
                    or max_staleness < 0:
                raise ValueError(f"max_staleness must be a non-negative int or None, got "
                                 f"{max_staleness!r}")
        if staleness_lr == "inverse":
            staleness_lr = staleness_inverse
        elif staleness_lr is not None and not callable(staleness_lr):
            raise ValueError(f"staleness_lr must be 'inverse', None or a callable, got "
                             f"{staleness_lr!r}")
        if timeout == "default":
            timeout = get_default_timeout()
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.optimizer = optimizer
        self.mode = mode
        self.max_staleness = None if max_staleness is None else int(max_staleness)
        self.staleness_lr = staleness_lr
        self.timeout = timeout
        self.comm = get_comm(comm)
        self.stats = None

    # ------------------------------------------------------------------ public
    def run(self, compute, steps, max_updates=None):
        """Train: each worker computes ``steps`` gradients (collective).

        Parameters
        ----------
        compute : callable ``compute(params, step) -> loss or None``
            Fills ``p.grad`` of every parameter from this rank's data at the
            current (pulled) parameter values; ``step`` counts this worker's
            gradients from 0.
        steps : int
            Gradients per worker (on one process: optimizer steps).
        max_updates : int, optional
            The server stops every worker (``STOP`` as the answer to its next
            request) after this many optimizer steps.

        Returns
        -------
        self
        """
        if not callable(compute):
            raise TypeError(f"compute must be callable, got {type(compute).__name__}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        if max_updates is not None and (isinstance(max_updates, bool) or not isinstance(
                max_updates, (int, np.integer)) or max_updates < 0):
            raise ValueError(f"max_updates must be a non-negative int or None, got {max_updates!r}")
        comm = self.comm
        if comm.Get_size() == 1:
            return self._run_serial(compute, int(steps), max_updates)
        stats = None
        with collective_errors(comm, what="parameter server", timeout=self.timeout):
            if comm.Get_rank() == 0:
                stats = self._serve(max_updates)
            else:
                self._work(compute, int(steps))
        buf = self.flat.data() \
            if comm.Get_rank() == 0 else self.flat.empty()
        comm.Bcast(buf, root=0)
        self.flat.set_data(buf)
        self.stats = comm.bcast(stats, root=0)
        return self

    # ----------------------------------------------------------- size 1
    def _run_serial(self, compute, steps, max_updates):
        t0 = time.perf_counter()
        n = steps if max_updates is None else min(steps, max_updates)
        for k in range(n):
            self._compute_into_grads(compute, k)
            self.optimizer.step()
        self.stats = {"updates": n, "pushes": n, "dropped": 0, "staleness": [n] if n else [],
                      "seconds": time.perf_counter() - t0}
        return self

    def _compute_into_grads(self, compute, step):
        compute(self.params, step)
        for i, p in enumerate(self.params):
            if p.grad is None:
                raise ValueError(f"compute left the gradient of params[{i}] unset")

    # ------------------------------------------------------------ worker
    def _wait(self, req, what):
        wait_all(req, self.comm, self.timeout, what=what)

    def _request(self, kind, version=0, step=0, grad=None, msg=b""):
        comm = self.comm
        hdr = np.array([kind, version, step, comm.Get_rank(), len(msg)], dtype=np.int64)
        reqs = [comm.Isend(hdr, dest=0, tag=TAG_REQ)]
        if grad is not None:
            reqs.append(comm.Isend(grad, dest=0, tag=TAG_GRAD))
        if msg:
            reqs.append(comm.Isend(np.frombuffer(msg, dtype=np.uint8), dest=0, tag=TAG_MSG))
        self._wait(reqs, "sending a request to the parameter server")
        rep = np.empty(2, dtype=np.int64)
        self._wait(comm.Irecv(rep, source=0, tag=TAG_REP), "the parameter server's answer")
        if rep[0] == PARAMS:
            buf = self.flat.empty()
            self._wait(comm.Irecv(buf, source=0, tag=TAG_PARAMS), "parameters from the server")
            self.flat.set_data(buf)
        return int(rep[0]), int(rep[1])

    def _work(self, compute, steps):
        kind, version = self._request(PULL)
        gbuf = self.flat.empty()
        step = 0
        while kind == PARAMS and step < steps:
            try:
                self._compute_into_grads(compute, step)
                self.flat.pack([p.grad for p in self.params], gbuf)
            except Exception as e:
                self._request(FAIL, msg=f"{type(e).__name__}: {e}".encode()[:4096])
                raise
            kind, version = self._request(PUSH, version, step, grad=gbuf)
            step += 1
        if kind == PARAMS:
            kind, _ = self._request(DONE, version, step)
        if kind == ABORT:
            raise DistributedError("the parameter server aborted the run", ranks=[0])

    # ------------------------------------------------------------ server
    def _serve(self, max_updates):
        comm = self.comm
        t0 = time.perf_counter()
        active = comm.Get_size() - 1
        version = 0
        stats = {"updates": 0, "pushes": 0, "dropped": 0, "staleness": [], "seconds": 0.0}
        error = None                     # the failure that aborts the run
        stopping = max_updates is not None and max_updates <= 0
        hdr = np.empty(5, dtype=np.int64)
        gbuf = self.flat.empty()
        pbuf = self.flat.empty()
        rsum = np.zeros(self.flat.n, dtype=np.float64)   # sync: the round's gradient sum
        pending = []                     # sync: workers waiting for the round to close

        def answer(rank, kind):
            nonlocal active
            rep = np.array([kind, version], dtype=np.int64)
            reqs = [comm.Isend(rep, dest=rank, tag=TAG_REP)]
            if kind == PARAMS:
                self.flat.data(pbuf)
                reqs.append(comm.Isend(pbuf, dest=rank, tag=TAG_PARAMS))
            else:
                active -= 1
            self._wait(reqs, f"answering worker {rank}")

        def step_with(grad_flat, staleness):
            nonlocal version
            self.flat.set_grads(grad_flat)
            factor = 1.0
            if self.mode == "async" and self.staleness_lr is not None:
                factor = float(self.staleness_lr(staleness))
            saved = [g["lr"] for g in self.optimizer.param_groups]
            try:
                if factor != 1.0:
                    for g in self.optimizer.param_groups:
                        g["lr"] = g["lr"] * factor
                self.optimizer.step()
            finally:
                for g, lr in zip(self.optimizer.param_groups, saved):
                    g["lr"] = lr
            version += 1
            stats["updates"] += 1
            hist = stats["staleness"]
            hist.extend([0] * (staleness + 1 - len(hist)))
            hist[staleness] += 1

        def close_round():
            nonlocal error, stopping
            if not pending or len(pending) < active:
                return
            if error is None:
                try:
                    step_with((rsum / len(pending)).astype(self.dtype), 0)
                except Exception as e:
                    error = e
                rsum[:] = 0
            if max_updates is not None and stats["updates"] >= max_updates:
                stopping = True
            kind = ABORT if error is not None else (STOP if stopping else PARAMS)
            for r in list(pending):
                answer(r, kind)
            pending.clear()

        while active > 0:
            self._wait(comm.Irecv(hdr, source=mpi().ANY_SOURCE, tag=TAG_REQ),
                       "a request from a worker")
            kind, base, _step, src, nbytes = (int(v) for v in hdr)
            if kind == PUSH:
                self._wait(comm.Irecv(gbuf, source=src, tag=TAG_GRAD), f"gradient of worker {src}")
                stats["pushes"] += 1
            if kind == FAIL:
                mbuf = np.empty(nbytes, dtype=np.uint8)
                if nbytes:
                    self._wait(comm.Irecv(mbuf, source=src, tag=TAG_MSG), "an error message")
                if error is None:
                    error = DistributedError(f"worker rank {src} failed: "
                                             f"{mbuf.tobytes().decode(errors='replace')}",
                                             ranks=[src])
                answer(src, ABORT)
                for r in pending:
                    answer(r, ABORT)
                pending.clear()
                continue
            if error is not None:
                answer(src, ABORT)
                continue
            if kind == PULL:
                answer(src, STOP if stopping else PARAMS)
            elif kind == DONE:
                answer(src, STOP)
                close_round()            # sync: the round may now be complete without it
            elif kind == PUSH:
                if stopping:
                    answer(src, STOP)
                elif self.mode == "sync":
                    rsum += gbuf
                    pending.append(src)
                    close_round()
                else:
                    staleness = version - base
                    if self.max_staleness is not None and staleness > self.max_staleness:
                        stats["dropped"] += 1
                    else:
                        try:
                            step_with(gbuf, staleness)
                        except Exception as e:
                            error = e
                    if max_updates is not None and stats["updates"] >= max_updates:
                        stopping = True
                    answer(src, ABORT if error is not None else (STOP if stopping else PARAMS))
            else:
                error = DistributedError(f"unknown request kind {kind} from rank {src}")
                answer(src, ABORT)
        stats["seconds"] = time.perf_counter() - t0
        if error is not None:
            raise error
        return stats
