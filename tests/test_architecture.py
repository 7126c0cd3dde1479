"""The package's layering (docs/architecture.md) and the single homes it relies on.

- imports flow one way: ``_ext`` <- ``backend`` <- ``_core`` <- {``optim``, ``optimize``}
  <- ``distributed``, and ``backend`` <- ``autograd`` <- {``nn``, ``data``}; ``optim``/``optimize``
  never import each other, and nothing below imports the layers above (read from the source: every
  ``import``/``from`` statement, top-level or inside a function);
- the compiled loops' status codes (``_ext/_status.pxd``) are ``Status``'s;
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
from neurenix._core.result import STATUS_TABLE, MESSAGES, BY_CODE, Status
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
}


def _imported_packages(path, package):
    """The top-level neurenix subpackages that ``path`` imports (absolute or relative)."""
    text = path.read_text()
    found = set()
    if path.suffix in (".pyx", ".pxd"):
        for m in re.finditer(r"^\s*(?:from|c?import)\s+(\.*)([\w.]*)", text, re.M):
            dots, name = m.groups()
            if dots:
                found.add(package if len(dots) == 1 else name.split(".")[0])
            elif name.startswith("neurenix."):
                found.add(name.split(".")[1])
        return found
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("neurenix."):
                    found.add(a.name.split(".")[1])
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0:
                if mod.startswith("neurenix."):
                    found.add(mod.split(".")[1])
                elif mod == "neurenix":
                    found.update(a.name for a in node.names)
            elif node.level == 1:
                found.add(package)
            else:
                # from .. import x / from ..x import y (depth 2 inside a subpackage)
                found.add(mod.split(".")[0] if mod else node.names[0].name)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    bad = []
    for path in sorted((PKG / package).rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxd"):
            continue
        for dep in _imported_packages(path, package) - {package}:
            if dep not in ALLOWED[package]:
                bad.append(f"{path.relative_to(PKG)} imports neurenix.{dep}")
    assert not bad, "\n".join(bad)


def test_compiled_status_codes_are_status():
    assert _status.CODES == {s.name: int(s) for s in Status}
    assert _status.RUNNING not in BY_CODE


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
