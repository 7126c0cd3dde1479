"""Route ``scipy.optimize``'s solvers to neurenix: :func:`patch_scipy` / :func:`unpatch_scipy`.

The pattern is scikit-learn-intelex's ``patch_sklearn``: client code keeps calling
``scipy.optimize.minimize`` (and friends) and gets neurenix's implementation,
with SciPy's signature, result fields, status codes and messages.

What is patched
---------------
The attributes ``minimize``, ``least_squares``, ``curve_fit``, ``fmin_l_bfgs_b``,
``fmin_bfgs``, ``fmin_cg``, ``fmin_ncg`` and ``leastsq`` of the ``scipy.optimize``
namespace.  A call made through the namespace (``scipy.optimize.minimize(...)``,
``from scipy import optimize; optimize.minimize(...)``) is routed as soon as the
patch is active, whenever the calling module was imported.

Names imported before patching
-------------------------------
A module that ran ``from scipy.optimize import minimize`` holds its own binding to
SciPy's function object.  By default (``rebind=True``) patching also rebinds
those: every module in ``sys.modules`` whose global names refer to one of the
SciPy functions *by identity* gets neurenix's function under the same name, and
:func:`unpatch_scipy` puts SciPy's back.  Modules imported while the patch is
active bind neurenix's function directly (the namespace is patched) and are
restored the same way.  SciPy's own modules and neurenix's are never rebound, so
neurenix's delegation to SciPy keeps reaching SciPy; a SciPy function that looks
the name up in the ``scipy.optimize`` namespace at call time (``basinhopping``'s
local minimizer) gets neurenix's while the patch is active, one that bound it at
import (``shgo``, ``dual_annealing``) keeps SciPy's.
Bindings made in other ways (``my_min = minimize`` inside a function, a
reference stored in a class attribute or a ``functools.partial``) are not seen;
patch before importing such code, or pass ``rebind=False`` to patch only the
namespace.  The rebinding scans the module dictionaries once per call.
"""
import sys
import threading

__all__ = ["patch_scipy", "unpatch_scipy", "is_patched", "PATCHABLE"]

#: the ``scipy.optimize`` names :func:`patch_scipy` can route to neurenix
PATCHABLE = ("minimize", "least_squares", "curve_fit", "fmin_l_bfgs_b", "fmin_bfgs",
             "fmin_cg", "fmin_ncg", "leastsq")

_LOCK = threading.RLock()
#: name -> SciPy's original function (captured on the first patch)
_ORIGINALS = {}
#: the active patches, innermost last
_STACK = []


#: name -> the routing function installed by the patch (one object per name)
_PROXIES = {}


def _replacements(names):
    """The functions the patch installs: thin forwarders to neurenix's (with its
    name, docstring and signature), distinct objects so that unpatching restores
    exactly the bindings the patch made and never a module's own
    ``from neurenix.optimize import minimize``."""
    import functools
    from . import optimize as nx
    out = {}
    for name in names:
        proxy = _PROXIES.get(name)
        if proxy is None:
            target = getattr(nx, name)

            def proxy(*args, _target=target, **kwargs):
                return _target(*args, **kwargs)
            proxy = functools.wraps(target)(proxy)
            proxy._neurenix_patch = True
            _PROXIES[name] = proxy
        out[name] = proxy
    return out


def _skip_module(modname):
    return (modname == "scipy" or modname.startswith("scipy.")
            or modname == "neurenix" or modname.startswith("neurenix."))


def _rebind_modules(mapping):
    """In every imported module (SciPy's and neurenix's excepted), replace each
    global name bound to a key of ``mapping`` (by identity: ``{id(old): new}``)
    with the value.  Returns the list of ``(module_dict, name, old, new)`` done."""
    done = []
    if not mapping:
        return done
    for modname, mod in list(sys.modules.items()):
        if mod is None or _skip_module(modname):
            continue
        try:
            d = mod.__dict__
        except Exception:            # lazy or proxy modules may refuse
            continue
        if type(d) is not dict:
            continue
        for name, value in list(d.items()):
            new = mapping.get(id(value))
            if new is not None and new[0] is value:
                d[name] = new[1]
                done.append((d, name, value, new[1]))
    return done


class patch_scipy:
    """Route ``scipy.optimize``'s solvers to :mod:`neurenix.optimize`.

    Works as a function (patches at once, until :func:`unpatch_scipy`) and as a
    context manager (the patch is undone when the block exits)::

        import neurenix
        neurenix.patch_scipy()               # from now on
        ...
        neurenix.unpatch_scipy()

        with neurenix.patch_scipy():         # inside the block only
            ...

    Parameters
    ----------
    names : str or iterable of str, optional
        Which functions to route (default: all of :data:`PATCHABLE`).
    rebind : bool
        Also rebind names that modules imported from ``scipy.optimize`` before
        patching (see the module docstring).  Default True.

    Notes
    -----
    Patches nest: an inner ``with patch_scipy(...)`` restores, on exit, exactly
    the bindings it changed.  The routed functions have SciPy's signatures; the
    methods neurenix does not implement natively are delegated to SciPy inside
    ``neurenix.optimize.minimize`` (see ``docs/scipy_compat.md``).
    """

    def __init__(self, names=None, *, rebind=True):
        if names is None:
            names = PATCHABLE
        elif isinstance(names, str):
            names = (names,)
        names = tuple(names)
        bad = [n for n in names if n not in PATCHABLE]
        if bad:
            raise ValueError(f"names: cannot patch {bad}; patchable names are {PATCHABLE}")
        if not isinstance(rebind, bool):
            raise TypeError(f"rebind must be a bool, got {type(rebind).__name__}")
        self.names = names
        self.rebind = rebind
        self._saved = None
        self._done = []
        self._apply()

    def _apply(self):
        import scipy.optimize as so
        with _LOCK:
            for name in self.names:
                _ORIGINALS.setdefault(name, getattr(_original_module(name), name))
            new = _replacements(self.names)
            # the namespace: remember what was there (SciPy's or an outer patch's)
            self._saved = {name: so.__dict__.get(name) for name in self.names}
            for name, fn in new.items():
                setattr(so, name, fn)
            if self.rebind:
                # names bound to whatever the namespace held before: SciPy's
                # originals, or an outer patch's functions (the same objects)
                mapping = {id(old): (old, new[name]) for name, old in self._saved.items()
                           if old is not None and old is not new[name]}
                self._done = _rebind_modules(mapping)
            _STACK.append(self)

    def _undo(self):
        import scipy.optimize as so
        with _LOCK:
            if self not in _STACK:
                return
            # patches nest: undoing an outer one first undoes those inside it
            while _STACK[-1] is not self:
                _STACK[-1]._undo()
            for name, old in self._saved.items():
                if old is None:
                    so.__dict__.pop(name, None)
                else:
                    setattr(so, name, old)
            for d, name, old, new in self._done:
                if d.get(name) is new:
                    d[name] = old
            # modules imported while the patch was active bound the neurenix
            # functions themselves: give them back what the namespace now holds
            if self.rebind and _STACK[0] is self:
                mapping = {}
                for name in self.names:
                    fn = _replacements((name,))[name]
                    mapping[id(fn)] = (fn, getattr(so, name))
                _rebind_modules(mapping)
            _STACK.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._undo()
        return False

    def __repr__(self):
        state = "active" if self in _STACK else "undone"
        return f"patch_scipy(names={self.names!r}, rebind={self.rebind}) [{state}]"


def _original_module(name):
    """The SciPy module that defines ``name`` (never the patched namespace)."""
    import importlib
    home = {"minimize": "scipy.optimize._minimize",
            "least_squares": "scipy.optimize._lsq.least_squares",
            "curve_fit": "scipy.optimize._minpack_py",
            "leastsq": "scipy.optimize._minpack_py",
            "fmin_l_bfgs_b": "scipy.optimize._lbfgsb_py",
            "fmin_bfgs": "scipy.optimize._optimize",
            "fmin_cg": "scipy.optimize._optimize",
            "fmin_ncg": "scipy.optimize._optimize"}[name]
    return importlib.import_module(home)


def unpatch_scipy():
    """Undo every active :func:`patch_scipy`: ``scipy.optimize`` (and the modules
    rebound by the patches) get SciPy's functions back.  A no-op when nothing is
    patched."""
    with _LOCK:
        for p in reversed(list(_STACK)):
            p._undo()


def is_patched(name="minimize"):
    """Whether ``scipy.optimize.<name>`` is currently routed to neurenix."""
    import scipy.optimize as so
    if name not in PATCHABLE:
        raise ValueError(f"name must be one of {PATCHABLE}, got {name!r}")
    return getattr(getattr(so, name), "_neurenix_patch", False)


def scipy_original(name):
    """SciPy's own function ``name`` (one of :data:`PATCHABLE`), patched or not."""
    if name not in PATCHABLE:
        raise ValueError(f"name must be one of {PATCHABLE}, got {name!r}")
    return getattr(_original_module(name), name)
