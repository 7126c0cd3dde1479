"""Argument checks shared by `optim` (hyperparameters) and `optimize` (options);
each error names its argument."""
import math
import numbers


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_lr(value, name="lr"):
    """Learning rate: a finite real >= 0 (a schedule callable is checked by its user)."""
    v = _real(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_nonneg(value, name):
    v = _real(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_positive(value, name):
    v = _real(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_unit(value, name):
    """A real in [0, 1)."""
    v = _real(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def check_closed_unit(value, name):
    """A real in [0, 1]."""
    v = _real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_betas(value, name="betas"):
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {value!r}") from None
    check_unit(b1, f"{name}[0]")
    check_unit(b2, f"{name}[1]")
    return (float(b1), float(b2))


def check_bool(value, name):
    if not isinstance(value, (bool,)) and not (hasattr(value, "dtype") and value.dtype == bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_real(value, name):
    """A real number, not NaN (infinities allowed); returns it as a float."""
    if type(value) is float or type(value) is int:      # the common case, without ABC checks
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"{name} must not be NaN")
        return v
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    return v


def check_positive_option(name, v):
    """A real number > 0 (TypeError for a non-real or NaN); returns it as a float."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return float(v)


#: the largest iteration/evaluation count passed on to a compiled loop: larger
#: integers (``maxiter=10**30``, which SciPy accepts) are clipped to it silently
MAX_COUNT = 2 ** 62
#: the same for the counts that compiled loops keep in a C ``int`` (line-search
#: evaluations, subproblem iterations)
MAX_INT = 2 ** 31 - 1


# ``minimize`` options: errors read ``options['name'] must be ...``
def int_option(name, v, lo, none_ok=False):
    """An integer option ``>= lo`` (or None when ``none_ok``), clipped to
    :data:`MAX_COUNT`."""
    if type(v) is int and lo <= v <= MAX_COUNT:      # the common case
        return v
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"options['{name}'] must be an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"options['{name}'] must be >= {lo}, got {v!r}")
    return min(int(v), MAX_COUNT)


def real_option(name, v, lo=0.0, hi=None, open_lo=False):
    """A real option in ``[lo, hi)`` (``(lo, hi)`` with ``open_lo``); returns a float."""
    if type(v) is float and (v > lo if open_lo else v >= lo) and (hi is None or v < hi):
        return v                        # the common case (NaN fails the comparisons)
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
        raise TypeError(f"options['{name}'] must be a real number, got {v!r}")
    v = float(v)
    if v < lo or (open_lo and v == lo) or (hi is not None and v >= hi):
        rng = f"({lo}, {hi})" if hi is not None else (f"> {lo}" if open_lo else f">= {lo}")
        raise ValueError(f"options['{name}'] must be {rng}, got {v!r}")
    return v
