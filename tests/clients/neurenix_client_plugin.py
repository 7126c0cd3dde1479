"""pytest plugin for running a client library's own tests against neurenix.

Loaded with ``-p neurenix_client_plugin`` (``tests/clients`` on ``sys.path``; the
module is not imported as part of the ``tests`` package, so that a client's own
``tests`` package, lmfit's, can be imported).
``NEURENIX_CLIENT_MODE=neurenix`` applies :func:`neurenix.patch_scipy` before any
client module is imported; ``scipy`` (the default) leaves SciPy in place.  In
both modes every patchable ``scipy.optimize`` function is wrapped by a timer
that adds up the wall time spent inside the outermost optimizer calls (a call
made from inside another timed call is not counted twice); the totals are
written as JSON to ``NEURENIX_CLIENT_TIMES`` at the end of the session.

Diagnostic: with ``NEURENIX_CLIENT_SHADOW=<path>`` in the ``neurenix`` mode, every
outermost ``minimize`` call is repeated with SciPy's own ``minimize`` on a copy of
its arguments, and one JSON line per call (test, method, n, nit/nfev/status/fun of
both) is appended to the file: where neurenix needs more evaluations than SciPy,
call by call.  Only for objectives without side effects that matter (the client
suites' are); never in CI.
"""
import json
import os
import threading
import time

_TIMES = {}
_CALLS = {}
#: "minimize.nit" / "minimize.nfev" ... -> totals over the session
_COUNTS = {}
#: test node id -> [optimizer calls, seconds inside them, test duration]
_PER_TEST = {}
_CURRENT = [None]
_DEPTH = threading.local()


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        depth = getattr(_DEPTH, "n", 0)
        if depth:
            return fn(*args, **kwargs)
        _DEPTH.n = 1
        t0 = time.perf_counter()
        try:
            res = fn(*args, **kwargs)
            if name == "minimize" and _SHADOW[0] and isinstance(res, dict):
                _shadow(args, kwargs, res)
            if isinstance(res, dict):
                # iterations and evaluations (SciPy vs neurenix on the same problems)
                for key in ("nit", "nfev"):
                    v = res.get(key)
                    if isinstance(v, (int,)) or hasattr(v, "__index__"):
                        _COUNTS[f"{name}.{key}"] = _COUNTS.get(f"{name}.{key}", 0) + int(v)
            return res
        finally:
            dt = time.perf_counter() - t0
            _TIMES[name] = _TIMES.get(name, 0.0) + dt
            _CALLS[name] = _CALLS.get(name, 0) + 1
            _DEPTH.n = 0
            rec = _PER_TEST.get(_CURRENT[0])
            if rec is not None:
                rec[0] += 1
                rec[1] += dt
    wrapper.__wrapped__ = fn
    wrapper.__name__ = getattr(fn, "__name__", name)
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    return wrapper


_SHADOW = [None]


def _shadow(args, kwargs, res):
    """Repeat a ``minimize`` call with SciPy's function; append one JSON line."""
    import copy
    import numpy as np
    from neurenix._patch import scipy_original
    rec = {"test": _CURRENT[0]}
    try:
        try:
            a2 = copy.deepcopy(args)
            k2 = copy.deepcopy(kwargs)
        except Exception:           # (an argument that cannot be copied: arrays only)
            a2 = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args)
            k2 = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        ref = scipy_original("minimize")(*a2, **k2)
        method = k2.get("method", a2[2] if len(a2) > 2 else None)
        x0 = k2["x0"] if "x0" in k2 else a2[1]
        rec.update(method=str(method if not callable(method) else "callable"),
                   n=int(np.size(x0)),
                   ours=[int(res.get("nit", -1) or 0), int(res.get("nfev", -1) or 0),
                         int(res.get("status", -99)), float(res.get("fun", np.nan))],
                   scipy=[int(ref.get("nit", -1) or 0), int(ref.get("nfev", -1) or 0),
                          int(ref.get("status", -99)), float(ref.get("fun", np.nan))])
    except Exception as exc:            # diagnostic only
        rec["error"] = repr(exc)[:200]
    with open(_SHADOW[0], "a") as fh:
        fh.write(json.dumps(rec) + "\n")


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
    if mode == "neurenix":
        _SHADOW[0] = os.environ.get("NEURENIX_CLIENT_SHADOW") or None


def pytest_collection_modifyitems(session, config, items):
    """``NEURENIX_CLIENT_SELECT``: a file of test ids (``path-relative::name``, one a
    line, paths relative to the client's package or test folder); only those
    run.  Ids that the installed client does not have are ignored."""
    path = os.environ.get("NEURENIX_CLIENT_SELECT")
    if not path:
        return
    with open(path) as fh:
        wanted = {line.strip() for line in fh if line.strip() and not line.startswith("#")}
    keep, drop = [], []
    for item in items:
        (keep if _short_id(item) in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _short_id(item):
    """The test's id from the client's package folder (``sklearn/...``,
    ``statsmodels/...``) or, for lmfit's sdist, from its ``tests`` folder:
    the same whatever the working directory or rootdir."""
    parts = list(item.path.parts)
    for anchor in ("sklearn", "statsmodels", "tests"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            parts = parts[i:]
            break
    _, sep, rest = item.nodeid.partition("::")
    return "/".join(parts) + sep + rest


def pytest_runtest_setup(item):
    _CURRENT[0] = _short_id(item)
    _PER_TEST[_CURRENT[0]] = [0, 0.0, time.perf_counter()]


def pytest_runtest_teardown(item, nextitem):
    rec = _PER_TEST.get(_CURRENT[0])
    if rec is not None:
        rec[2] = time.perf_counter() - rec[2]
    _CURRENT[0] = None


def pytest_report_header(config):
    return f"neurenix client run: scipy.optimize routed to {config._neurenix_mode}"


def pytest_unconfigure(config):
    path = os.environ.get("NEURENIX_CLIENT_TIMES")
    if path:
        with open(path, "w") as fh:
            json.dump({"mode": getattr(config, "_neurenix_mode", None), "seconds": _TIMES,
                       "calls": _CALLS, "counts": _COUNTS, "tests": _PER_TEST}, fh, indent=1, sort_keys=True)
