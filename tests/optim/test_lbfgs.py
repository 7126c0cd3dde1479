"""optim.LBFGS: trajectories vs an independent transcription of PyTorch's
documented L-BFGS step, vs torch itself when installed, state and bad input."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optim import LBFGS, Parameter


def _rosen_closure(p):
    def closure():
        p.grad = so.rosen_der(p.data)
        return so.rosen(p.data)
    return closure


def _reference_lbfgs(x, fg, steps, lr=1.0, max_iter=20, max_eval=None, tol_grad=1e-7,
                     tol_change=1e-9, history=100):
    """PyTorch's L-BFGS step (no line search), written from its documentation,
    with the inverse-Hessian product as a dense matrix from the recursive formula."""
    max_eval = max_eval or max_iter * 5 // 4
    x = x.copy()
    st = dict(n_iter=0, func_evals=0, S=[], Y=[], d=None, t=None, prev_g=None, prev_f=None,
              H_diag=1.0)
    traj = []
    for _ in range(steps):
        f, g = fg(x)
        evals = 1
        st["func_evals"] += 1
        if np.max(np.abs(g)) <= tol_grad:
            traj.append(x.copy())
            continue
        it = 0
        while it < max_iter:
            it += 1
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                d = -g
                st["S"], st["Y"], st["H_diag"] = [], [], 1.0
            else:
                y = g - st["prev_g"]
                s = st["d"] * st["t"]
                if y @ s > 1e-10:
                    if len(st["S"]) == history:
                        st["S"].pop(0)
                        st["Y"].pop(0)
                    st["S"].append(s)
                    st["Y"].append(y)
                    st["H_diag"] = (y @ s) / (y @ y)
                H = st["H_diag"] * np.eye(x.size)
                for s_, y_ in zip(st["S"], st["Y"]):   # H <- V^T H V + rho s s^T
                    r = 1.0 / (y_ @ s_)
                    V = np.eye(x.size) - r * np.outer(y_, s_)
                    H = V.T @ H @ V + r * np.outer(s_, s_)
                d = -H @ g
            st["d"] = d
            st["prev_g"] = g.copy()
            st["prev_f"] = f
            t = min(1.0, 1.0 / np.sum(np.abs(g))) * lr if st["n_iter"] == 1 else lr
            st["t"] = t
            if g @ d > -tol_change:
                break
            x = x + t * d
            ls = 0
            if it != max_iter:
                f, g = fg(x)
                ls = 1
            evals += ls
            st["func_evals"] += ls
            if it == max_iter or evals >= max_eval or np.max(np.abs(g)) <= tol_grad:
                break
            if np.max(np.abs(d * t)) <= tol_change or abs(f - st["prev_f"]) < tol_change:
                break
        traj.append(x.copy())
    return traj, st


@pytest.mark.parametrize("history,max_iter", [(100, 20), (3, 7), (5, 1)])
def test_trajectory_matches_reference(history, max_iter):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0, 0.5])
    p = Parameter(x0.copy())
    opt = LBFGS([p], history_size=history, max_iter=max_iter)
    ref, st = _reference_lbfgs(x0, lambda x: (so.rosen(x), so.rosen_der(x)), 6,
                               max_iter=max_iter, history=history)
    for k in range(6):
        opt.step(_rosen_closure(p))
        np.testing.assert_allclose(p.data, ref[k], rtol=1e-6, atol=1e-7)
    s = opt.state[p]
    assert s["func_evals"] == st["func_evals"] and s["n_iter"] == st["n_iter"]
    assert len(s["old_stps"]) == len(st["S"]) <= history


def test_multiple_parameters_flattened():
    a = Parameter(np.array([-1.2, 1.0]))
    b = Parameter(np.array([[-1.2], [1.0]]))
    opt = LBFGS([a, b])

    def closure():
        x = np.concatenate([a.data, b.data.ravel()])
        g = so.rosen_der(x)
        a.grad, b.grad = g[:2], g[2:].reshape(2, 1)
        return so.rosen(x)
    ref, _ = _reference_lbfgs(np.array([-1.2, 1.0, -1.2, 1.0]),
                              lambda x: (so.rosen(x), so.rosen_der(x)), 3)
    for k in range(3):
        opt.step(closure)
        np.testing.assert_allclose(np.concatenate([a.data, b.data.ravel()]), ref[k], rtol=1e-6)


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_against_torch(ls):
    torch = pytest.importorskip("torch")
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    p = Parameter(x0.copy())
    opt = LBFGS([p], history_size=5, max_iter=10, line_search_fn=ls)
    tp = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.LBFGS([tp], history_size=5, max_iter=10, line_search_fn=ls)

    def tclosure():
        topt.zero_grad()
        x = tp
        loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
        loss.backward()
        return loss
    for _ in range(8):
        opt.step(_rosen_closure(p))
        topt.step(tclosure)
        if ls is None:
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)
    if ls is None:
        assert opt.state[p]["func_evals"] == topt.state[tp]["func_evals"]
    # with a line search both converge (different Wolfe searches, see the docstring)
    np.testing.assert_allclose(p.data, 1.0, atol=1e-5)
    np.testing.assert_allclose(tp.detach().numpy(), 1.0, atol=1e-5)


def test_strong_wolfe_float32():
    p = Parameter(np.array([-1.2, 1.0, -1.2, 1.0], dtype=np.float32))
    opt = LBFGS([p], line_search_fn="strong_wolfe", tolerance_grad=1e-4)

    def closure():
        x = p.data.astype(float)
        p.grad = so.rosen_der(x).astype(np.float32)
        return so.rosen(x)
    for _ in range(10):
        opt.step(closure)
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 1.0, atol=1e-2)


def test_state_dict_resume_bit_for_bit():
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    p = Parameter(x0.copy())
    opt = LBFGS([p], max_iter=3)
    for _ in range(2):
        opt.step(_rosen_closure(p))
    sd = opt.state_dict()
    q = Parameter(p.data.copy())
    opt2 = LBFGS([q], max_iter=3)
    opt2.load_state_dict(sd)
    for _ in range(3):
        opt.step(_rosen_closure(p))
        opt2.step(_rosen_closure(q))
    np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("kw,match", [({"lr": -1}, "lr"), ({"max_iter": 0}, "max_iter"),
                                      ({"history_size": 0}, "history_size"),
                                      ({"tolerance_grad": -1}, "tolerance_grad"),
                                      ({"line_search_fn": "armijo"}, "line_search_fn")])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        LBFGS([Parameter(np.ones(2))], **kw)


def test_requires_closure_and_single_group():
    opt = LBFGS([Parameter(np.ones(2))])
    with pytest.raises(TypeError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="param"):
        LBFGS([{"params": [Parameter(np.ones(2))]}, {"params": [Parameter(np.ones(2))]}])
