"""Optimizer protocol: param groups, zero_grad, state_dict layout and round trip,
checkpoints (bit-for-bit resume), the non-finite guard, and bad input."""
import math

import numpy as np
import pytest

from neurenix import optim
from neurenix.optim import Parameter

from ._cases import CASES
from .test_first_order import make_problem, STEPS


def _build(name, dtype=np.float64, seed=0):
    cls, _, cfgs = CASES[name]
    arrays, grads = make_problem(dtype, seed)
    params = [[Parameter(a.copy()) for a in grp] for grp in arrays]
    opt = cls([dict(params=ps, **c) for ps, c in zip(params, cfgs[-1])])
    return params, opt, grads


def _run(params, opt, grads, start, stop):
    for k in range(start, stop):
        gs = grads(k, [[p.data for p in ps] for ps in params])
        for ps, gg in zip(params, gs):
            for p, g in zip(ps, gg):
                p.grad = g
        opt.step()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checkpoint_resume_is_bit_for_bit(name, dtype, tmp_path):
    params, opt, grads = _build(name, dtype)
    _run(params, opt, grads, 0, STEPS)
    straight = [p.data.copy() for ps in params for p in ps]

    params, opt, grads = _build(name, dtype)
    _run(params, opt, grads, 0, STEPS // 2)
    path = tmp_path / "ckpt.npz"
    optim.save({"optimizer": opt.state_dict(),
                "params": [p.data for ps in params for p in ps]}, path)
    # a fresh process would rebuild everything from scratch
    ck = optim.load(path)
    params2, opt2, grads2 = _build(name, dtype)
    for p, a in zip([p for ps in params2 for p in ps], ck["params"]):
        p.data[...] = a
    opt2.load_state_dict(ck["optimizer"])
    _run(params2, opt2, grads2, STEPS // 2, STEPS)
    resumed = [p.data for ps in params2 for p in ps]
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_layout_is_torchs():
    a, b, c = (Parameter(np.ones(2)) for _ in range(3))
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    for p in (a, c):
        p.grad = np.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["lr"] == 0.1
    assert set(sd["state"]) == {0, 2}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"] == 1


def test_state_dict_matches_torch_layout_when_available():
    torch = pytest.importorskip("torch")
    ws = [np.ones(3), np.ones(2)]
    tp = [torch.nn.Parameter(torch.tensor(w)) for w in ws]
    topt = torch.optim.Adam([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.5}], lr=0.1,
                            amsgrad=True)
    for p in tp:
        p.grad = torch.ones_like(p)
    topt.step()
    ours = [Parameter(w.copy()) for w in ws]
    oopt = optim.Adam([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.5}], lr=0.1,
                      amsgrad=True)
    for p in ours:
        p.grad = np.ones_like(p.data)
    oopt.step()
    tsd, osd = topt.state_dict(), oopt.state_dict()
    assert set(tsd["state"]) == set(osd["state"])
    assert set(tsd["state"][0]) == set(osd["state"][0])
    for tg, og in zip(tsd["param_groups"], osd["param_groups"]):
        assert tg["params"] == og["params"]
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
            assert tuple(np.atleast_1d(tg[key])) == tuple(np.atleast_1d(og[key]))
    for k in tsd["state"]:
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_allclose(tsd["state"][k][key].numpy(), osd["state"][k][key])


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    a = Parameter(np.ones(3))
    opt = optim.Adam([a], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    before = opt.state_dict()
    snapshot = {k: v.copy() if hasattr(v, "copy") else v for k, v in before["state"][0].items()}
    bad = {"state": {0: {"step": 1, "exp_avg": np.ones(4), "exp_avg_sq": np.ones(3)}},
           "param_groups": before["param_groups"]}
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": before["param_groups"] * 2})
    with pytest.raises(ValueError, match="state_dict"):
        opt.load_state_dict({"state": {}})
    bad_lr = {"state": {}, "param_groups": [dict(before["param_groups"][0], lr=-1.0)]}
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(bad_lr)
    after = opt.state_dict()["state"][0]
    for k, v in snapshot.items():
        np.testing.assert_array_equal(after[k], v)
    assert opt.param_groups[0]["lr"] == 0.1


def test_zero_grad():
    a = Parameter(np.ones(3))
    opt = optim.SGD([a], lr=0.1)
    g = np.ones(3)
    a.grad = g
    opt.zero_grad()
    assert a.grad is g and np.all(g == 0)
    opt.zero_grad(set_to_none=True)
    assert a.grad is None


def test_add_param_group_and_per_group_options():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 1.0})
    a.grad = np.ones(2)
    b.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.0)
    assert opt.param_groups[1]["momentum"] == 0.0


def test_skip_nonfinite_guard_leaves_everything_untouched():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.1, skip_nonfinite=True)
    a.grad = np.ones(3)
    b.grad = np.ones(3)
    opt.step()
    pa, pb = a.data.copy(), b.data.copy()
    st = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in opt.state[a].items()}
    a.grad = np.array([1.0, np.nan, 1.0])
    b.grad = np.ones(3)
    opt.step()
    assert opt.skipped_steps == 1
    np.testing.assert_array_equal(a.data, pa)
    np.testing.assert_array_equal(b.data, pb)
    assert opt.state[a]["step"] == st["step"]
    np.testing.assert_array_equal(opt.state[a]["exp_avg"], st["exp_avg"])
    a.grad = np.array([1.0, np.inf, 1.0], dtype=np.float64)
    opt.step()
    assert opt.skipped_steps == 2
    a.grad = np.ones(3)
    opt.step()
    assert opt.state[a]["step"] == 2


def test_closure_is_called_and_loss_returned():
    a = Parameter(np.array([3.0]))
    opt = optim.SGD([a], lr=0.25)

    def closure():
        a.grad = 2 * a.data
        return float(a.data[0] ** 2)

    assert opt.step(closure) == 9.0
    np.testing.assert_allclose(a.data, [1.5])


def test_parameter_keeps_identity_and_memory():
    arr = np.ones(4)
    p = Parameter(arr)
    assert p.data is arr
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(4)
    opt.step()
    assert np.all(arr < 1)


def test_non_contiguous_grad_is_accepted():
    p = Parameter(np.ones((3, 4)))
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones((4, 3)).T
    opt.step()
    np.testing.assert_allclose(p.data, 0.9)
