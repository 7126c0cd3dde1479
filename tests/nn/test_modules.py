"""Module, Parameter, Linear, Sequential: registration, modes, state_dict, init, errors,
and nn.Parameter inside every neurenix.optim optimizer."""
import copy
import math

import numpy as np
import pytest

import neurenix
from neurenix import nn, optim


class SimpleNN(nn.Module):
    def __init__(self, d_in=6, hidden=5, d_out=3):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def test_registration_order_and_names():
    m = SimpleNN()
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "ReLU", "Linear"]
    assert len(list(m.modules())) == 4
    assert m.fc1.weight.shape == (5, 6) and m.fc1.weight.dtype == np.float32
    m.fc1 = nn.Linear(6, 5, bias=False)
    assert "fc1.bias" not in dict(m.named_parameters()) and m.fc1.bias is None
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.fc2.weight = np.ones((3, 5))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope


def test_shared_parameter_listed_once():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seq.add_module("again", seq[0])
    assert len(list(seq.parameters())) == 2


def test_train_eval_propagate():
    m = SimpleNN()
    assert m.training and m.fc1.training
    assert m.eval() is m
    assert not m.training and not m.fc2.training and not m.relu.training
    m.train()
    assert m.relu.training


def test_parameter_is_tensor_and_optim_parameter():
    p = nn.Parameter(np.zeros((2, 3)))
    assert isinstance(p, neurenix.Tensor) and isinstance(p, optim.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad is None
    assert p.size(1) == 3 and p.shape == (2, 3)
    a = np.ones(3)
    assert nn.Parameter(a).data is a                       # shares storage, as torch
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.array([1, 2]))
    assert repr(nn.Parameter(np.zeros(1, np.float32))).startswith("Parameter containing:\ntensor(")


def test_linear_init_matches_torchs_rule():
    neurenix.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.data, lin.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-bound, bound): mean 0, variance bound^2 / 3 (120000 draws: 1 % accuracy)
    assert abs(w.mean()) < 0.01 * bound
    np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.02)
    torch = pytest.importorskip("torch")
    tw = torch.nn.Linear(400, 300).weight.detach().numpy()
    np.testing.assert_allclose(np.abs(tw).max(), np.abs(w).max(), rtol=0.01)
    np.testing.assert_allclose(tw.var(), w.var(), rtol=0.03)


def test_manual_seed_reproduces_and_generator_argument():
    neurenix.manual_seed(7)
    a = SimpleNN()
    neurenix.manual_seed(7)
    b = SimpleNN()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    g1 = nn.Linear(3, 2, generator=np.random.default_rng(1))
    g2 = nn.Linear(3, 2, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(g1.weight.data, g2.weight.data)
    with pytest.raises(TypeError, match="generator"):
        nn.Linear(3, 2, generator=1)


def test_linear_bad_input_named_errors():
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="in_features=4"):
        lin(neurenix.tensor(np.ones((2, 5), np.float32)))
    with pytest.raises(TypeError, match="dtype float64"):
        lin(neurenix.tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 3, dtype="int64")


def test_linear_accepts_batched_and_array_input():
    lin = nn.Linear(4, 3, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    y = lin(x)
    np.testing.assert_allclose(y.detach().numpy(), x @ lin.weight.data.T + lin.bias.data)
    y.sum().backward()
    np.testing.assert_allclose(lin.bias.grad, np.full(3, 10.0))


def test_state_dict_round_trip():
    neurenix.manual_seed(0)
    m = SimpleNN()
    sd = m.state_dict()
    assert list(sd) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["fc1.weight"] is m.fc1.weight.data            # shared, as in torch
    snap = copy.deepcopy(sd)
    other = SimpleNN()
    w_before = other.fc1.weight
    res = other.load_state_dict(snap)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert other.fc1.weight is w_before                     # copied in place
    x = neurenix.tensor(np.random.default_rng(0).standard_normal((4, 6)), dtype="float32")
    np.testing.assert_array_equal(m(x).detach().numpy(), other(x).detach().numpy())


def test_state_dict_through_checkpoint(tmp_path):
    from neurenix import checkpoint

    m = SimpleNN()
    checkpoint.save(m.state_dict(), tmp_path / "m.npz")
    other = SimpleNN()
    other.load_state_dict(checkpoint.load(tmp_path / "m.npz"))
    for p, q in zip(m.parameters(), other.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_validates_before_copying():
    m = SimpleNN()
    before = [p.data.copy() for p in m.parameters()]
    bad = {k: np.zeros_like(v) for k, v in m.state_dict().items()}
    bad["fc2.bias"] = np.zeros(4)
    with pytest.raises(RuntimeError, match="size mismatch for fc2.bias"):
        m.load_state_dict(bad)
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.data, b)            # nothing changed
    with pytest.raises(RuntimeError, match="missing keys"):
        m.load_state_dict({"fc1.weight": np.zeros((5, 6))})
    res = m.load_state_dict({"fc1.weight": np.zeros((5, 6)), "extra": 1}, strict=False)
    assert "fc2.bias" in res.missing_keys and res.unexpected_keys == ["extra"]
    assert not m.fc1.weight.data.any()


def test_sequential_and_flatten():
    seq = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid())
    assert len(seq) == 5 and isinstance(seq[1], nn.Linear) and isinstance(seq[-1], nn.Sigmoid)
    assert len(seq[1:3]) == 2
    x = neurenix.tensor(np.ones((3, 2, 3), np.float32))
    assert seq(x).shape == (3, 2)
    assert "(1): Linear(in_features=6, out_features=4, bias=True)" in repr(seq)


def test_module_zero_grad_and_missing_forward():
    m = SimpleNN()
    m(neurenix.tensor(np.ones((2, 6), np.float32))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


OPTIMIZERS = [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adagrad(ps, lr=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
    lambda ps: optim.NAdam(ps, lr=0.01),
    lambda ps: optim.RAdam(ps, lr=0.01),
    lambda ps: optim.AdaBelief(ps, lr=0.01),
    lambda ps: optim.LAMB(ps, lr=0.01),
    lambda ps: optim.LARS(ps, lr=0.1),
]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=lambda f: "opt")
def test_every_first_order_optimizer_trains_a_module(make):
    neurenix.manual_seed(0)
    rng = np.random.default_rng(0)
    X = neurenix.tensor(rng.standard_normal((64, 6)), dtype="float32")
    y = neurenix.tensor(rng.integers(0, 3, 64))
    m = SimpleNN()
    opt = make(m.parameters())
    crit = nn.CrossEntropyLoss()
    first = None
    ids = [id(p.data) for p in m.parameters()]
    for _ in range(30):
        opt.zero_grad()
        loss = crit(m(X), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert crit(m(X), y).item() < first
    assert [id(p.data) for p in m.parameters()] == ids          # updated in place
    assert all(p.data.dtype == np.float32 for p in m.parameters())


def test_lbfgs_closure_on_a_module():
    neurenix.manual_seed(0)
    rng = np.random.default_rng(1)
    X = neurenix.tensor(rng.standard_normal((32, 3)))
    w_true = np.array([1.0, -2.0, 0.5])
    y = neurenix.tensor(X.numpy() @ w_true)
    lin = nn.Linear(3, 1, bias=False, dtype="float64")
    opt = optim.LBFGS(lin.parameters(), lr=1, max_iter=50)

    def closure():
        opt.zero_grad()
        loss = nn.MSELoss()(lin(X).reshape(-1), y)
        loss.backward()
        return loss.item()

    opt.step(closure)
    np.testing.assert_allclose(lin.weight.data.ravel(), w_true, rtol=1e-6)


def test_clip_grad_norm_on_module_parameters():
    m = SimpleNN()
    m(neurenix.tensor(np.ones((2, 6), np.float32))).sum().backward()
    optim.clip_grad_norm_(m.parameters(), 1e-3)
    total = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in m.parameters()))
    assert total <= 1e-3 * (1 + 1e-5)


@pytest.mark.parametrize("loss_fn, target", [
    (nn.CrossEntropyLoss(), np.array([0, 2, 1])),
    (nn.CrossEntropyLoss(reduction="sum", weight=np.array([1.0, 2.0, 0.5])), np.array([0, 2, 1])),
    (nn.MSELoss(), np.linspace(0, 1, 9).reshape(3, 3)),
])
def test_every_module_gradient_matches_finite_differences(loss_fn, target):
    from ..autograd._gradcheck import numeric_grads

    neurenix.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5, dtype="float64"), nn.Tanh(),
                          nn.Linear(5, 4, dtype="float64"), nn.ReLU(), nn.Identity(),
                          nn.Linear(4, 3, dtype="float64"), nn.Sigmoid())
    x = neurenix.tensor(np.random.default_rng(0).standard_normal((3, 2, 3)))
    t = neurenix.tensor(target)
    loss_fn(model(x), t).backward()
    params = list(model.parameters())

    def f(*arrays):
        for p, a in zip(params, arrays):
            p.data[...] = a
        with neurenix.no_grad():
            return loss_fn(model(x), t).item()

    arrays = [p.data.copy() for p in params]
    num = numeric_grads(f, arrays)
    for p, n in zip(params, num):
        np.testing.assert_allclose(p.grad, n, rtol=1e-6, atol=1e-9)


def test_deepcopy_and_pickle_of_a_model():
    import pickle

    m = SimpleNN()
    x = neurenix.tensor(np.ones((2, 6), np.float32))
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert isinstance(other.fc1.weight, nn.Parameter)
        assert other.fc1.weight.data is not m.fc1.weight.data
        np.testing.assert_array_equal(other(x).detach().numpy(), m(x).detach().numpy())
