"""The same search space and objective on Optuna's samplers and pruners (optional).

Install with ``pip install neurenix[tune]`` (or ``pip install optuna``).

References
----------
Akiba, Sano, Yanase, Ohta & Koyama (2019), "Optuna: a next-generation
hyperparameter optimization framework", KDD.
"""
import inspect
import math

from . import space as _space
from .search import (Trial, TuneResult, _Progress, _as_float, _check_common, _pos_int,
                     _streams, _wants_seed)

__all__ = ["optuna_search", "suggest"]

_PRIMITIVE = (type(None), bool, int, float, str)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("optuna_search needs Optuna: pip install optuna "
                          "(or neurenix[tune]); the built-in searches need nothing") from None
    return optuna


def suggest(trial, space):
    """A configuration of ``space`` suggested by an Optuna ``trial``."""
    cfg = {}
    for name, d in space.items():
        if isinstance(d, _space.LogUniform):
            cfg[name] = trial.suggest_float(name, d.low, d.high, log=True)
        elif isinstance(d, _space.Uniform):
            cfg[name] = trial.suggest_float(name, d.low, d.high)
        elif isinstance(d, _space.RandInt):
            cfg[name] = trial.suggest_int(name, d.low, d.high - 1)
        elif isinstance(d, _space.Choice):
            if all(isinstance(c, _PRIMITIVE) for c in d.categories):
                cfg[name] = trial.suggest_categorical(name, d.categories)
            else:   # Optuna stores primitives only: suggest the index
                i = trial.suggest_categorical(name + "#index", list(range(len(d.categories))))
                cfg[name] = d.categories[i]
        elif isinstance(d, _space.Distribution):
            raise TypeError(f"space: {name!r} has a distribution Optuna cannot map: {d!r}")
        else:
            cfg[name] = d
    return cfg


def _make_sampler(optuna, sampler, seed):
    if sampler is None or sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if isinstance(sampler, str):
        raise ValueError(f"sampler must be 'tpe', 'random' or an Optuna sampler, got {sampler!r}")
    return sampler


def _make_pruner(optuna, pruner, min_resource, max_resource, eta):
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner()
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource,
                                                      reduction_factor=eta)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_resource,
                                              max_resource=max_resource or "auto",
                                              reduction_factor=eta)
    if isinstance(pruner, str):
        raise ValueError("pruner must be None, 'median', 'successive_halving', 'hyperband' "
                         f"or an Optuna pruner, got {pruner!r}")
    return pruner


def optuna_search(objective, space, n_trials=20, *, sampler=None, pruner=None, mode="min",
                  seed=None, max_resource=None, min_resource=1, eta=3, study=None,
                  progress=False):
    """Run the search on Optuna: same ``space``, same ``objective``, same result type.

    A generator objective reports each yielded value with ``trial.report(value,
    step)`` and is stopped when the pruner says so (the trial is then
    ``"pruned"``).

    Parameters
    ----------
    objective : callable
        As for :func:`~neurenix.tune.random_search`.
    space : dict
    n_trials : int, default 20
    sampler : {"tpe", "random"} or optuna sampler, default "tpe"
        Seeded with ``seed``.
    pruner : {None, "median", "successive_halving", "hyperband"} or optuna pruner
    mode : {"min", "max"}
    seed : int, optional
        Seeds the sampler and names the new study, so that Optuna's Hyperband
        bracket assignment (a hash of the study name) repeats run to run.
    max_resource : int, optional
        Steps a generator objective is run for at most.
    min_resource, eta : int
        For the "successive_halving" / "hyperband" pruners.
    study : optuna.Study, optional
        Continue an existing study (its direction must match ``mode``).
    progress : bool, default False

    Returns
    -------
    TuneResult
        With ``study`` set to the Optuna study.
    """
    optuna = _optuna()
    _check_common(objective, mode)
    space = _space.check_space(space)
    n_trials = _pos_int("n_trials", n_trials)
    if max_resource is not None:
        max_resource = _pos_int("max_resource", max_resource)
    min_resource = _pos_int("min_resource", min_resource)
    eta = _pos_int("eta", eta, 2)
    direction = "minimize" if mode == "min" else "maximize"
    prev = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _run_study(optuna, objective, space, n_trials, sampler, pruner, mode, seed,
                          max_resource, min_resource, eta, study, progress, direction)
    finally:
        optuna.logging.set_verbosity(prev)


def _run_study(optuna, objective, space, n_trials, sampler, pruner, mode, seed, max_resource,
               min_resource, eta, study, progress, direction):
    if study is None:
        # Optuna's Hyperband pruner picks a trial's bracket from a hash of the study
        # name, which is random unless given: a seeded search names its study so the
        # brackets (and so the pruning) are reproducible.
        name = None if seed is None else f"neurenix-tune-seed-{int(seed)}"
        study = optuna.create_study(direction=direction, study_name=name,
                                    sampler=_make_sampler(optuna, sampler, seed),
                                    pruner=_make_pruner(optuna, pruner, min_resource,
                                                        max_resource, eta))
    elif study.direction.name.lower() != direction:
        raise ValueError(f"study: its direction is {study.direction.name.lower()}, "
                         f"mode={mode!r} asks for {direction}")
    wants = _wants_seed(objective)
    _, seeds = _streams(seed)
    records = []
    bar = _Progress(n_trials, "optuna", progress, mode)

    def run(otrial):
        cfg = suggest(otrial, space)
        rec = Trial(number=len(records), config=cfg, seed=next(seeds))
        records.append(rec)
        out = objective(cfg, seed=rec.seed) if wants else objective(cfg)
        if not inspect.isgenerator(out):
            rec.value = _as_float(out, "return or yield")
            rec.history.append(rec.value)
            bar.update(rec.value)
            return rec.value
        try:
            for v in out:
                v = _as_float(v, "yield")
                rec.steps += 1
                rec.value = v
                rec.history.append(v)
                otrial.report(v, rec.steps)
                if otrial.should_prune():
                    rec.status = "pruned"
                    bar.update(rec.value)
                    raise optuna.TrialPruned()
                if max_resource is not None and rec.steps >= max_resource:
                    break
        finally:
            out.close()
        if rec.value is None:
            raise RuntimeError(f"objective: trial {rec.number} yielded no value")
        bar.update(rec.value)
        return rec.value if math.isfinite(rec.value) else float("nan")

    try:
        study.optimize(run, n_trials=n_trials, catch=())
    except KeyboardInterrupt:
        # Optuna records the running trial as failed and re-raises; the finished ones
        # are kept in the study and returned here
        if records and records[-1].status == "complete":
            records[-1].status = "interrupted"
        kept = [r for r in records if r.value is not None]
        if not kept:
            raise
        return TuneResult(kept, mode, "optuna", study=study, interrupted=True)
    finally:
        bar.close()
    return TuneResult(records, mode, "optuna", study=study)
