"""Time of one training step (forward, cross-entropy, backward, Adam step) of the
tutorials' SimpleNN (64-128-10) in neurenix.nn and in PyTorch, in one run.

Both on the CPU with one thread (torch's and NumPy's BLAS), float32, the same batch; best of ``--reps`` (a
shared machine's other processes only ever add time).  Small networks are bound by
the per-operation overhead (Python graph bookkeeping), large batches by the matrix
products (the same BLAS underneath).

Usage: python benchmarks/compare_nn.py [--batches 32 256 4096] [--reps 200]
"""
import argparse
import numpy as np

import _checkout  # noqa: F401  (an uninstalled checkout)
import neurenix
from neurenix import nn, optim
from compare_first_order import best_time


def ours_step(batch):
    neurenix.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = neurenix.tensor(rng.random((batch, 64)), dtype=neurenix.float32)
    y = neurenix.tensor(rng.integers(0, 10, batch))

    def step():
        opt.zero_grad()
        crit(model(x), y).backward()
        opt.step()

    return step


def torch_step(batch):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((batch, 64)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))

    def step():
        opt.zero_grad()
        crit(model(x), y).backward()
        opt.step()

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 256, 4096])
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    neurenix.set_num_threads(1)
    try:   # NumPy's BLAS too: its default thread pool thrashes on a shared machine
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        print("threadpoolctl missing: NumPy's BLAS uses its default threads "
              "(set OPENBLAS_NUM_THREADS=1 for a fair comparison)")
    print(f"{'batch':>6}{'neurenix us':>14}{'torch us':>12}{'ours/torch':>12}")
    for b in args.batches:
        ours = best_time(ours_step(b), args.reps)
        ref = best_time(torch_step(b), args.reps) if torch is not None else float("nan")
        print(f"{b:>6}{ours * 1e6:>14.1f}{ref * 1e6:>12.1f}{ours / ref:>12.2f}")


if __name__ == "__main__":
    main()
