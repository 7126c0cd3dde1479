"""Side-by-side NIST StRD table: neurenix least_squares vs SciPy ``lm`` and ``trf``.

For every problem and both official starts it prints the smallest LRE over the
parameters (capped at 11), nfev and the median wall time of a few repeats, for
neurenix ``lm`` and ``trf`` and SciPy ``lm`` and ``trf``.  Every solver gets the
same residual function and the same Jacobian (complex step on the header's
formula, :meth:`neurenix.datasets.NistProblem.jac`) and the same tolerances.
Then the two extra fits of the issue: a 3-parameter x 1000-point exponential and a
100-parameter x 5000-point peak fit with analytic Jacobian.

Both ``lm`` solvers perform the same MINPACK ``lmder`` iteration (same trial
points, same counts of ``fun`` and ``jac`` calls), so their wall-time difference is
overhead: besides the total-time ratio, the "overhead" ratio subtracts the time
spent inside the user's residual and Jacobian callables, measured in one extra
instrumented run of each solver.

Run: ``python benchmarks/nist_table.py [--repeat 5] [--tol 1e-15]``
"""
import argparse
import time
import warnings

import numpy as np
import scipy.optimize

import _checkout  # noqa: F401  (an uninstalled checkout)
from neurenix.datasets import nist_strd
from neurenix.optimize import least_squares

SOLVERS = {
    "nx-lm": (least_squares, "lm"),
    "nx-trf": (least_squares, "trf"),
    "sp-lm": (scipy.optimize.least_squares, "lm"),
    "sp-trf": (scipy.optimize.least_squares, "trf"),
}


def timed(fn, repeat):
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = fn()
        best.append(time.perf_counter() - t)
    return r, float(np.median(best))


def user_time(solver, method, fun, x0, jac, **kw):
    """Run once with instrumented callables; return the seconds spent inside them
    and the total, so that ``total - user`` is the solver's own overhead."""
    spent = [0.0]

    def timed_call(fn):
        def wrapped(x):
            t = time.perf_counter()
            try:
                return fn(x)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapped
    j = timed_call(jac) if callable(jac) else jac
    t = time.perf_counter()
    solver(timed_call(fun), x0, jac=j, method=method, **kw)
    return spent[0], time.perf_counter() - t


def overhead_ratio(fun, x0, jac, repeat, **kw):
    """Median over ``repeat`` instrumented runs of (ours - user) / (SciPy's - user)."""
    out = []
    for _ in range(repeat):
        ou, ot = user_time(least_squares, "lm", fun, x0, jac, **kw)
        su, st = user_time(scipy.optimize.least_squares, "lm", fun, x0, jac, **kw)
        out.append((ot - ou) / (st - su))
    return float(np.median(out))


def nist(repeat, tol):
    kw = dict(ftol=tol, xtol=tol, gtol=tol)
    head = f"{'problem':9s} st | " + " | ".join(f"{k:>6s} LRE  nfev   ms " for k in SOLVERS)
    print(head)
    print("-" * len(head))
    passed = {k: [0, 0] for k in SOLVERS}
    ratio_t, ratio_nfev, ratio_o = [], [], []
    for p in nist_strd():
        for si, x0 in enumerate(p.starts):
            cells = []
            res = {}
            for key, (solver, method) in SOLVERS.items():
                def run():
                    return solver(p.residual, x0, jac=p.jac, method=method,
                                  max_nfev=1000 * p.n_params, **kw)
                r, t = timed(run, repeat)
                lre = p.lre(r.x).min()
                passed[key][si] += lre >= 4
                res[key] = (r.nfev, t)
                cells.append(f"{lre:10.1f} {r.nfev:5d} {t * 1e3:5.2f}")
            ratio_t.append(res["nx-lm"][1] / res["sp-lm"][1])
            ratio_nfev.append(res["nx-lm"][0] / res["sp-lm"][0])
            ratio_o.append(overhead_ratio(p.residual, x0, p.jac, repeat,
                                          max_nfev=1000 * p.n_params, **kw))
            print(f"{p.name:9s} {si + 1:2d} | " + " | ".join(cells))
    print()
    for key in SOLVERS:
        print(f"{key:7s} certified (LRE>=4): start 1 {passed[key][0]}/27, "
              f"start 2 {passed[key][1]}/27")
    rt = np.array(ratio_t)
    rn = np.array(ratio_nfev)
    print(f"nx-lm / sp-lm wall time: median {np.median(rt):.2f}, geometric mean "
          f"{np.exp(np.mean(np.log(rt))):.2f}, max {rt.max():.2f}")
    ro = np.array(ratio_o)
    print(f"nx-lm / sp-lm overhead (time outside fun/jac): median {np.median(ro):.2f}, "
          f"geometric mean {np.exp(np.mean(np.log(ro))):.2f}, max {ro.max():.2f}")
    print(f"nx-lm / sp-lm nfev: median {np.median(rn):.2f}, fits with more nfev "
          f"{int((rn > 1).sum())}/54, with fewer {int((rn < 1).sum())}/54")


def nist_default_jac(repeat, tol):
    """The same fits with ``least_squares``'s default ``jac="2-point"`` (the
    Jacobian by forward differences inside the solver, as a user porting a SciPy
    call without a Jacobian gets it): lm wall time and nfev, ours vs SciPy."""
    kw = dict(ftol=tol, xtol=tol, gtol=tol)
    rt, more, fewer, cert = [], 0, 0, {"nx": [0, 0], "sp": [0, 0]}
    print("\nlm with jac='2-point' (finite differences in the solver): time ratio per fit")
    cells = []
    for p in nist_strd():
        for si, x0 in enumerate(p.starts):
            out = {}
            for key, solver in (("nx", least_squares), ("sp", scipy.optimize.least_squares)):
                r, t = timed(lambda: solver(p.residual, x0, method="lm",
                                            max_nfev=1000 * p.n_params, **kw), repeat)
                out[key] = (r.nfev, t)
                cert[key][si] += p.lre(r.x).min() >= 4
            rt.append(out["nx"][1] / out["sp"][1])
            more += out["nx"][0] > out["sp"][0]
            fewer += out["nx"][0] < out["sp"][0]
            cells.append(f"{p.name}/{si + 1} {rt[-1]:.2f}")
    for k in range(0, len(cells), 6):
        print("  " + ", ".join(cells[k:k + 6]))
    rt = np.array(rt)
    print(f"nx-lm / sp-lm wall time (jac='2-point'): median {np.median(rt):.2f}, geometric "
          f"mean {np.exp(np.mean(np.log(rt))):.2f}, max {rt.max():.2f}; fits with more nfev "
          f"{more}/54, with fewer {fewer}/54; certified ours {cert['nx']}, SciPy {cert['sp']} "
          f"(start 1, start 2; finite differences limit the LRE on some problems)")


def exp_fit(repeat):
    rng = np.random.default_rng(0)
    t = np.linspace(0, 5, 1000)
    y = 3.0 * np.exp(-1.2 * t) + 0.4 + 0.01 * rng.standard_normal(t.size)

    def f(p):
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    def J(p):
        e = np.exp(-p[1] * t)
        return np.column_stack((e, -p[0] * t * e, np.ones_like(t)))
    print("\n3-parameter x 1000-point exponential fit, x0 = (1, 0.5, 0)")
    for jac in ("analytic", "2-point"):
        j = J if jac == "analytic" else jac
        out = {}
        for key, (solver, method) in SOLVERS.items():
            r, tm = timed(lambda: solver(f, [1.0, 0.5, 0.0], jac=j, method=method), repeat)
            out[key] = (r.nfev, tm, r.cost)
        line = ", ".join(f"{k} nfev {v[0]} {v[1] * 1e3:.2f} ms" for k, v in out.items())
        orat = overhead_ratio(f, [1.0, 0.5, 0.0], j, repeat)
        print(f"  jac={jac}: {line}; nx-lm/sp-lm time {out['nx-lm'][1] / out['sp-lm'][1]:.2f}, "
              f"overhead {orat:.2f}")


def peak_fit(repeat):
    rng = np.random.default_rng(1)
    m, npk = 5000, 33
    t = np.linspace(0, 100, m)
    c = np.linspace(2, 98, npk)
    a_true = 1 + rng.random(npk)
    w_true = 0.6 + 0.2 * rng.random(npk)

    def model(p):
        a, mu, w = p[:npk], p[npk:2 * npk], p[2 * npk:3 * npk]
        z = (t[:, None] - mu) / w
        return (a * np.exp(-0.5 * z * z)).sum(1) + p[-1]

    y = model(np.concatenate((a_true, c, w_true, [0.1]))) + 0.01 * rng.standard_normal(m)

    def f(p):
        return model(p) - y

    def J(p):
        a, mu, w = p[:npk], p[npk:2 * npk], p[2 * npk:3 * npk]
        z = (t[:, None] - mu) / w
        e = np.exp(-0.5 * z * z)
        return np.hstack((e, a * e * z / w, a * e * z * z / w, np.ones((m, 1))))
    p0 = np.concatenate((np.ones(npk), c + 0.1, np.full(npk, 0.7), [0.0]))
    print(f"\n100-parameter x 5000-point peak fit (33 Gaussians + offset), analytic jac")
    out = {}
    for key, (solver, method) in SOLVERS.items():
        r, tm = timed(lambda: solver(f, p0, jac=J, method=method), max(1, repeat // 2))
        out[key] = (r.nfev, tm, r.cost)
        print(f"  {key:7s} nfev {r.nfev:4d} cost {r.cost:.6e} time {tm * 1e3:8.1f} ms")
    print(f"  nx-lm / sp-trf time {out['nx-lm'][1] / out['sp-trf'][1]:.2f}, "
          f"nx-trf / sp-trf time {out['nx-trf'][1] / out['sp-trf'][1]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-15)
    ap.add_argument("--skip-nist", action="store_true")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    if not a.skip_nist:
        nist(a.repeat, a.tol)
        nist_default_jac(a.repeat, a.tol)
    exp_fit(a.repeat)
    peak_fit(a.repeat)


if __name__ == "__main__":
    main()
