"""Every bad input raises a ValueError/TypeError naming the argument, before any
kernel runs, leaving parameters and state untouched."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.optim import Parameter


def P(*shape, dtype=np.float64):
    return Parameter(np.ones(shape or (3,), dtype=dtype))


BAD_CONSTRUCTION = [
    (optim.SGD, dict(lr=-0.1), ValueError, "lr"),
    (optim.SGD, dict(lr=float("nan")), ValueError, "lr"),
    (optim.SGD, dict(lr=float("inf")), ValueError, "lr"),
    (optim.SGD, dict(lr="0.1"), TypeError, "lr"),
    (optim.SGD, dict(momentum=-1), ValueError, "momentum"),
    (optim.SGD, dict(nesterov=True), ValueError, "nesterov"),
    (optim.SGD, dict(weight_decay=-1e-3), ValueError, "weight_decay"),
    (optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (optim.Adam, dict(betas=0.9), TypeError, "betas"),
    (optim.Adam, dict(eps=-1e-8), ValueError, "eps"),
    (optim.Adam, dict(amsgrad="yes"), TypeError, "amsgrad"),
    (optim.AdamW, dict(weight_decay=float("nan")), ValueError, "weight_decay"),
    (optim.NAdam, dict(momentum_decay=-1), ValueError, "momentum_decay"),
    (optim.RAdam, dict(betas=(0.9, 1.5)), ValueError, "betas"),
    (optim.AdaBelief, dict(lr=-1), ValueError, "lr"),
    (optim.Adagrad, dict(lr_decay=-1), ValueError, "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), ValueError, "initial_accumulator_value"),
    (optim.RMSprop, dict(alpha=1.5), ValueError, "alpha"),
    (optim.RMSprop, dict(momentum=-0.5), ValueError, "momentum"),
    (optim.LAMB, dict(betas=(0.9, 1.0)), ValueError, "betas"),
    (optim.LARS, dict(trust_coefficient=-1), ValueError, "trust_coefficient"),
]


@pytest.mark.parametrize("cls,kw,exc,match", BAD_CONSTRUCTION)
def test_bad_hyperparameter(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls([P()], **kw)


def test_unknown_keyword():
    with pytest.raises(TypeError, match="lrr"):
        optim.Adam([P()], lrr=0.1)
    with pytest.raises(ValueError, match="lrr"):
        optim.Adam([{"params": [P()], "lrr": 0.1}])


def test_empty_params():
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([{"params": []}])


def test_not_parameters():
    with pytest.raises(TypeError, match="params"):
        optim.Adam(P())
    with pytest.raises(TypeError, match=r"params\[0\]"):
        optim.Adam([np.ones(3)])
    with pytest.raises(TypeError, match="set"):
        optim.Adam({P()})


def test_same_parameter_in_two_groups():
    p = P()
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="twice"):
        optim.Adam([p, p])


@pytest.mark.parametrize("name", ["SGD", "Adam", "LAMB", "LARS", "RMSprop", "NAdam"])
@pytest.mark.parametrize("bad", ["shape", "dtype", "type"])
def test_bad_grad_leaves_everything_untouched(name, bad):
    cls = getattr(optim, name)
    a, b = P(3), P(3)
    opt = cls([a, b], lr=0.1)
    a.grad = np.ones(3)
    b.grad = np.ones(3)
    opt.step()
    before = [a.data.copy(), b.data.copy()]
    state = {id(p): {k: (v.copy() if hasattr(v, "copy") else v) for k, v in opt.state[p].items()}
             for p in (a, b)}
    a.grad = np.ones(3)   # valid, listed first: must not be applied either
    b.grad = {"shape": np.ones(4), "dtype": np.ones(3, dtype=np.float32),
              "type": [1.0, 1.0, 1.0]}[bad]
    err = TypeError if bad in ("dtype", "type") else ValueError
    with pytest.raises(err, match="grad of parameter 1"):
        opt.step()
    np.testing.assert_array_equal(a.data, before[0])
    np.testing.assert_array_equal(b.data, before[1])
    for p in (a, b):
        for k, v in state[id(p)].items():
            np.testing.assert_array_equal(opt.state[p][k], v)


def test_bad_lr_set_between_steps_is_caught_before_update():
    a = P(3)
    opt = optim.Adam([a], lr=0.1)
    a.grad = np.ones(3)
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    np.testing.assert_array_equal(a.data, 1.0)


def test_parameter_rejects_non_float():
    with pytest.raises(TypeError, match="data"):
        Parameter(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="data"):
        Parameter(np.ones(3, dtype=complex))


def test_truncated_and_foreign_checkpoints(tmp_path):
    a = P(3)
    opt = optim.Adam([a], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    path = tmp_path / "c.npz"
    optim.save(opt.state_dict(), path)
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="path"):
        optim.load(tmp_path / "trunc.npz")
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="not a neurenix checkpoint"):
        optim.load(tmp_path / "foreign.npz")
    (tmp_path / "garbage.npz").write_bytes(b"\x80\x04K\x01." * 10)   # a pickle stream
    with pytest.raises(ValueError, match="path"):
        optim.load(tmp_path / "garbage.npz")
    # a good one still loads, and loading it into a mismatched optimizer is refused
    sd = optim.load(path)
    other = optim.Adam([P(4)], lr=0.1)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(sd)
    assert other.state == {}


def test_non_contiguous_or_readonly_data_is_refused_before_any_update():
    a, b = P(3), P(4)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    b.grad = np.ones(4)
    opt.step()
    before = a.data.copy()
    b.data = np.ones(8)[::2]            # a strided view
    with pytest.raises(ValueError, match="data of parameter 1"):
        opt.step()
    np.testing.assert_array_equal(a.data, before)
    ro = np.ones(4)
    ro.flags.writeable = False
    b.data = ro
    with pytest.raises(ValueError, match="data of parameter 1"):
        opt.step()
    np.testing.assert_array_equal(a.data, before)
