"""neurenix.distributed.local_sgd: LocalSGD / post-local SGD, against a simulation of K
models (PyTorch's SGD/Adam rules, ``_reference``, for the local steps; explicit averaging)."""

import numpy as np
import pytest

from neurenix.optim import Parameter, SGD
from neurenix.distributed import LocalSGD, SelfComm
from . import _problems as P
from ._mpi import requires_mpi, run_mpi
from ._reference import RefSGD, RefAdam

SCRIPT = """
import json
import numpy as np
from neurenix import distributed
from neurenix.distributed import LocalSGD, DistributedError
from neurenix.optim import Parameter, SGD, Adam
from tests.distributed import _problems as P
comm = distributed.get_comm()
r, K = comm.Get_rank(), comm.Get_size()
X, y = P.client_rows(r)
out = {}
for name, make, period, warmup in (("sgd_momentum", lambda p: SGD(p, lr=0.05, momentum=0.9), 3, 0),
                                   ("post_local_adam", lambda p: Adam(p, lr=0.05), 2, 4)):
    w = Parameter(np.zeros(3))
    opt = LocalSGD(make([w]), period=period, warmup_steps=warmup)
    for step in range(10):
        w.grad = P.client_grad(w.data, X, y, step % (2 * (r + 1)))[1]
        opt.step()
    allw = comm.gather(w.data.tolist(), root=0)
    out[name] = dict(w=allw, averages=opt.num_averages)
# failure on one rank inside the local step
w = Parameter(np.zeros(3))
opt = LocalSGD(SGD([w], lr=0.05), period=2)
msg = "no error"
try:
    for step in range(6):
        def closure():
            if r == 1 and step == 3:
                raise ValueError("injected on rank 1")
            w.grad = P.client_grad(w.data, X, y, 0)[1]
            return 0.0
        opt.step(closure)
except DistributedError as e:
    msg = f"DistributedError {e.ranks}"
except ValueError as e:
    msg = f"ValueError {e}"
out["fail"] = comm.gather(msg, root=0)
if r == 0:
    print("RESULT " + json.dumps(out), flush=True)
"""


def _simulation(K, make, period, warmup, steps=10):
    ws = [np.zeros(3) for _ in range(K)]
    opts = [make() for _ in range(K)]
    data = [P.client_rows(r) for r in range(K)]
    for step in range(steps):
        grads = [P.client_grad(ws[r], *data[r], step % (2 * (r + 1)))[1] for r in range(K)]
        if step < warmup:
            mean = sum(grads) / K
            grads = [mean for _ in range(K)]
        ws = [o.step(w, g) for w, g, o in zip(ws, grads, opts)]
        if step >= warmup and (step + 1 - warmup) % period == 0:
            mean = sum(ws) / K
            ws = [mean.copy() for _ in range(K)]
    return ws


@pytest.fixture(scope="module")
def results():
    rc, out, err = run_mpi(SCRIPT, 4, timeout=60)
    assert rc == 0, err[-3000:]
    return P.result_of(out)


@requires_mpi
def test_local_sgd_momentum(results):
    ref = _simulation(4, lambda: RefSGD(lr=0.05, momentum=0.9), 3, 0)
    np.testing.assert_allclose(results["sgd_momentum"]["w"], ref, rtol=1e-12, atol=1e-14)
    assert results["sgd_momentum"]["averages"] == 3


@requires_mpi
def test_post_local_adam(results):
    ref = _simulation(4, lambda: RefAdam(lr=0.05), 2, 4)
    np.testing.assert_allclose(results["post_local_adam"]["w"], ref, rtol=1e-12, atol=1e-14)
    assert results["post_local_adam"]["averages"] == 3
    # during the warm-up every rank holds the same model; after the last averaging too
    w = np.asarray(results["post_local_adam"]["w"])
    assert np.all(w == w[0])


@requires_mpi
def test_failure_raises_on_every_rank(results):
    assert results["fail"] == ["DistributedError [1]", "ValueError injected on rank 1",
                               "DistributedError [1]", "DistributedError [1]"]


def test_size1_and_state_dict():
    w = Parameter(np.array([1.0, 2.0]))
    opt = LocalSGD(SGD([w], lr=0.1), period=2, warmup_steps=1, comm=SelfComm())
    for _ in range(5):
        w.grad = w.data.copy()
        opt.step()
    np.testing.assert_allclose(w.data, np.array([1.0, 2.0]) * 0.9 ** 5)
    assert (opt.num_steps, opt.num_averages) == (5, 2)
    sd = opt.state_dict()
    opt2 = LocalSGD(SGD([w], lr=0.1), period=2, comm=SelfComm())
    opt2.load_state_dict(sd)
    assert (opt2.num_steps, opt2.num_averages) == (5, 2)


def test_bad_arguments():
    w = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="period"):
        LocalSGD(SGD([w]), period=0, comm=SelfComm())
    with pytest.raises(ValueError, match="warmup_steps"):
        LocalSGD(SGD([w]), period=1, warmup_steps=-1, comm=SelfComm())
    with pytest.raises(TypeError, match="optimizer"):
        LocalSGD([w], period=1, comm=SelfComm())
    opt = LocalSGD(SGD([w]), period=1, warmup_steps=1, comm=SelfComm())
    w.grad = np.zeros(3)
    with pytest.raises(ValueError, match="shape"):
        opt.step()
