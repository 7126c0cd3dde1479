"""Hyperparameter tuning for optimizers and schedulers.

Zero-dependency searches — :func:`random_search`, :func:`grid_search`,
:func:`successive_halving`, :func:`hyperband` — over a search space of
:func:`uniform`, :func:`loguniform`, :func:`randint` and :func:`choice`
dimensions, with a progress bar, a results table (:meth:`TuneResult.table`),
the best configuration and reproducible seeds.  Where Optuna is installed,
:func:`optuna_search` runs the same space and objective on Optuna's samplers and
pruners.  :func:`search` dispatches by name.

See ``docs/tuning.md``.
"""
from .space import (Distribution, Uniform, LogUniform, RandInt, Choice, uniform, loguniform,
                    randint, choice)
from .search import (Trial, TuneResult, random_search, grid_search, successive_halving,
                     hyperband, hyperband_brackets, search)
from ._optuna import optuna_search

__all__ = [
    "Distribution", "Uniform", "LogUniform", "RandInt", "Choice",
    "uniform", "loguniform", "randint", "choice",
    "Trial", "TuneResult", "random_search", "grid_search", "successive_halving", "hyperband",
    "hyperband_brackets", "search", "optuna_search",
]
