"""``python -m neurenix.demo``: the toolkit's main jobs, each beside its reference.

1. Trains a two-layer MLP (manual NumPy backprop) on the two-spirals problem with
   each first-order optimizer, and times one Adam step on 10^6 float32 values
   against the same update written as in-place NumPy.
2. Minimizes the 1000-variable Rosenbrock function with ``neurenix.optimize.minimize``
   (L-BFGS, Newton-CG, trust-ncg) beside SciPy's method of the same name.
3. Fits NIST StRD certified nonlinear regressions with ``least_squares`` beside
   SciPy's ``lm`` and grades both by the log relative error against the certified
   values.
"""
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


def main():
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


if __name__ == "__main__":
    main()
