"""Optimizer state sharding (ZeRO stages 1 and 2) and hybrid data x model parallel groups.

:class:`ShardedOptimizer` partitions the parameters over the ranks; each rank
keeps the optimizer state of its own parameters only and updates only them:

1. ``Reduce_scatter_block`` of the packed gradients: each rank receives the
   sum of the gradients of its own parameters (ZeRO stage 2: no rank holds
   the full reduced gradient);
2. the wrapped optimizer class steps the rank's parameters (its update rule,
   unchanged);
3. ``Allgatherv`` of the updated parameters.

Rajbhandari et al. 2020, "ZeRO: memory optimizations toward training trillion
parameter models", SC20.  Like PyTorch's ``ZeroRedundancyOptimizer`` whole
parameters are assigned to ranks (largest first, to the least loaded rank), so
per-parameter rules (LAMB's and LARS's trust ratios) are exact; the state per
rank is about ``1/K`` of the total when no parameter dominates.

:class:`HybridParallel` splits the communicator into data-parallel x
model-parallel groups (``comm.Split``).
"""
import inspect

import numpy as np

from ..optim.optimizer import Optimizer
from ._comm import get_comm, mpi, CommStats, _check_timeout
from ._tree import gather_tree
from .optimizer import (_check_numpy_param, control_allreduce, validate_grads, DistributedOptimizer,
                        _param_list)

__all__ = ["ShardedOptimizer", "HybridParallel", "partition_sizes"]


def partition_sizes(sizes, nparts):
    """Assign items of the given sizes to ``nparts`` parts, largest first to the lightest part.

    Deterministic (ties: lower index first, then lower part), so every rank
    computes the same assignment.

    Returns
    -------
    owner : ndarray of int, the part of each item
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    order = sorted(range(len(sizes)), key=lambda i: (-int(sizes[i]), i))
    load = np.zeros(nparts, dtype=np.int64)
    owner = np.empty(len(sizes), dtype=np.int64)
    for i in order:
        part = int(np.argmin(load))
        owner[i] = part
        load[part] += sizes[i]
    return owner


def _state_nbytes(state):
    total = 0
    for st in state.values():
        for v in st.values():
            if isinstance(v, np.ndarray):
                total += v.nbytes
    return total


class ShardedOptimizer:
    """ZeRO stage 1/2: optimizer state and update partitioned over ranks.

    Parameters
    ----------
    params : iterable of Parameter or of dict
        Parameters or param groups, as for any optimizer; NumPy arrays of one
        dtype.
    optimizer_class : type
        A first-order :class:`neurenix.optim.Optimizer` subclass (``Adam``,
        ``SGD``, ``LAMB``, ...).  Closure-driven optimizers (LBFGS, ...) need
        the whole vector and are refused.
    comm : communicator, optional
    op : {"average", "sum"}, default "average"
    timeout : float or None, optional
        Deadline of the collective checks.
    **defaults
        Hyperparameters for ``optimizer_class`` (``lr=...``).

    Attributes
    ----------
    param_groups : list of dict
        All parameters and their options (change ``lr`` here, as usual;
        it reaches the local optimizer at the next step).
    optimizer : Optimizer or None
        The local optimizer over this rank's parameters (``None`` when the
        rank owns none).
    owner : ndarray
        Rank owning each parameter (in ``param_groups`` order).
    stats : CommStats

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, Adam
    >>> from neurenix.distributed import ShardedOptimizer
    >>> w = Parameter(np.ones(3))
    >>> opt = ShardedOptimizer([w], Adam, lr=0.1)
    >>> w.grad = np.array([1.0, -1.0, 0.0])
    >>> opt.step()
    >>> w.data
    array([0.9, 1.1, 1. ])
    """

    def __init__(self, params, optimizer_class, comm=None, op="average", timeout="default", **defaults):
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(f"optimizer_class must be an Optimizer subclass, got {optimizer_class!r}")
        closure = inspect.signature(optimizer_class.step).parameters.get("closure")
        if closure is not None and closure.default is inspect.Parameter.empty:
            raise TypeError(f"optimizer_class: {optimizer_class.__name__} needs a closure over the "
                            "whole parameter vector and cannot be sharded; wrap it in "
                            "DistributedOptimizer instead")
        if op not in ("average", "sum"):
            raise ValueError(f"op must be 'average' or 'sum', got {op!r}")
        if timeout != "default":
            _check_timeout(timeout)
        self.comm = comm = get_comm(comm)
        self.op = op
        self.timeout = timeout
        self.stats = CommStats()
        self.optimizer_class = optimizer_class
        K, r = comm.Get_size(), comm.Get_rank()
        self._size, self._rank = K, r
        # the full optimizer validates groups and options and holds param_groups; it never steps
        self._full = optimizer_class(params, **defaults)
        plist = [p for g in self._full.param_groups for p in g["params"]]
        dtypes = set()
        for i, p in enumerate(plist):
            _check_numpy_param(p, i)
            dtypes.add(p.data.dtype)
        if len(dtypes) != 1:
            raise TypeError(f"params: ShardedOptimizer needs parameters of one dtype, got {sorted(map(str, dtypes))}")
        self._dtype = dtypes.pop()
        self._plist = plist
        sizes = [p.data.size for p in plist]
        self.owner = partition_sizes(sizes, K)
        loads = np.bincount(self.owner, weights=sizes, minlength=K).astype(np.int64)
        self._block = max(int(loads.max()), 1)
        self._counts = loads
        self._displs = np.arange(K, dtype=np.int64) * self._block
        # offset of every parameter inside the K * block buffer
        self._offset = np.empty(len(plist), dtype=np.int64)
        fill = self._displs.copy()
        for i, p in enumerate(plist):
            o = self.owner[i]
            self._offset[i] = fill[o]
            fill[o] += p.data.size
        self._send = np.zeros(K * self._block, dtype=self._dtype)
        self._recv = np.zeros(self._block, dtype=self._dtype)
        self._gather = np.empty(K * self._block, dtype=self._dtype)
        self._mine = [i for i in range(len(plist)) if self.owner[i] == r]
        # local optimizer over the owned parameters, one local group per non-empty full group
        self._group_map = []
        local_groups = []
        for gi, g in enumerate(self._full.param_groups):
            own = [p for p in g["params"] if self.owner[self._pos(p)] == r]
            if own:
                lg = {k: v for k, v in g.items() if k != "params"}
                lg["params"] = own
                local_groups.append(lg)
                self._group_map.append(gi)
        self.optimizer = optimizer_class(local_groups, **defaults) if local_groups else None
        self._consolidated = None

    def _pos(self, p):
        if not hasattr(self, "_posmap"):
            self._posmap = {id(q): i for i, q in enumerate(self._plist)}
        return self._posmap[id(p)]

    @property
    def param_groups(self):
        return self._full.param_groups

    @property
    def state(self):
        """The local optimizer's state (this rank's parameters only)."""
        return self.optimizer.state if self.optimizer is not None else {}

    def state_nbytes(self):
        """Bytes of the optimizer state arrays held by this rank."""
        return _state_nbytes(self.state)

    def zero_grad(self, set_to_none=False):
        self._full.zero_grad(set_to_none=set_to_none)

    def _sync_options(self):
        if self.optimizer is None:
            return
        for lg, gi in zip(self.optimizer.param_groups, self._group_map):
            for k, v in self._full.param_groups[gi].items():
                if k != "params":
                    lg[k] = v

    # --------------------------------------------------------------- step
    def step(self, closure=None):
        """Reduce-scatter gradients, step this rank's parameters, all-gather parameters."""
        loss = closure() if closure is not None else None
        MPI = mpi()
        K, r = self._size, self._rank
        error, present = None, None
        try:
            grads = validate_grads(self._plist)
            present = np.array([g is not None for g in grads])
        except Exception as e:
            error, grads = e, None
        counts = control_allreduce(self.comm, error, present, len(self._plist), self.timeout, self.stats)
        send = self._send
        for i, p in enumerate(self._plist):
            o, n = self._offset[i], p.data.size
            if grads[i] is None:
                send[o:o + n] = 0
            else:
                send[o:o + n] = grads[i].reshape(-1)
        if K > 1:
            self.comm.Reduce_scatter_block(send, self._recv, op=MPI.SUM)
        else:
            self._recv[...] = send
        self.stats.collective("Reduce_scatter_block", send.nbytes, K)
        if self.op == "average" and K > 1:
            np.divide(self._recv, K, out=self._recv)
        base = self._displs[r]
        for i in self._mine:
            p = self._plist[i]
            o = self._offset[i] - base
            p.grad = None if counts[i] == 0 else self._recv[o:o + p.data.size].reshape(p.data.shape)
        if self.optimizer is not None:
            self._sync_options()
            self.optimizer.step()
        # all-gather the updated parameters
        mine = self._gather[base:base + self._counts[r]]
        for i in self._mine:
            p = self._plist[i]
            o = self._offset[i] - base
            mine[o:o + p.data.size] = p.data.reshape(-1)
        if K > 1:
            sendbuf = mine.copy()
            self.comm.Allgatherv(sendbuf, [self._gather, (self._counts, self._displs)])
            for i, p in enumerate(self._plist):
                if self.owner[i] != r:
                    o = self._offset[i]
                    p.data.reshape(-1)[...] = self._gather[o:o + p.data.size]
        self.stats.collective("Allgatherv", int(self._counts.sum()) * self._dtype.itemsize, K)
        self.stats.end_step()
        return loss

    # -------------------------------------------------------- checkpoints
    def consolidate_state_dict(self, to=0):
        """Gather the full state on rank ``to`` (a collective: call it on every rank).

        Returns the full ``state_dict`` in PyTorch's layout on ``to`` (also
        kept for :meth:`state_dict`), ``None`` elsewhere.
        """
        if isinstance(to, bool) or not isinstance(to, (int, np.integer)) or not 0 <= to < self._size:
            raise ValueError(f"to must be a rank in [0, {self._size}), got {to!r}")
        local = {}
        if self.optimizer is not None:
            lsd = self.optimizer.state_dict()
            lplist = [p for g in self.optimizer.param_groups for p in g["params"]]
            for li, st in lsd["state"].items():
                local[self._pos(lplist[li])] = st
        parts = gather_tree(local, root=to, comm=self.comm)
        if self._rank != to:
            self._consolidated = None
            return None
        full = self._full.state_dict()
        for part in parts:
            for gi, st in part.items():
                full["state"][int(gi)] = st
        full["state"] = dict(sorted(full["state"].items()))
        self._consolidated = full
        return full

    def state_dict(self):
        """The full state gathered by the last :meth:`consolidate_state_dict` on this rank."""
        if self._consolidated is None:
            raise RuntimeError("Optimizer state has not been consolidated on this rank: call "
                               "consolidate_state_dict(to=rank) on every rank first")
        return self._consolidated

    def load_state_dict(self, state_dict):
        """Load a full ``state_dict`` (from :meth:`consolidate_state_dict`) on every rank;
        each rank keeps the state of its own parameters."""
        self._full.load_state_dict({"state": {}, "param_groups": state_dict["param_groups"]})
        if self.optimizer is None:
            return
        lplist = [p for g in self.optimizer.param_groups for p in g["params"]]
        lstate = {}
        for li, p in enumerate(lplist):
            st = state_dict["state"].get(self._pos(p))
            if st is not None:
                lstate[li] = st
        lgroups = []
        li = 0
        for lg, gi in zip(self.optimizer.param_groups, self._group_map):
            g = {k: v for k, v in state_dict["param_groups"][gi].items() if k != "params"}
            g["params"] = list(range(li, li + len(lg["params"])))
            li += len(lg["params"])
            lgroups.append(g)
        self.optimizer.load_state_dict({"state": lstate, "param_groups": lgroups})

    def __repr__(self):
        return (f"ShardedOptimizer({self.optimizer_class.__name__}, size={self._size}, "
                f"owned={len(self._mine)}/{len(self._plist)} parameters)")


class HybridParallel:
    """Data-parallel x model-parallel process groups (``comm.Split``).

    Ranks are laid out ``rank = dp_index * model_parallel_size + mp_index``:
    consecutive ranks form a model-parallel group (the partners that exchange
    activations, best kept on one node), and ranks with the same
    ``mp_index`` form a data-parallel group (they hold the same parameters and
    average their gradients).

    Parameters
    ----------
    model_parallel_size : int
        Must divide the communicator's size.
    comm : communicator, optional

    Attributes
    ----------
    dp, mp : communicator
        This rank's data-parallel and model-parallel groups.
    dp_rank, mp_rank : int
    """

    def __init__(self, model_parallel_size, comm=None):
        comm = get_comm(comm)
        K = comm.Get_size()
        if isinstance(model_parallel_size, bool) or not isinstance(model_parallel_size, int) \
                or model_parallel_size < 1 or K % model_parallel_size:
            raise ValueError(f"model_parallel_size must be a positive divisor of the communicator size {K}, "
                             f"got {model_parallel_size!r}")
        self.comm = comm
        r = comm.Get_rank()
        M = model_parallel_size
        self.model_parallel_size = M
        self.data_parallel_size = K // M
        self.dp_rank, self.mp_rank = r // M, r % M
        self.mp = comm.Split(self.dp_rank, self.mp_rank)
        self.dp = comm.Split(self.mp_rank, self.dp_rank)

    def partition(self, params):
        """This rank's share of ``params`` (whole parameters, balanced by size over ``mp``)."""
        plist = _param_list(params)
        owner = partition_sizes([p.size for p in plist], self.model_parallel_size)
        return [p for p, o in zip(plist, owner) if o == self.mp_rank]

    def distributed_optimizer(self, optimizer, **kwargs):
        """A :class:`DistributedOptimizer` over the data-parallel group for ``optimizer``
        (built over this rank's partition)."""
        return DistributedOptimizer(optimizer, comm=self.dp, **kwargs)

    def gather_parameters(self, params):
        """Copy every parameter from its model-parallel owner to all ``mp`` ranks (in place)."""
        plist = _param_list(params)
        owner = partition_sizes([p.size for p in plist], self.model_parallel_size)
        for i, p in enumerate(plist):
            _check_numpy_param(p, i)
            self.mp.Bcast(p.data, root=int(owner[i]))

    def free(self):
        for c in (self.mp, self.dp):
            if hasattr(c, "Free"):
                c.Free()

