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
from ..optim.parameter import Parameter
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


def _elementwise_classes():
    from ..optim import SGD, Adam, AdamW, AdaGrad, RMSProp, NAdam, RAdam, AdaBelief
    return (SGD, Adam, AdamW, AdaGrad, RMSProp, NAdam, RAdam, AdaBelief)


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
    partition : {"auto", "elements", "parameters"}, default "auto"
        ``"elements"``: the flattened parameters are cut into ``K`` equal
        contiguous shards (DeepSpeed's layout; state per rank is
        ``ceil(N/K)`` elements whatever the parameter sizes), each rank's
        pieces being views into the parameters.  Only for element-wise rules
        (SGD, Adam, AdamW, AdaGrad, RMSProp, NAdam, RAdam, AdaBelief, exact
        classes).  ``"parameters"``: whole parameters, largest first to the
        least loaded rank (PyTorch's ``ZeroRedundancyOptimizer``); exact for
        rules that use per-parameter norms (LAMB, LARS), balanced only when no
        parameter dominates.  ``"auto"`` picks ``"elements"`` when allowed.
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
        The local optimizer over this rank's parameters or pieces (``None``
        when the rank owns nothing).
    partition : str
        The layout in use.
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

    def __init__(self, params, optimizer_class, comm=None, op="average", partition="auto",
                 timeout="default", **defaults):
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(f"optimizer_class must be an Optimizer subclass, got {optimizer_class!r}")
        closure = inspect.signature(optimizer_class.step).parameters.get("closure")
        if closure is not None and closure.default is inspect.Parameter.empty:
            raise TypeError(f"optimizer_class: {optimizer_class.__name__} needs a closure over the "
                            "whole parameter vector and cannot be sharded; wrap it in "
                            "DistributedOptimizer instead")
        if op not in ("average", "sum"):
            raise ValueError(f"op must be 'average' or 'sum', got {op!r}")
        elementwise = optimizer_class in _elementwise_classes()
        if partition == "auto":
            partition = "elements" if elementwise else "parameters"
        elif partition == "elements" and not elementwise:
            raise ValueError(f"partition='elements' needs an element-wise update rule; "
                             f"{optimizer_class.__name__} is not one (use partition='parameters')")
        elif partition != "parameters" and partition != "elements":
            raise ValueError(f"partition must be 'auto', 'elements' or 'parameters', got {partition!r}")
        if timeout != "default":
            _check_timeout(timeout)
        self.comm = comm = get_comm(comm)
        self.op = op
        self.partition = partition
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
        self._posmap = {id(q): i for i, q in enumerate(plist)}
        sizes = [p.data.size for p in plist]
        # units: (param index, start, stop, owner rank, offset in the K * block buffer)
        if partition == "parameters":
            owner = partition_sizes(sizes, K)
            loads = np.bincount(owner, weights=sizes, minlength=K).astype(np.int64)
            block = max(int(loads.max()), 1)
            fill = np.arange(K, dtype=np.int64) * block
            units = []
            for i, n in enumerate(sizes):
                o = int(owner[i])
                units.append((i, 0, n, o, int(fill[o])))
                fill[o] += n
        else:
            total = int(sum(sizes))
            block = max(-(-total // K), 1)
            units, pos = [], 0
            for i, n in enumerate(sizes):
                a = 0
                while a < n:
                    o = (pos + a) // block
                    b = min(n, (o + 1) * block - pos)
                    units.append((i, a, b, o, pos + a))
                    a = b
                pos += n
            loads = np.zeros(K, dtype=np.int64)
            for _, a, b, o, _ in units:
                loads[o] += b - a
        self._block = block
        self._counts = loads
        self._displs = np.arange(K, dtype=np.int64) * block
        self._units = units
        self._send = np.zeros(K * block, dtype=self._dtype)
        self._recv = np.zeros(block, dtype=self._dtype)
        self._gather = np.empty(K * block, dtype=self._dtype)
        # local parameters: the parameter itself, or a 1-D view of a piece of it
        self._local = []          # (unit, local Parameter)
        local_groups, self._group_map = [], []
        for gi, g in enumerate(self._full.param_groups):
            lps = []
            for p in g["params"]:
                i = self._posmap[id(p)]
                for u in units:
                    if u[0] == i and u[3] == r:
                        if partition == "parameters":
                            lp = p
                        else:
                            lp = Parameter(p.data.reshape(-1)[u[1]:u[2]])
                            if not np.shares_memory(lp.data, p.data):   # pragma: no cover
                                raise RuntimeError("piece is not a view of its parameter")
                        self._local.append((u, lp))
                        lps.append(lp)
            if lps:
                lg = {k: v for k, v in g.items() if k != "params"}
                lg["params"] = lps
                local_groups.append(lg)
                self._group_map.append(gi)
        self.optimizer = optimizer_class(local_groups, **defaults) if local_groups else None
        self._consolidated = None

    @property
    def param_groups(self):
        return self._full.param_groups

    @property
    def owner(self):
        """Rank owning each parameter (``-1`` where it is split over several ranks)."""
        out = np.full(len(self._plist), -2, dtype=np.int64)
        for i, a, b, o, _ in self._units:
            out[i] = o if out[i] in (-2, o) else -1
        return out

    @property
    def state(self):
        """The local optimizer's state (this rank's parameters or pieces only)."""
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
        """Reduce-scatter gradients, step this rank's share, all-gather parameters."""
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
        for i, a, b, o, off in self._units:
            g = grads[i]
            if g is None:
                send[off:off + b - a] = 0
            else:
                send[off:off + b - a] = g.reshape(-1)[a:b]
        if K > 1:
            self.comm.Reduce_scatter_block(send, self._recv, op=MPI.SUM)
        else:
            self._recv[...] = send
        self.stats.collective("Reduce_scatter_block", send.nbytes, K)
        if self.op == "average" and K > 1:
            np.divide(self._recv, K, out=self._recv)
        base = int(self._displs[r])
        for (i, a, b, o, off), lp in self._local:
            v = self._recv[off - base:off - base + b - a]
            lp.grad = None if counts[i] == 0 else v.reshape(lp.data.shape)
        if self.optimizer is not None:
            self._sync_options()
            self.optimizer.step()
        if K > 1:
            mine = self._gather[base:base + int(self._counts[r])]
            for (i, a, b, o, off), lp in self._local:
                mine[off - base:off - base + b - a] = lp.data.reshape(-1)
            self.comm.Allgatherv(mine.copy(), [self._gather, (self._counts, self._displs)])
            for i, a, b, o, off in self._units:
                if o != r:
                    self._plist[i].data.reshape(-1)[a:b] = self._gather[off:off + b - a]
        self.stats.collective("Allgatherv", int(self._counts.sum()) * self._dtype.itemsize, K)
        self.stats.end_step()
        return loss

    # -------------------------------------------------------- checkpoints
    def consolidate_state_dict(self, to=0):
        """Gather the full state on rank ``to`` (a collective: call it on every rank).

        Returns the full ``state_dict`` in PyTorch's layout (as the unsharded
        optimizer's) on ``to``, also kept for :meth:`state_dict`; ``None``
        elsewhere.
        """
        if isinstance(to, bool) or not isinstance(to, (int, np.integer)) or not 0 <= to < self._size:
            raise ValueError(f"to must be a rank in [0, {self._size}), got {to!r}")
        mine = []
        for (i, a, b, o, off), lp in self._local:
            st = self.optimizer.state.get(lp)
            if st:
                mine.append([i, a, b, dict(st)])
        parts = gather_tree(mine, root=to, comm=self.comm)
        if self._rank != to:
            self._consolidated = None
            return None
        full = self._full.state_dict()
        state = {}
        for part in parts:
            for i, a, b, st in part:
                p = self._plist[i]
                dst = state.setdefault(i, {})
                for k, v in st.items():
                    if isinstance(v, np.ndarray) and v.size == b - a:
                        if k not in dst:
                            dst[k] = np.zeros(p.data.shape, dtype=v.dtype)
                        dst[k].reshape(-1)[a:b] = v.reshape(-1)
                    elif isinstance(v, np.ndarray):
                        raise ValueError(f"state entry {k!r} of parameter {i} is not element-wise")
                    else:
                        dst[k] = v
        full["state"] = dict(sorted(state.items()))
        self._consolidated = full
        return full

    def state_dict(self):
        """The full state gathered by the last :meth:`consolidate_state_dict` on this rank."""
        if self._consolidated is None:
            raise RuntimeError("Optimizer state has not been consolidated on this rank: call "
                               "consolidate_state_dict(to=rank) on every rank first")
        return self._consolidated

    def load_state_dict(self, state_dict):
        """Load a full ``state_dict`` (from :meth:`consolidate_state_dict`, or an unsharded
        optimizer's) on every rank; each rank keeps the state of its own share."""
        self._full.load_state_dict({"state": {}, "param_groups": state_dict["param_groups"]})
        if self.optimizer is None:
            return
        lstate = {}
        li = 0
        for lg in self.optimizer.param_groups:
            for lp in lg["params"]:
                (i, a, b, o, off), _ = next(x for x in self._local if x[1] is lp)
                st = state_dict["state"].get(i)
                if st is not None:
                    lstate[li] = {k: (np.asarray(v).reshape(-1)[a:b].reshape(lp.data.shape)
                                      if hasattr(v, "shape") and np.asarray(v).size == self._plist[i].data.size
                                      and np.asarray(v).ndim > 0 else v)
                                  for k, v in st.items()}
                li += 1
        lgroups, li = [], 0
        for lg, gi in zip(self.optimizer.param_groups, self._group_map):
            g = {k: v for k, v in state_dict["param_groups"][gi].items() if k != "params"}
            g["params"] = list(range(li, li + len(lg["params"])))
            li += len(lg["params"])
            lgroups.append(g)
        self.optimizer.load_state_dict({"state": lstate, "param_groups": lgroups})

    def __repr__(self):
        return (f"ShardedOptimizer({self.optimizer_class.__name__}, size={self._size}, "
                f"partition={self.partition!r}, local elements={int(self._counts[self._rank])})")


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

