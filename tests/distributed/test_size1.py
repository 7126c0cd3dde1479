"""Size-1 runs without mpiexec: the wrappers equal the wrapped optimizers exactly."""
import numpy as np
import pytest

from neurenix.optim import Parameter, Adam, SGD, LBFGS, GradientAccumulator, LAMB
from neurenix.distributed import (SelfComm, DistributedOptimizer, ShardedOptimizer, HybridParallel,
                                  broadcast_parameters, broadcast_optimizer_state, partition_sizes,
                                  ring_allreduce, HierarchicalAllreduce, allreduce, TopK, ErrorFeedback,
                                  bcast_tree, gather_tree, get_comm)
from neurenix.distributed._tree import pack_tree, unpack_tree

COMMS = [SelfComm(), None]     # None: get_comm() (mpi4py's COMM_WORLD.Dup() when installed)
RNG = np.random.default_rng(0)
A = RNG.standard_normal((20, 5))
B = RNG.standard_normal((20, 3))


def grad(W):
    return A.T @ (A @ W - B) / 20


def train(opt, W, steps=5):
    for _ in range(steps):
        W.grad = grad(W.data)
        opt.step()
    return W.data.copy()


@pytest.mark.parametrize("comm", COMMS, ids=["SelfComm", "get_comm"])
@pytest.mark.parametrize("cls, kw", [(Adam, {"lr": 0.1}), (SGD, {"lr": 0.1, "momentum": 0.9}),
                                     (LAMB, {"lr": 0.01})])
def test_distributed_equals_wrapped_bitwise(comm, cls, kw):
    W1, W2 = Parameter(np.ones((5, 3))), Parameter(np.ones((5, 3)))
    d = DistributedOptimizer(cls([W1], **kw), comm=comm, bucket_bytes=40)
    d.broadcast()
    ref = cls([W2], **kw)
    np.testing.assert_array_equal(train(d, W1), train(ref, W2))
    assert len(d.buckets) == 1 and d.stats.last_step["sent"] == 0
    mine, theirs = d.state_dict()["state"][0], ref.state_dict()["state"][0]
    assert sorted(mine) == sorted(theirs)
    for k in mine:
        np.testing.assert_array_equal(mine[k], theirs[k])


def test_accumulation_equals_gradient_accumulator():
    W1, W2 = Parameter(np.ones((5, 3))), Parameter(np.ones((5, 3)))
    d = DistributedOptimizer(Adam([W1], lr=0.1), comm=SelfComm(), backward_passes_per_step=3)
    acc = GradientAccumulator(Adam([W2], lr=0.1), accumulation_steps=3)
    for t in range(6):
        g = grad(W1.data) * (t + 1)
        W1.grad = g
        assert d.step() is None
        W2.grad = g.copy()
        acc.step()
        np.testing.assert_allclose(W1.data, W2.data, rtol=1e-14, atol=1e-15)


def test_accumulation_with_in_place_grad_writes():
    """After a step p.grad is a view into the communication buffer; writing the next passes'
    gradients into it in place must not corrupt the accumulated passes."""
    W1, W2 = Parameter(np.ones((5, 3))), Parameter(np.ones((5, 3)))
    d = DistributedOptimizer(SGD([W1], lr=0.1), comm=SelfComm(), backward_passes_per_step=2)
    ref = SGD([W2], lr=0.1)
    W1.grad = np.zeros((5, 3))
    for t in range(3):
        gs = [grad(W2.data) * (k + 1) for k in range(2)]
        for g in gs:
            W1.grad[...] = g          # in place, into the previous step's averaged-gradient view
            d.step()
        W2.grad = (gs[0] + gs[1]) / 2
        ref.step()
        np.testing.assert_allclose(W1.data, W2.data, rtol=1e-14, atol=1e-15)


def test_closure_lbfgs_size1():
    W1, W2 = Parameter(np.ones((5, 3))), Parameter(np.ones((5, 3)))
    d = DistributedOptimizer(LBFGS([W1], max_iter=20), comm=SelfComm())
    ref = LBFGS([W2], max_iter=20)

    def closure(W):
        def f():
            W.grad = grad(W.data)
            return 0.5 * np.sum((A @ W.data - B) ** 2) / 20
        return f
    l1 = d.step(closure(W1))
    l2 = ref.step(closure(W2))
    assert l1 == l2
    np.testing.assert_array_equal(W1.data, W2.data)


def test_compression_size1_runs_compressor():
    W = Parameter(np.arange(10.0))
    d = DistributedOptimizer(SGD([W], lr=1.0), comm=SelfComm(), compression=TopK(0.2))
    W.grad = np.arange(10.0)
    d.step()
    np.testing.assert_array_equal(W.data, np.r_[np.arange(8.0), 0, 0])


def test_validation_size1_leaves_params_untouched():
    W = Parameter(np.ones(3))
    d = DistributedOptimizer(SGD([W], lr=1.0), comm=SelfComm())
    W.grad = np.ones(4)
    with pytest.raises(ValueError, match="grad of parameter 0 has shape"):
        d.step()
    W.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="dtype"):
        d.step()
    np.testing.assert_array_equal(W.data, 1)
    W.grad = np.ones(3)
    d.step()
    np.testing.assert_array_equal(W.data, 0)


@pytest.mark.parametrize("kw, err, match", [
    ({"op": "mean"}, ValueError, "op must be"),
    ({"backward_passes_per_step": 0}, ValueError, "backward_passes_per_step"),
    ({"bucket_bytes": 0}, ValueError, "bucket_bytes"),
    ({"compression": "fp16"}, TypeError, "compression"),
    ({"timeout": -1.0}, ValueError, "timeout"),
])
def test_bad_arguments(kw, err, match):
    W = Parameter(np.ones(3))
    with pytest.raises(err, match=match):
        d = DistributedOptimizer(SGD([W], lr=1.0), comm=SelfComm(), **kw)
        W.grad = np.ones(3)
        d.step()
    with pytest.raises(TypeError, match="optimizer must be"):
        DistributedOptimizer([W])


def test_add_param_group_rebuilds_buckets():
    W, b = Parameter(np.ones(3)), Parameter(np.ones(2, dtype=np.float32))
    d = DistributedOptimizer(SGD([W], lr=1.0), comm=SelfComm())
    d.add_param_group({"params": [b], "lr": 0.5})
    assert [n for _, n, _ in d.buckets] == [3, 2]
    W.grad, b.grad = np.ones(3), np.ones(2, dtype=np.float32)
    d.step()
    assert b.data.dtype == np.float32
    np.testing.assert_array_equal(b.data, 0.5)


@pytest.mark.parametrize("comm", COMMS, ids=["SelfComm", "get_comm"])
def test_sharded_size1_equals_wrapped(comm):
    ps = [Parameter(np.ones((5, 3))), Parameter(np.zeros(4))]
    ref = [Parameter(np.ones((5, 3))), Parameter(np.zeros(4))]
    s = ShardedOptimizer(ps, Adam, comm=comm, lr=0.1)
    r = Adam(ref, lr=0.1)
    for t in range(4):
        for o, pl in ((s, ps), (r, ref)):
            pl[0].grad = grad(pl[0].data)
            pl[1].grad = np.full(4, t + 1.0)
            o.step()
    for p, q in zip(ps, ref):
        np.testing.assert_array_equal(p.data, q.data)
    assert s.state_nbytes() == sum(v.nbytes for st in r.state.values() for v in st.values()
                                   if isinstance(v, np.ndarray))
    with pytest.raises(RuntimeError, match="consolidate"):
        s.state_dict()
    full = s.consolidate_state_dict()
    rsd = r.state_dict()
    np.testing.assert_array_equal(full["state"][0]["exp_avg"], rsd["state"][0]["exp_avg"])
    s.param_groups[0]["lr"] = 0.01
    ps[0].grad, ps[1].grad = grad(ps[0].data), np.ones(4)
    s.step()
    assert s.optimizer.param_groups[0]["lr"] == 0.01


def test_sharded_refuses_closure_optimizers_and_mixed_dtypes():
    with pytest.raises(TypeError, match="cannot be sharded"):
        ShardedOptimizer([Parameter(np.ones(2))], LBFGS)
    with pytest.raises(TypeError, match="one dtype"):
        ShardedOptimizer([Parameter(np.ones(2)), Parameter(np.ones(2, dtype=np.float32))], SGD, lr=0.1)
    with pytest.raises(TypeError, match="optimizer_class"):
        ShardedOptimizer([Parameter(np.ones(2))], "adam")
    with pytest.raises(ValueError, match="element-wise"):
        ShardedOptimizer([Parameter(np.ones(2))], LAMB, partition="elements")
    with pytest.raises(ValueError, match="partition must be"):
        ShardedOptimizer([Parameter(np.ones(2))], SGD, partition="rows", lr=0.1)
    assert ShardedOptimizer([Parameter(np.ones(2))], LAMB).partition == "parameters"
    assert ShardedOptimizer([Parameter(np.ones(2))], SGD, lr=0.1).partition == "elements"


def test_partition_sizes_balanced_and_deterministic():
    owner = partition_sizes([10, 1, 7, 3, 3, 8], 3)
    loads = np.bincount(owner, weights=[10, 1, 7, 3, 3, 8], minlength=3)
    assert sorted(loads) == [10, 11, 11]
    np.testing.assert_array_equal(owner, partition_sizes([10, 1, 7, 3, 3, 8], 3))


def test_collectives_and_tree_size1():
    x = np.arange(5.0)
    ring_allreduce(x, SelfComm())
    allreduce(x, SelfComm())
    HierarchicalAllreduce(SelfComm())(x)
    np.testing.assert_array_equal(x, np.arange(5.0))
    obj = {"state": {0: {"step": 3, "m": np.arange(4, dtype=np.float32)}}, "lr": 0.1, "t": (1, 2)}
    back = unpack_tree(pack_tree(obj))
    assert back["lr"] == 0.1 and back["t"] == (1, 2) and back["state"][0]["m"].dtype == np.float32
    assert bcast_tree(obj, comm=SelfComm())["state"][0]["step"] == 3
    assert gather_tree(1, comm=SelfComm()) == [1]
    hp = HybridParallel(1, comm=SelfComm())
    ps = [Parameter(np.ones(2))]
    assert hp.partition(ps) == ps
    with pytest.raises(ValueError, match="model_parallel_size"):
        HybridParallel(2, comm=SelfComm())


def test_broadcast_helpers_size1():
    W = Parameter(np.ones(3))
    opt = Adam([W], lr=0.1)
    broadcast_parameters(opt, comm=SelfComm())
    broadcast_optimizer_state(opt, comm=SelfComm())
    with pytest.raises(ValueError, match="root"):
        broadcast_parameters([W], root=1, comm=SelfComm())
    with pytest.raises(TypeError, match="optimizer must be"):
        broadcast_optimizer_state([W], comm=SelfComm())
    assert get_comm() is get_comm()
