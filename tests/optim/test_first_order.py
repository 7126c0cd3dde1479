"""Every first-order optimizer against its independent reference, on the fast
(Cython) and generic paths, float32 and float64, two param groups, every flag."""
import numpy as np
import pytest

from neurenix import optim
from neurenix.backend import generic_kernels
import neurenix.optim.optimizer as optimizer_mod

from ._cases import CASES, PARAMS
from ._reference import ReferenceOptimizer

SHAPES = [[(7,), (3, 4)], [(5,), (2, 3)]]
STEPS = 60


def make_problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [[rng.standard_normal(s).astype(dtype) for s in shapes] for shapes in SHAPES]
    targets = [[rng.standard_normal(s).astype(dtype) for s in shapes] for shapes in SHAPES]
    scales = [[rng.uniform(0.5, 2.0, s).astype(dtype) for s in shapes] for shapes in SHAPES]
    noise = [[[(0.1 * rng.standard_normal(s)).astype(dtype) for s in shapes] for shapes in SHAPES]
             for _ in range(STEPS)]

    def grads(step, arrs):
        return [[(sc * (p - t) + nz).astype(dtype)
                 for p, t, sc, nz in zip(ps, ts, ss, ns)]
                for ps, ts, ss, ns in zip(arrs, targets, scales, noise[step])]

    return arrays, grads


def run_on(cls, cfg, dtype, to_xp, steps=20):
    """``steps`` steps of optimizer ``cls`` (param groups ``cfg``) on the problem of
    :func:`make_problem`, its arrays made by ``to_xp`` (NumPy, array_api_strict, CuPy,
    torch, ...); returns the final parameters as NumPy arrays, and the optimizer."""
    from neurenix.backend import to_numpy
    arrays, grads = make_problem(dtype)
    params = [[optim.Parameter(to_xp(a.copy())) for a in grp] for grp in arrays]
    opt = cls([dict(params=ps, **c) for ps, c in zip(params, cfg)])
    for k in range(steps):
        gs = grads(k, [[to_numpy(p.data) for p in ps] for ps in params])
        for ps, gg in zip(params, gs):
            for p, g in zip(ps, gg):
                p.grad = to_xp(g)
        opt.step()
    return [to_numpy(p.data) for ps in params for p in ps], opt


def run_ours(cls, cfg, dtype, steps=STEPS, generic=False, monkeypatch=None):
    arrays, grads = make_problem(dtype)
    params = [[optim.Parameter(a.copy()) for a in grp] for grp in arrays]
    opt = cls([dict(params=ps, **c) for ps, c in zip(params, cfg)])
    if generic:
        monkeypatch.setattr(optimizer_mod, "kernels_for", lambda xp, dt: generic_kernels(np))
    for k in range(steps):
        gs = grads(k, [[p.data for p in ps] for ps in params])
        for ps, gg in zip(params, gs):
            for p, g in zip(ps, gg):
                p.grad = g
        opt.step()
    return [[p.data for p in ps] for ps in params], opt


def run_reference(rule, cfg, dtype, steps=STEPS):
    arrays, grads = make_problem(dtype)
    ref = ReferenceOptimizer(rule, [(list(a), c) for a, c in zip(arrays, cfg)])
    for k in range(steps):
        ref.step(grads(k, [g[0] for g in ref.groups]))
    return [g[0] for g in ref.groups]


TOL = {np.float64: 1e-12, np.float32: 1e-6}


def assert_close_normwise(ours, ref, tol):
    """max |ours - ref| <= tol * max |ref| (relative to the array's scale, so that
    entries passing near zero do not turn rounding noise into large relative errors)."""
    o = np.asarray(ours, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    err = np.max(np.abs(o - r)) / max(np.max(np.abs(r)), 1e-300)
    assert err <= tol, f"normwise relative error {err:.3g} > {tol:.1g}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,k", PARAMS)
def test_matches_reference(name, k, dtype):
    cls, rule, cfgs = CASES[name]
    ours, _ = run_ours(cls, cfgs[k], dtype)
    ref = run_reference(rule, cfgs[k], dtype)
    for og, rg in zip(ours, ref):
        for o, r in zip(og, rg):
            assert o.dtype == dtype
            assert_close_normwise(o, r, TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,k", PARAMS)
def test_fast_equals_generic(name, k, dtype, monkeypatch):
    cls, _, cfgs = CASES[name]
    fast, _ = run_ours(cls, cfgs[k], dtype)
    slow, _ = run_ours(cls, cfgs[k], dtype, generic=True, monkeypatch=monkeypatch)
    tol = dict(rtol=1e-13, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-7)
    for fg, sg in zip(fast, slow):
        for f, s in zip(fg, sg):
            np.testing.assert_allclose(f, s, **tol)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_tracks_float64_reference(name):
    """float32 trajectories stay within ~1e-6 relative of the float64 reference over
    a short run (the float32 kernel computes in float32 throughout)."""
    cls, rule, cfgs = CASES[name]
    ours, _ = run_ours(cls, cfgs[0], np.float32, steps=10)
    ref = run_reference(rule, cfgs[0], np.float64, steps=10)
    for og, rg in zip(ours, ref):
        for o, r in zip(og, rg):
            np.testing.assert_allclose(o.astype(np.float64), r, rtol=2e-5, atol=2e-6)


def test_many_arrays_one_call_matches_single_arrays():
    """A group of many arrays (crossing the kernel's chunk size) equals stepping each alone."""
    rng = np.random.default_rng(3)
    shapes = [(40000,), (3,), (70001,), (1,), (2, 50000)]
    data = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    together = [optim.Parameter(d.copy()) for d in data]
    opt = optim.Adam(together, lr=0.01, amsgrad=True)
    alone = [optim.Parameter(d.copy()) for d in data]
    opts = [optim.Adam([p], lr=0.01, amsgrad=True) for p in alone]
    for _ in range(3):
        for p, g in zip(together, grads):
            p.grad = g
        opt.step()
        for p, g, o in zip(alone, grads, opts):
            p.grad = g
            o.step()
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_results(threads):
    import neurenix

    rng = np.random.default_rng(4)
    data = rng.standard_normal(300000).astype(np.float32)
    g = rng.standard_normal(300000).astype(np.float32)
    outs = []
    for n in (1, threads):
        with neurenix.num_threads(n):
            p = optim.Parameter(data.copy())
            p.grad = g
            for cls in (optim.Adam, optim.LAMB, optim.LARS, optim.RMSprop):
                o = cls([p])
                o.step()
            outs.append(p.data.copy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_params_without_grad_are_skipped():
    a = optim.Parameter(np.ones(3))
    b = optim.Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert np.all(b.data == 1) and b not in opt.state
    assert np.all(a.data < 1)


def test_mixed_dtypes_in_one_group():
    a = optim.Parameter(np.ones(3, dtype=np.float32))
    b = optim.Parameter(np.ones(3, dtype=np.float64))
    c = optim.Parameter(np.ones(3, dtype=np.float16))      # generic path on NumPy
    opt = optim.Adam([a, b, c], lr=0.1)
    for p in (a, b, c):
        p.grad = np.ones(3, dtype=p.dtype)
    opt.step()
    for p in (a, b, c):
        assert p.data.dtype == p.grad.dtype
        np.testing.assert_allclose(p.data.astype(float), 0.9, rtol=1e-3)
