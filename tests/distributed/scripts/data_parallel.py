"""Run under mpiexec -n K: every multi-rank invariant of neurenix.distributed part 1.

Each check prints "OK <name>" on rank 0; any failure raises (mpi4py's runner then aborts the job).
"""
import hashlib

import numpy as np
from mpi4py import MPI

from neurenix.optim import Parameter, Adam, SGD, LAMB, LBFGS
from neurenix.distributed import (
    get_comm, DistributedOptimizer, ShardedOptimizer, HybridParallel, DistributedError,
    ring_allreduce, allreduce, HierarchicalAllreduce, broadcast_parameters, broadcast_optimizer_state,
    FP16, BF16, TopK, RandomK, QSGD, SignSGD, PowerSGD, ErrorFeedback, bcast_tree, gather_tree,
)
from neurenix.distributed.compression import _to_bf16, _from_bf16

comm = get_comm()
K, r = comm.Get_size(), comm.Get_rank()


def ok(name):
    if r == 0:
        print("OK", name, flush=True)


def same_on_all_ranks(arrays, what):
    """All-gathered checksum: every rank must hold bit-identical arrays."""
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).digest()
    h = np.frombuffer(digest[:8], dtype=np.int64).copy()
    allh = np.empty(K, dtype=np.int64)
    comm.Allgather(h, allh)
    assert (allh == allh[0]).all(), f"{what}: ranks differ {allh}"


# data: least squares with a 2-layer-ish parameter set, pooled data split in K equal shards
rng = np.random.default_rng(42)
N, D, H = 32 * 4, 6, 3
X = rng.standard_normal((N, D))
Y = X @ rng.standard_normal((D, H)) + 0.05 * rng.standard_normal((N, H))


def grads(W, b, rows):
    Xs, Ys = X[rows], Y[rows]
    R = Xs @ W + b - Ys
    return Xs.T @ R / len(rows), R.mean(axis=0), 0.5 * np.mean(np.sum(R ** 2, axis=1))


def make(seed):
    g = np.random.default_rng(seed)
    return Parameter(g.standard_normal((D, H))), Parameter(g.standard_normal(H))


shard = np.arange(N)[r::K]
allrows = np.arange(N)

# ---- 1. DistributedOptimizer == single process on pooled data; identical bits every step
for opt_name, factory in [("Adam", lambda ps: Adam(ps, lr=0.05)),
                          ("SGD-momentum", lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
                          ("LAMB", lambda ps: LAMB(ps, lr=0.02))]:
    W, b = make(100 + r)               # different on every rank until the broadcast
    opt = DistributedOptimizer(factory([W, b]), bucket_bytes=64)
    assert len(opt.buckets) >= 2
    opt.broadcast(root=0)
    Wr, br = make(100)                 # the reference: rank 0's start, pooled data
    ref = factory([Wr, br])
    for t in range(15):
        W.grad, b.grad, _ = grads(W.data, b.data, shard)
        opt.step()
        Wr.grad, br.grad, _ = grads(Wr.data, br.data, allrows)
        ref.step()
        same_on_all_ranks([W.data, b.data] + [v for st in opt.state.values() for v in st.values()
                                              if isinstance(v, np.ndarray)], f"{opt_name} step {t}")
    np.testing.assert_allclose(W.data, Wr.data, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.data, br.data, rtol=1e-10, atol=1e-12)
    st = opt.stats.last_step
    assert st["payload"] == (D * H + H + K + 2) * 8, st      # gradients + fused control slots
    assert opt.stats.calls["Allreduce"] == 15 * len(opt.buckets)  # one collective per bucket
ok("pooled-equivalence Adam SGD LAMB, bit-identical parameters and state")

# ---- 2. backward_passes_per_step and op="sum"
W, b = make(7)
opt = DistributedOptimizer(SGD([W, b], lr=0.1), backward_passes_per_step=2)
Wr, br = make(7)
ref = SGD([Wr, br], lr=0.1)
halves = [shard[: len(shard) // 2], shard[len(shard) // 2:]]
for t in range(5):
    for h in halves:
        W.grad, b.grad, _ = grads(W.data, b.data, h)
        opt.step()
    Wr.grad, br.grad, _ = grads(Wr.data, br.data, allrows)
    ref.step()
np.testing.assert_allclose(W.data, Wr.data, rtol=1e-10, atol=1e-12)
W, b = make(7)
opt = DistributedOptimizer(SGD([W, b], lr=0.1 / K), op="sum")
W.grad, b.grad, _ = grads(W.data, b.data, shard)
opt.step()
Wr, br = make(7)
Wr.grad, br.grad, _ = grads(Wr.data, br.data, allrows)
SGD([Wr, br], lr=0.1).step()
np.testing.assert_allclose(W.data, Wr.data, rtol=1e-10, atol=1e-12)
ok("backward_passes_per_step=2 and op=sum")

# ---- 3. closure-driven LBFGS on the data-parallel objective
W, b = make(3)
opt = DistributedOptimizer(LBFGS([W, b], lr=1, max_iter=10, history_size=5))
Wr, br = make(3)
ref = LBFGS([Wr, br], lr=1, max_iter=10, history_size=5)


def closure():
    W.grad, b.grad, f = grads(W.data, b.data, shard)
    return f


def rclosure():
    Wr.grad, br.grad, f = grads(Wr.data, br.data, allrows)
    return f


for _ in range(2):
    opt.step(closure)
    ref.step(rclosure)
np.testing.assert_allclose(W.data, Wr.data, rtol=1e-8, atol=1e-10)
same_on_all_ranks([W.data, b.data], "LBFGS")
ok("LBFGS closure")

# ---- 4. gradients missing on some ranks, and a failure on one rank raises everywhere
W, b = make(5)
opt = DistributedOptimizer(SGD([W, b], lr=1.0))
W.grad = np.ones_like(W.data) * (r + 1)
b.grad = np.ones(H) if r == 0 else None
opt.step()
same_on_all_ranks([W.data, b.data], "missing grads")
expect = make(5)[1].data - 1.0 / K
np.testing.assert_allclose(b.data, expect)
W.grad = None
b.grad = None
opt.step()
assert W.grad is None and b.grad is None
before = [W.data.copy(), b.data.copy()]
W.grad = np.zeros((D, H + (1 if r == K - 1 else 0)))
b.grad = np.zeros(H)
try:
    opt.step()
    raise AssertionError("no error")
except ValueError as e:
    assert r == K - 1 and "shape" in str(e)
except DistributedError as e:
    assert r != K - 1 and e.ranks == [K - 1]
np.testing.assert_array_equal(W.data, before[0])
W.grad = np.ones_like(W.data)
opt.step()                              # still in step after the failure
same_on_all_ranks([W.data, b.data], "after failure")
ok("missing grads and collective failure")

# ---- 5. compressors: identical parameters on all ranks; PowerSGD on matrices
for comp in [FP16(), BF16(), ErrorFeedback(TopK(0.3)), RandomK(0.5), QSGD(16), ErrorFeedback(SignSGD()),
             PowerSGD(rank=2, start_iter=2), ErrorFeedback(RandomK(0.5, unbiased=False))]:
    W, b = make(11)
    opt = DistributedOptimizer(Adam([W, b], lr=0.02), compression=comp)
    for t in range(6):
        W.grad, b.grad, _ = grads(W.data, b.data, shard)
        opt.step()
        same_on_all_ranks([W.data, b.data], repr(comp))
    if K > 1 and isinstance(comp, (FP16, BF16)):
        assert opt.stats.calls.get("ring_allreduce", 0) == 6, opt.stats.calls
ok("compressors keep ranks identical")

# PowerSGD uncompressed phase equals plain averaging, and a rank-1 gradient field is sent exactly
g_local = np.outer(np.arange(1.0, 9.0), np.linspace(-1, 1, 6)) * (r + 1)   # rank 1 on every rank
W = Parameter(np.zeros((8, 6)))
opt = DistributedOptimizer(SGD([W], lr=1.0), compression=PowerSGD(rank=1, start_iter=0, min_compression_rate=1))
W.grad = g_local.copy()
opt.step()
expect = -np.outer(np.arange(1.0, 9.0), np.linspace(-1, 1, 6)) * (K + 1) / 2
np.testing.assert_allclose(W.data, expect, rtol=1e-10, atol=1e-10)
ok("PowerSGD exact on a rank-1 sum")

# ---- 6. ring all-reduce (float64, float16, bfloat16 combine), hierarchical
for n in [1, K - 1, 1000, 1003]:
    x = np.random.default_rng(r).standard_normal(n)
    want = x.copy()
    allreduce(want, comm)
    got = x.copy()
    ring_allreduce(got, comm)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    same_on_all_ranks([got], "ring")
    h = np.random.default_rng(r).standard_normal(n).astype(np.float16)
    hs = h.copy()
    ring_allreduce(hs, comm)
    allh = np.empty((K, n), dtype=np.float16)
    comm.Allgather(h, allh)
    np.testing.assert_allclose(hs.astype(np.float64), allh.astype(np.float64).sum(0), atol=0.02 * K)
    bf = _to_bf16(x.astype(np.float32))
    ring_allreduce(bf, comm, combine=BF16().combine)
    np.testing.assert_allclose(_from_bf16(bf), want, rtol=0.02, atol=0.05)
    for ls in ([None, 1, 2] if K > 1 else [None]):
        hier = HierarchicalAllreduce(comm, local_size=ls)
        y = x.copy()
        hier(y)
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
        hier.free()
ok("ring and hierarchical all-reduce")

# ---- 7. ShardedOptimizer == Adam, state split, checkpoint round trip
shapes = [(6, 5), (7,), (4, 4), (9,), (3, 5), (2, 2)]
g0 = np.random.default_rng(1)
init = [g0.standard_normal(s) for s in shapes]
A = [g0.standard_normal(s) for s in shapes]
cs = np.linspace(0.5, 1.5, 4 * K)


def sgrads(ws, c):
    return [np.mean(c) * 2 * np.sum(A[j] * w) * A[j] + 0.1 * w for j, w in enumerate(ws)]


ps = [Parameter(x.copy()) for x in init]
opt = ShardedOptimizer([{"params": ps[:3]}, {"params": ps[3:], "lr": 0.005}], Adam, lr=0.01)
ref_ps = [Parameter(x.copy()) for x in init]
ref = Adam([{"params": ref_ps[:3]}, {"params": ref_ps[3:], "lr": 0.005}], lr=0.01)
for t in range(10):
    for p, g in zip(ps, sgrads([p.data for p in ps], cs[r::K])):
        p.grad = g
    opt.step()
    for p, g in zip(ref_ps, sgrads([p.data for p in ref_ps], cs)):
        p.grad = g
    ref.step()
    same_on_all_ranks([p.data for p in ps], "sharded params")
for p, q in zip(ps, ref_ps):
    np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-12)
mine = np.array([opt.state_nbytes()], dtype=np.int64)
total = np.zeros(1, dtype=np.int64)
comm.Allreduce(mine, total, op=MPI.SUM)
ref_bytes = sum(v.nbytes for st in ref.state.values() for v in st.values() if isinstance(v, np.ndarray))
assert total[0] == ref_bytes, (total, ref_bytes)
assert opt.partition == "elements"
N_el = sum(p.size for p in ps)
assert mine[0] <= 2 * 8 * -(-N_el // K), (mine, N_el)      # exp_avg + exp_avg_sq of ceil(N/K) elements
full = opt.consolidate_state_dict(to=K - 1)
if r == K - 1:
    rsd = ref.state_dict()
    assert sorted(full["state"]) == sorted(rsd["state"])
    for i in rsd["state"]:
        np.testing.assert_allclose(full["state"][i]["exp_avg_sq"], rsd["state"][i]["exp_avg_sq"], rtol=1e-10)
    assert full["param_groups"][1]["lr"] == 0.005
else:
    assert full is None
full = bcast_tree(full, root=K - 1, comm=comm)
ps2 = [Parameter(p.data.copy()) for p in ps]
opt2 = ShardedOptimizer([{"params": ps2[:3]}, {"params": ps2[3:], "lr": 0.005}], Adam, lr=0.01)
opt2.load_state_dict(full)
for o, pl in ((opt, ps), (opt2, ps2)):
    for p, g in zip(pl, sgrads([p.data for p in pl], cs[r::K])):
        p.grad = g
    o.step()
for p, q in zip(ps, ps2):
    np.testing.assert_array_equal(p.data, q.data)
parts = gather_tree({"rank": r, "a": np.arange(r + 1.0)}, root=0, comm=comm)
if r == 0:
    assert [p["rank"] for p in parts] == list(range(K)) and parts[-1]["a"].shape == (K,)
# per-parameter-norm rule: whole parameters per rank
ps = [Parameter(x.copy()) for x in init]
opt = ShardedOptimizer(ps, LAMB, lr=0.01)
assert opt.partition == "parameters"
ref_ps = [Parameter(x.copy()) for x in init]
ref = LAMB(ref_ps, lr=0.01)
for t in range(5):
    for o, pl, c in ((opt, ps, cs[r::K]), (ref, ref_ps, cs)):
        for p, g in zip(pl, sgrads([p.data for p in pl], c)):
            p.grad = g
        o.step()
for p, q in zip(ps, ref_ps):
    np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-12)
ok(f"ShardedOptimizer state bytes rank0={mine[0]} total={ref_bytes}")

# ---- 8. broadcast_optimizer_state of a stepped optimizer
W, b = make(20 + r)
o = Adam([W, b], lr=0.01 * (r + 1))
W.grad, b.grad, _ = grads(W.data, b.data, shard)
o.step()
broadcast_parameters([W, b], root=0)
broadcast_optimizer_state(o, root=0)
same_on_all_ranks([W.data, b.data] + [v for st in o.state.values() for v in st.values() if isinstance(v, np.ndarray)],
                  "broadcast state")
assert o.param_groups[0]["lr"] == 0.01
ok("broadcast_optimizer_state")

# ---- 9. hybrid data x model parallel (4 ranks: 2 x 2)
if K == 4:
    hp = HybridParallel(model_parallel_size=2)
    assert hp.dp.Get_size() == 2 and hp.mp.Get_size() == 2
    g = np.random.default_rng(9)
    blocks = [Parameter(g.standard_normal(D // 2)), Parameter(g.standard_normal(D // 2))]
    y1 = Y[:, 0]
    own = hp.partition(blocks)
    assert len(own) == 1
    (wp,) = own
    j = blocks.index(wp)
    cols = slice(j * (D // 2), (j + 1) * (D // 2))
    opt = hp.distributed_optimizer(Adam([wp], lr=0.05))
    rows = np.arange(N)[hp.dp_rank::2]
    ref_blocks = [Parameter(b_.data.copy()) for b_ in blocks]
    ref = Adam(ref_blocks, lr=0.05)
    for t in range(10):
        part = X[rows][:, cols] @ wp.data                   # model-parallel forward
        hp.mp.Allreduce(MPI.IN_PLACE, part, op=MPI.SUM)
        res = part - y1[rows]
        wp.grad = X[rows][:, cols].T @ res / len(rows)
        opt.step()
        wfull = np.concatenate([q.data for q in ref_blocks])
        rres = X @ wfull - y1
        for jj, q in enumerate(ref_blocks):
            q.grad = X[:, jj * (D // 2):(jj + 1) * (D // 2)].T @ rres / N
        ref.step()
    hp.gather_parameters(blocks)
    for p, q in zip(blocks, ref_blocks):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-12)
    hp.free()
    ok("hybrid 2x2")

comm.Barrier()
ok(f"all K={K}")
