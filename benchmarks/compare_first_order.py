"""Side-by-side timing of first-order optimizer steps, all measured in one run.

For each size N (float32 and float64; one array, and 100 arrays of the same total
size) and thread count, prints the time of one ``step()`` of:
  * neurenix (fused Cython kernel),
  * the same update written as in-place NumPy,
  * PyTorch's ``fused=True`` CPU optimizer (when torch is installed),
  * the single-pass memory bound: a kernel with the same memory traffic and trivial
    arithmetic (``neurenix._ext._first_order.memory_probe``),
and the ratios: ours / torch fused, NumPy / ours, bound / ours (fraction of the
memory bound reached).

Usage: python benchmarks/compare_first_order.py [--sizes 1e6 1e7 1e8] [--threads 1 2]
       [--optimizers Adam AdamW SGD ...] [--dtypes float32 float64]
"""
import argparse
import gc
import time

import numpy as np

import _checkout  # noqa: F401  (an uninstalled checkout)
import neurenix
from neurenix import optim
from neurenix._ext import _first_order
from neurenix._numpy_reference import STEPS as NUMPY_STEPS

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def best_time(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


OURS = {
    "Adam": lambda ps: optim.Adam(ps),
    "AdamW": lambda ps: optim.AdamW(ps),
    "SGD": lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9),
    "RMSprop": lambda ps: optim.RMSprop(ps),
    "Adagrad": lambda ps: optim.Adagrad(ps),
    "NAdam": lambda ps: optim.NAdam(ps),
    "RAdam": lambda ps: optim.RAdam(ps),
    "AdaBelief": lambda ps: optim.AdaBelief(ps),
    "LAMB": lambda ps: optim.LAMB(ps),
    "LARS": lambda ps: optim.LARS(ps),
}
TORCH_FUSED = {"Adam": "Adam", "AdamW": "AdamW", "SGD": "SGD", "Adagrad": "Adagrad"}


def split(n, k):
    sizes = [n // k] * k
    sizes[-1] += n - sum(sizes)
    return sizes


def run_case(name, n, narr, dtype, threads, reps):
    rng = np.random.default_rng(0)
    sizes = split(n, narr)
    data = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [rng.standard_normal(s).astype(dtype) * 1e-2 for s in sizes]
    row = {}
    neurenix.set_num_threads(threads)
    ps = [optim.Parameter(d) for d in data]
    for p, g in zip(ps, grads):
        p.grad = g
    opt = OURS[name](ps)
    row["ours"] = best_time(opt.step, reps)
    # memory bound: same traffic as Adam (4 reads, 3 writes) on the same buffers
    st = [opt.state[p] for p in ps]
    if name in ("Adam", "AdamW"):
        ms = [s["exp_avg"] for s in st]
        vs = [s["exp_avg_sq"] for s in st]
        row["bound"] = best_time(lambda: _first_order.memory_probe(data, grads, ms, vs), reps)
    del opt, st
    gc.collect()
    if name in ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad"):
        ms = [np.zeros_like(d) for d in data]
        vs = [np.zeros_like(d) for d in data]
        counter = [0]

        def npstep():
            counter[0] += 1
            for p, g, m, v in zip(data, grads, ms, vs):
                NUMPY_STEPS[name](p, g, m, v, counter[0])

        row["numpy"] = best_time(npstep, max(2, reps // 2))
        del ms, vs
        gc.collect()
    if torch is not None and name in TORCH_FUSED:
        torch.set_num_threads(threads)
        tps = [torch.nn.Parameter(torch.from_numpy(d.copy())) for d in data]
        for tp, g in zip(tps, grads):
            tp.grad = torch.from_numpy(g)
        kw = {"momentum": 0.9, "lr": 1e-3} if name == "SGD" else {}
        topt = getattr(torch.optim, TORCH_FUSED[name])(tps, fused=True, **kw)
        with torch.no_grad():
            row["torch_fused"] = best_time(topt.step, reps)
        del topt, tps
        gc.collect()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--optimizers", nargs="+", default=["Adam"])
    ap.add_argument("--dtypes", nargs="+", default=["float32"])
    ap.add_argument("--arrays", nargs="+", type=int, default=[1, 100])
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    print(f"neurenix {neurenix.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not installed'}")
    hdr = (f"{'optimizer':<10}{'dtype':<8}{'N':>8}{'arrays':>7}{'thr':>4}"
           f"{'ours ms':>10}{'numpy ms':>10}{'torch ms':>10}{'bound ms':>10}"
           f"{'ours/torch':>11}{'numpy/ours':>11}{'bound/ours':>11}")
    print(hdr)
    for name in args.optimizers:
        for dt in args.dtypes:
            for n in args.sizes:
                for narr in args.arrays:
                    for th in args.threads:
                        r = run_case(name, int(n), narr, np.dtype(dt), th,
                                     args.reps if n <= 1e7 else max(3, args.reps // 3))
                        f = lambda k: f"{r[k] * 1e3:10.3f}" if k in r else f"{'-':>10}"
                        ratio = lambda a, b: f"{r[a] / r[b]:11.2f}" if a in r and b in r else f"{'-':>11}"
                        print(f"{name:<10}{dt:<8}{n:>8.0e}{narr:>7}{th:>4}"
                              f"{f('ours')}{f('numpy')}{f('torch_fused')}{f('bound')}"
                              f"{ratio('ours', 'torch_fused')}{ratio('numpy', 'ours')}"
                              f"{ratio('bound', 'ours')}", flush=True)


if __name__ == "__main__":
    main()
