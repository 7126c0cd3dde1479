r"""Built-in hyperparameter searches: random, grid, successive halving, Hyperband.

The objective
-------------
``objective(config)`` receives a dict of hyperparameters and either

- returns the value to minimize (or maximize, ``mode="max"``), or
- is a **generator** that yields the value after each training step (an
  epoch, a batch, ...).  Successive halving and Hyperband need this form: they
  advance the promising runs and close the others; the value of a run is the
  last value it yielded.  Random and grid search run a generator to its end
  (or to ``max_resource`` steps).

If ``objective`` has a parameter named ``seed``, each trial gets its own seed,
derived from the search's ``seed`` (:class:`numpy.random.SeedSequence`), so
a search with a seed is reproducible end to end.

References
----------
Bergstra & Bengio (2012), "Random search for hyper-parameter optimization",
JMLR 13.  Jamieson & Talwalkar (2016), "Non-stochastic best arm identification
and hyperparameter optimization", AISTATS.  Li, Jamieson, DeSalvo,
Rostamizadeh & Talwalkar (2018), "Hyperband: a novel bandit-based approach to
hyperparameter optimization", JMLR 18(185).
"""
import inspect
import math
import sys
from dataclasses import dataclass, field

import numpy as np

from . import space as _space

__all__ = ["Trial", "TuneResult", "random_search", "grid_search", "successive_halving",
           "hyperband", "hyperband_brackets", "search"]


@dataclass
class Trial:
    """One evaluated configuration.

    Attributes
    ----------
    number : int
        Order of creation.
    config : dict
    value : float or None
        Last reported value (None if it never reported).
    steps : int
        Steps (resource) the run was given.
    status : str
        ``"complete"``, ``"pruned"`` (stopped early by a halving or pruner) or
        ``"interrupted"`` (running, or not yet run to its budget, when the search was
        stopped with Ctrl-C).
    seed : int or None
        The seed passed to the objective.
    history : list of float
        Every value the run reported.
    bracket : int or None
        Hyperband bracket (``s``), None otherwise.
    """

    number: int
    config: dict
    value: float = None
    steps: int = 0
    status: str = "complete"
    seed: int = None
    history: list = field(default_factory=list)
    bracket: int = None


def _key(value, mode):
    """Sort key: lower is better; NaN / missing rank last."""
    if value is None or not math.isfinite(value):
        return math.inf
    return value if mode == "min" else -value


class TuneResult:
    """What a search found.

    Attributes
    ----------
    trials : list of Trial
    best_trial : Trial
        Best among the trials run to the largest budget they reached
        (for successive halving / Hyperband: the best complete trial).
    best_config : dict
    best_value : float
    mode : str
    method : str
    study : optuna.Study or None
        The Optuna study for :func:`~neurenix.tune.optuna_search`.
    interrupted : bool
        True when the search was stopped by ``KeyboardInterrupt`` (Ctrl-C): the result
        then holds every trial that had reported a value, finished or not (those cut
        short have ``status == "interrupted"``), and the best is taken among the
        finished ones when there are any.
    """

    def __init__(self, trials, mode, method, study=None, interrupted=False):
        self.trials = list(trials)
        self.mode = mode
        self.method = method
        self.study = study
        self.interrupted = bool(interrupted)
        complete = [t for t in self.trials if t.status == "complete" and t.value is not None]
        pool = complete or [t for t in self.trials if t.value is not None]
        if not pool:
            raise RuntimeError("objective: no trial reported a value")
        self.best_trial = min(pool, key=lambda t: (_key(t.value, mode), t.number))
        self.best_config = dict(self.best_trial.config)
        self.best_value = self.best_trial.value

    def table(self, max_rows=None, sort=True):
        """The trials as a text table (best first when ``sort``)."""
        trials = sorted(self.trials, key=lambda t: (t.status != "complete",
                                                    _key(t.value, self.mode), t.number)) \
            if sort else list(self.trials)
        if max_rows is not None:
            trials = trials[:max_rows]
        keys = list(self.trials[0].config) if self.trials else []
        head = ["#", "value", "steps", "status"] + keys
        rows = [[str(t.number), "-" if t.value is None else f"{t.value:.6g}", str(t.steps),
                 t.status] + [_fmt(t.config.get(k)) for k in keys] for t in trials]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        line = "  ".join(h.rjust(w) for h, w in zip(head, widths))
        out = [line, "-" * len(line)]
        out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(out)

    def to_records(self):
        """The trials as a list of flat dicts (e.g. for ``pandas.DataFrame``)."""
        return [dict(number=t.number, value=t.value, steps=t.steps, status=t.status,
                     seed=t.seed, **t.config) for t in self.trials]

    def __repr__(self):
        return (f"TuneResult(method={self.method!r}, trials={len(self.trials)}, "
                f"best_value={self.best_value!r}, best_config={self.best_config!r})")


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class _Progress:
    """A one-line text progress bar on stderr (no dependency)."""

    def __init__(self, total, label, enabled, mode, stream=None, width=24):
        self.total, self.label, self.enabled, self.mode = total, label, enabled, mode
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.best = None

    def update(self, value):
        self.done += 1
        if value is not None and _key(value, self.mode) < _key(self.best, self.mode):
            self.best = value
        if not self.enabled:
            return
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(round(frac * self.width))
        best = "-" if self.best is None else f"{self.best:.6g}"
        self.stream.write(f"\r{self.label} [{bar:<{self.width}}] {self.done}/{self.total} "
                          f"best={best}")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------- runs
def _wants_seed(objective):
    try:
        params = inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params


def _streams(seed):
    """``(rng, seeds)``: the Generator that samples configurations and an endless
    stream of per-trial seeds, independent children of ``SeedSequence(seed)``."""
    sample_ss, trial_ss = np.random.SeedSequence(seed).spawn(2)

    def seeds():
        while True:
            child, = trial_ss.spawn(1)
            yield int(child.generate_state(1, dtype=np.uint32)[0])

    return np.random.default_rng(sample_ss), seeds()


def _as_float(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"objective must {what} real numbers, got "
                        f"{type(value).__name__}") from None


class _Run:
    """A trial in progress: a generator advanced step by step, or a value."""

    #: True once the run reached the budget the search gives it
    done = False

    def __init__(self, objective, trial, wants_seed):
        self.trial = trial
        out = objective(trial.config, seed=trial.seed) if wants_seed else objective(trial.config)
        self.gen = out if inspect.isgenerator(out) else None
        self.finished = self.gen is None
        if self.gen is None:
            trial.value = _as_float(out, "return or yield")
            trial.history.append(trial.value)

    def advance(self, steps):
        """Run until ``steps`` values were reported in total (or the generator ends)."""
        while not self.finished and self.trial.steps < steps:
            try:
                v = next(self.gen)
            except StopIteration:
                self.finished = True
                break
            v = _as_float(v, "yield")
            self.trial.steps += 1
            self.trial.value = v
            self.trial.history.append(v)
        return self.trial.value

    def close(self):
        if self.gen is not None:
            self.gen.close()


def _check_common(objective, mode):
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def _pos_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(v)


def _interrupted_result(trials, runs, mode, method, bar):
    """The result of a search stopped by Ctrl-C: unfinished runs closed and marked,
    trials that never reported dropped; re-raises when no trial has a value."""
    for run in runs:
        if run.trial.status == "complete" and not run.done:
            run.trial.status = "interrupted"
        run.close()
    bar.close()
    kept = [t for t in trials if t.value is not None]
    if not kept:
        raise KeyboardInterrupt
    return TuneResult(kept, mode, method, interrupted=True)


def _evaluate_all(objective, configs, mode, seed, max_resource, progress, label, method):
    wants = _wants_seed(objective)
    _, seeds = _streams(seed)
    bar = _Progress(len(configs), label, progress, mode)
    trials = []
    run = None
    try:
        for i, cfg in enumerate(configs):
            t = Trial(number=i, config=cfg, seed=next(seeds))
            trials.append(t)
            run = None
            t.status = "interrupted"            # until it has run to its budget
            run = _Run(objective, t, wants)
            if run.gen is not None:
                run.advance(max_resource if max_resource is not None else math.inf)
                run.close()
                if t.value is None:
                    raise RuntimeError(f"objective: trial {i} yielded no value")
            t.status = "complete"
            run.done = True
            bar.update(t.value)
    except KeyboardInterrupt:
        return _interrupted_result(trials, [run] if run is not None else [], mode, method, bar)
    bar.close()
    return TuneResult(trials, mode, method)


def random_search(objective, space, n_trials=20, *, mode="min", seed=None, max_resource=None,
                  progress=False):
    """Random search (Bergstra & Bengio 2012): ``n_trials`` configurations drawn
    independently from ``space``.

    Parameters
    ----------
    objective : callable
        ``objective(config[, seed])`` returning a value, or a generator of values.
    space : dict
        Name -> distribution (:func:`uniform`, :func:`loguniform`, ...) or constant.
    n_trials : int, default 20
    mode : {"min", "max"}, default "min"
    seed : int, optional
        Makes the configurations and the per-trial seeds reproducible.
    max_resource : int, optional
        Steps a generator objective is run for (default: to its end).
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    TuneResult
    """
    _check_common(objective, mode)
    space = _space.check_space(space)
    n_trials = _pos_int("n_trials", n_trials)
    if max_resource is not None:
        max_resource = _pos_int("max_resource", max_resource)
    rng, _ = _streams(seed)
    configs = [_space.sample(space, rng) for _ in range(n_trials)]
    return _evaluate_all(objective, configs, mode, seed, max_resource, progress, "random",
                         "random")


def grid_search(objective, space, *, num=5, mode="min", seed=None, max_resource=None,
                progress=False):
    """Exhaustive search over the grid of ``space``: ``num`` points per
    continuous dimension (geometric for log-uniform), every category.

    Parameters are those of :func:`random_search`, with ``num`` in place of
    ``n_trials``.
    """
    _check_common(objective, mode)
    space = _space.check_space(space)
    num = _pos_int("num", num)
    if max_resource is not None:
        max_resource = _pos_int("max_resource", max_resource)
    configs = _space.grid(space, num)
    return _evaluate_all(objective, configs, mode, seed, max_resource, progress, "grid", "grid")


def _halving(runs, rungs, keep, mode, bar):
    """Successive halving over ``runs``: at each rung advance the survivors to
    ``rungs[i]`` steps, keep the best ``keep[i]``.  Closes the others."""
    active = list(runs)
    for i, r in enumerate(rungs):
        for run in active:
            run.advance(r)
            if run.trial.value is None:
                raise RuntimeError(f"objective: trial {run.trial.number} yielded no value")
            bar.update(run.trial.value)
        if i == len(rungs) - 1:
            break
        active.sort(key=lambda run: (_key(run.trial.value, mode), run.trial.number))
        for run in active[keep[i]:]:
            run.trial.status = "pruned"
            run.close()
        active = active[:keep[i]]
    for run in active:
        run.done = True
        run.close()


def _check_generator_objective(objective):
    if not (inspect.isgeneratorfunction(objective)
            or inspect.isgeneratorfunction(getattr(objective, "__call__", None))):
        raise TypeError("objective must be a generator function yielding a value per step "
                        "for successive halving / Hyperband")


def successive_halving(objective, space, n_trials=27, *, min_resource=1, max_resource=None,
                       eta=3, mode="min", seed=None, progress=False):
    r"""Successive halving (Jamieson & Talwalkar 2016; Li et al. 2018, Algorithm 1's
    inner loop).

    ``n_trials`` configurations run ``min_resource`` steps; the best
    :math:`\lfloor n/\eta\rfloor` continue to :math:`\eta` times as many steps,
    and so on, until one rung remains or ``max_resource`` is reached.

    Parameters
    ----------
    objective : generator function
        ``objective(config[, seed])`` yielding the value after each step.
    space : dict
    n_trials : int, default 27
    min_resource : int, default 1
        Steps of the first rung.
    max_resource : int, optional
        Most steps any run gets (default: the rung where one run remains).
    eta : int, default 3
        Reduction factor, >= 2.
    mode, seed, progress
        As :func:`random_search`.

    Returns
    -------
    TuneResult
    """
    _check_common(objective, mode)
    space = _space.check_space(space)
    _check_generator_objective(objective)
    n_trials = _pos_int("n_trials", n_trials)
    min_resource = _pos_int("min_resource", min_resource)
    eta = _pos_int("eta", eta, 2)
    if max_resource is not None:
        max_resource = _pos_int("max_resource", max_resource)
        if max_resource < min_resource:
            raise ValueError(f"max_resource must be >= min_resource, got {max_resource!r} < "
                             f"{min_resource!r}")
    rungs, keep = [], []
    n, r = n_trials, min_resource
    while True:
        rungs.append(r if max_resource is None else min(r, max_resource))
        keep.append(max(1, n // eta))
        if n <= 1 or (max_resource is not None and r >= max_resource):
            break
        n, r = max(1, n // eta), r * eta
    rng, seeds = _streams(seed)
    wants = _wants_seed(objective)
    total = sum(max(1, n_trials // eta ** i) if i else n_trials for i in range(len(rungs)))
    bar = _Progress(total, "halving", progress, mode)
    trials = [Trial(number=i, config=_space.sample(space, rng), seed=next(seeds))
              for i in range(n_trials)]
    runs = []
    try:
        for t in trials:
            runs.append(_Run(objective, t, wants))
        _halving(runs, rungs, keep, mode, bar)
    except KeyboardInterrupt:
        for t in trials[len(runs):]:
            t.status = "interrupted"
        return _interrupted_result(trials, runs, mode, "successive_halving", bar)
    bar.close()
    return TuneResult(trials, mode, "successive_halving")


def hyperband_brackets(max_resource, eta=3, min_resource=1):
    r"""The brackets of Hyperband (Li et al. 2018, Algorithm 1) as a list of
    ``(s, rungs)``, each rung a pair ``(n_i, r_i)``: configurations and steps.

    With :math:`R` = ``max_resource / min_resource``,
    :math:`s_{max} = \lfloor\log_\eta R\rfloor`, :math:`B = (s_{max}+1)R`;
    bracket :math:`s` starts :math:`n = \lceil \frac{B}{R}\frac{\eta^s}{s+1}\rceil`
    configurations at :math:`r = R\eta^{-s}` and keeps :math:`\lfloor n_i/\eta\rfloor`
    at each rung.  Steps are rounded to integers.
    """
    ratio = max_resource / min_resource
    s_max = 0
    while eta ** (s_max + 1) <= ratio * (1 + 1e-12):
        s_max += 1
    out = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta ** s - 1e-9)
        rungs = []
        for i in range(s + 1):
            n_i = n // eta ** i
            r_i = max(1, int(round(max_resource * eta ** (i - s))))
            rungs.append((n_i, r_i))
        out.append((s, rungs))
    return out


def hyperband(objective, space, max_resource=81, *, eta=3, min_resource=1, mode="min",
              seed=None, progress=False):
    r"""Hyperband (Li et al. 2018): successive halving over several brackets that
    trade the number of configurations against the steps each one gets.

    Parameters
    ----------
    objective : generator function
        ``objective(config[, seed])`` yielding the value after each step.
    space : dict
    max_resource : int, default 81
        :math:`R`, the most steps a run gets.
    eta : int, default 3
    min_resource : int, default 1
        Steps of the smallest rung.
    mode, seed, progress
        As :func:`random_search`.

    Returns
    -------
    TuneResult
        ``trials`` of every bracket (``Trial.bracket`` says which); the best
        trial is the best among those run to ``max_resource`` steps (or that
        finished early), as in the paper.
    """
    _check_common(objective, mode)
    space = _space.check_space(space)
    _check_generator_objective(objective)
    max_resource = _pos_int("max_resource", max_resource)
    min_resource = _pos_int("min_resource", min_resource)
    eta = _pos_int("eta", eta, 2)
    if max_resource < min_resource:
        raise ValueError(f"max_resource must be >= min_resource, got {max_resource!r} < "
                         f"{min_resource!r}")
    brackets = hyperband_brackets(max_resource, eta, min_resource)
    rng, seeds = _streams(seed)
    wants = _wants_seed(objective)
    total = sum(n_i for _, rungs in brackets for n_i, _ in rungs)
    bar = _Progress(total, "hyperband", progress, mode)
    trials = []
    runs = []
    batch = []
    try:
        for s, rungs in brackets:
            n0 = rungs[0][0]
            batch = [Trial(number=len(trials) + i, config=_space.sample(space, rng),
                           seed=next(seeds), bracket=s) for i in range(n0)]
            trials.extend(batch)
            runs = []
            for t in batch:
                runs.append(_Run(objective, t, wants))
            keep = [max(1, n_i // eta) for n_i, _ in rungs]
            _halving(runs, [r for _, r in rungs], keep, mode, bar)
    except KeyboardInterrupt:
        started = {id(r.trial) for r in runs}
        for t in batch:
            if id(t) not in started:
                t.status = "interrupted"
        return _interrupted_result(trials, runs, mode, "hyperband", bar)
    bar.close()
    return TuneResult(trials, mode, "hyperband")


_METHODS = {"random": random_search, "grid": grid_search, "successive_halving":
            successive_halving, "sh": successive_halving, "hyperband": hyperband}


def search(objective, space, method="random", **options):
    """Dispatch to a search by name: ``"random"``, ``"grid"``,
    ``"successive_halving"`` (``"sh"``), ``"hyperband"`` or ``"optuna"``.

    ``options`` go to the chosen function.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    m = method.lower()
    if m == "optuna":
        from ._optuna import optuna_search
        return optuna_search(objective, space, **options)
    if m not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS) + ['optuna']}, "
                         f"got {method!r}")
    return _METHODS[m](objective, space, **options)
