"""The package's layering (docs/architecture.md) and the single homes it relies on.

- imports flow one way: ``_ext`` <- ``backend`` <- ``_core`` <- {``optim``, ``optimize``}
  <- ``distributed``, and ``backend`` <- ``autograd`` <- {``nn``, ``data``}; ``optim``/``optimize``
  never import each other, and nothing below imports the layers above (read from the source: every
  ``import``/``from`` statement, top-level or inside a function);
- every top-level module has a layer (checkpoint, datasets, tune, demo included), and
  relative imports are resolved against the importing file's own package;
- the compiled loops' status codes (``_ext/_status.pxd``) are ``Status``'s and
  ``least_squares``' (``LSQ_MESSAGES``), and no ``_ext`` file keeps its own copy;
- each first-order rule's defaults are its ``optim`` class's signature defaults;
- the compiled objective checks (``check_scalar``/``check_vector``) behave as documented.
"""
import ast
import inspect
import pathlib
import re

import numpy as np
import pytest

import neurenix
from neurenix import optim
from neurenix._core.first_order import RULES
from neurenix._core.result import STATUS_TABLE, MESSAGES, BY_CODE, Status, LSQ_MESSAGES
from neurenix._ext import _status
from neurenix._ext._evaluator import check_scalar, check_vector

PKG = pathlib.Path(neurenix.__file__).parent

#: package -> the neurenix packages it may import (besides itself)
ALLOWED = {
    "_ext": set(),
    "backend": {"_ext"},
    "_core": {"_ext", "backend"},
    "optim": {"_core", "backend", "_ext", "checkpoint"},
    "optimize": {"_core", "backend", "_ext"},
    # the layers above: autograd on backend arrays; nn's Parameter is an optim.Parameter;
    # data batches into tensors; distributed wraps optimizers and objectives
    "autograd": {"backend"},
    "nn": {"autograd", "backend", "optim"},
    "data": {"autograd", "backend"},
    "distributed": {"_core", "backend", "checkpoint", "optim", "optimize"},
    # leaves: checkpoint files, the certified data sets, hyperparameter search (any
    # objective), the plain-NumPy reference rules of the tests and the demo
    "checkpoint": {"backend"},
    "datasets": set(),
    "tune": set(),
    "_numpy_reference": set(),
    # patch_scipy: routes scipy.optimize to neurenix.optimize
    "_patch": {"optimize"},
    # the demo script is an application on top of everything
    "demo": {"optim", "optimize", "nn", "data", "datasets", "autograd", "backend",
             "_numpy_reference"},
}


def _resolve(path, dots, name):
    """The absolute dotted name of ``from <dots><name> import ...`` written in ``path``."""
    # a package's __init__ counts as a module inside it: one dot is the package itself
    parts = ["neurenix", *path.relative_to(PKG).with_suffix("").parts]
    base = parts[:len(parts) - dots]           # the importing module's package, then up
    return ".".join(base + ([name] if name else []))


def _top(dotted):
    """``neurenix.<top>...`` -> ``<top>`` (None for anything outside neurenix)."""
    bits = dotted.split(".")
    return bits[1] if bits[0] == "neurenix" and len(bits) > 1 else None


def _imported_packages(path):
    """The top-level neurenix subpackages/modules that ``path`` imports (absolute or
    relative, resolved against the file's own module path)."""
    text = path.read_text()
    found = set()
    if path.suffix in (".pyx", ".pxd"):
        for m in re.finditer(r"^\s*(?:from|c?import)\s+(\.*)([\w.]*)", text, re.M):
            dots, name = m.groups()
            found.add(_top(_resolve(path, len(dots), name) if dots else name))
        return found - {None}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(_top(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(path, node.level, node.module) if node.level else (node.module or "")
            if mod == "neurenix":           # from neurenix import optim / from . import nn
                found.update(a.name for a in node.names)
            else:
                found.add(_top(mod))
    return found - {None}


def _top_level():
    """Every top-level subpackage and module of neurenix, with its source files."""
    out = {}
    for p in sorted(PKG.iterdir()):
        if p.is_dir() and (p / "__init__.py").exists():
            out[p.name] = [q for q in sorted(p.rglob("*")) if q.suffix in (".py", ".pyx", ".pxd")]
        elif p.suffix == ".py" and p.stem != "__init__":
            out[p.stem] = [p]
    return out


def test_every_top_level_module_has_a_layer():
    assert set(_top_level()) == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    bad = []
    for path in _top_level().get(package, []):
        for dep in _imported_packages(path) - {package}:
            if dep not in ALLOWED[package]:
                bad.append(f"{path.relative_to(PKG)} imports neurenix.{dep}")
    assert not bad, "\n".join(bad)


def test_import_resolution():
    """The resolver on relative imports at each depth (a wrong one would hide a bad edge)."""
    trf = PKG / "optimize" / "_lsq" / "trf.py"
    assert _resolve(trf, 3, "_ext") == "neurenix._ext"
    assert _resolve(trf, 2, "_driver") == "neurenix.optimize._driver"
    assert _resolve(trf, 1, "common") == "neurenix.optimize._lsq.common"
    assert _resolve(PKG / "optimize" / "_lsq" / "__init__.py", 1, "") == "neurenix.optimize._lsq"
    assert _resolve(PKG / "checkpoint.py", 1, "backend") == "neurenix.backend"
    assert _imported_packages(PKG / "checkpoint.py") == {"backend"}
    assert "optim" in _imported_packages(PKG / "demo.py")


def test_compiled_status_codes_are_status():
    assert _status.CODES == {s.name: int(s) for s in Status}
    assert _status.RUNNING not in BY_CODE


def test_compiled_lsq_codes_are_least_squares():
    assert set(_status.LSQ_CODES.values()) == set(LSQ_MESSAGES)
    assert _status.LSQ_RUNNING not in LSQ_MESSAGES


def test_no_private_status_enum():
    """Every compiled loop takes its status codes from ``_status.pxd`` (no second copy)."""
    bad = []
    for path in sorted((PKG / "_ext").glob("*.p[xy][xd]")):
        if path.stem == "_status":
            continue
        if re.search(r"^\s+[SL]_[A-Z_]+\s*=\s*-?\d+", path.read_text(), re.M):
            bad.append(path.name)
    assert not bad, bad


def test_one_status_table():
    assert set(STATUS_TABLE) == set(Status)
    for s in Status:
        assert s.message == MESSAGES[s] == STATUS_TABLE[s].message
        assert s.ok == STATUS_TABLE[s].success
        assert BY_CODE[int(s)] is s


_CLASSES = {"sgd": optim.SGD, "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop,
            "adam": optim.Adam, "adamw": optim.AdamW, "nadam": optim.NAdam,
            "radam": optim.RAdam, "adabelief": optim.AdaBelief, "lamb": optim.LAMB,
            "lars": optim.LARS}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_defaults_are_the_class_signature(name):
    cls = _CLASSES[name]
    sig = inspect.signature(cls.__init__)
    defaults = {p.name: p.default for p in sig.parameters.values()
                if p.name not in ("self", "params", "skip_nonfinite")}
    assert RULES[name].defaults == defaults
    assert cls.rule is RULES[name]


def test_check_scalar():
    assert check_scalar(1.5) == 1.5
    assert check_scalar(np.float32(0.25)) == 0.25
    assert check_scalar(np.array([[2.0]])) == 2.0
    assert check_scalar(3) == 3.0 and type(check_scalar(3)) is float
    with pytest.raises(ValueError, match="fun must return a scalar"):
        check_scalar(np.ones(2))
    with pytest.raises(TypeError, match="closure must return a real scalar"):
        check_scalar(True, "closure")
    with pytest.raises(TypeError, match="real scalar"):
        check_scalar("1.0")


def test_check_vector():
    g = np.arange(3.0)
    assert check_vector(g, 3, g.dtype) is g                 # no copy in the common case
    out = check_vector(np.arange(6.0)[::2], 3, np.dtype(np.float64))
    assert out.flags.c_contiguous and np.array_equal(out, [0.0, 2.0, 4.0])
    out = check_vector(g, 3, np.dtype(np.float32))
    assert out.dtype == np.float32
    out = check_vector(g.astype(">f8"), 3, np.dtype(np.float64))    # byte-swapped: converted
    assert out.dtype == np.float64 and out.dtype.isnative
    assert check_vector([[1.0], [2.0], [3.0]], 3, np.dtype(np.float64)).shape == (3,)
    with pytest.raises(ValueError, match=r"jac must return an array of shape \(3,\)"):
        check_vector(np.ones(4), 3, np.dtype(np.float64))


def test_vector_check_refuses_complex_and_object_returns():
    # one vector check for jac, hessp, hess @ d and subproblem steps (issue #18/#16): a
    # complex return was silently cast (imaginary part dropped) by one of the two copies
    with pytest.raises(TypeError, match="hessp must return a real array"):
        check_vector(np.ones(3, dtype=complex), 3, np.dtype(np.float64), "hessp")
    from neurenix.optimize import minimize
    with pytest.raises(TypeError, match="hessp must return a real array"):
        minimize(lambda x: float(x @ x), np.ones(3), jac=lambda x: 2 * x,
                 hessp=lambda x, p: (2 * p).astype(complex), method="trust-ncg")
