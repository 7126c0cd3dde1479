"""Thread-count control for the OpenMP kernels."""
import contextlib

from .._ext import _first_order


def set_num_threads(n):
    """Set the number of threads the Cython kernels use (default: OpenMP's maximum,
    which honours ``OMP_NUM_THREADS``)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _first_order.set_num_threads(n)


def get_num_threads():
    """Number of threads the Cython kernels use."""
    return _first_order.get_num_threads()


@contextlib.contextmanager
def num_threads(n):
    """Context manager that sets the kernel thread count and restores it."""
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        _first_order.set_num_threads(old)
