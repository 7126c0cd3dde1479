"""Side-by-side: neurenix.optimize.minimize vs scipy.optimize.minimize.

For each problem and method prints nit, nfev, total time, and the solver
overhead per iteration (wall time minus time spent inside ``fun``, best of
``reps`` runs after one warm-up; 30 runs for problems solved in under 2 ms),
and the ratio ours/SciPy measured in the same run; then the
worst ratio per method and n.  ``(box)`` rows run L-BFGS-B with bounds
``[-2, 0.9]`` that are active at the solution.

    python benchmarks/compare_minimize.py [--large]
"""
import sys
import time

import numpy as np
import scipy.optimize as so

import _checkout  # noqa: E402,F401  (an uninstalled checkout; tests/ for the problems)
from optimize._problems import CASES, x0_for, rosen_uncoupled  # noqa: E402
from neurenix.optimize import minimize  # noqa: E402


def timed(solver, f, x0, method, reps=5, **kw):
    # one untimed warm-up call (first-use costs: imports, caches), then the best
    # of ``reps`` runs, or of 30 when a run takes under 2 ms (a short run's
    # minimum needs more samples on a shared machine; both solvers get the same)
    t0 = time.perf_counter()
    solver(f, x0, jac=True, method=method, **kw)
    if time.perf_counter() - t0 < 2e-3:
        reps = max(reps, 30)
    best = None
    for _ in range(reps):
        inside = [0.0]

        def fun(x):
            t = time.perf_counter()
            out = f(x)
            inside[0] += time.perf_counter() - t
            return out
        t0 = time.perf_counter()
        r = solver(fun, x0, jac=True, method=method, **kw)
        wall = time.perf_counter() - t0
        over = (wall - inside[0]) / max(r.nit, 1)
        if best is None or wall < best[0]:
            best = (wall, over, r)
    return best


def main():
    print(f"{'problem':22s} {'n':>7s} {'method':9s} {'nit ours/scipy':>15s} {'nfev ours/scipy':>16s}"
          f" {'overhead/it us':>18s} {'ratio':>6s} {'time ratio':>10s}")
    worst = {}

    def row(label, n, method, f, x0, **kw):
        w1, o1, r1 = timed(minimize, f, x0, method, **kw)
        w2, o2, r2 = timed(so.minimize, f, x0, method, **kw)
        print(f"{label:22s} {n:7d} {method:9s} {r1.nit:7d}/{r2.nit:<7d} {r1.nfev:8d}/{r2.nfev:<7d}"
              f" {o1 * 1e6:8.1f}/{o2 * 1e6:<9.1f} {o1 / o2:6.3f} {w1 / w2:10.3f}")
        key = (method + (" (box)" if kw.get("bounds") is not None else ""), n)
        worst[key] = max(worst.get(key, 0.0), o1 / o2)

    for name, f, n in CASES:
        for method in ("L-BFGS-B", "BFGS", "CG"):
            if method != "L-BFGS-B" and n > 100:
                continue
            row(name, n, method, f, x0_for(name, n))
    for name, f, n in CASES:
        if name in ("rosen_chained", "rosen_uncoupled"):
            x0 = np.clip(x0_for(name, n), -2.0, 0.9)
            row(name + " (box)", n, "L-BFGS-B", f, x0,
                bounds=so.Bounds(np.full(n, -2.0), np.full(n, 0.9)))
    print("\nworst overhead ratio ours/SciPy per method and n")
    for (method, n), r in sorted(worst.items()):
        print(f"  {method:16s} n={n:<5d} {r:.3f}")
    if "--large" in sys.argv:
        n = 10 ** 6
        x0 = x0_for("rosen_uncoupled", n)
        w1, o1, r1 = timed(minimize, rosen_uncoupled, x0, "L-BFGS-B", reps=1)
        w2, o2, r2 = timed(so.minimize, rosen_uncoupled, x0, "L-BFGS-B", reps=1)
        print(f"rosen_uncoupled n=1e6 L-BFGS-B: ours {w1:.2f}s (nit {r1.nit}, nfev {r1.nfev}), "
              f"scipy {w2:.2f}s (nit {r2.nit}, nfev {r2.nfev}), time ratio {w1 / w2:.3f}")
        lb = np.full(n, -2.0)
        ub = np.full(n, 0.9)
        x0 = np.clip(x0, lb, ub)
        w1, o1, r1 = timed(minimize, rosen_uncoupled, x0, "L-BFGS-B", reps=1, bounds=so.Bounds(lb, ub))
        w2, o2, r2 = timed(so.minimize, rosen_uncoupled, x0, "L-BFGS-B", reps=1, bounds=so.Bounds(lb, ub))
        print(f"bounded n=1e6 L-BFGS-B: ours {w1:.2f}s (nit {r1.nit}, nfev {r1.nfev}), "
              f"scipy {w2:.2f}s (nit {r2.nit}, nfev {r2.nfev}), time ratio {w1 / w2:.3f}")


if __name__ == "__main__":
    main()
