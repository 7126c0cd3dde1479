"""Hypergradient descent (Baydin et al. 2018) against the paper's SGD-HD and
Adam-HD equations written out in NumPy, and on problems where it beats a badly
chosen fixed learning rate."""
import numpy as np
import pytest

from neurenix import checkpoint
from neurenix.optim import SGD, Adam, Parameter
from neurenix.optim.hypergradient import HypergradientAdam, HypergradientSGD


def problem(n=20, m=60, seed=0):
    """Least squares 0.5/m * ||A x - b||^2 with a known solution."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) * np.linspace(0.3, 2.0, n)
    x_star = rng.standard_normal(n)
    b = A @ x_star

    def loss(x):
        r = A @ x - b
        return 0.5 * r @ r / m

    def grad(x):
        return A.T @ (A @ x - b) / m

    return loss, grad, n


def sgd_hd_reference(grad, x0, lr, beta, steps):
    # Baydin et al. (2018), Algorithm 1 (SGD-HD):
    #   alpha_t = alpha_{t-1} + beta * g_t . g_{t-1};  x_t = x_{t-1} - alpha_t g_t
    x, g_prev, alpha, lrs = x0.copy(), None, lr, []
    for _ in range(steps):
        g = grad(x)
        if g_prev is not None:
            alpha = alpha + beta * g @ g_prev
        x = x - alpha * g
        g_prev = g
        lrs.append(alpha)
    return x, lrs


def adam_hd_reference(grad, x0, lr, beta, steps, b1=0.9, b2=0.999, eps=1e-8):
    # Baydin et al. (2018), Algorithm "Adam-HD":
    #   alpha_t = alpha_{t-1} + beta * g_t . (m_hat_{t-1} / (sqrt(v_hat_{t-1}) + eps))
    x, m, v, alpha, u_prev, lrs = x0.copy(), 0 * x0, 0 * x0, lr, None, []
    for t in range(1, steps + 1):
        g = grad(x)
        if u_prev is not None:
            alpha = alpha + beta * g @ u_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        x = x - alpha * u
        u_prev = u
        lrs.append(alpha)
    return x, lrs


def run(opt, p, grad, steps):
    lrs = []
    for _ in range(steps):
        p.grad = grad(p.data)
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_sgd_hd_matches_paper_equations():
    _, grad, n = problem()
    x0 = np.zeros(n)
    ref_x, ref_lrs = sgd_hd_reference(grad, x0, 0.01, 0.002, 150)
    p = Parameter(x0.copy())
    lrs = run(HypergradientSGD([p], lr=0.01, hypergrad_lr=0.002), p, grad, 150)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-9)
    np.testing.assert_allclose(p.data, ref_x, rtol=1e-8, atol=1e-12)
    assert ref_lrs[-1] > 5 * ref_lrs[0]  # the rate really was adapted


def test_adam_hd_matches_paper_equations():
    _, grad, n = problem(seed=1)
    x0 = np.zeros(n)
    ref_x, ref_lrs = adam_hd_reference(grad, x0, 1e-3, 1e-4, 150)
    p = Parameter(x0.copy())
    lrs = run(HypergradientAdam([p], lr=1e-3, hypergrad_lr=1e-4), p, grad, 150)
    np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-8)
    np.testing.assert_allclose(p.data, ref_x, rtol=1e-7, atol=1e-12)
    assert ref_lrs[-1] > 3 * ref_lrs[0]


@pytest.mark.parametrize("make_fixed,make_hd", [
    (lambda p: SGD([p], lr=1e-3), lambda p: HypergradientSGD([p], lr=1e-3, hypergrad_lr=1e-3)),
    (lambda p: SGD([p], lr=1e-3, momentum=0.9),
     lambda p: HypergradientSGD([p], lr=1e-3, momentum=0.9, hypergrad_lr=1e-4)),
    (lambda p: Adam([p], lr=1e-4), lambda p: HypergradientAdam([p], lr=1e-4, hypergrad_lr=1e-4)),
])
def test_beats_badly_chosen_fixed_lr(make_fixed, make_hd):
    loss, grad, n = problem(seed=2)
    res = []
    for make in (make_fixed, make_hd):
        p = Parameter(np.zeros(n))
        run(make(p), p, grad, 300)
        res.append(loss(p.data))
    fixed, hd = res
    assert hd < 0.1 * fixed, (fixed, hd)


def test_float32_and_groups():
    _, grad, n = problem(seed=3)
    p1, p2 = Parameter(np.zeros(n, np.float32)), Parameter(np.zeros(n, np.float32))
    opt = HypergradientSGD([{"params": [p1]}, {"params": [p2], "hypergrad_lr": 0.0}],
                           lr=0.01, hypergrad_lr=0.002)
    for _ in range(50):
        p1.grad = grad(p1.data.astype(np.float64)).astype(np.float32)
        p2.grad = grad(p2.data.astype(np.float64)).astype(np.float32)
        opt.step()
    assert p1.data.dtype == np.float32
    assert opt.param_groups[0]["lr"] > 0.01
    assert opt.param_groups[1]["lr"] == 0.01  # beta = 0: plain SGD


def test_lr_clipped_at_zero_and_maximize():
    p = Parameter(np.array([1.0]))
    opt = HypergradientSGD([p], lr=0.1, hypergrad_lr=100.0)
    p.grad = np.array([1.0])
    opt.step()
    p.grad = np.array([-1.0])   # anti-aligned with the last direction
    opt.step()
    assert opt.param_groups[0]["lr"] == 0.0
    # maximize: ascent on f = -(x^2); the lr still grows while the steps agree
    q = Parameter(np.array([3.0]))
    opt = HypergradientSGD([q], lr=0.01, hypergrad_lr=0.01, maximize=True)
    for _ in range(3):
        q.grad = -2 * q.data
        opt.step()
    assert opt.param_groups[0]["lr"] > 0.01
    assert abs(q.data[0]) < 3.0


def test_resume_through_checkpoint(tmp_path):
    _, grad, n = problem(seed=4)
    p = Parameter(np.zeros(n))
    opt = HypergradientAdam([p], lr=1e-3, hypergrad_lr=1e-4)
    run(opt, p, grad, 80)
    q = Parameter(np.zeros(n))
    opt2 = HypergradientAdam([q], lr=1e-3, hypergrad_lr=1e-4)
    run(opt2, q, grad, 30)
    checkpoint.save({"x": q.data, "opt": opt2.state_dict()}, tmp_path / "c.npz")
    st = checkpoint.load(tmp_path / "c.npz")
    r = Parameter(st["x"].copy())
    opt3 = HypergradientAdam([r], lr=1e-3, hypergrad_lr=1e-4)
    opt3.load_state_dict(st["opt"])
    run(opt3, r, grad, 50)
    np.testing.assert_array_equal(r.data, p.data)
    assert opt3.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_bad_hypergrad_lr_and_no_half_update():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="hypergrad_lr"):
        HypergradientSGD([p], hypergrad_lr=-1.0)
    with pytest.raises(TypeError, match="hypergrad_lr"):
        HypergradientAdam([p], hypergrad_lr="big")
    opt = HypergradientSGD([p], lr=0.1)
    p.grad = np.ones(2)
    opt.step()
    before = (p.data.copy(), opt.param_groups[0]["lr"])
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    np.testing.assert_array_equal(p.data, before[0])
    assert opt.param_groups[0]["lr"] == before[1]
