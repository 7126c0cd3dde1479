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


@pytest.mark.parametrize("history,max_iter,max_eval,tol_change",
                         [(100, 20, None, 1e-9), (3, 7, None, 1e-9), (5, 1, None, 1e-9),
                          (100, 20, 6, 1e-9),           # max_eval ends each step
                          (100, 20, None, 1e-1),        # |f_k - f_k-1| < tolerance_change
                          (100, 20, None, 5e-2)])
def test_trajectory_matches_reference(history, max_iter, max_eval, tol_change):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0, 0.5])
    p = Parameter(x0.copy())
    opt = LBFGS([p], history_size=history, max_iter=max_iter, max_eval=max_eval,
                tolerance_change=tol_change)
    ref, st = _reference_lbfgs(x0, lambda x: (so.rosen(x), so.rosen_der(x)), 6,
                               max_iter=max_iter, history=history, max_eval=max_eval,
                               tol_change=tol_change)
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_strong_wolfe_holds_at_every_accepted_step(dtype):
    """PyTorch's constants c1 = 1e-4, c2 = 0.9: every step the optimizer takes
    satisfies f(x + t d) <= f(x) + c1 t g.d and |g(x + t d).d| <= c2 |g.d|
    (checked from the outside, one iteration per ``step``)."""
    c1, c2 = 1e-4, 0.9
    p = Parameter(np.array([-1.2, 1.0, -1.2, 1.0, 0.5, 0.3], dtype=dtype))
    opt = LBFGS([p], max_iter=1, history_size=5, line_search_fn="strong_wolfe",
                tolerance_grad=1e-7 if dtype == np.float64 else 1e-3)
    calls = [0]

    def fg(x):
        x = x.astype(np.float64)
        return so.rosen(x), so.rosen_der(x)

    def closure():
        calls[0] += 1
        f, g = fg(p.data)
        p.grad = g.astype(dtype)
        return f
    checked = 0
    for _ in range(200):
        x = p.data.copy()
        f, g = fg(x)
        if np.max(np.abs(g.astype(dtype))) <= opt.param_groups[0]["tolerance_grad"]:
            break
        before, evals0 = calls[0], opt.state.get(p, {}).get("func_evals", 0)
        opt.step(closure)
        st = opt.state[p]
        d, t = st["d"], st["t"]
        # torch's bookkeeping: every closure call is counted, at most 25 in the search
        assert st["func_evals"] - evals0 == calls[0] - before
        if calls[0] - before == 1:
            # torch's other exit: g.d > -tolerance_change, no search and no move
            assert float(g @ d) > -1e-9
            np.testing.assert_array_equal(p.data, x)
            break
        assert calls[0] - before <= 1 + 25
        np.testing.assert_array_equal(p.data, x + (t * d).astype(dtype))
        fn, gn = fg(p.data)
        gtd = float(g @ d)
        assert gtd < 0 and t > 0
        slack = 1e-12 if dtype == np.float64 else 1e-5 * max(1.0, abs(f))
        assert fn <= f + c1 * t * gtd + slack
        assert abs(float(gn @ d)) <= c2 * abs(gtd) + (0 if dtype == np.float64 else 1e-4)
        checked += 1
    assert checked >= 15
    np.testing.assert_allclose(p.data, 1.0, atol=1e-5 if dtype == np.float64 else 2e-2)


def test_max_eval_counts_line_search_evaluations_as_torch():
    """With a line search a step ends once the evaluations of the step reach
    max_eval, checked after each iteration's search (so the last search may run
    past it by up to max_ls - 1 = 24), and func_evals counts them all."""
    p = Parameter(np.array([-1.2, 1.0, -1.2, 1.0]))
    opt = LBFGS([p], max_iter=100, max_eval=10, line_search_fn="strong_wolfe")
    calls = [0]

    def closure():
        calls[0] += 1
        p.grad = so.rosen_der(p.data)
        return so.rosen(p.data)
    opt.step(closure)
    st = opt.state[p]
    assert st["func_evals"] == calls[0]
    assert 10 <= calls[0] <= 10 + 24
    assert st["n_iter"] < 100


# ------------------------------------------------------------ exceptions in the closure (#16)
def _lbfgs_problem(fail_at, line_search_fn):
    A = np.diag([1.0, 10.0, 100.0])
    w = Parameter(np.array([1.0, -1.0, 0.5]))
    calls = {"n": 0}

    def closure():
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt
        w.grad = A @ w.data
        return 0.5 * float(w.data @ A @ w.data)
    return w, closure, calls


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("fail_at", [2, 3, 5, 8])
def test_exception_in_closure_rolls_back_to_last_iteration_and_stays_usable(fail_at,
                                                                             line_search_fn):
    # reference: the same run without the failure, one iteration per step
    w_ref, closure_ref, _ = _lbfgs_problem(10 ** 9, line_search_fn)
    ref = LBFGS([w_ref], lr=0.5, max_iter=1, line_search_fn=line_search_fn)
    points = [w_ref.data.copy()]
    for _ in range(12):
        ref.step(closure_ref)
        points.append(w_ref.data.copy())

    w, closure, calls = _lbfgs_problem(fail_at, line_search_fn)
    opt = LBFGS([w], lr=0.5, max_iter=1, line_search_fn=line_search_fn)
    with pytest.raises(KeyboardInterrupt):
        for _ in range(12):
            opt.step(closure)
    # parameters sit at a completed iterate, never at a line-search trial point
    assert any(np.array_equal(w.data, p) for p in points)
    st = opt.state[w]
    assert st["n_iter"] == 0 or st.get("d") is not None
    # the optimizer goes on from there (the failed step is simply retried)
    start = closure()
    for _ in range(30):
        opt.step(closure)
    assert closure() < 1e-6 * start
