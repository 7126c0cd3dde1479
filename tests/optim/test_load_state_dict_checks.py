"""load_state_dict refuses state that could not have come from this optimizer, and leaves
the optimizer untouched when it does (issue #16: step=-1, step='five', negative second
moments, another optimizer's state, swapped entries)."""
import copy

import numpy as np
import pytest

from neurenix import optim


def _trained(cls, **kw):
    w = optim.Parameter(np.arange(4, dtype=np.float64))
    b = optim.Parameter(np.ones(2))
    opt = cls([w, b], **kw)
    for _ in range(3):
        w.grad = np.sin(w.data) + 0.5
        b.grad = b.data - 2.0
        opt.step()
    return opt


def _fresh(cls, **kw):
    return cls([optim.Parameter(np.zeros(4)), optim.Parameter(np.zeros(2))], **kw)


BAD = [
    ("step -1", lambda sd: sd["state"][0].__setitem__("step", -1), "step.*non-negative integer"),
    ("step five", lambda sd: sd["state"][0].__setitem__("step", "five"), "step.*non-negative integer"),
    ("step 2.5", lambda sd: sd["state"][0].__setitem__("step", 2.5), "step.*non-negative integer"),
    ("step True", lambda sd: sd["state"][0].__setitem__("step", True), "step.*non-negative integer"),
    ("negative exp_avg_sq", lambda sd: sd["state"][0]["exp_avg_sq"].__setitem__(1, -1.0),
     "exp_avg_sq.*>= 0"),
    ("nan exp_avg", lambda sd: sd["state"][1]["exp_avg"].__setitem__(0, np.nan),
     "exp_avg.*non-finite"),
    ("string array", lambda sd: sd["state"][1].__setitem__("exp_avg", "abc"), "exp_avg.*array"),
    ("swapped moments", lambda sd: sd["state"][0].update(
        exp_avg=sd["state"][0]["exp_avg_sq"], exp_avg_sq=-np.abs(sd["state"][0]["exp_avg"]) - 1),
     "swapped"),
    ("swapped parameters", lambda sd: sd["state"].update({0: sd["state"][1], 1: sd["state"][0]}),
     "shape"),
]


@pytest.mark.parametrize("label,mutate,match", BAD, ids=[b[0] for b in BAD])
def test_bad_adam_state_is_refused_and_nothing_changes(label, mutate, match):
    src = _trained(optim.Adam, lr=0.1)
    sd = copy.deepcopy(src.state_dict())
    mutate(sd)
    dst = _trained(optim.Adam, lr=0.1)
    before = copy.deepcopy(dst.state_dict())
    with pytest.raises(ValueError, match=match):
        dst.load_state_dict(sd)
    after = dst.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        for key, v in before["state"][k].items():
            np.testing.assert_array_equal(after["state"][k][key], v)


def test_another_optimizers_state_dict_is_named():
    sgd = _trained(optim.SGD, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="another optimizer"):
        _fresh(optim.Adam, lr=0.1).load_state_dict(sgd.state_dict())
    adam = _trained(optim.Adam, lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        _fresh(optim.SGD, lr=0.1, momentum=0.9).load_state_dict(adam.state_dict())
    # same hyperparameter names, other state (Adam -> AdamW share both: loads, as in torch)
    _fresh(optim.AdamW, lr=0.1).load_state_dict(adam.state_dict())
    # RAdam's groups differ (decoupled_weight_decay) or its state does: refused either way
    nadam = _trained(optim.NAdam, lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        _fresh(optim.RAdam, lr=0.1).load_state_dict(nadam.state_dict())


def test_torch_style_float_step_and_0d_arrays_are_accepted():
    src = _trained(optim.Adam, lr=0.1)
    sd = copy.deepcopy(src.state_dict())
    sd["state"][0]["step"] = np.float32(3.0)
    sd["state"][1]["step"] = np.array(3.0)
    dst = _fresh(optim.Adam, lr=0.1)
    dst.load_state_dict(sd)
    assert [st["step"] for st in dst.state.values()] == [3, 3]
    assert all(type(st["step"]) is int for st in dst.state.values())


def test_valid_round_trip_still_bit_for_bit():
    for cls, kw in ((optim.SGD, {"lr": 0.1, "momentum": 0.9}), (optim.Adagrad, {"lr": 0.1}),
                    (optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True}),
                    (optim.Adam, {"lr": 0.1, "amsgrad": True}), (optim.NAdam, {"lr": 0.1}),
                    (optim.RAdam, {"lr": 0.1}), (optim.AdaBelief, {"lr": 0.1}),
                    (optim.LAMB, {"lr": 0.1}), (optim.LARS, {"lr": 0.1, "momentum": 0.9}),
                    (optim.HypergradientSGD, {"lr": 0.1, "momentum": 0.5}),
                    (optim.HypergradientAdam, {"lr": 0.1})):
        a = _trained(cls, **kw)
        b = _fresh(cls, **kw)
        b.load_state_dict(a.state_dict())
        for opt in (a, b):
            for p in (opt.param_groups[0]["params"]):
                p.data[...] = 1.0
                p.grad = np.full_like(p.data, 0.25)
            opt.step()
        for pa, pb in zip(a.param_groups[0]["params"], b.param_groups[0]["params"]):
            np.testing.assert_array_equal(pa.data, pb.data)
