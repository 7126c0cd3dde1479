"""asv: scheduler.step() and hypergradient overhead, ours beside torch.optim.lr_scheduler
(the implementation is a parameter, so both appear in the same run and table; the torch
rows are skipped when torch is not installed).

Run from ``benchmarks/``:  ``asv run --python=same -b Schedulers``.
A scheduler step is pure Python on a handful of floats; what matters is that it
stays negligible beside an optimizer step, which ``HypergradientStep`` measures.
"""
import numpy as np

from neurenix import optim
from neurenix.optim import lr_scheduler

try:
    import torch
except ImportError:  # pragma: no cover - optional reference
    torch = None

SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=30),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10_000),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=1_000_000),
    "CyclicLR": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=50),
}


class Schedulers:
    params = (list(SCHEDULERS), ["neurenix", "torch"])
    param_names = ["scheduler", "impl"]

    def setup(self, name, impl):
        groups = 4
        if impl == "torch":
            if torch is None:
                raise NotImplementedError("torch not installed")
            ps = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}
                  for _ in range(groups)]
            opt = torch.optim.SGD(ps, momentum=0.9)
            self.sched = SCHEDULERS[name](torch.optim.lr_scheduler, opt)
        else:
            ps = [{"params": [optim.Parameter(np.zeros(1))], "lr": 0.1} for _ in range(groups)]
            opt = optim.SGD(ps, momentum=0.9)
            self.sched = SCHEDULERS[name](lr_scheduler, opt)

    def time_100_steps(self, name, impl):
        for _ in range(100):
            self.sched.step()


class HypergradientStep:
    params = ([10_000, 1_000_000], ["Adam", "HypergradientAdam"])
    param_names = ["n", "optimizer"]

    def setup(self, n, name):
        self.p = optim.Parameter(np.ones(n))
        self.p.grad = np.full(n, 0.1)
        self.opt = getattr(optim, name)([self.p], lr=1e-3)
        self.opt.step()

    def time_step(self, n, name):
        self.opt.step()
