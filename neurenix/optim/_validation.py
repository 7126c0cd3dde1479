"""Hyperparameter checks shared by every optimizer; each error names its argument."""
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
