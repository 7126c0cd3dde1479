"""Side by side: K-FAC (``optim.NaturalGradient(fisher="kfac")``) vs ``optim.Adam``
on an MLP -- steps to reach a target training loss (an algorithmic benchmark, not
a timing one; time per step is printed for scale).

Problem: a 3-layer tanh MLP (20 -> 64 -> 64 -> 5, softmax cross-entropy, 5.8k
parameters) on 2000 samples of overlapping Gaussian blobs, minibatches of 128
drawn by one seeded generator (both optimizers see the same batches).  Each
optimizer runs a small learning-rate grid; each run stops when the full-batch
training loss reaches the target or after ``MAX_STEPS``.  K-FAC records the
layer inputs and the output gradients of targets sampled from the model (the
true Fisher's statistics, Martens & Grosse 2015, section 5).  Reported per run:
steps to target (``-`` when not reached), the final and the best full-batch loss,
and milliseconds per step (forward + backward + update).

Second table: ``minimize(method="natural-gradient")`` on logistic regression (the
GGN/Fisher = Hessian case, so it is Newton's method) against statsmodels' IRLS
(``GLM(Binomial).fit``) and scikit-learn's ``newton-cholesky``, same data, same
run: iterations, wall time (best of 3) and the largest coefficient difference
to statsmodels.  Rows for statsmodels/sklearn are skipped when not installed.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/compare_natural_gradient.py``.
"""
import time

import numpy as np

import _checkout  # noqa: F401  (an uninstalled checkout; puts tests/ on sys.path)
from neurenix.optim import Adam, NaturalGradient
from optim._mlp import MLP, blobs

SIZES = [20, 64, 64, 5]
TARGET = 0.2
MAX_STEPS = 800
BATCH = 128


def run(make, X, y, seed=0):
    model = MLP(SIZES, seed=seed)
    opt, layers = make(model)
    rng = np.random.default_rng(seed)
    reached = None
    best = np.inf
    t_step = 0.0
    loss = model.loss(X, y)
    for k in range(1, MAX_STEPS + 1):
        idx = rng.choice(len(y), BATCH, replace=False)
        t0 = time.perf_counter()
        _, inputs, grads = model.backward(X[idx], y[idx],
                                          sample_targets=rng if layers else None)
        for L, a, g in zip(layers, inputs, grads):
            opt.record(L, a, g)
        opt.step()
        t_step += time.perf_counter() - t0
        loss = model.loss(X, y)
        best = min(best, loss)
        if loss <= TARGET:
            reached = k
            break
    return reached, loss, best, 1e3 * t_step / k


def adam(lr):
    def make(model):
        return Adam(model.parameters(), lr=lr), []
    return make


def kfac(lr, damping):
    def make(model):
        opt = NaturalGradient(model.parameters(), lr=lr, damping=damping, fisher="kfac",
                              kl_clip=1e-2, inv_update_period=10)
        return opt, [opt.register_layer(W, b) for W, b in zip(model.W, model.b)]
    return make


def main():
    X, y = blobs(n=2000, d=20, k=5, seed=1, noise=3.0)
    print(f"MLP {SIZES}, {len(y)} samples, batch {BATCH}, target loss {TARGET}, "
          f"max {MAX_STEPS} steps")
    print(f"{'optimizer':<28s} {'steps':>6s} {'final':>8s} {'best':>8s} {'ms/step':>8s}")
    rows = [(f"Adam lr={lr:g}", adam(lr)) for lr in (1e-3, 3e-3, 1e-2, 3e-2)]
    rows += [(f"K-FAC lr={lr:g} damping={d:g}", kfac(lr, d))
             for lr in (0.1, 0.3, 1.0) for d in (1e-3, 1e-2, 1e-1)]
    best = {}
    for name, make in rows:
        steps, final, lo, ms = run(make, X, y)
        print(f"{name:<28s} {steps if steps else '-':>6} {final:8.4f} {lo:8.4f} {ms:8.2f}")
        key = name.split()[0]
        s = steps if steps else np.inf
        if s < best.get(key, (np.inf,))[0]:
            best[key] = (s, name)
    print("best of each grid:", "; ".join(f"{v[1]}: {v[0]} steps" for v in best.values()))


def glm_table():
    from scipy.special import expit
    from neurenix.optimize import minimize
    print()
    print(f"{'logistic regression':<22s} {'N':>7s} {'d':>4s} {'solver':<26s} {'nit':>4s} "
          f"{'ms':>8s} {'|x - statsmodels|':>18s}")
    for N, d in ((10_000, 20), (100_000, 50)):
        rng = np.random.default_rng(0)
        X = np.column_stack([np.ones(N), rng.standard_normal((N, d - 1))])
        y = (rng.random(N) < expit(X @ rng.standard_normal(d) * 0.3)).astype(float)

        def nll(b):
            eta = X @ b
            return (float(np.mean(np.logaddexp(0, eta) - y * eta)),
                    X.T @ (expit(eta) - y) / N)

        def ggn(b):
            mu = expit(X @ b)
            return X, mu * (1 - mu) / N

        runs = {}

        def ours_exact():
            return minimize(nll, np.zeros(d), jac=True, method="natural-gradient", tol=1e-10,
                            options=dict(ggn=ggn, damping=0.0, adapt_damping=False))

        def ours_lm():
            return minimize(nll, np.zeros(d), jac=True, method="natural-gradient", tol=1e-10,
                            options=dict(ggn=ggn))
        runs["ours lr=1 damping=0 (IRLS)"] = ours_exact
        runs["ours LM damping"] = ours_lm
        try:
            import statsmodels.api as sm
            runs["statsmodels GLM (IRLS)"] = lambda: sm.GLM(
                y, X, family=sm.families.Binomial()).fit(tol=1e-12)
        except ImportError:
            sm = None
        try:
            import warnings
            from sklearn.linear_model import LogisticRegression

            def skl():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return LogisticRegression(penalty=None, fit_intercept=False,
                                              solver="newton-cholesky", tol=1e-10,
                                              max_iter=100).fit(X, y)
            runs["sklearn newton-cholesky"] = skl
        except ImportError:
            pass
        out = {}
        for name, f in runs.items():
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                r = f()
                best = min(best, time.perf_counter() - t0)
            out[name] = (r, best)
        ref = out["statsmodels GLM (IRLS)"][0].params if sm is not None else None
        for name, (r, t) in out.items():
            x = getattr(r, "x", None)
            if x is None:
                x = r.params if hasattr(r, "params") else r.coef_.ravel()
            nit = getattr(r, "nit", None)
            if nit is None:
                nit = getattr(r, "fit_history", {}).get("iteration")
            if nit is None and hasattr(r, "n_iter_"):
                nit = int(np.max(r.n_iter_))
            diff = f"{np.abs(x - ref).max():18.2e}" if ref is not None else f"{'-':>18s}"
            print(f"{'':<22s} {N:7d} {d:4d} {name:<26s} {str(nit):>4s} {1e3 * t:8.1f} {diff}")


if __name__ == "__main__":
    main()
    glm_table()
