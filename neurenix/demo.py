"""``python -m neurenix.demo``: train a network on handwritten digits, then (optionally)
the toolkit's other jobs beside their references.

Main path: the ``SimpleNN`` of the tutorials (64-128-10, ReLU) trained on
scikit-learn's digits with ``neurenix.nn`` / ``neurenix.data`` / ``optim.Adam``,
a text progress bar per epoch, the test accuracy (>= 95 %), the same network from
the same initial weights and batches trained by PyTorch when it is installed, and
a convergence plot written as a PNG (matplotlib, the ``demo`` extra).

``--benchmarks`` adds:

1. Trains a two-layer MLP (manual NumPy backprop) on the two-spirals problem with
   each first-order optimizer, and times one Adam step on 10^6 float32 values
   against the same update written as in-place NumPy.
2. Minimizes the 1000-variable Rosenbrock function with ``neurenix.optimize.minimize``
   (L-BFGS, Newton-CG, trust-ncg) beside SciPy's method of the same name.
3. Fits NIST StRD certified nonlinear regressions with ``least_squares`` beside
   SciPy's ``lm`` and grades both by the log relative error against the certified
   values.
"""
import argparse
import os
import sys
import time

import numpy as np

from . import optim
from ._numpy_reference import adam as numpy_adam_step


def spirals(n=400, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    x1 = np.c_[t * np.cos(t), t * np.sin(t)] / 10 + rng.normal(0, noise, (n, 2)) / 10 * 3
    x2 = -x1
    X = np.vstack([x1, x2])
    y = np.r_[np.zeros(n), np.ones(n)]
    return X, y


class MLP:
    def __init__(self, hidden=64, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = optim.Parameter(rng.normal(0, 1.0, (2, hidden)), name="W1")
        self.b1 = optim.Parameter(np.zeros(hidden), name="b1")
        self.W2 = optim.Parameter(rng.normal(0, 1.0 / np.sqrt(hidden), (hidden, 1)), name="W2")
        self.b2 = optim.Parameter(np.zeros(1), name="b2")

    def parameters(self):
        return [self.W1, self.b1, self.W2, self.b2]

    def loss_and_grad(self, X, y):
        h_pre = X @ self.W1.data + self.b1.data
        h = np.tanh(h_pre)
        z = (h @ self.W2.data + self.b2.data)[:, 0]
        # binary cross-entropy with logits, mean over samples
        loss = np.mean(np.logaddexp(0, z) - y * z)
        dz = (0.5 * (1 + np.tanh(0.5 * z)) - y)[:, None] / len(y)   # sigmoid, overflow-free
        self.W2.grad = h.T @ dz
        self.b2.grad = dz.sum(0)
        dh = dz @ self.W2.data.T * (1 - h * h)
        self.W1.grad = X.T @ dh
        self.b1.grad = dh.sum(0)
        acc = np.mean((z > 0) == (y > 0.5))
        return loss, acc


def train(make_opt, steps=600):
    X, y = spirals()
    net = MLP()
    opt = make_opt(net.parameters())
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, acc = net.loss_and_grad(X, y)
        opt.step()
    dt = time.perf_counter() - t0
    loss, acc = net.loss_and_grad(X, y)
    return loss, acc, dt


def _timed(fn, reps=3):
    best = float("inf")
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def bench_adam(n=1_000_000, reps=30):
    """Best-of-``reps`` time of one Adam step, ours and in-place NumPy (best-of, because
    a shared machine's other processes only ever add time)."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal(n).astype(np.float32)
    p = optim.Parameter(rng.standard_normal(n).astype(np.float32))
    p.grad = g
    opt = optim.Adam([p])
    _, ours = _timed(opt.step, reps)
    q = p.data.copy()
    m = np.zeros_like(q)
    v = np.zeros_like(q)
    t = [0]

    def numpy_step():
        t[0] += 1
        numpy_adam_step(q, g, m, v, t[0])

    _, ref = _timed(numpy_step, reps)
    return ours, ref


def demo_minimize():
    import scipy.optimize as so

    from . import optimize

    n = 1000
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    print(f"Rosenbrock, n = {n}, analytic gradient (Hessian-vector products for the "
          "second-order methods)")
    print(f"{'method':<14}{'library':<10}{'f':>12}{'nit':>6}{'nfev':>6}{'ms':>9}")
    cases = [("L-BFGS-B", {}), ("Newton-CG", {"hessp": so.rosen_hess_prod}),
             ("trust-ncg", {"hessp": so.rosen_hess_prod})]
    for method, extra in cases:
        for lib, fn in (("neurenix", optimize.minimize), ("scipy", so.minimize)):
            res, dt = _timed(lambda: fn(so.rosen, x0, jac=so.rosen_der, method=method, **extra))
            print(f"{method:<14}{lib:<10}{res.fun:>12.3e}{res.nit:>6}{res.nfev:>6}"
                  f"{dt * 1e3:>9.1f}")


def demo_least_squares():
    import scipy.optimize as so

    from . import datasets, optimize

    problems = {p.name: p for p in datasets.nist_strd()}
    print("NIST StRD nonlinear regression, Start 1 (min LRE over parameters; >= 4 certifies)")
    print(f"{'problem':<10}{'difficulty':<12}{'neurenix LRE':>13}{'ms':>8}"
          f"{'scipy lm LRE':>14}{'ms':>8}")
    tol = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100000)   # full accuracy
    for name in ("Misra1a", "Thurber", "MGH09", "BoxBOD", "Eckerle4", "Bennett5"):
        p = problems[name]
        x0 = np.asarray(p.start1, dtype=float)
        with np.errstate(all="ignore"):   # far starts overflow exp() on rejected trials
            ours, t1 = _timed(lambda: optimize.least_squares(p.residual, x0, jac=p.jac,
                                                             method="lm", **tol))
            ref, t2 = _timed(lambda: so.least_squares(p.residual, x0, jac=p.jac,
                                                      method="lm", **tol))
        print(f"{name:<10}{p.difficulty:<12}{min(p.lre(ours.x)):>13.1f}{t1 * 1e3:>8.2f}"
              f"{min(p.lre(ref.x)):>14.1f}{t2 * 1e3:>8.2f}")


def benchmarks():
    makers = {
        "SGD(momentum=0.9)": lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9),
        "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.3),
        "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01),
        "Adam": lambda ps: optim.Adam(ps, lr=0.02),
        "AdamW": lambda ps: optim.AdamW(ps, lr=0.02, weight_decay=1e-4),
        "NAdam": lambda ps: optim.NAdam(ps, lr=0.02),
        "RAdam": lambda ps: optim.RAdam(ps, lr=0.02),
        "AdaBelief": lambda ps: optim.AdaBelief(ps, lr=0.02),
        "LAMB": lambda ps: optim.LAMB(ps, lr=0.01, weight_decay=0.0),
        "LARS": lambda ps: optim.LARS(ps, lr=0.5, momentum=0.9, weight_decay=0.0,
                                      trust_coefficient=0.1),
    }
    print("Two spirals (800 points), MLP 2-64-1, 600 full-batch steps")
    print(f"{'optimizer':<20}{'loss':>10}{'accuracy':>10}{'seconds':>10}")
    for name, mk in makers.items():
        loss, acc, dt = train(mk)
        print(f"{name:<20}{loss:>10.4f}{acc:>10.3f}{dt:>10.2f}")
    ours, ref = bench_adam()
    print()
    print("Adam step on 1e6 float32 values:")
    print(f"  neurenix fused kernel : {ours * 1e3:8.3f} ms")
    print(f"  in-place NumPy        : {ref * 1e3:8.3f} ms   ({ref / ours:.1f}x the fused time)")
    print()
    demo_minimize()
    print()
    demo_least_squares()



# ------------------------------------------------------------------ digits with nn
def load_digits_split(seed=0):
    """scikit-learn's digits, scaled to [0, 1], split 80/20 (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    return train_test_split(d.data / 16.0, d.target, test_size=0.2, random_state=seed,
                            stratify=d.target)


def make_simple_nn():
    """The tutorials' network: Linear(64, 128) -> ReLU -> Linear(128, 10)."""
    from . import nn

    class SimpleNN(nn.Module):
        def __init__(self, input_size=64, hidden_size=128, num_classes=10):
            super().__init__()
            self.fc1 = nn.Linear(input_size, hidden_size)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(hidden_size, num_classes)

        def forward(self, x):
            return self.fc2(self.relu(self.fc1(x)))

    return SimpleNN()


def progress_bar(done, total, width=30):
    """``[#########.........]`` with ``done`` of ``total`` filled."""
    n = int(round(width * done / total)) if total else width
    return "[" + "#" * n + "." * (width - n) + "]"


def train_digits(epochs=20, lr=1e-3, batch_size=32, seed=0, out=None):
    """Train ``SimpleNN`` on the digits; return the history (per-epoch training loss,
    test accuracy, per-batch losses), the batch order and the initial weights."""
    import neurenix
    from . import nn
    from .data import DataLoader, TensorDataset

    out = sys.stdout if out is None else out
    tty = hasattr(out, "isatty") and out.isatty()
    X_train, X_test, y_train, y_test = load_digits_split()
    neurenix.manual_seed(seed)
    model = make_simple_nn()
    init = {k: v.copy() for k, v in model.state_dict().items()}
    train_set = TensorDataset(neurenix.tensor(X_train, dtype=neurenix.float32),
                              neurenix.tensor(y_train))
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    X_te = neurenix.tensor(X_test, dtype=neurenix.float32)
    y_te = neurenix.tensor(y_test)
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=lr)
    hist = {"loss": [], "acc": [], "batch_loss": []}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for i, (xb, yb) in enumerate(loader):
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
            li = loss.item()
            hist["batch_loss"].append(li)
            total += li * yb.size(0)
            if tty:
                print(f"\repoch {epoch + 1:3d}/{epochs} {progress_bar(i + 1, len(loader))} "
                      f"loss {li:.4f}", end="", file=out, flush=True)
        model.eval()
        with neurenix.no_grad():
            _, predicted = model(X_te).max(1)
            acc = predicted.eq(y_te).sum().item() / y_te.size(0)
        hist["loss"].append(total / len(train_set))
        hist["acc"].append(acc)
        print(f"\repoch {epoch + 1:3d}/{epochs} {progress_bar(epoch + 1, epochs)} "
              f"loss {hist['loss'][-1]:.4f}  test accuracy {100 * acc:5.1f} %", file=out, flush=True)
    hist["seconds"] = time.perf_counter() - t0
    hist["init"] = init
    return hist


def train_digits_torch(init, epochs=20, lr=1e-3, batch_size=32, seed=0):
    """The same network, initial weights, optimizer and batch order in PyTorch (the
    reference); returns its per-epoch loss and accuracy, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    X_train, X_test, y_train, y_test = load_digits_split()
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for q, v in zip(net.parameters(), init.values()):
            q.copy_(torch.from_numpy(v))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    crit = torch.nn.CrossEntropyLoss()
    Xtr = torch.from_numpy(X_train.astype(np.float32))
    ytr = torch.from_numpy(y_train)
    Xte = torch.from_numpy(X_test.astype(np.float32))
    yte = torch.from_numpy(y_test)
    rng = np.random.default_rng(seed)      # the DataLoader's permutations, replayed
    hist = {"loss": [], "acc": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # small matrices: threads only add overhead
    try:
        _torch_epochs(torch, net, opt, crit, Xtr, ytr, Xte, yte, rng, epochs, batch_size, hist)
    finally:
        torch.set_num_threads(threads)
    return hist


def _torch_epochs(torch, net, opt, crit, Xtr, ytr, Xte, yte, rng, epochs, batch_size, hist):
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = rng.permutation(len(Xtr))
        total = 0.0
        for s in range(0, len(perm), batch_size):
            idx = torch.from_numpy(perm[s:s + batch_size])
            opt.zero_grad()
            loss = crit(net(Xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            acc = (net(Xte).argmax(1) == yte).double().mean().item()
        hist["loss"].append(total / len(Xtr))
        hist["acc"].append(acc)
    hist["seconds"] = time.perf_counter() - t0


def plot_convergence(hist, ref, path):
    """Training loss (log scale) and test accuracy per epoch; PyTorch's beside ours.
    Returns the path, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = np.arange(1, len(hist["loss"]) + 1)
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    nb = len(hist["batch_loss"])
    ax1.plot(np.arange(1, nb + 1) * len(epochs) / nb, hist["batch_loss"], color="C0", alpha=0.25,
             lw=0.8, label="neurenix, per batch")
    ax1.plot(epochs, hist["loss"], "o-", color="C0", label="neurenix, epoch mean")
    if ref is not None:
        ax1.plot(epochs, ref["loss"], "s--", color="C3", mfc="none", label="PyTorch, epoch mean")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training cross-entropy")
    ax1.set_title("Training loss")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(epochs, 100 * np.asarray(hist["acc"]), "o-", color="C0", label="neurenix")
    if ref is not None:
        ax2.plot(epochs, 100 * np.asarray(ref["acc"]), "s--", color="C3", mfc="none", label="PyTorch")
    ax2.axhline(95, color="gray", ls=":", lw=1, label="95 %")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy (%)")
    ax2.set_title("Test accuracy (360 held-out digits)")
    ax2.set_ylim(min(80.0, 100 * min(hist["acc"]) - 2), 100)
    ax2.legend(loc="lower right")
    ax2.grid(True, alpha=0.3)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("SimpleNN (64-128-10) on scikit-learn digits, Adam, batch 32")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    """Run the demo; return a dict with the final accuracy and the plot's path."""
    ap = argparse.ArgumentParser(prog="python -m neurenix.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0, help="initial weights and batch order")
    ap.add_argument("--plot", default="neurenix_digits_convergence.png",
                    help="where to write the convergence plot (PNG)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference run")
    ap.add_argument("--benchmarks", action="store_true",
                    help="also run the optimizer, minimize and least-squares comparisons")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")
    try:
        import sklearn  # noqa: F401  (needed for the data)
    except ImportError:
        print("scikit-learn is needed for the digits data: pip install 'neurenix[demo]'")
        return None
    print(f"SimpleNN on scikit-learn digits: 1437 training / 360 test images, "
          f"Adam(lr={args.lr:g}), batch {args.batch_size}, {args.epochs} epochs")
    try:   # small matrices: one BLAS thread for NumPy, as for torch below
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(1)
    except ImportError:
        limit = None
    try:
        hist = train_digits(args.epochs, args.lr, args.batch_size, args.seed)
        acc = hist["acc"][-1]
        print(f"neurenix (1 thread): test accuracy {100 * acc:.1f} % in {hist['seconds']:.2f} s")
        ref = None if args.no_torch else train_digits_torch(hist["init"], args.epochs, args.lr,
                                                             args.batch_size, args.seed)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    if ref is not None:
        gap = max(abs(a - b) / b for a, b in zip(hist["loss"], ref["loss"]))
        print(f"PyTorch (same initial weights and batches, 1 thread): test accuracy "
              f"{100 * ref['acc'][-1]:.1f} % in {ref['seconds']:.2f} s; largest relative "
              f"difference of the epoch losses {gap:.1e}")
    path = plot_convergence(hist, ref, args.plot)
    if path is None:
        print("matplotlib is not installed: no convergence plot (pip install 'neurenix[demo]')")
    else:
        print(f"convergence plot written to {os.path.abspath(path)}")
    if args.benchmarks:
        print()
        benchmarks()
    return {"accuracy": acc, "plot": None if path is None else os.path.abspath(path),
            "history": hist, "torch": ref}


if __name__ == "__main__":
    main()
