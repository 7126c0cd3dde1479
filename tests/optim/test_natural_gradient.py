"""optim.NaturalGradient: K-FAC factors against the explicit Fisher, steps against
dense formulas, state round trips, bad input."""
import numpy as np
import pytest

from neurenix.optim import NaturalGradient, Parameter, SingularFisherError, load, save

from ._mlp import MLP, blobs


def _kfac(model, **kw):
    kw.setdefault("kl_clip", None)
    opt = NaturalGradient(model.parameters(), fisher="kfac", **kw)
    layers = [opt.register_layer(W, b, name=f"fc{i}") for i, (W, b) in
              enumerate(zip(model.W, model.b))]
    return opt, layers


def _record(opt, layers, inputs, grads):
    for L, a, g in zip(layers, inputs, grads):
        opt.record(L, a, g)


def _per_sample_loss_fd(model, x, y, W, h=1e-5):
    """Gradient of one sample's loss w.r.t. ``[W, b]`` of one layer by central
    differences (independent of the back-propagation code)."""
    out = []
    for P in W:
        g = np.zeros(P.data.size)
        flat = P.data.reshape(-1)
        for j in range(flat.size):
            v = flat[j]
            flat[j] = v + h
            fp = model.loss(x, y)
            flat[j] = v - h
            fm = model.loss(x, y)
            flat[j] = v
            g[j] = (fp - fm) / (2 * h)
        out.append(g.reshape(P.shape))
    return out


def test_kfac_factors_equal_the_explicit_per_sample_fisher():
    """For one sample, the Fisher block of a dense layer is exactly A (x) G
    (vec(g a_bar^T) = a_bar (x) g): checked for every layer of an MLP against
    gradients by finite differences."""
    model = MLP([4, 5, 3, 3], seed=2)
    X, y = blobs(n=1, d=4, k=3, seed=4)
    opt, layers = _kfac(model, factor_decay=0.9, damping=1e-3)
    loss, inputs, grads = model.backward(X, y)
    _record(opt, layers, inputs, grads)
    opt.step()
    # the explicit gradients at the parameters the factors were taken at
    model2 = MLP([4, 5, 3, 3], seed=2)
    for i, L in enumerate(layers):
        dW, db = _per_sample_loss_fd(model2, X, y, [model2.W[i], model2.b[i]])
        V = np.concatenate([dW, db[:, None]], axis=1)
        vec = V.reshape(-1, order="F")          # column-major vec of [dW, db]
        explicit = np.outer(vec, vec)
        st = opt.state[L.weight]
        np.testing.assert_allclose(np.kron(st["A"], st["G"]), explicit, rtol=1e-6,
                                   atol=1e-9 * np.abs(explicit).max())


def test_kfac_factors_are_batch_means_with_ema():
    model = MLP([4, 6, 3], seed=0)
    X, y = blobs(n=40, d=4, k=3, seed=0)
    opt, layers = _kfac(model, factor_decay=0.8, lr=0.1)
    hist = []
    for t in range(3):
        loss, inputs, grads = model.backward(X[t::3], y[t::3])
        _record(opt, layers, inputs, grads)
        N = inputs[0].shape[0]
        abar = [np.column_stack([a, np.ones(N)]) for a in inputs]
        hist.append(([a.T @ a / N for a in abar], [(N * g).T @ (N * g) / N for g in grads]))
        opt.step()
    for i, L in enumerate(layers):
        A = hist[0][0][i]
        G = hist[0][1][i]
        for k in (2, 3):
            eps = min(1 - 1 / k, 0.8)
            A = eps * A + (1 - eps) * hist[k - 1][0][i]
            G = eps * G + (1 - eps) * hist[k - 1][1][i]
        np.testing.assert_allclose(opt.state[L.weight]["A"], A, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.state[L.weight]["G"], G, rtol=1e-12, atol=1e-14)
        assert opt.state[L.weight]["factor_updates"] == 3


def test_kfac_step_is_the_damped_kronecker_solve():
    model = MLP([3, 4, 2], seed=1)
    X, y = blobs(n=30, d=3, k=2, seed=2)
    lam, lr = 0.05, 0.3
    opt, layers = _kfac(model, damping=lam, lr=lr)
    before = [p.data.copy() for p in model.parameters()]
    loss, inputs, grads = model.backward(X, y)
    _record(opt, layers, inputs, grads)
    opt.step()
    for i, L in enumerate(layers):
        st = opt.state[L.weight]
        A, G = st["A"], st["G"]
        pi = np.sqrt((np.trace(A) / A.shape[0]) / (np.trace(G) / G.shape[0]))
        gam = np.sqrt(lam)
        K = np.kron(A + pi * gam * np.eye(A.shape[0]), G + gam / pi * np.eye(G.shape[0]))
        V = np.concatenate([L.weight.grad, L.bias.grad[:, None]], axis=1)
        D = np.linalg.solve(K, V.reshape(-1, order="F")).reshape(V.shape, order="F")
        np.testing.assert_allclose(before[2 * i] - L.weight.data, lr * D[:, :-1], rtol=1e-10,
                                   atol=1e-13)
        np.testing.assert_allclose(before[2 * i + 1] - L.bias.data, lr * D[:, -1], rtol=1e-10,
                                   atol=1e-13)


def test_kfac_inverse_update_period_and_kl_clip():
    X, y = blobs(n=30, d=3, k=2, seed=2)
    mc, mn = MLP([3, 4, 2], seed=1), MLP([3, 4, 2], seed=1)
    oc, lc = _kfac(mc, inv_update_period=3, lr=0.5, kl_clip=1e-6)
    on, ln = _kfac(mn, inv_update_period=3, lr=0.5, kl_clip=None)
    invs = []
    for t in range(4):
        for p, q in zip(mn.parameters(), mc.parameters()):
            p.data[...] = q.data          # the unclipped twin starts from the same point
        before = [p.data.copy() for p in mc.parameters()]
        for m, o, L in ((mc, oc, lc), (mn, on, ln)):
            loss, inputs, grads = m.backward(X, y)
            _record(o, L, inputs, grads)
            o.step()
        invs.append(oc.state[lc[0].weight]["A_inv"].copy())
        # nu = sqrt(kl_clip / (lr^2 d^T g)), lr d = the unclipped step (Ba et al. 2017)
        steps = [b - p.data for b, p in zip(before, mn.parameters())]
        vg = 0.5 * sum(float(np.vdot(s, p.grad)) for s, p in zip(steps, mn.parameters()))
        nu = min(1.0, np.sqrt(1e-6 / vg))
        assert nu < 1
        for s, b, p in zip(steps, before, mc.parameters()):
            np.testing.assert_allclose(b - p.data, nu * s, rtol=1e-10, atol=1e-15)
    assert np.array_equal(invs[0], invs[1]) and np.array_equal(invs[1], invs[2])
    assert not np.array_equal(invs[2], invs[3])     # recomputed at step 4 = 1 + 3


def test_empirical_fisher_step_is_the_dense_solve():
    rng = np.random.default_rng(0)
    N = 12
    w = Parameter(rng.standard_normal((2, 3)))
    b = Parameter(rng.standard_normal(2))
    Gw = rng.standard_normal((N, 2, 3))
    Gb = rng.standard_normal((N, 2))
    w.grad = Gw.mean(0)
    b.grad = Gb.mean(0)
    lam, lr = 0.1, 0.7
    opt = NaturalGradient([w, b], lr=lr, damping=lam, kl_clip=None, cg_tol=1e-14)
    w0, b0 = w.data.copy(), b.data.copy()
    opt.record_sample_grads({w: Gw, b: Gb})
    opt.step()
    G = np.concatenate([Gw.reshape(N, -1), Gb], axis=1)
    g = np.concatenate([w.grad.ravel(), b.grad])
    d = np.linalg.solve(G.T @ G / N + lam * np.eye(8), g)
    np.testing.assert_allclose(w0 - w.data, lr * d[:6].reshape(2, 3), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(b0 - b.data, lr * d[6:], rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="no per-sample gradients recorded"):
        opt.step()     # consumed by the previous step


def test_momentum_weight_decay_and_unregistered_params():
    model = MLP([3, 4, 2], seed=3)
    extra = Parameter(np.ones(2))
    X, y = blobs(n=20, d=3, k=2, seed=1)
    opt = NaturalGradient(model.parameters() + [extra], fisher="kfac", lr=0.1, momentum=0.9,
                          weight_decay=0.01, kl_clip=None)
    layers = [opt.register_layer(W, bb) for W, bb in zip(model.W, model.b)]
    for t in range(2):
        loss, inputs, grads = model.backward(X, y)
        extra.grad = np.full(2, 0.5)
        e0 = extra.data.copy()
        _record(opt, layers, inputs, grads)
        opt.step()
    # the unregistered parameter: SGD with momentum on grad + wd * param
    d1 = 0.5 + 0.01 * 1.0
    buf1 = d1
    d2 = 0.5 + 0.01 * (1.0 - 0.1 * buf1)
    np.testing.assert_allclose(e0 - extra.data, 0.1 * (0.9 * buf1 + d2), rtol=1e-12)


def _train(opt, layers, model, X, y, steps, seed):
    rng = np.random.default_rng(seed)
    for t in range(steps):
        idx = rng.choice(len(y), 32, replace=False)
        loss, inputs, grads = model.backward(X[idx], y[idx], sample_targets=rng)
        _record(opt, layers, inputs, grads)
        opt.step()


def test_state_dict_round_trip_resumes_bit_for_bit(tmp_path):
    X, y = blobs(n=200, d=5, k=3, seed=0)
    mA = MLP([5, 8, 3], seed=0)
    oA, lA = _kfac(mA, lr=0.2, momentum=0.5, inv_update_period=2, kl_clip=1e-2)
    _train(oA, lA, mA, X, y, 3, seed=0)
    path = tmp_path / "ng.ckpt"
    save({"opt": oA.state_dict(), "params": [p.data for p in mA.parameters()]}, path)
    _train(oA, lA, mA, X, y, 4, seed=1)

    ck = load(path)
    mB = MLP([5, 8, 3], seed=9)
    for p, v in zip(mB.parameters(), ck["params"]):
        p.data[...] = v
    oB, lB = _kfac(mB, lr=0.2, momentum=0.5, inv_update_period=2, kl_clip=1e-2)
    oB.load_state_dict(ck["opt"])
    _train(oB, lB, mB, X, y, 4, seed=1)
    for p, q in zip(mA.parameters(), mB.parameters()):
        assert np.array_equal(p.data, q.data)


def test_float32_stays_float32():
    model = MLP([3, 4, 2], seed=1, dtype=np.float32)
    X, y = blobs(n=16, d=3, k=2, seed=2)
    opt, layers = _kfac(model, lr=0.1)
    loss, inputs, grads = model.backward(X.astype(np.float32), y)
    _record(opt, layers, inputs, grads)
    opt.step()
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert opt.state[layers[0].weight]["A"].dtype == np.float32


def test_bad_input_named_errors_and_nothing_half_updated():
    model = MLP([3, 4, 2], seed=1)
    X, y = blobs(n=10, d=3, k=2, seed=2)
    with pytest.raises(ValueError, match="fisher must be"):
        NaturalGradient(model.parameters(), fisher="exact")
    for bad, match in [(dict(damping=0.0), "damping must be > 0"),
                       (dict(lr=-1.0), "lr must be >= 0"),
                       (dict(factor_decay=1.0), "factor_decay must be in"),
                       (dict(inv_update_period=0), "inv_update_period"),
                       (dict(kl_clip=-1.0), "kl_clip must be > 0"),
                       (dict(momentum=1.5), "momentum")]:
        with pytest.raises(ValueError, match=match):
            NaturalGradient(model.parameters(), fisher="kfac", **bad)
    opt = NaturalGradient(model.parameters(), fisher="kfac")
    with pytest.raises(ValueError, match="not a parameter of this optimizer"):
        opt.register_layer(Parameter(np.ones((2, 2))))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        opt.register_layer(model.b[0])
    with pytest.raises(ValueError, match="bias must have shape \\(4,\\)"):
        opt.register_layer(model.W[0], model.b[1])
    L0 = opt.register_layer(model.W[0], model.b[0], name="fc0")
    L1 = opt.register_layer(model.W[1], model.b[1], name="fc1")
    with pytest.raises(ValueError, match="already part of a registered layer"):
        opt.register_layer(model.W[0])
    loss, inputs, grads = model.backward(X, y)
    with pytest.raises(ValueError, match="'fc0': activations must have shape \\(N, 3\\)"):
        opt.record(L0, inputs[1], grads[0])
    with pytest.raises(ValueError, match="same number of rows"):
        opt.record(L0, inputs[0], grads[0][:5])
    with pytest.raises(ValueError, match="output_grads contains NaN"):
        opt.record(L0, inputs[0], grads[0] * np.nan)
    with pytest.raises(ValueError, match="reduction"):
        opt.record(L0, inputs[0], grads[0], reduction="none")
    with pytest.raises(ValueError, match="register_layer"):
        opt.record(object(), inputs[0], grads[0])
    opt.record(L0, inputs[0], grads[0])
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="'fc1' has no recorded statistics"):
        opt.step()
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    assert opt.state == {}
    model.W[1].grad = model.W[1].grad * np.nan
    opt.record(L1, inputs[1], grads[1])
    with pytest.raises(ValueError, match="NaN or inf"):
        opt.step()
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    emp = NaturalGradient(model.parameters())
    with pytest.raises(ValueError, match="fisher='kfac'"):
        emp.register_layer(model.W[0])
    with pytest.raises(ValueError, match="expected 4 arrays"):
        emp.record_sample_grads([np.ones((3, 4, 3))])
    with pytest.raises(ValueError, match="sample_grads\\[1\\] must have shape"):
        emp.record_sample_grads({model.b[0]: np.ones((3, 5))})


def test_singular_damped_factor_is_a_named_error():
    w = Parameter(np.ones((2, 2)))
    opt = NaturalGradient([w], fisher="kfac", damping=1e-300, kl_clip=None)
    L = opt.register_layer(w)
    w.grad = np.ones((2, 2))
    opt.record(L, np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(SingularFisherError):
        opt.step()
    assert np.array_equal(w.data, np.ones((2, 2))) and opt.state == {}


def test_load_state_dict_rejects_bad_factors():
    model = MLP([3, 4, 2], seed=1)
    X, y = blobs(n=16, d=3, k=2, seed=2)
    opt, layers = _kfac(model)
    loss, inputs, grads = model.backward(X, y)
    _record(opt, layers, inputs, grads)
    opt.step()
    sd = opt.state_dict()
    bad = {"state": {k: dict(v) for k, v in sd["state"].items()},
           "param_groups": sd["param_groups"]}
    bad["state"][0]["A"] = np.ones((7, 7))
    with pytest.raises(ValueError, match="'A' of parameter 0 has shape"):
        opt.load_state_dict(bad)
    bad["state"][0]["A"] = np.full((4, 4), np.nan)
    with pytest.raises(ValueError, match="finite"):
        opt.load_state_dict(bad)
    bad["state"][0]["A"] = sd["state"][0]["A"]
    bad["state"][0]["factor_updates"] = -1
    with pytest.raises(ValueError, match="factor_updates"):
        opt.load_state_dict(bad)
    bad["state"][0]["factor_updates"] = 1
    bad["state"][0]["exp_avg"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match="does not keep"):
        opt.load_state_dict(bad)


def test_kfac_single_sample_identity_with_torch_gradients():
    """The same exact identity with gradients from torch autograd (to 1e-12)."""
    torch = pytest.importorskip("torch")
    model = MLP([4, 5, 3], seed=5)
    X, y = blobs(n=1, d=4, k=3, seed=6)
    Ws = [torch.tensor(W.data.copy(), requires_grad=True) for W in model.W]
    bs = [torch.tensor(b.data.copy(), requires_grad=True) for b in model.b]
    h = torch.tensor(X)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if i + 1 < len(Ws):
            h = torch.tanh(h)
    torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
    opt, layers = _kfac(model)
    _, inputs, grads = model.backward(X, y)
    _record(opt, layers, inputs, grads)
    opt.step()
    for L, W, b in zip(layers, Ws, bs):
        vec = np.concatenate([W.grad.numpy(), b.grad.numpy()[:, None]], 1).reshape(-1, order="F")
        st = opt.state[L.weight]
        np.testing.assert_allclose(np.kron(st["A"], st["G"]), np.outer(vec, vec), rtol=1e-12,
                                   atol=1e-14)
