"""Loader of the NIST StRD nonlinear regression problems (shipped as package data).

Each of the 27 files describes itself in its header: where the starting and
certified values and the data are ("Starting Values (lines 41 to 43)"), the
model formula, and the residual sum of squares.  :func:`nist_strd` parses all of
it; nothing is hard-coded per problem.  The model formula is the header's own
text, translated mechanically (``exp[...]`` -> ``exp(...)``, the trailing ``+ e``
dropped) and compiled into a callable that evaluates it with NumPy.

Reference: NIST Information Technology Laboratory, Statistical Reference
Datasets, Nonlinear Regression, https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml
"""
import os
import re
import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NistProblem", "nist_strd", "nist_strd_names", "log_relative_error"]

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nist_strd")

# functions a NIST formula may use; evaluated with no builtins at all
_FUNCS = {"exp": np.exp, "cos": np.cos, "sin": np.sin, "arctan": np.arctan,
          "log": np.log, "sqrt": np.sqrt}


@dataclass(frozen=True, eq=False)
class NistProblem:
    """One NIST StRD nonlinear regression problem.

    Attributes
    ----------
    name : str
        Dataset name (``"MGH09"``).
    difficulty : str
        ``"Lower"``, ``"Average"`` or ``"Higher"``.
    formula : str
        The model as written in the file's header (``"y = b1*(1-exp[-b2*x])"``).
    x : ndarray, shape (m,) or (m, k)
        Predictor(s); ``(m, 2)`` for Nelson (``x1, x2``).
    y : ndarray, shape (m,)
        Response as listed in the file.
    target : ndarray, shape (m,)
        What the model predicts: ``y``, or ``log(y)`` where the header's left-hand
        side is ``log[y]`` (Nelson).
    start1, start2 : ndarray, shape (n,)
        The two official starting points (Start 1 far, Start 2 near).
    certified_values, certified_std_dev : ndarray, shape (n,)
        Certified parameters and their standard deviations.
    certified_rss : float
        Certified residual sum of squares.
    certified_residual_sd : float
        Certified residual standard deviation.
    """

    name: str
    difficulty: str
    formula: str
    x: np.ndarray
    y: np.ndarray
    target: np.ndarray
    start1: np.ndarray
    start2: np.ndarray
    certified_values: np.ndarray
    certified_std_dev: np.ndarray
    certified_rss: float
    certified_residual_sd: float
    _code: object = field(repr=False, default=None)
    _xnames: tuple = field(repr=False, default=("x",))

    @property
    def n_params(self):
        return self.certified_values.size

    @property
    def n_obs(self):
        return self.target.size

    @property
    def starts(self):
        return (self.start1, self.start2)

    def model(self, x, b):
        """Evaluate the header's formula at predictor(s) ``x`` and parameters ``b``.

        Works for real and complex ``b`` (so :meth:`jac` can use the complex step).
        """
        ns = dict(_FUNCS)
        ns["pi"] = np.pi
        for i in range(len(b)):
            ns[f"b{i + 1}"] = b[i]
        x = np.asarray(x)
        if len(self._xnames) == 1:
            ns["x"] = x
        else:
            for j, nm in enumerate(self._xnames):
                ns[nm] = x[:, j]
        return eval(self._code, {"__builtins__": {}}, ns)

    def residual(self, b):
        """Residual vector ``model(x, b) - target`` (the sign SciPy's examples use)."""
        return self.model(self.x, b) - self.target

    def jac(self, b):
        """Jacobian of :meth:`residual`, shape ``(m, n)``, by the complex step.

        ``J[:, j] = Im(r(b + i h e_j)) / h`` with ``h = 1e-20 * max(1, |b_j|)``:
        exact to rounding because no difference of nearly equal numbers is
        formed (Squire & Trapp 1998, SIAM Review 40(1)).  Every formula of the
        suite is analytic, so this is a Jacobian of analytic quality.
        """
        b = np.asarray(b, dtype=float)
        n = b.size
        J = np.empty((self.n_obs, n))
        bc = b.astype(complex)
        for j in range(n):
            h = 1e-20 * max(1.0, abs(b[j]))
            bc[j] = b[j] + 1j * h
            J[:, j] = self.model(self.x, bc).imag / h
            bc[j] = b[j]
        return J

    def lre(self, b, digits=11):
        """Log relative error of each fitted parameter against the certified value."""
        return log_relative_error(b, self.certified_values, digits)


def log_relative_error(x, c, digits=11):
    """``LRE = -log10(|x - c| / |c|)``, capped at ``digits`` (0 when worse than 100%).

    Parameters
    ----------
    x, c : array_like
        Computed and certified values (``c`` nonzero).
    digits : float
        Cap: the number of significant digits certified (11 for the StRD).
    """
    x = np.asarray(x, dtype=float)
    c = np.asarray(c, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(x - c) / np.abs(c)
        lre = np.where(rel == 0, digits, -np.log10(rel))
    lre = np.where(np.isfinite(lre), lre, 0.0)
    return np.clip(lre, 0.0, digits)


def _line_range(header, label):
    m = re.search(label + r"\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", header)
    if m is None:
        raise ValueError(f"NIST file: no '{label} (lines a to b)' in header")
    return int(m.group(1)), int(m.group(2))


def _translate(formula_lines):
    """Header formula -> (lhs, Python expression)."""
    consts = {}
    eq = []
    for ln in formula_lines:
        m = re.match(r"^\s*pi\s*=\s*([0-9.Ee+-]+)\s*$", ln)
        if m:
            consts["pi"] = float(m.group(1))
            continue
        eq.append(ln.strip())
    text = " ".join(eq)
    lhs, rhs = text.split("=", 1)
    rhs = re.sub(r"\+\s*e\s*$", "", rhs.strip()).strip()
    expr = rhs.replace("[", "(").replace("]", ")")
    return lhs.strip(), rhs, expr


def _parse(path):
    with open(path, encoding="ascii") as fh:
        lines = fh.read().splitlines()
    header = "\n".join(lines[:60])
    name = re.search(r"Dataset Name:\s*(\S+)", header).group(1)
    s_lo, s_hi = _line_range(header, "Starting Values")
    d_lo, d_hi = _line_range(header, "Data")
    diff = re.search(r"(Lower|Average|Higher) Level of Difficulty", header).group(1)

    # model formula: the lines after "Model:" and the "k Parameters" line, up to
    # the "Starting values" table
    i = next(k for k, ln in enumerate(lines) if ln.startswith("Model:"))
    formula_lines = []
    for ln in lines[i + 2:]:
        if re.search(r"Starting [Vv]alues", ln):
            break
        if ln.strip():
            formula_lines.append(ln)
    lhs, rhs, expr = _translate(formula_lines)

    start1, start2, cert, sd = [], [], [], []
    for ln in lines[s_lo - 1:s_hi]:
        m = re.match(r"^\s*b(\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", ln)
        if m is None:
            raise ValueError(f"{name}: cannot parse parameter line {ln!r}")
        start1.append(float(m.group(2)))
        start2.append(float(m.group(3)))
        cert.append(float(m.group(4)))
        sd.append(float(m.group(5)))
    rss = float(re.search(r"Residual Sum of Squares:\s*(\S+)", "\n".join(lines[:60])).group(1))
    rsd = float(re.search(r"Residual Standard Deviation:\s*(\S+)",
                          "\n".join(lines[:60])).group(1))
    cols = lines[d_lo - 2].split()   # "Data:  y  x1  x2"
    xnames = tuple(c for c in cols[1:] if c != "y")
    data = np.array([[float(v) for v in ln.split()] for ln in lines[d_lo - 1:d_hi]])
    yi = cols[1:].index("y")
    y = data[:, yi]
    xcols = [j for j in range(data.shape[1]) if j != yi]
    x = data[:, xcols[0]] if len(xcols) == 1 else data[:, xcols]
    if lhs == "y":
        target = y
    elif lhs.replace("[", "(").replace("]", ")") == "log(y)":
        target = np.log(y)
    else:
        raise ValueError(f"{name}: unsupported left-hand side {lhs!r}")
    code = compile(expr, f"<NIST {name}>", "eval")
    # the header's pi constant (Roszman1) equals numpy's pi to double precision
    return NistProblem(
        name=name, difficulty=diff, formula=f"{lhs} = {rhs}", x=x, y=y, target=target,
        start1=np.array(start1), start2=np.array(start2),
        certified_values=np.array(cert), certified_std_dev=np.array(sd),
        certified_rss=rss, certified_residual_sd=rsd, _code=code, _xnames=xnames)


_CACHE = {}
_ARRAY_FIELDS = ("x", "y", "target", "start1", "start2", "certified_values", "certified_std_dev")


def nist_strd_names():
    """Names of the shipped problems, sorted."""
    return sorted(f[:-4] for f in os.listdir(_DIR) if f.endswith(".dat"))


def nist_strd(name=None):
    """Parse the NIST StRD nonlinear regression problems shipped with neurenix.

    Parameters
    ----------
    name : str, optional
        One problem (case-insensitive, e.g. ``"MGH09"``).  When omitted, all 27
        are returned, sorted by name.

    Returns
    -------
    NistProblem or list of NistProblem

    Examples
    --------
    >>> from neurenix.datasets import nist_strd
    >>> p = nist_strd("Misra1a")
    >>> p.formula
    'y = b1*(1-exp[-b2*x])'
    >>> float(((p.residual(p.certified_values)) ** 2).sum())  # doctest: +ELLIPSIS
    0.12455138...
    """
    names = nist_strd_names()
    if name is None:
        return [nist_strd(n) for n in names]
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    lookup = {n.lower(): n for n in names}
    key = lookup.get(name.lower())
    if key is None:
        raise ValueError(f"name must be one of {names}, got {name!r}")
    cached = _CACHE.get(key)
    if cached is None:
        cached = _CACHE[key] = _parse(os.path.join(_DIR, key + ".dat"))
        for f in _ARRAY_FIELDS:
            getattr(cached, f).setflags(write=False)
    # every call gets its own arrays: changing one caller's problem never changes another's
    return dataclasses.replace(cached, **{f: getattr(cached, f).copy() for f in _ARRAY_FIELDS})
