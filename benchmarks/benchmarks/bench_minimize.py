"""asv: minimize (L-BFGS-B, BFGS, CG) against scipy.optimize.minimize on the same problems.

``time_*`` wall time; ``track_nfev``/``track_nit`` algorithmic quality;
``track_overhead_us`` the solver's own time per iteration (wall minus time in fun).
"""
import time

import numpy as np
import scipy.optimize as so

from neurenix.optimize import minimize


def _rosen(x):
    a = x[1:] - x[:-1] ** 2
    b = 1 - x[:-1]
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * a - 2 * b
    g[1:] += 200 * a
    return np.sum(100 * a ** 2 + b ** 2), g


def _x0(n, dtype):
    x = np.full(n, -1.2, dtype=dtype)
    x[1::2] = 1.0
    return x


_SOLVERS = {"neurenix": minimize, "scipy": so.minimize}


class Minimize:
    params = (["L-BFGS-B", "BFGS", "CG"], [2, 10, 100, 1000], ["neurenix", "scipy"])
    param_names = ["method", "n", "impl"]
    timeout = 120

    def setup(self, method, n, impl):
        if method == "BFGS" and n > 100:
            raise NotImplementedError
        self.x0 = _x0(n, np.float64)
        self.solve = _SOLVERS[impl]

    def _run(self, method):
        return self.solve(_rosen, self.x0, jac=True, method=method)

    def time_minimize(self, method, n, impl):
        self._run(method)

    def track_nfev(self, method, n, impl):
        return self._run(method).nfev

    def track_nit(self, method, n, impl):
        return self._run(method).nit

    def track_overhead_us(self, method, n, impl):
        inside = [0.0]

        def fun(x):
            t = time.perf_counter()
            out = _rosen(x)
            inside[0] += time.perf_counter() - t
            return out
        t0 = time.perf_counter()
        r = self.solve(fun, self.x0, jac=True, method=method)
        return 1e6 * (time.perf_counter() - t0 - inside[0]) / max(r.nit, 1)


class LargeLBFGSB:
    params = ([10 ** 5, 10 ** 6], ["neurenix", "scipy"], [False, True])
    param_names = ["n", "impl", "bounded"]
    timeout = 300

    def setup(self, n, impl, bounded):
        self.x0 = _x0(n, np.float64)
        self.bounds = so.Bounds(np.full(n, -2.0), np.full(n, 0.9)) if bounded else None
        if bounded:
            self.x0 = np.clip(self.x0, -2.0, 0.9)
        self.solve = _SOLVERS[impl]

    def time_lbfgsb(self, n, impl, bounded):
        self.solve(_rosen, self.x0, jac=True, method="L-BFGS-B", bounds=self.bounds)

    def track_nfev(self, n, impl, bounded):
        return self.solve(_rosen, self.x0, jac=True, method="L-BFGS-B", bounds=self.bounds).nfev


class MinimizeBounded:
    """L-BFGS-B with bounds [-2, 0.9] that are active at the solution (the compact
    form, Cauchy point and subspace minimization run every iteration)."""
    params = ([2, 10, 100, 1000], ["neurenix", "scipy"])
    param_names = ["n", "impl"]
    timeout = 120

    def setup(self, n, impl):
        self.x0 = np.clip(_x0(n, np.float64), -2.0, 0.9)
        self.bounds = so.Bounds(np.full(n, -2.0), np.full(n, 0.9))
        self.solve = _SOLVERS[impl]

    def time_minimize(self, n, impl):
        self.solve(_rosen, self.x0, jac=True, method="L-BFGS-B", bounds=self.bounds)

    def track_overhead_us(self, n, impl):
        inside = [0.0]

        def fun(x):
            t = time.perf_counter()
            out = _rosen(x)
            inside[0] += time.perf_counter() - t
            return out
        t0 = time.perf_counter()
        r = self.solve(fun, self.x0, jac=True, method="L-BFGS-B", bounds=self.bounds)
        return 1e6 * (time.perf_counter() - t0 - inside[0]) / max(r.nit, 1)
