"""asv: least_squares, neurenix beside SciPy (the implementation is a parameter,
so both appear in the same run and table).

Run from ``benchmarks/``: ``asv run --python=same -b LeastSquares``.  For fair
timings pin BLAS to one thread (``OPENBLAS_NUM_THREADS=1``) on a shared machine.
``track_nfev`` records residual evaluations (algorithmic quality), ``time_*`` the
wall time.  The side-by-side NIST table is ``benchmarks/nist_table.py``.
"""
import warnings

import numpy as np
import scipy.optimize

from neurenix.datasets import nist_strd
from neurenix.optimize import least_squares

IMPL = {"neurenix": least_squares, "scipy": scipy.optimize.least_squares}
NIST = ["Misra1a", "Chwirut2", "Lanczos3", "MGH09", "MGH17", "Gauss1", "Thurber", "Bennett5"]


class LeastSquaresNIST:
    params = (NIST, [1, 2], ["lm", "trf"], ["neurenix", "scipy"])
    param_names = ["problem", "start", "method", "impl"]

    def setup(self, problem, start, method, impl):
        warnings.simplefilter("ignore")
        np.seterr(all="ignore")
        self.p = nist_strd(problem)
        self.x0 = self.p.starts[start - 1]

    def _run(self, method, impl):
        p = self.p
        return IMPL[impl](p.residual, self.x0, jac=p.jac, method=method,
                          ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=1000 * p.n_params)

    def time_fit(self, problem, start, method, impl):
        self._run(method, impl)

    def track_nfev(self, problem, start, method, impl):
        return self._run(method, impl).nfev

    def track_min_lre(self, problem, start, method, impl):
        return float(self.p.lre(self._run(method, impl).x).min())


class LeastSquaresExponential:
    """3 parameters x 1000 points."""
    params = (["analytic", "2-point"], ["lm", "trf"], ["neurenix", "scipy"])
    param_names = ["jac", "method", "impl"]

    def setup(self, jac, method, impl):
        rng = np.random.default_rng(0)
        t = np.linspace(0, 5, 1000)
        y = 3.0 * np.exp(-1.2 * t) + 0.4 + 0.01 * rng.standard_normal(t.size)
        self.f = lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y

        def J(p):
            e = np.exp(-p[1] * t)
            return np.column_stack((e, -p[0] * t * e, np.ones_like(t)))
        self.jac = J if jac == "analytic" else jac

    def time_fit(self, jac, method, impl):
        IMPL[impl](self.f, [1.0, 0.5, 0.0], jac=self.jac, method=method)

    def track_nfev(self, jac, method, impl):
        return IMPL[impl](self.f, [1.0, 0.5, 0.0], jac=self.jac, method=method).nfev


class LeastSquaresPeaks:
    """100 parameters (33 Gaussian peaks + offset) x 5000 points, analytic Jacobian."""
    params = (["lm", "trf"], ["neurenix", "scipy"])
    param_names = ["method", "impl"]
    timeout = 120

    def setup(self, method, impl):
        rng = np.random.default_rng(1)
        m, k = 5000, 33
        t = np.linspace(0, 100, m)
        c = np.linspace(2, 98, k)

        def model(p):
            z = (t[:, None] - p[k:2 * k]) / p[2 * k:3 * k]
            return (p[:k] * np.exp(-0.5 * z * z)).sum(1) + p[-1]
        y = model(np.concatenate((1 + rng.random(k), c, 0.6 + 0.2 * rng.random(k), [0.1])))
        y = y + 0.01 * rng.standard_normal(m)
        self.f = lambda p: model(p) - y

        def J(p):
            a, w = p[:k], p[2 * k:3 * k]
            z = (t[:, None] - p[k:2 * k]) / w
            e = np.exp(-0.5 * z * z)
            return np.hstack((e, a * e * z / w, a * e * z * z / w, np.ones((m, 1))))
        self.J = J
        self.p0 = np.concatenate((np.ones(k), c + 0.1, np.full(k, 0.7), [0.0]))

    def time_fit(self, method, impl):
        IMPL[impl](self.f, self.p0, jac=self.J, method=method)


class LeastSquaresBoundedTRF:
    """trf with bounds (two active at the solution), a robust loss and x_scale:
    3 parameters x 1000 points, analytic Jacobian."""
    params = (["linear", "soft_l1"], [1.0, "jac"], ["neurenix", "scipy"])
    param_names = ["loss", "x_scale", "impl"]

    def setup(self, loss, x_scale, impl):
        rng = np.random.default_rng(0)
        t = np.linspace(0, 5, 1000)
        y = 3.0 * np.exp(-1.2 * t) + 0.4 + 0.01 * rng.standard_normal(t.size)
        y[::50] += 1.0
        self.f = lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y

        def J(p):
            e = np.exp(-p[1] * t)
            return np.column_stack((e, -p[0] * t * e, np.ones_like(t)))
        self.J = J
        self.kw = dict(bounds=([0.0, 1.5, -1.0], [2.5, 5.0, 1.0]), method="trf", loss=loss,
                       f_scale=0.1, x_scale=x_scale)

    def time_fit(self, loss, x_scale, impl):
        IMPL[impl](self.f, [1.0, 2.0, 0.0], jac=self.J, **self.kw)

    def track_nfev(self, loss, x_scale, impl):
        return IMPL[impl](self.f, [1.0, 2.0, 0.0], jac=self.J, **self.kw).nfev
