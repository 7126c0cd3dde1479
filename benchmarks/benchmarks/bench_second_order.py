"""asv: Newton-CG and the trust-region methods, neurenix beside SciPy (the
implementation is a parameter, so both appear in the same run and table).

Run from ``benchmarks/``: ``asv run --python=same -b SecondOrder``.
``time_minimize`` is the wall time on the Rosenbrock function (hessp given;
hess for trust-exact; dogleg, which needs a positive definite Hessian, on the
strictly convex ``sum(exp(x) - x) + |diff(x)|^2 / 2`` with hess), ``track_nit``/``track_nhev`` the iterations and Hessian
products (algorithmic quality).  The overhead-per-iteration table is
``benchmarks/compare_second_order.py``.
"""
import warnings

import numpy as np
import scipy.optimize

from neurenix.optimize import minimize

IMPL = {"neurenix": minimize, "scipy": scipy.optimize.minimize}


def _convex(x):
    d = np.diff(x)
    return float(np.sum(np.exp(x) - x) + 0.5 * d @ d)


def _convex_grad(x):
    g = np.exp(x) - 1.0
    d = np.diff(x)
    g[:-1] -= d
    g[1:] += d
    return g


def _convex_hess(x):
    n = x.size
    H = np.diag(np.exp(x) + 2.0)
    H[0, 0] -= 1.0
    H[-1, -1] -= 1.0
    i = np.arange(n - 1)
    H[i, i + 1] = H[i + 1, i] = -1.0
    return H


class _DenseConvex:
    """A strictly convex function with a fully dense Hessian (no band structure):
    ``x^T A x / 2 - b^T x + sum(exp(x))``, ``A = M M^T / n + I`` with a seeded
    Gaussian ``M``; Hessian ``A + diag(exp(x))``."""

    def __init__(self, n):
        rng = np.random.default_rng(n)
        M = rng.standard_normal((n, n))
        self.A = M @ M.T / n + np.eye(n)
        self.b = rng.standard_normal(n)
        self.x0 = np.linspace(-2.0, 3.0, n)

    def fun(self, x):
        return float(0.5 * x @ (self.A @ x) - self.b @ x + np.sum(np.exp(x)))

    def grad(self, x):
        return self.A @ x - self.b + np.exp(x)

    def hess(self, x):
        H = self.A.copy()
        H[np.diag_indices_from(H)] += np.exp(x)
        return H


class SecondOrderDenseHessian:
    """trust-exact and dogleg on :class:`_DenseConvex` (their dense-factorization
    path; the Rosenbrock and convex problems above have tridiagonal Hessians, which
    take the band path)."""
    params = (["trust-exact", "dogleg"], [10, 100], ["neurenix", "scipy"])
    param_names = ["method", "n", "impl"]

    def setup(self, method, n, impl):
        warnings.simplefilter("ignore")
        self.p = _DenseConvex(n)
        self.f = IMPL[impl]
        self.res = self.f(self.p.fun, self.p.x0, method=method, jac=self.p.grad, hess=self.p.hess)

    def time_minimize(self, method, n, impl):
        self.f(self.p.fun, self.p.x0, method=method, jac=self.p.grad, hess=self.p.hess)

    def track_nit(self, method, n, impl):
        return int(self.res.nit)


class SecondOrderRosenbrock:
    params = (["Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "dogleg"], [10, 100, 1000],
              ["neurenix", "scipy"])
    param_names = ["method", "n", "impl"]

    def setup(self, method, n, impl):
        if method in ("trust-exact", "dogleg") and n > 100:
            raise NotImplementedError
        warnings.simplefilter("ignore")
        self.x0 = np.full(n, -1.2)
        self.x0[1::2] = 1.0
        self.fun = scipy.optimize.rosen
        self.kw = dict(jac=scipy.optimize.rosen_der)
        if method == "dogleg":
            self.fun = _convex
            self.x0 = np.linspace(-2.0, 3.0, n)
            self.kw = dict(jac=_convex_grad, hess=_convex_hess)
        elif method == "trust-exact":
            self.kw["hess"] = scipy.optimize.rosen_hess
        else:
            self.kw["hessp"] = scipy.optimize.rosen_hess_prod
        self.f = IMPL[impl]
        self.res = self.f(self.fun, self.x0, method=method, **self.kw)

    def time_minimize(self, method, n, impl):
        self.f(self.fun, self.x0, method=method, **self.kw)

    def track_nit(self, method, n, impl):
        return int(self.res.nit)

    def track_nhev(self, method, n, impl):
        return int(self.res.nhev)

    def track_nhev_per_iter(self, method, n, impl):
        return float(self.res.nhev) / max(int(self.res.nit), 1)

    def track_fun(self, method, n, impl):
        return float(self.res.fun)
