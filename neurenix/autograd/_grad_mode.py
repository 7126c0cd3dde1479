"""Gradient recording switch: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

The switch is thread-local, as PyTorch's: a ``no_grad`` block in one thread does
not stop another thread's graph.
"""
import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _Mode(threading.local):
    enabled = True


_mode = _Mode()


def is_grad_enabled():
    """True when operations on tensors that require grad are recorded."""
    return _mode.enabled


class _GradModeContext:
    """Context manager and function decorator that sets the recording mode."""

    _target = True

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self._target
        return None

    def __exit__(self, exc_type, exc, tb):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} decorates a callable, got {type(fn).__name__}")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording inside a ``with`` block or a decorated function.

    Results computed under ``no_grad`` have ``requires_grad=False`` even when
    their inputs require grad, and hold no reference to their inputs: use it
    for evaluation and for in-place parameter updates.

    Examples
    --------
    >>> import neurenix
    >>> x = neurenix.tensor([1.0, 2.0], requires_grad=True)
    >>> with neurenix.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _target = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """Set recording on or off: as a function call (takes effect at once, as in
    PyTorch) or as a context manager (restored on exit).

    Parameters
    ----------
    mode : bool
    """

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool, got {type(mode).__name__}")
        self._prev = _mode.enabled
        self._target = mode
        _mode.enabled = mode

    def __enter__(self):
        return None

    def __call__(self, fn):  # pragma: no cover - PyTorch does not document it as a decorator
        raise TypeError("set_grad_enabled is used as a function or a context manager")
