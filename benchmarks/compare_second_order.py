"""Side by side: neurenix vs SciPy second-order methods on the Rosenbrock function
(and, for ``dogleg`` at n > 2, where the Rosenbrock Hessian is indefinite at x0, a
strictly convex function: ``sum(exp(x) - x) + sum((x[1:] - x[:-1])**2) / 2``).

For each method and size, both libraries run in the same process on the same
problem; reported: nit, nfev, nhev (Hessian-vector products or Hessian
evaluations), hessp calls per iteration, and the solver overhead per
iteration = (wall time - time inside the user's fun/jac/hessp) / nit, as a
ratio ours/SciPy.  Run: ``python benchmarks/compare_second_order.py``.
"""
import os
import sys
import time

import numpy as np
import scipy.optimize as so

from neurenix.optimize import minimize

# the test problems live once, in the asv suite (benchmarks/benchmarks/)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks.bench_second_order import (  # noqa: E402
    _convex as convex, _convex_grad as convex_grad, _convex_hess as convex_hess)


class Timed:
    def __init__(self):
        self.t = 0.0

    def wrap(self, f):
        def g(*a):
            t0 = time.perf_counter()
            try:
                return f(*a)
            finally:
                self.t += time.perf_counter() - t0
        return g


def run(lib, method, n, repeat=3):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    fun, jac, hess = so.rosen, so.rosen_der, so.rosen_hess
    if method == "dogleg" and n > 2:
        fun, jac, hess = convex, convex_grad, convex_hess
        x0 = np.linspace(-2.0, 3.0, n)
    best = None
    for _ in range(repeat):
        tm = Timed()
        kw = dict(jac=tm.wrap(jac), hessp=tm.wrap(so.rosen_hess_prod))
        if method in ("trust-exact", "dogleg"):
            kw = dict(jac=tm.wrap(jac), hess=tm.wrap(hess))
        t0 = time.perf_counter()
        r = lib(tm.wrap(fun), x0, method=method, **kw)
        wall = time.perf_counter() - t0
        over = (wall - tm.t) / max(r.nit, 1)
        if best is None or over < best[1]:
            best = (r, over, wall)
    return best


def main(sizes=(2, 10, 100, 1000)):
    print(f"{'method':13s} {'n':>5s} | {'nit':>11s} {'nfev':>11s} {'nhev':>13s} "
          f"{'hessp/it':>11s} | {'overhead/it us':>17s} {'ratio':>6s} | {'f ours':>9s} {'f scipy':>9s}")
    for method in ("Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "dogleg"):
        for n in sizes:
            if method in ("trust-exact", "dogleg") and n > 100:
                continue
            r, o1, _ = run(minimize, method, n)
            s, o2, _ = run(so.minimize, method, n)
            print(f"{method:13s} {n:5d} | {r.nit:5d}/{s.nit:5d} {r.nfev:5d}/{s.nfev:5d} "
                  f"{r.nhev:6d}/{s.nhev:6d} {r.nhev / max(r.nit, 1):5.1f}/{s.nhev / max(s.nit, 1):5.1f} | "
                  f"{o1 * 1e6:8.1f}/{o2 * 1e6:8.1f} {o1 / o2:6.2f} | {r.fun:9.2e} {s.fun:9.2e}"
                  f"{'' if r.success else ' (ours: ' + r.message + ')'}")


if __name__ == "__main__":
    main()
