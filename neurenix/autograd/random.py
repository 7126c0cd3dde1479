"""The global random generator (``torch.manual_seed``): parameter initialization
(:mod:`neurenix.nn.init`) and the shuffling of :class:`neurenix.data.DataLoader` draw
from it when no ``generator=`` is given.  It lives here, below ``nn`` and ``data``, so
that both use one generator without importing each other.
"""
import numpy as np

__all__ = ["manual_seed", "default_generator"]

_default = [np.random.default_rng()]


def manual_seed(seed):
    """Seed the generator that initializes parameters (``torch.manual_seed``).

    Parameters
    ----------
    seed : int

    Returns
    -------
    numpy.random.Generator
        The new default generator.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _default[0] = np.random.default_rng(int(seed))
    return _default[0]


def default_generator():
    """The generator used when ``generator=None``."""
    return _default[0]


