"""GPU side by side: one ``step()`` of neurenix's Adam on CuPy arrays (the fused CuPy
kernel, one pass per array, and the generic Array-API kernels, one CuPy call per
operation) vs PyTorch's CUDA Adam
(``fused=True`` and ``foreach=True``), float32, timed with device synchronisation,
best of ``--reps`` after warm-up, in one run.  Also checks that 20 steps on CuPy
equal 20 steps of the NumPy (Cython) path.

Needs a CUDA GPU with CuPy and PyTorch (skips with a message otherwise).
Run: ``python benchmarks/compare_gpu.py [--sizes 1e7 1e8] [--reps 20]``
"""
import argparse
import time

import numpy as np

import _checkout  # noqa: F401  (an uninstalled checkout)
from neurenix import optim


def best(fn, sync, reps):
    for _ in range(3):
        fn()
    sync()
    b = float("inf")
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        b = min(b, time.perf_counter() - t)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    try:
        import cupy as cp
        import torch
        if cp.cuda.runtime.getDeviceCount() < 1 or not torch.cuda.is_available():
            raise RuntimeError("no CUDA device")
    except Exception as e:  # pragma: no cover - no GPU
        print(f"skipped: {e}")
        return
    print(cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "| cupy", cp.__version__,
          "| torch", torch.__version__)
    # correctness: CuPy (generic kernels) vs NumPy (Cython kernels), 20 steps
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(100_003).astype(np.float32)
    gs = [rng.standard_normal(x0.size).astype(np.float32) for _ in range(20)]
    out = []
    for to in (cp.asarray, np.asarray):
        p = optim.Parameter(to(x0.copy()))
        opt = optim.Adam([p], lr=1e-2, weight_decay=1e-2, amsgrad=True)
        for g in gs:
            p.grad = to(g)
            opt.step()
        out.append(cp.asnumpy(p.data) if to is cp.asarray else p.data)
    err = float(np.max(np.abs(out[0] - out[1])) / np.max(np.abs(out[1])))
    print(f"Adam(amsgrad, weight_decay) 20 steps, CuPy vs NumPy path: max rel diff {err:.1e}")
    import neurenix.optim.optimizer as O
    from neurenix.backend import generic_kernels, kernels_for
    print(f"{'size':>8s} {'arrays':>6s} | {'ours ms':>8s} {'generic':>8s} {'torch fused':>11s} "
          f"{'torch foreach':>13s} | {'ours/fused':>10s} {'GB/s ours':>9s} {'GB/s fused':>10s}")
    for n in (int(s) for s in a.sizes):
        for k in (1, 100):
            sizes = [n // k] * k
            ps = [optim.Parameter(cp.random.standard_normal(s, dtype=cp.float32)) for s in sizes]
            for p in ps:
                p.grad = cp.random.standard_normal(p.data.size, dtype=cp.float32)
            ours = optim.Adam(ps, lr=1e-3)
            t_ours = best(ours.step, cp.cuda.Device().synchronize, a.reps)
            O.kernels_for = lambda xp, dt: generic_kernels(xp)
            try:
                t_gen = best(ours.step, cp.cuda.Device().synchronize, max(3, a.reps // 4))
            finally:
                O.kernels_for = kernels_for
            tt = {}
            for mode in ("fused", "foreach"):
                tp = [torch.randn(s, device="cuda", requires_grad=True) for s in sizes]
                for p in tp:
                    p.grad = torch.randn_like(p)
                o = torch.optim.Adam(tp, lr=1e-3, **{mode: True})
                tt[mode] = best(o.step, torch.cuda.synchronize, a.reps)
                del tp, o
            # Adam moves 4 arrays in and 3 out (param, grad, m, v): 7 * 4 bytes per element
            gb = 7 * 4 * n / 1e9
            print(f"{n:8.0e} {k:6d} | {t_ours * 1e3:8.3f} {t_gen * 1e3:8.3f} {tt['fused'] * 1e3:11.3f} "
                  f"{tt['foreach'] * 1e3:13.3f} | {t_ours / tt['fused']:10.2f} "
                  f"{gb / t_ours:9.0f} {gb / tt['fused']:10.0f}")
            del ps, ours
            cp.get_default_memory_pool().free_all_blocks()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
