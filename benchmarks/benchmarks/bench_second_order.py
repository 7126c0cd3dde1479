"""asv: Newton-CG and the trust-region methods, neurenix beside SciPy (the
implementation is a parameter, so both appear in the same run and table).

Run from ``benchmarks/``: ``asv run --python=same -b SecondOrder``.
``time_minimize`` is the wall time on the Rosenbrock function (hessp given;
hess for trust-exact), ``track_nit``/``track_nhev`` the iterations and Hessian
products (algorithmic quality).  The overhead-per-iteration table is
``benchmarks/compare_second_order.py``.
"""
import warnings

import numpy as np
import scipy.optimize

from neurenix.optimize import minimize

IMPL = {"neurenix": minimize, "scipy": scipy.optimize.minimize}


class SecondOrderRosenbrock:
    params = (["Newton-CG", "trust-ncg", "trust-krylov", "trust-exact"], [10, 100, 1000],
              ["neurenix", "scipy"])
    param_names = ["method", "n", "impl"]

    def setup(self, method, n, impl):
        if method == "trust-exact" and n > 100:
            raise NotImplementedError
        warnings.simplefilter("ignore")
        self.x0 = np.full(n, -1.2)
        self.x0[1::2] = 1.0
        self.kw = dict(jac=scipy.optimize.rosen_der)
        if method == "trust-exact":
            self.kw["hess"] = scipy.optimize.rosen_hess
        else:
            self.kw["hessp"] = scipy.optimize.rosen_hess_prod
        self.f = IMPL[impl]
        self.res = self.f(scipy.optimize.rosen, self.x0, method=method, **self.kw)

    def time_minimize(self, method, n, impl):
        self.f(scipy.optimize.rosen, self.x0, method=method, **self.kw)

    def track_nit(self, method, n, impl):
        return int(self.res.nit)

    def track_nhev(self, method, n, impl):
        return int(self.res.nhev)

    def track_nhev_per_iter(self, method, n, impl):
        return float(self.res.nhev) / max(int(self.res.nit), 1)

    def track_fun(self, method, n, impl):
        return float(self.res.fun)
