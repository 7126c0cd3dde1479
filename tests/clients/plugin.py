"""pytest plugin for running a client library's own tests against neurenix.

Loaded with ``-p tests.clients.plugin`` (the worktree root on ``sys.path``).
``NEURENIX_CLIENT_MODE=neurenix`` applies :func:`neurenix.patch_scipy` before any
client module is imported; ``scipy`` (the default) leaves SciPy in place.  In
both modes every patchable ``scipy.optimize`` function is wrapped by a timer
that adds up the wall time spent inside the outermost optimizer calls (a call
made from inside another timed call is not counted twice); the totals are
written as JSON to ``NEURENIX_CLIENT_TIMES`` at the end of the session.
"""
import json
import os
import threading
import time

_TIMES = {}
_CALLS = {}
_DEPTH = threading.local()


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        depth = getattr(_DEPTH, "n", 0)
        if depth:
            return fn(*args, **kwargs)
        _DEPTH.n = 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _TIMES[name] = _TIMES.get(name, 0.0) + time.perf_counter() - t0
            _CALLS[name] = _CALLS.get(name, 0) + 1
            _DEPTH.n = 0
    wrapper.__wrapped__ = fn
    wrapper.__name__ = getattr(fn, "__name__", name)
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    return wrapper


def pytest_configure(config):
    import scipy.optimize as so
    import neurenix
    from neurenix._patch import PATCHABLE, _rebind_modules
    mode = os.environ.get("NEURENIX_CLIENT_MODE", "scipy")
    if mode not in ("scipy", "neurenix"):
        raise ValueError(f"NEURENIX_CLIENT_MODE must be 'scipy' or 'neurenix', got {mode!r}")
    if mode == "neurenix":
        neurenix.patch_scipy()
    mapping = {}
    for name in PATCHABLE:
        fn = getattr(so, name)
        w = _timed(name, fn)
        setattr(so, name, w)
        mapping[id(fn)] = (fn, w)
    _rebind_modules(mapping)
    config._neurenix_mode = mode


def pytest_report_header(config):
    return f"neurenix client run: scipy.optimize routed to {config._neurenix_mode}"


def pytest_unconfigure(config):
    path = os.environ.get("NEURENIX_CLIENT_TIMES")
    if path:
        with open(path, "w") as fh:
            json.dump({"mode": getattr(config, "_neurenix_mode", None), "seconds": _TIMES,
                       "calls": _CALLS}, fh, indent=1, sort_keys=True)
