"""asv: one optimizer step, ours beside plain in-place NumPy (the reference is a
parameter value, so both appear in the same run and table).

Run from ``benchmarks/``:  ``asv run --python=same`` (add ``-b FirstOrder`` to select).
Sizes 1e6, 1e7, 1e8 elements, float32/float64, as one array and as 100 arrays.
"""
import numpy as np

import neurenix
from neurenix import optim
from neurenix._numpy_reference import STEPS as NUMPY_STEPS

OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "AdaBelief",
              "LAMB", "LARS"]
MAKE = {
    "SGD": lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9),
    "Adagrad": optim.Adagrad, "RMSprop": optim.RMSprop, "Adam": optim.Adam,
    "AdamW": optim.AdamW, "NAdam": optim.NAdam, "RAdam": optim.RAdam,
    "AdaBelief": optim.AdaBelief, "LAMB": optim.LAMB, "LARS": optim.LARS,
}


NUMPY = NUMPY_STEPS


class FirstOrderStep:
    """Time of one ``step()``; ``impl`` = neurenix (fused kernel) or numpy (in place)."""

    params = ([ "Adam", "SGD", "RMSprop", "Adagrad", "AdamW", "NAdam", "RAdam", "AdaBelief",
                "LAMB", "LARS"],
              [10**6, 10**7, 10**8], ["float32", "float64"], [1, 100], ["neurenix", "numpy"])
    param_names = ["optimizer", "n", "dtype", "arrays", "impl"]
    timeout = 600

    def setup(self, name, n, dtype, arrays, impl):
        if impl == "numpy" and name not in NUMPY:
            raise NotImplementedError("no in-place NumPy reference for this optimizer")
        rng = np.random.default_rng(0)
        sizes = [n // arrays] * arrays
        self.data = [rng.standard_normal(s).astype(dtype) for s in sizes]
        self.grads = [(rng.standard_normal(s) * 1e-2).astype(dtype) for s in sizes]
        if impl == "neurenix":
            ps = [optim.Parameter(d) for d in self.data]
            for p, g in zip(ps, self.grads):
                p.grad = g
            self.opt = MAKE[name](ps)
            self.opt.step()
        else:
            self.m = [np.zeros_like(d) for d in self.data]
            self.v = [np.zeros_like(d) for d in self.data]
            self.t = 0
            self.fn = NUMPY[name]

    def time_step(self, name, n, dtype, arrays, impl):
        if impl == "neurenix":
            self.opt.step()
        else:
            self.t += 1
            for p, g, m, v in zip(self.data, self.grads, self.m, self.v):
                self.fn(p, g, m, v, self.t)

    def teardown(self, *args):
        self.__dict__.clear()


class AdamThreads:
    """Adam at 1e7 float32 with 1 and 2 kernel threads."""

    params = ([1, 2], [1, 100])
    param_names = ["threads", "arrays"]

    def setup(self, threads, arrays):
        self.old = neurenix.get_num_threads()
        neurenix.set_num_threads(threads)
        rng = np.random.default_rng(0)
        n = 10**7 // arrays
        ps = [optim.Parameter(rng.standard_normal(n).astype(np.float32)) for _ in range(arrays)]
        for p in ps:
            p.grad = (rng.standard_normal(n) * 1e-2).astype(np.float32)
        self.opt = optim.Adam(ps)
        self.opt.step()

    def time_adam_step(self, threads, arrays):
        self.opt.step()

    def teardown(self, threads, arrays):
        neurenix.set_num_threads(self.old)


class StepOverhead:
    """Python overhead of one step on tiny parameters (100 arrays of 10 values)."""

    params = (["Adam", "SGD", "LAMB"],)
    param_names = ["optimizer"]

    def setup(self, name):
        ps = [optim.Parameter(np.ones(10)) for _ in range(100)]
        for p in ps:
            p.grad = np.ones(10)
        self.opt = MAKE[name](ps)
        self.opt.step()

    def time_step(self, name):
        self.opt.step()
