"""Compressors in one process (no MPI): round trips, unbiasedness, contraction, error feedback."""
import numpy as np
import pytest
from neurenix.distributed import (SelfComm, FP16, BF16, TopK, RandomK, QSGD, SignSGD, PowerSGD,
                                  ErrorFeedback, NoCompression, CommStats)
from neurenix.distributed.compression import CommOps, _to_bf16, _from_bf16

RNG = np.random.default_rng(0)
X64 = RNG.standard_normal(1000)
X32 = X64.astype(np.float32)


def roundtrip(c, x, key=0, layout=None):
    payload, ctx = c.compress(x, key, layout)
    assert payload.ndim == 1 and payload.flags.c_contiguous
    out = c.decompress(payload, ctx)
    assert out.dtype == x.dtype and out.shape == x.shape
    return payload, out


@pytest.mark.parametrize("x", [X64, X32], ids=["f64", "f32"])
def test_fp16_roundtrip(x):
    payload, out = roundtrip(FP16(), x)
    assert payload.dtype == np.float16 and payload.nbytes == x.size * 2
    np.testing.assert_array_equal(out, x.astype(np.float16).astype(x.dtype))


BF16_CASES = np.concatenate([X32 * 1e3, [0.0, -0.0, np.inf, -np.inf, 1e-40, 3.0e38],
                             np.float32([1 + 2 ** -8, 1 + 3 * 2 ** -8])]).astype(np.float32)  # ties to even


def _bf16_reference(x):
    """Nearest bfloat16 by exhaustive comparison of the two neighbours, in float64."""
    out = np.empty_like(x)
    for i, v in enumerate(x.astype(np.float64)):
        if not np.isfinite(v):
            out[i] = v
            continue
        u = np.float32(v).view(np.uint32) & np.uint32(0xFFFF0000)
        lo = np.uint32(u).view(np.float32).astype(np.float64)
        hi = np.uint32(u + 0x10000).view(np.float32).astype(np.float64)
        dlo, dhi = abs(v - lo), abs(hi - v)
        even_lo = (int(u) >> 16) % 2 == 0
        out[i] = lo if (dlo < dhi or (dlo == dhi and even_lo)) else hi
    return out


def test_bf16_rounding_nearest_even():
    np.testing.assert_array_equal(_from_bf16(_to_bf16(BF16_CASES)), _bf16_reference(BF16_CASES))


def test_bf16_matches_torch():
    torch = pytest.importorskip("torch")
    x = BF16_CASES
    ref = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    np.testing.assert_array_equal(_from_bf16(_to_bf16(x)), ref)
    assert np.isnan(_from_bf16(_to_bf16(np.float32([np.nan]))))[0]
    payload, out = roundtrip(BF16(), X64)
    assert payload.dtype == np.uint16
    np.testing.assert_allclose(out, X64, rtol=2 ** -8)


@pytest.mark.parametrize("x", [X64, X32], ids=["f64", "f32"])
def test_topk_keeps_largest(x):
    c = TopK(0.05)
    payload, out = roundtrip(c, x)
    k = 50
    keep = np.argsort(-np.abs(x))[:k]
    want = np.zeros_like(x)
    want[keep] = x[keep]
    np.testing.assert_array_equal(out, want)
    assert payload.nbytes == k * (x.itemsize + 4)
    # contraction ||C(x) - x||^2 <= (1 - k/n) ||x||^2
    assert np.sum((out - x) ** 2) <= (1 - k / x.size) * np.sum(x ** 2)


def test_randomk_unbiased_and_shared_indices():
    c1, c2 = RandomK(0.1, seed=3), RandomK(0.1, seed=3)
    _, a = roundtrip(c1, X64)
    _, b = roundtrip(c2, X64 * 2)
    assert np.array_equal(np.flatnonzero(a), np.flatnonzero(b))    # same positions across "ranks"
    c = RandomK(0.1, seed=5)
    x = X64[:50]
    mean = np.mean([roundtrip(c, x)[1] for _ in range(4000)], axis=0)
    # each entry is kept with prob 0.1 and scaled by 10: std of the mean ~ 3|x|/sqrt(4000)
    assert np.all(np.abs(mean - x) <= 6 * 3 * np.abs(x) / np.sqrt(4000) + 1e-12)
    _, biased = roundtrip(RandomK(0.1, seed=5, unbiased=False), x)
    nz = biased != 0
    np.testing.assert_array_equal(biased[nz], x[nz])


def test_qsgd_unbiased_and_variance_bound():
    x = X64[:64]
    s = 4
    c = QSGD(levels=s, seed=1)
    payload, out = roundtrip(c, x)
    assert payload.nbytes == 8 + 64
    lv = out / (np.linalg.norm(x) / s)
    np.testing.assert_allclose(lv, np.round(lv))                      # on the grid
    draws = np.array([roundtrip(c, x)[1] for _ in range(4000)])
    var = np.mean(np.sum((draws - x) ** 2, axis=1))
    n = x.size
    assert var <= min(n / s ** 2, np.sqrt(n) / s) * np.sum(x ** 2)      # Alistarh et al. Lemma 3.1
    se = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - x) <= 5 * se + 1e-12)
    _, z = roundtrip(c, np.zeros(5))
    np.testing.assert_array_equal(z, 0)


def test_sign_scaled():
    payload, out = roundtrip(SignSGD(), X64)
    assert payload.nbytes == 8 + 125
    np.testing.assert_allclose(out, np.abs(X64).mean() * np.where(X64 >= 0, 1, -1))


def test_powersgd_local_power_iteration():
    m = RNG.standard_normal((12, 9))
    low = RNG.standard_normal((12, 2)) @ RNG.standard_normal((2, 9))
    c = PowerSGD(rank=2, start_iter=0, min_compression_rate=0)
    layout = [(0, (12, 9)), (108, (5,))]
    x = np.concatenate([low.reshape(-1), np.arange(5.0)])
    payload, out = roundtrip(c, x, layout=layout)
    assert payload.size == 5 + 12 * 2 + 9 * 2
    np.testing.assert_allclose(out, x, atol=1e-10)                    # rank-2 matrix: exact
    x = np.concatenate([m.reshape(-1), np.arange(5.0)])
    _, out = roundtrip(c, x, layout=layout)
    q0 = np.random.default_rng([0, 0, 0]).standard_normal((9, 2))
    p, _ = np.linalg.qr(m @ q0)
    np.testing.assert_allclose(out[:108].reshape(12, 9), p @ p.T @ m, atol=1e-10)  # P P^T M


def test_powersgd_reduce_error_feedback_size1():
    """At size 1, PowerSGD with error feedback transmits every gradient eventually:
    sum of outputs + final residual == sum of inputs."""
    ops = CommOps(SelfComm())
    c = PowerSGD(rank=1, start_iter=1, min_compression_rate=0)
    layout = [(0, (10, 8))]
    total_in = np.zeros(80)
    total_out = np.zeros(80)
    for t in range(6):
        g = RNG.standard_normal(80)
        total_in += g
        total_out += c.reduce(g, ops, key=0, layout=layout)
    np.testing.assert_allclose(total_out + c._residual[0], total_in, atol=1e-10)
    assert ops.stats.calls["Allreduce"] == 1 + 5 * 2


@pytest.mark.parametrize("inner", [TopK(0.1), SignSGD(), RandomK(0.1, seed=0, unbiased=False), QSGD(2, seed=0)],
                         ids=repr)
def test_error_feedback_telescopes(inner):
    ef = ErrorFeedback(inner)
    ops = CommOps(SelfComm())
    total_in = np.zeros(200)
    total_out = np.zeros(200)
    for t in range(10):
        g = RNG.standard_normal(200)
        total_in += g
        total_out += ef.reduce(g, ops, key=1)
    np.testing.assert_allclose(total_out + ef.residuals[1], total_in, atol=1e-10)


def test_error_feedback_reaches_uncompressed_loss():
    """EF-TopK(5%) and EF-signSGD on least squares: final loss within 10% of uncompressed SGD.

    The step size respects EF's delay (lr * L * k/n small; at lr = 0.2 EF-TopK(5%) diverges)."""
    g = np.random.default_rng(1)
    A = g.standard_normal((400, 200)) / 20
    b = A @ g.standard_normal(200) + 0.01 * g.standard_normal(400)

    def train(comp, steps=600, lr=0.1):
        x = np.zeros(200)
        ops = CommOps(SelfComm())
        for _ in range(steps):
            grad = A.T @ (A @ x - b)
            x -= lr * (comp.reduce(grad, ops) if comp is not None else grad)
        return 0.5 * np.sum((A @ x - b) ** 2)

    base = train(None)
    for comp in [ErrorFeedback(TopK(0.05)), ErrorFeedback(SignSGD())]:
        assert train(comp) <= 1.1 * base, comp
    assert train(TopK(0.05)) > 2 * base          # without the residual, TopK stalls


def test_commops_size1_accounting():
    st = CommStats()
    ops = CommOps(SelfComm(), st)
    y = ops.allreduce_sum(np.ones(4))
    np.testing.assert_array_equal(y, 1)
    rows = ops.allgather(np.arange(3.0))
    assert rows.shape == (1, 3)
    assert st.sent == 0 and st.payload == 32 + 24


@pytest.mark.parametrize("bad, err, match", [
    (lambda: TopK(0), ValueError, "ratio"),
    (lambda: TopK(1.5), ValueError, "ratio"),
    (lambda: RandomK(0.1, seed=-1), ValueError, "seed"),
    (lambda: QSGD(0), ValueError, "levels"),
    (lambda: PowerSGD(rank=0), ValueError, "rank"),
    (lambda: PowerSGD(start_iter=-1), ValueError, "start_iter"),
    (lambda: ErrorFeedback(PowerSGD()), ValueError, "already has error feedback"),
    (lambda: ErrorFeedback("topk"), TypeError, "compressor"),
    (lambda: TopK(0.1).compress(np.ones((2, 2))), TypeError, "x must be"),
    (lambda: FP16().compress(np.ones(3, dtype=np.int64)), TypeError, "x must be"),
])
def test_bad_arguments(bad, err, match):
    with pytest.raises(err, match=match):
        bad()


def test_nocompression_identity():
    _, out = roundtrip(NoCompression(), X64)
    np.testing.assert_array_equal(out, X64)


def test_sign_scaled_per_tensor():
    # Karimireddy et al. 2019 scale each layer by its own ||x_t||_1 / d_t
    x = np.concatenate([100 * RNG.standard_normal(30), 0.01 * RNG.standard_normal(7), [0.0, -2.0]])
    layout = [(0, (5, 6)), (30, (7,)), (37, (2,))]
    payload, out = roundtrip(SignSGD(), x, layout=layout)
    assert payload.nbytes == 3 * 8 + (39 + 7) // 8
    sgn = np.where(x >= 0, 1.0, -1.0)
    want = np.concatenate([np.abs(x[a:b]).mean() * sgn[a:b] for a, b in [(0, 30), (30, 37), (37, 39)]])
    np.testing.assert_allclose(out, want, rtol=1e-15)
    # one scale for the bucket when asked, or without a layout
    _, one = roundtrip(SignSGD(per_tensor=False), x, layout=layout)
    np.testing.assert_allclose(one, np.abs(x).mean() * sgn, rtol=1e-15)
    # the contraction of the paper: ||C(x) - x||^2 <= (1 - ||x||_1^2 / (d ||x||^2)) ||x||^2 per tensor
    for a, b in [(0, 30), (30, 37), (37, 39)]:
        xs, cs = x[a:b], out[a:b]
        delta = np.abs(xs).sum() ** 2 / ((b - a) * np.sum(xs ** 2))
        assert np.sum((cs - xs) ** 2) <= (1 - delta) * np.sum(xs ** 2) * (1 + 1e-12)
    with pytest.raises(TypeError, match="per_tensor"):
        SignSGD(per_tensor=1)
    with pytest.raises(ValueError, match="layout"):
        SignSGD().compress(x, layout=[(0, (5,)), (9, (5,)), (5, (34,))])
    # a zero-size tensor in the bucket shares its offset with the next one
    _, z = roundtrip(SignSGD(), x, layout=[(0, (30,)), (30, (0,)), (30, (9,))])
    np.testing.assert_allclose(z[30:], np.abs(x[30:]).mean() * sgn[30:], rtol=1e-15)


def test_ef_sign_through_distributed_optimizer_equals_paper():
    """DistributedOptimizer(SGD, ErrorFeedback(SignSGD())) at size 1 is EF-signSGD as written in
    Karimireddy et al. 2019, Algorithm 1 with the layer-wise scaled sign: p = lr g + e,
    d = (||p_t||_1 / d_t) sign(p_t) per tensor, x -= d, e = p - d."""
    from neurenix.distributed import DistributedOptimizer
    from neurenix.optim import Parameter, SGD
    g = np.random.default_rng(3)
    X = g.standard_normal((64, 6))
    Y = X @ g.standard_normal((6, 3)) + 5.0
    W, b = Parameter(np.zeros((6, 3))), Parameter(np.zeros(3))
    opt = DistributedOptimizer(SGD([W, b], lr=0.05), comm=SelfComm(), compression=ErrorFeedback(SignSGD()))
    x = [np.zeros((6, 3)), np.zeros(3)]
    e = [np.zeros((6, 3)), np.zeros(3)]
    for _ in range(50):
        R = X @ W.data + b.data - Y
        W.grad, b.grad = X.T @ R / 64, R.mean(0)
        opt.step()
        R = X @ x[0] + x[1] - Y
        for i, gr in enumerate([X.T @ R / 64, R.mean(0)]):
            p = 0.05 * gr + e[i]
            d = np.abs(p).mean() * np.where(p >= 0, 1.0, -1.0)
            e[i] = p - d
            x[i] = x[i] - d
    np.testing.assert_allclose(W.data, x[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.data, x[1], rtol=1e-12, atol=1e-12)
