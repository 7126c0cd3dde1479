"""Search spaces: a dict from hyperparameter name to a distribution or a constant.

>>> from neurenix import tune
>>> space = {"lr": tune.loguniform(1e-4, 1e-1), "momentum": tune.uniform(0.0, 0.99),
...          "step_size": tune.randint(5, 50), "scheduler": tune.choice(["cosine", "step"]),
...          "epochs": 20}

The same space drives the built-in searches and, when Optuna is installed,
Optuna's samplers (:func:`neurenix.tune.optuna_search`).  Names follow Ray
Tune's (``uniform``, ``loguniform``, ``randint`` with an exclusive upper bound,
``choice``), which PyTorch users know.
"""
import math
import numbers

import numpy as np

__all__ = ["Distribution", "Uniform", "LogUniform", "RandInt", "Choice", "uniform",
           "loguniform", "randint", "choice", "check_space", "sample", "grid"]


def _finite(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite real number, got {v!r}")
    return float(v)


class Distribution:
    """A one-dimensional search distribution (subclasses: sample, grid, optuna)."""

    def sample(self, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def grid(self, num):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{v!r}' for v in vars(self).values())})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None


class Uniform(Distribution):
    """Uniform on ``[low, high]``."""

    def __init__(self, low, high):
        self.low, self.high = _finite("low", low), _finite("high", high)
        if not self.low < self.high:
            raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def grid(self, num):
        return [float(v) for v in np.linspace(self.low, self.high, num)]


class LogUniform(Distribution):
    """Log-uniform on ``[low, high]``, ``0 < low < high`` (for learning rates)."""

    def __init__(self, low, high):
        self.low, self.high = _finite("low", low), _finite("high", high)
        if self.low <= 0:
            raise ValueError(f"low must be > 0 for a log-uniform distribution, got {low!r}")
        if not self.low < self.high:
            raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def grid(self, num):
        return [float(v) for v in np.geomspace(self.low, self.high, num)]


class RandInt(Distribution):
    """Integers ``low <= k < high`` (upper bound exclusive, as NumPy and Ray Tune)."""

    def __init__(self, low, high):
        for name, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if not low < high:
            raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
        self.low, self.high = int(low), int(high)

    def sample(self, rng):
        return int(rng.integers(self.low, self.high))

    def grid(self, num):
        if self.high - self.low <= num:
            return list(range(self.low, self.high))
        return sorted({int(round(v)) for v in np.linspace(self.low, self.high - 1, num)})


class Choice(Distribution):
    """One of ``categories`` (each equally likely)."""

    def __init__(self, categories):
        cats = list(categories) if not isinstance(categories, (str, bytes)) else None
        if not cats:
            raise ValueError(f"categories must be a non-empty list, got {categories!r}")
        self.categories = cats

    def sample(self, rng):
        return self.categories[int(rng.integers(len(self.categories)))]

    def grid(self, num):
        return list(self.categories)


def uniform(low, high):
    """:class:`Uniform` on ``[low, high]``."""
    return Uniform(low, high)


def loguniform(low, high):
    """:class:`LogUniform` on ``[low, high]``."""
    return LogUniform(low, high)


def randint(low, high):
    """:class:`RandInt`: an int in ``[low, high)``."""
    return RandInt(low, high)


def choice(categories):
    """:class:`Choice` among ``categories``."""
    return Choice(categories)


def check_space(space):
    """Validate a search space; return it as a dict.

    Raises ``ValueError`` naming ``space`` when it is empty or has no
    distribution, ``TypeError`` when it is not a dict with str keys.
    """
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict of name -> distribution, got "
                        f"{type(space).__name__}")
    if not space:
        raise ValueError("space: the search space is empty")
    for k in space:
        if not isinstance(k, str):
            raise TypeError(f"space: keys must be str, got {k!r}")
    if not any(isinstance(v, Distribution) for v in space.values()):
        raise ValueError("space: the search space has no distribution to search "
                         "(only constants)")
    return dict(space)


def sample(space, rng):
    """One configuration drawn from ``space`` with the NumPy Generator ``rng``."""
    return {k: (v.sample(rng) if isinstance(v, Distribution) else v) for k, v in space.items()}


def grid(space, num=5):
    """All configurations of the grid: ``num`` points per continuous dimension
    (linear or geometric), every category, every integer up to ``num`` values."""
    import itertools

    keys = list(space)
    axes = [space[k].grid(num) if isinstance(space[k], Distribution) else [space[k]]
            for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]
