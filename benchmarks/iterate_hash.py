"""Fingerprint of every solver's iterates, for refactors that must leave them bitwise unchanged.

Runs every ``minimize`` method (both dtypes; jac combined, callable and finite
differences; L-BFGS-B free and boxed), ``least_squares`` (lm, trf, gn, the robust losses)
on NIST StRD problems, ``curve_fit``, and a few steps of every ``neurenix.optim``
optimizer, and prints one SHA-256 per run (over x, fun, jac, nit, nfev, njev, nhev,
status, message, or the parameters and state after the steps) and a total::

    python benchmarks/iterate_hash.py > before.txt
    ... refactor, rebuild ...
    python benchmarks/iterate_hash.py > after.txt && diff before.txt after.txt

Any difference in a line names the run whose iterates changed.
"""
import hashlib
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _checkout  # noqa: E402,F401  (the checkout's root when neurenix is not installed)

import scipy.optimize as so  # noqa: E402

from neurenix import optim  # noqa: E402
from neurenix.datasets import nist_strd  # noqa: E402
from neurenix.optimize import curve_fit, least_squares, minimize  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.optimize._problems import CASES, x0_for  # noqa: E402


def _digest(*items):
    h = hashlib.sha256()
    for it in items:
        if isinstance(it, np.ndarray):
            h.update(str(it.dtype).encode())
            h.update(np.ascontiguousarray(it).tobytes())
        elif isinstance(it, (list, tuple)):
            h.update(_digest(*it).encode())
        elif isinstance(it, dict):
            h.update(_digest(*[(k, it[k]) for k in sorted(it, key=str)]).encode())
        else:
            h.update(repr(it).encode())
    return h.hexdigest()[:16]


def _result_digest(r):
    fields = []
    for k in ("x", "fun", "jac", "nit", "nfev", "njev", "nhev", "status", "message",
              "cost", "optimality", "active_mask"):
        if k in r:
            v = r[k]
            fields.append((k, np.asarray(v) if isinstance(v, np.ndarray) else v))
    return _digest(*fields)


def _safe(call):
    """The run's digest, or the digest of the exception it raised (a failure is part of the
    fingerprint)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _result_digest(call())
        except Exception as e:
            return _digest(type(e).__name__, str(e))


def _wrap(fg, dtype):
    def fun(x):
        f, g = fg(x)
        return dtype(f), np.asarray(g, dtype=dtype)
    return fun


def runs_minimize():
    methods = ["L-BFGS-B", "BFGS", "CG", "Newton-CG", "trust-ncg", "trust-krylov"]
    for name, fg, n in CASES:
        if n > 100:
            continue
        for dtype in (np.float64, np.float32):
            x0 = x0_for(name, n).astype(dtype)
            fun = _wrap(fg, dtype)
            for method in methods:
                # float32 BFGS/CG runs on n = 100 stall at rounding level until maxiter
                kw = {"options": {"maxiter": 300}} if dtype is np.float32 else {}
                if method in ("Newton-CG", "trust-ncg", "trust-krylov"):
                    # Hessian-vector products by differences of the analytic gradient
                    def hessp(x, p, fun=fun):
                        h = np.sqrt(np.finfo(x.dtype).eps) * max(1.0, float(np.linalg.norm(x)))
                        h = h / max(float(np.linalg.norm(p)), 1e-300)
                        return ((fun(x + h * p)[1] - fun(x)[1]) / h).astype(x.dtype)
                    kw["hessp"] = hessp
                for jmode in ("combined", "callable", "fd"):
                    if jmode == "fd" and (n > 10 or method not in ("L-BFGS-B", "BFGS")):
                        continue
                    if jmode == "combined":
                        f, j = fun, True
                    elif jmode == "callable":
                        f, j = (lambda x, fun=fun: fun(x)[0]), (lambda x, fun=fun: fun(x)[1])
                    else:
                        f, j = (lambda x, fun=fun: fun(x)[0]), None
                    d = _safe(lambda: minimize(f, x0, jac=j, method=method, **kw))
                    yield f"minimize {method} {name} n={n} {np.dtype(dtype).name} {jmode}", d
            for lo, hi in ((-0.5, 0.5), (0.0, 2.0), (-np.inf, 0.8)):
                bounds = [(lo, hi)] * n
                d = _safe(lambda: minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds))
                yield f"minimize L-BFGS-B box({lo},{hi}) {name} n={n} {np.dtype(dtype).name}", d


def runs_dense_second_order():
    for n in (2, 5, 10, 30):
        for dtype in (np.float64, np.float32):
            x0 = np.full(n, -1.0, dtype=dtype)
            x0[1::2] = 1.5
            f = lambda x: float(so.rosen(x))
            g = lambda x: so.rosen_der(x).astype(x.dtype)
            h = lambda x: so.rosen_hess(x).astype(x.dtype)
            for method in ("trust-exact", "dogleg", "trust-ncg", "Newton-CG", "trust-krylov"):
                d = _safe(lambda: minimize(f, x0, jac=g, hess=h, method=method))
                yield f"minimize {method} rosen-hess n={n} {np.dtype(dtype).name}", d
        # convex quadratic, where dogleg is well posed
        rng = np.random.default_rng(n)
        A = rng.standard_normal((n, n))
        H = A @ A.T + n * np.eye(n)
        b = rng.standard_normal(n)
        for method in ("trust-exact", "dogleg"):
            r = minimize(lambda x: 0.5 * x @ H @ x - b @ x, np.zeros(n), jac=lambda x: H @ x - b,
                         hess=lambda x: H, method=method)
            yield f"minimize {method} quad n={n}", _result_digest(r)


def runs_first_order_minimize():
    for method, opts in (("sgd", {"lr": 1e-3, "momentum": 0.9}), ("adam", {"lr": 1e-2}),
                         ("adamw", {"lr": 1e-2}), ("rmsprop", {"lr": 1e-3})):
        x0 = x0_for("rosen_chained", 10)
        d = _safe(lambda: minimize(CASES[1][1], x0, jac=True, method=method,
                                   options=dict(opts, maxiter=200)))
        yield f"minimize {method} rosen n=10", d


def runs_least_squares():
    for pname in ("Misra1a", "Thurber", "MGH09", "BoxBOD", "Lanczos3", "Bennett5"):
        p = nist_strd(pname)
        for start in (0, 1):
            x0 = np.asarray(p.starts[start], dtype=float)
            for method in ("lm", "trf", "gn"):
                for loss in (("linear", "soft_l1", "cauchy") if method == "trf" else ("linear",)):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            r = least_squares(p.residual, x0, jac=p.jac, method=method, loss=loss)
                            d = _result_digest(r)
                        except Exception as e:      # a failure is part of the fingerprint
                            d = _digest(type(e).__name__, str(e))
                    yield f"least_squares {method} {loss} {pname} start{start + 1}", d
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    r = least_squares(p.residual, x0, method="trf", bounds=(0.5 * x0 - 1, 2 * x0 + 1))
                    d = _result_digest(r)
                except Exception as e:
                    d = _digest(type(e).__name__, str(e))
            yield f"least_squares trf bounded fd {pname} start{start + 1}", d
    t = np.linspace(0, 4, 50)
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.01 * np.sin(7 * t)
    for method in ("lm", "trf"):
        popt, pcov = curve_fit(lambda t, a, b, c: a * np.exp(-b * t) + c, t, y, p0=[1, 1, 1],
                               method=method)
        yield f"curve_fit {method}", _digest(popt, pcov)


def runs_optim():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 6))
    b = rng.standard_normal(20)
    first = [("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}), ("Adagrad", {"lr": 0.1}),
             ("RMSprop", {"lr": 0.01, "momentum": 0.5}), ("Adam", {"lr": 0.01, "amsgrad": True}),
             ("AdamW", {"lr": 0.01}), ("NAdam", {"lr": 0.01}), ("RAdam", {"lr": 0.01}),
             ("AdaBelief", {"lr": 0.01}), ("LAMB", {"lr": 0.01}), ("LARS", {"lr": 0.01})]
    for dtype in (np.float64, np.float32):
        for cls, kw in first:
            w = optim.Parameter(np.zeros(6, dtype=dtype))
            opt = getattr(optim, cls)([w], **kw)
            for _ in range(30):
                opt.zero_grad()
                w.grad = (A.T @ (A @ w.data - b)).astype(dtype)
                opt.step()
            st = opt.state_dict()["state"]
            yield f"optim {cls} {np.dtype(dtype).name}", _digest(w.data, st)

    def closure_factory(w):
        def closure():
            w.grad = A.T @ (A @ w.data - b)
            r = A @ w.data - b
            return 0.5 * float(r @ r)
        return closure

    for cls, kw in (("LBFGS", {"lr": 1, "line_search_fn": "strong_wolfe"}), ("LBFGS", {"lr": 0.5}),
                    ("NewtonCG", {}), ("TrustRegion", {})):
        w = optim.Parameter(np.zeros(6))
        opt = getattr(optim, cls)([w], **kw)
        c = closure_factory(w)
        losses = [opt.step(c) for _ in range(5)]
        yield f"optim {cls} {kw}", _digest(w.data, losses)

    w = optim.Parameter(np.ones(3))
    t = np.linspace(0, 2, 30)
    y = 2.0 * np.exp(-0.7 * t) + 0.3
    opt = optim.GaussNewton([w])

    def closure_res():
        return w.data[0] * np.exp(-w.data[1] * t) + w.data[2] - y
    losses = []
    for _ in range(6):
        try:
            losses.append(opt.step(closure_res))
        except Exception as e:
            losses.append(type(e).__name__)
            break
    yield "optim GaussNewton", _digest(w.data, losses)


def main():
    total = hashlib.sha256()
    count = 0
    import time
    t0 = time.perf_counter()
    for gen in (runs_minimize, runs_dense_second_order, runs_first_order_minimize,
                runs_least_squares, runs_optim):
        for label, d in gen():
            print(f"{d}  {label}")
            if os.environ.get("HASH_TIMES"):
                t1 = time.perf_counter()
                print(f"{t1 - t0:8.3f}  {label}", file=sys.stderr)
                t0 = t1
            total.update(d.encode())
            count += 1
    print(f"TOTAL {total.hexdigest()[:16]} over {count} runs")


if __name__ == "__main__":
    main()
