"""neurenix.distributed.federated: FedAvg, FedProx, secure aggregation, DP-FedAvg.

References: a direct NumPy transcription of the algorithms of McMahan et al.
(2017) (FedAvg), Li et al. (2020) (FedProx) and McMahan et al. (2018)
(clipping, uniform weights, Gaussian noise), and PyTorch's Adam for the local
steps of the Adam case (``_reference.RefAdam``); secure aggregation against the plain aggregation (up
to the fixed-point resolution) and by what the server receives.
"""
import time

import numpy as np
import pytest

from neurenix.optim import Parameter, SGD
from neurenix.distributed import FedAvg, FedProx, SecureAggregator, GaussianDP, SelfComm
from . import _problems as P
from ._mpi import requires_mpi, run_mpi
from ._reference import RefAdam

SCRIPT = """
import json
import numpy as np
from neurenix import distributed as D
from neurenix.optim import Parameter, SGD, Adam
from tests.distributed import _problems as P
comm = D.get_comm()
r, K = comm.Get_rank(), comm.Get_size()
X, y = P.client_rows(r - 1) if r else (np.zeros((0, 3)), np.zeros(0))
nb = max(1, y.size // P.BATCH)

def step(params, epoch, b):
    loss, g = P.client_grad(params[0].data, X, y, b)
    params[0].grad = g
    return loss

out = {}
cases = {
    "plain": (D.FedAvg, dict(local_epochs=2), lambda p: SGD(p, lr=0.05)),
    "fraction": (D.FedAvg, dict(client_fraction=0.67, seed=5), lambda p: SGD(p, lr=0.05)),
    "prox": (D.FedProx, dict(mu=0.5, local_epochs=2), lambda p: SGD(p, lr=0.05)),
    "adam": (D.FedAvg, dict(local_epochs=1), lambda p: Adam(p, lr=0.05)),
    "secure": (D.FedAvg, dict(local_epochs=2, secure_aggregation=True), lambda p: SGD(p, lr=0.05)),
    "dp_clip": (D.FedAvg, dict(local_epochs=2, dp=D.GaussianDP(0.05, 0.0)), lambda p: SGD(p, lr=0.05)),
}
for name, (cls, kw, make) in cases.items():
    w = Parameter(np.zeros(3))
    fed = cls([w], make([w]), num_samples=y.size, **kw)
    hist = fed.fit(step, rounds=4, batches_per_epoch=nb)
    out[name] = dict(w=w.data.tolist(), hist=hist, report=fed.report())
    if name == "secure" and r == 0:
        out[name]["view"] = fed.server_view.tolist()
# the Gaussian noise of DP-FedAvg: zero updates, so the model moves by the noise only
big = Parameter(np.zeros(4000))
def zero_step(params, epoch, b):
    params[0].grad = np.zeros(4000)
    return 0.0
fed = D.FedAvg([big], SGD([big], lr=0.1), num_samples=1, dp=D.GaussianDP(1.0, 2.0, seed=1))
fed.fit(zero_step, rounds=2, batches_per_epoch=1)
out["noise"] = dict(std=float(np.std(big.data)), mean=float(np.mean(big.data)),
                    hist=fed.history, report=fed.report())
if r == 0:
    print("RESULT " + json.dumps(out), flush=True)
"""


def fedavg_reference(rounds, lr, local_epochs=1, m=3, seed=None, mu=0.0, clip=None,
                     optimizer="sgd"):
    """FedAvg / FedProx / clipped DP-FedAvg (without noise) transcribed from the papers."""
    data = [P.client_rows(c) for c in range(3)]
    rng = np.random.default_rng(seed)
    w = np.zeros(3)
    history = []
    for _ in range(rounds):
        sel = np.sort(rng.choice(3, m, replace=False))
        tot = sum(data[c][1].size for c in sel)
        agg = np.zeros(3)
        loss = 0.0
        per_client = []
        for c in sel:
            X, y = data[c]
            wk = w.copy()
            losses = []
            opt = RefAdam(lr) if optimizer == "adam" else None     # fresh state every round
            for e in range(local_epochs):
                for b in range(y.size // P.BATCH):
                    lb, g = P.client_grad(wk, X, y, b)
                    if opt is not None:
                        wk = opt.step(wk, g)
                    else:
                        wk = wk - lr * (g + mu * (wk - w))
                    losses.append(lb)
            d = wk - w
            if clip is not None:
                d = d * min(1.0, clip / np.linalg.norm(d))
                pk = 1.0 / m
            else:
                pk = y.size / tot
            per_client.append(pk * d)
            agg += pk * d
            loss += pk * np.mean(losses)
        w = w + agg
        history.append(dict(clients=[int(c) + 1 for c in sel], train_loss=loss,
                            per_client=per_client, agg=agg))
    return w, history


@pytest.fixture(scope="module")
def results():
    rc, out, err = run_mpi(SCRIPT, 4, timeout=90)
    assert rc == 0, err[-3000:]
    return P.result_of(out)


@requires_mpi
@pytest.mark.parametrize("name,ref_kw", [
    ("plain", dict(local_epochs=2)),
    ("fraction", dict(m=2, seed=5)),
    ("prox", dict(local_epochs=2, mu=0.5)),
    ("adam", dict(optimizer="adam")),
])
def test_matches_the_papers_algorithm(results, name, ref_kw):
    w, hist = fedavg_reference(4, 0.05, **ref_kw)
    got = results[name]
    np.testing.assert_allclose(got["w"], w, rtol=1e-12, atol=1e-14)
    for h, ref in zip(got["hist"], hist):
        assert h["clients"] == ref["clients"]
        assert h["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-12)
    if name == "fraction":
        assert all(len(h["clients"]) == 2 for h in got["hist"])
        assert len({tuple(h["clients"]) for h in got["hist"]}) > 1


@requires_mpi
def test_secure_aggregation_equals_plain_and_hides_updates(results):
    got, plain = results["secure"], results["plain"]
    bits = got["report"]["secure_aggregation"]["precision_bits"]
    # 4 rounds, each off by at most 3 roundings of 2**-(bits+1)
    np.testing.assert_allclose(got["w"], plain["w"], atol=4 * 3 * 2.0 ** -(bits + 1) * 4)
    view = np.asarray(got["view"], dtype=np.uint32)
    assert view.shape == (3, 4)
    agg = SecureAggregator(bits)
    summed = view.sum(axis=0, dtype=np.uint32)
    _, hist = fedavg_reference(4, 0.05, local_epochs=2)
    np.testing.assert_allclose(agg.decode(summed)[:3], hist[-1]["agg"], atol=1e-5)
    for row, mine in zip(view, hist[-1]["per_client"]):
        # what the server received from a client is not that client's encoded update
        assert np.all(row[:3] != agg.encode(mine))
        assert np.all(np.abs(agg.decode(row[:3]) - mine) > 1e-3)


@requires_mpi
def test_dp_clipping_and_uniform_weights(results):
    w, hist = fedavg_reference(4, 0.05, local_epochs=2, clip=0.05)
    got = results["dp_clip"]
    np.testing.assert_allclose(got["w"], w, rtol=1e-12, atol=1e-14)
    assert all(h["train_loss"] is None for h in got["hist"])
    assert all(np.linalg.norm(h["agg"]) <= 0.05 + 1e-15 for h in hist)
    assert got["report"]["dp"]["noise_multiplier"] == 0.0


@requires_mpi
def test_dp_noise_std(results):
    got = results["noise"]
    # two rounds of N(0, (z C / m)^2) with z = 2, C = 1, m = 3
    std = 2.0 * 1.0 / 3.0
    assert got["std"] == pytest.approx(std * np.sqrt(2), rel=0.05)
    assert abs(got["mean"]) < 5 * std * np.sqrt(2) / np.sqrt(4000)
    assert got["hist"][0]["noise_std"] == pytest.approx(std)
    assert got["report"]["dp"]["noise_std_of_average"] == pytest.approx(std)
    assert got["report"]["sampling_rate"] == 1.0 and got["report"]["rounds"] == 2


# ------------------------------------------------------------------------ serial
def test_secure_aggregator_masks_cancel_and_look_uniform():
    agg = SecureAggregator(precision_bits=18)
    rng = np.random.default_rng(0)
    clients = [0, 1, 2, 3]
    seeds = {}
    for i in clients:
        for j in clients:
            if i < j:
                seeds[i, j] = seeds[j, i] = rng.bytes(32)
    xs = [rng.normal(size=5000) for _ in clients]
    masked = [agg.masked(x, i, clients, {j: seeds[i, j] for j in clients if j != i}, 7)
              for i, x in zip(clients, xs)]
    total = np.zeros(5000, dtype=np.uint32)
    for m in masked:
        total += m
    np.testing.assert_allclose(agg.decode(total), sum(xs), atol=4 * 2.0 ** -19)
    np.testing.assert_allclose(agg.decode(agg.encode(xs[0])), xs[0], atol=2.0 ** -19)
    # one masked vector: uniform on Z_2^32 (top byte histogram, chi-square test at 1e-6)
    counts = np.bincount(masked[0] >> 24, minlength=256)
    chi2 = np.sum((counts - 5000 / 256) ** 2 / (5000 / 256))
    assert chi2 < 400
    # masks change every round and differ between pairs
    assert np.any(agg.mask(seeds[0, 1], 1, 8) != agg.mask(seeds[0, 1], 2, 8))
    with pytest.raises(ValueError, match="precision_bits"):
        agg.encode(np.array([5000.0]))
    with pytest.raises(ValueError, match="precision_bits"):
        SecureAggregator(precision_bits=31)


def test_gaussian_dp_clip_and_validation():
    dp = GaussianDP(clip_norm=1.0, noise_multiplier=1.1, seed=0)
    u = np.array([3.0, 4.0])
    np.testing.assert_allclose(dp.clip(u), [0.6, 0.8])
    np.testing.assert_array_equal(dp.clip(np.array([0.3, 0.4])), [0.3, 0.4])
    assert dp.noise_std(10) == pytest.approx(0.11)
    with pytest.raises(ValueError, match="clip_norm"):
        GaussianDP(0.0, 1.0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        GaussianDP(1.0, -1.0)


def _client0():
    """Client 0's rows, a zero model and its local step (for the size-1 runs)."""
    X, y = P.client_rows(0)

    def step(params, epoch, b):
        loss, g = P.client_grad(params[0].data, X, y, b)
        params[0].grad = g
        return loss
    return X, y, Parameter(np.zeros(3)), step


def test_size1_fedavg_is_local_training():
    X, y, w, step = _client0()
    fed = FedAvg([w], SGD([w], lr=0.05), num_samples=y.size, local_epochs=2, comm=SelfComm())
    hist = fed.fit(step, rounds=3, batches_per_epoch=2, evaluate=lambda p: 1.0, target=2.0)
    assert len(hist) == 1 and hist[0]["eval"] == 1.0          # target reached: stop
    ref = np.zeros(3)
    for e in range(2):
        for b in range(2):
            ref = ref - 0.05 * P.client_grad(ref, X, y, b)[1]
    np.testing.assert_allclose(w.data, ref, rtol=1e-14)


def test_bad_arguments():
    w = Parameter(np.zeros(3))
    opt = SGD([w], lr=0.1)
    c = SelfComm()
    with pytest.raises(ValueError, match="client_fraction"):
        FedAvg([w], opt, 10, client_fraction=0.0, comm=c)
    with pytest.raises(ValueError, match="local_epochs"):
        FedAvg([w], opt, 10, local_epochs=0, comm=c)
    with pytest.raises(ValueError, match="at least 2 clients"):
        FedAvg([w], opt, 10, secure_aggregation=True, comm=c)
    with pytest.raises(TypeError, match="dp"):
        FedAvg([w], opt, 10, dp=1.0, comm=c)
    with pytest.raises(ValueError, match="mu"):
        FedProx([w], opt, 10, mu=-1.0, comm=c)
    with pytest.raises(ValueError, match="num_samples"):
        FedAvg([w], opt, -1, comm=c)
    fed = FedAvg([w], opt, 10, comm=c)
    with pytest.raises(ValueError, match="target needs evaluate"):
        fed.fit(lambda p, e, b: 0.0, rounds=1, batches_per_epoch=1, target=0.1)
    with pytest.raises(TypeError, match="minibatch loss"):
        fed.fit(lambda p, e, b: setattr(p[0], "grad", np.zeros(3)), rounds=1, batches_per_epoch=1)


SCRIPT_FAIL = """
import numpy as np
from neurenix import distributed as D
from neurenix.optim import Parameter, SGD
from tests.distributed import _problems as P
comm = D.get_comm()
r = comm.Get_rank()
X, y = P.client_rows(max(r - 1, 0))

def make_step(fail_rank, big=False):
    def step(params, epoch, b):
        if r == fail_rank:
            raise KeyError("injected in client_step")
        loss, g = P.client_grad(params[0].data, X, y, b)
        params[0].grad = g * (1e9 if big and r == 3 else 1.0)
        return loss
    return step

def bad_eval(params):
    raise ArithmeticError("injected in evaluate")

msgs = []
for name, kw, step, ev in (("client", {}, make_step(2), None),
                           ("server", {}, make_step(-1), bad_eval),
                           ("range", dict(secure_aggregation=True), make_step(-1, big=True), None)):
    w = Parameter(np.zeros(3))
    P.attempt(name, lambda: D.FedAvg([w], SGD([w], lr=0.05), num_samples=y.size, timeout=30,
                                     **kw).fit(step, rounds=3, batches_per_epoch=2, evaluate=ev),
              r, msgs)
w = Parameter(np.zeros(3))
D.FedAvg([w], SGD([w], lr=0.05), num_samples=y.size).fit(make_step(-1), rounds=1, batches_per_epoch=2)
msgs.append(f"final rank {r}: {w.data.tolist()}")
P.print_gathered(comm, msgs)
"""


@requires_mpi
def test_failures_raise_on_every_rank_without_hanging():
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_FAIL, 4, timeout=60)
    assert rc == 0, err[-3000:]
    lines = set(out.splitlines())
    assert "client rank 2: KeyError: 'injected in client_step'" in lines
    assert "server rank 0: ArithmeticError: injected in evaluate" in lines
    assert any(ln.startswith("range rank 3: ValueError: secure aggregation") for ln in lines)
    for r in (0, 1, 3):
        assert P.has(lines, f"client rank {r}: DistributedError [2]")
    for r in (1, 2, 3):
        assert P.has(lines, f"server rank {r}: DistributedError [0]")
    for r in (0, 1, 2):
        assert P.has(lines, f"range rank {r}: DistributedError [3]")
    finals = [ln.split(": ", 1)[1] for ln in lines if ln.startswith("final")]
    assert len(finals) == 4 and len(set(finals)) == 1
    assert time.monotonic() - t0 < 50


@pytest.mark.parametrize("z, rounds, delta", [(10.0, 100, 1e-5), (2.0, 10, 1e-5), (0.5, 1, 1e-3),
                                              (30.0, 1000, 1e-6), (50.0, 1, 1e-5), (8.0, 3, 0.2)])
def test_gaussian_dp_privacy_spent_exact_curve(z, rounds, delta):
    """epsilon of T rounds (replace-one: sensitivity 2 clip/m, noise z clip/m) checked three ways."""
    from scipy.integrate import quad
    from scipy.stats import norm
    dp = GaussianDP(clip_norm=0.7, noise_multiplier=z)
    eps = dp.privacy_spent(rounds, delta)
    mu = 2 * np.sqrt(rounds) / z
    assert dp.gdp_mu(rounds) == pytest.approx(mu, rel=1e-15)
    # 1. the definition: hockey-stick divergence of N(mu, 1) from N(0, 1) at e^eps equals delta
    #    (the T-fold composition of Gaussian mechanisms is the Gaussian pair with mu = sqrt(T) 2/z)
    def hockey(e):
        x0 = e / mu + mu / 2                  # where the density ratio crosses e^e
        return quad(lambda x: norm.pdf(x, mu) - np.exp(e) * norm.pdf(x), x0, np.inf,
                    epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    if eps == 0:                              # delta(0) = 2 Phi(mu/2) - 1 is already below delta
        assert hockey(0.0) <= delta
    else:
        assert hockey(eps) == pytest.approx(delta, rel=1e-7)
        assert hockey(eps * (1 - 1e-6)) > delta                  # the smallest such epsilon
    # 2. the Renyi-DP conversion (Mironov 2017, Prop. 3) is an upper bound
    alphas = np.linspace(1.01, 2000, 200000)
    assert eps <= np.min(alphas * mu ** 2 / 2 + np.log(1 / delta) / (alphas - 1)) * (1 + 1e-12)
    # 3. Google's dp_accounting (privacy-loss-distribution accountant) on the same events
    dpa = pytest.importorskip("dp_accounting")
    from dp_accounting import pld
    acc = pld.PLDAccountant()
    acc.compose(dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z / 2), rounds))
    assert eps == pytest.approx(acc.get_epsilon(delta), rel=1e-6, abs=1e-6)


def test_gaussian_dp_privacy_spent_edges():
    dp = GaussianDP(1.0, 1.0)
    assert dp.privacy_spent(0, 1e-5) == 0.0
    assert GaussianDP(1.0, 0.0).privacy_spent(5, 1e-5) == np.inf
    assert GaussianDP(1.0, 1e4).privacy_spent(1, 0.5) == 0.0       # delta(0) = 2 Phi(mu/2) - 1 < 0.5
    assert dp.privacy_spent(40, 1e-5) > dp.privacy_spent(10, 1e-5) > dp.privacy_spent(10, 1e-3)
    for bad in (0, 1, -1e-5, 2.0, True, "1e-5", np.nan):
        with pytest.raises(ValueError, match="delta"):
            dp.privacy_spent(3, bad)
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="rounds"):
            dp.privacy_spent(bad, 1e-5)


def test_fedavg_report_epsilon():
    X, y, w, step = _client0()
    dp = GaussianDP(clip_norm=0.5, noise_multiplier=3.0, seed=0)
    fed = FedAvg([w], SGD([w], lr=0.05), num_samples=y.size, dp=dp, comm=SelfComm())
    fed.fit(step, rounds=4, batches_per_epoch=2)
    rep = fed.report(delta=1e-5)["dp"]
    assert rep["mu"] == pytest.approx(2 * 2 / 3.0)
    assert rep["epsilon"] == dp.privacy_spent(4, 1e-5) > 0
    assert "epsilon" not in fed.report()["dp"]
    plain = FedAvg([w], SGD([w], lr=0.05), num_samples=y.size, comm=SelfComm())
    with pytest.raises(ValueError, match="delta"):
        plain.report(delta=1e-5)
