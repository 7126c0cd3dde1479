"""Issue #16 (hardening): the fault cases found by trying the package as a new user
would, kept as tables (input -> exception type and message fragment, or -> result
status), plus a hypothesis fuzz of ``minimize``, ``least_squares`` and the
``optim`` optimizers: every call returns a well-formed result or raises a
``ValueError``/``TypeError`` (never an IndexError, OverflowError, AttributeError,
ZeroDivisionError, never a hang), and a refused optimizer step changes nothing."""
import math
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

from neurenix import optim
from neurenix.optimize import Bounds, Status, curve_fit, least_squares, minimize

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

X0 = np.array([-1.2, 1.0])


def _rosen_res(x):
    return np.array([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def _nan_jac(x):
    return np.array([np.nan, 1.0])


# ---------------------------------------------------------------- bad input
MINIMIZE_ERRORS = [
    # (label, kwargs of minimize, exception, message fragment)
    ("empty x0", dict(fun=rosen, x0=[], jac=rosen_der, method="L-BFGS-B"),
     ValueError, "x0 must have at least one element"),
    ("ragged x0", dict(fun=rosen, x0=[[1, 2], [3]], method="BFGS"),
     ValueError, "x0 must be a 1-D array"),
    ("string x0", dict(fun=rosen, x0="abc", method="BFGS"), TypeError, "x0"),
    ("complex x0", dict(fun=rosen, x0=[1j, 0], method="BFGS"), TypeError, "x0 must be real"),
    ("2-D x0", dict(fun=rosen, x0=np.ones((2, 2)), method="BFGS"), ValueError, "x0 must be 1-D"),
    ("nan x0", dict(fun=rosen, x0=[np.nan, 0.0], method="BFGS"), ValueError, "x0"),
    ("bounds (inf, inf) pairs", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der,
                                     bounds=[(np.inf, np.inf)] * 2, method="L-BFGS-B"),
     ValueError, "lower bound must be < \\+inf"),
    ("bounds (-inf, -inf) Bounds", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der,
                                        bounds=Bounds(-np.inf, -np.inf), method="L-BFGS-B"),
     ValueError, "upper bound > -inf"),
    ("bounds (inf, inf) Bounds arrays", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der,
                                             bounds=Bounds([0.0, np.inf], [1.0, np.inf])),
     ValueError, "variable 1"),
    ("options=5", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der, options=5),
     TypeError, "options must be a dict"),
    ("options=list", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der, options=[("maxiter", 3)]),
     TypeError, "options must be a dict"),
    ("maxiter=-1", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der, options={"maxiter": -1}),
     ValueError, "maxiter"),
    ("maxiter=2.5", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der, options={"maxiter": 2.5}),
     TypeError, "maxiter"),
    ("unknown method", dict(fun=rosen, x0=[0.0, 0.0], method="nope"), ValueError, "method"),
    ("maxtime=0", dict(fun=rosen, x0=[0.0, 0.0], jac=rosen_der, options={"maxtime": 0}),
     ValueError, "maxtime"),
    ("tol=-1", dict(fun=rosen, x0=[0.0, 0.0], tol=-1), ValueError, "tol"),
    ("fun not callable", dict(fun=3, x0=[0.0, 0.0]), TypeError, "fun must be callable"),
    ("jac wrong length", dict(fun=rosen, x0=[0.0, 0.0], jac=lambda x: np.ones(3)),
     ValueError, "jac must return an array of shape"),
    ("fun returns a vector", dict(fun=lambda x: x, x0=[0.0, 0.0], method="BFGS"),
     ValueError, "fun must return a scalar"),
]
for _m in ("Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "dogleg", "L-BFGS-B",
           "BFGS", "CG"):
    # a NaN gradient is blamed on jac (it used to be blamed on hessp)
    MINIMIZE_ERRORS.append((f"nan jac {_m}", dict(fun=rosen, x0=[0.0, 0.0], jac=_nan_jac,
                                                  hess=rosen_hess, method=_m),
                            ValueError, "jac returned non-finite values at x0"))


@pytest.mark.parametrize("label,kw,exc,match", MINIMIZE_ERRORS, ids=[c[0] for c in MINIMIZE_ERRORS])
def test_minimize_bad_input(label, kw, exc, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=match):
            minimize(**kw)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG", "Newton-CG", "trust-ncg",
                                    "trust-krylov", "trust-exact", "dogleg"])
@pytest.mark.parametrize("option", ["maxiter", "maxfun", "maxls", "maxcor", "cg_maxiter",
                                    "subproblem_maxiter"])
def test_huge_integer_options_are_accepted(method, option):
    # SciPy accepts any integer: a huge limit runs as an unlimited one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = minimize(rosen, [0.0, 0.0], jac=rosen_der, hess=rosen_hess, method=method,
                     options={option: 10 ** 30})
        # (a huge maxcor stores every pair, as maxcor = maxiter + 1 does)
        ref = minimize(rosen, [0.0, 0.0], jac=rosen_der, hess=rosen_hess, method=method,
                       options={"maxcor": 15001} if option == "maxcor" and
                       method == "L-BFGS-B" else None)
    assert r.status == ref.status, r.message
    np.testing.assert_array_equal(r.x, ref.x)


def test_dense_bfgs_memory_error_names_the_matrix():
    # in a child with a 2 GiB address-space limit, so the n x n allocation fails for sure
    code = textwrap.dedent("""
        import resource, numpy as np
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from neurenix.optimize import minimize
        try:
            minimize(lambda x: (float(x @ x), 2 * x), np.ones(10 ** 5), jac=True,
                     method="BFGS", options={"maxiter": 2})
        except MemoryError as e:
            print("MemoryError:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=_root())
    assert "MemoryError:" in out.stdout, out.stderr[-2000:]
    msg = out.stdout
    assert "BFGS" in msg and "n x n" in msg and "100000" in msg and "L-BFGS-B" in msg


def _root():
    import os
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LSQ_ERRORS = [
    ("complex residuals lm", dict(fun=lambda x: np.array([x[0] - 1 + 1j, x[1]]),
                                  x0=[0.0, 0.0], method="lm"),
     TypeError, "fun must return real values"),
    ("complex residuals trf", dict(fun=lambda x: np.array([x[0] - 1 + 1j, x[1]]),
                                   x0=[0.0, 0.0], method="trf"),
     TypeError, "fun must return real values"),
    ("complex residuals gn", dict(fun=lambda x: np.array([x[0] - 1 + 1j, x[1]]),
                                  x0=[0.0, 0.0], method="gn"),
     TypeError, "fun must return real values"),
    ("complex jac lm", dict(fun=lambda x: x - 1, x0=[0.0, 0.0], method="lm",
                            jac=lambda x: np.eye(2) * (1 + 1j)),
     TypeError, "jac must return real values"),
    ("complex jac trf", dict(fun=lambda x: x - 1, x0=[0.0, 0.0], method="trf",
                             jac=lambda x: np.eye(2) * (1 + 1j)),
     TypeError, "jac must return real values"),
    ("nan loss trf", dict(fun=lambda x: x - 1, x0=[0.0, 0.0], method="trf",
                          loss=lambda z: np.full((3,) + z.shape, np.nan)),
     ValueError, "loss returned non-finite values"),
    ("nan loss gn", dict(fun=lambda x: x - 1, x0=[0.0, 0.0], method="gn",
                         loss=lambda z: np.full((3,) + z.shape, np.nan)),
     ValueError, "loss returned non-finite values"),
    ("nan residuals at x0 trf", dict(fun=lambda x: x * np.nan, x0=[0.0, 0.0], method="trf"),
     ValueError, "fun"),
    ("nan residuals at x0 lm", dict(fun=lambda x: x * np.nan, x0=[0.0, 0.0], method="lm"),
     ValueError, "fun"),
    ("empty x0", dict(fun=lambda x: x, x0=[], method="trf"), ValueError, "x0"),
    ("max_nfev=0", dict(fun=lambda x: x, x0=[1.0], max_nfev=0), ValueError, "max_nfev"),
]


@pytest.mark.parametrize("label,kw,exc,match", LSQ_ERRORS, ids=[c[0] for c in LSQ_ERRORS])
def test_least_squares_bad_input(label, kw, exc, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=match):
            least_squares(**kw)


@pytest.mark.parametrize("method", ["lm", "trf", "gn"])
def test_least_squares_huge_max_nfev(method):
    r = least_squares(_rosen_res, X0, method=method, max_nfev=10 ** 30)
    assert r.success
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("fmt", [sparse.csr_matrix, sparse.csc_array, sparse.coo_array,
                                 sparse.lil_matrix, sparse.dia_matrix])
@pytest.mark.parametrize("J", [np.zeros((3, 3)), np.diag([1.0, 0.0, 2.0])],
                         ids=["all-zero", "empty-column"])
@pytest.mark.parametrize("bounds", [(-np.inf, np.inf), (-1.0, 0.5)])
@pytest.mark.parametrize("x_scale", [None, "jac"])
def test_sparse_trf_degenerate_jacobians(fmt, J, bounds, x_scale):
    # a sparse Jacobian with empty rows/columns: a result, never an internal error
    # (issue #16 reported "need at least one array to concatenate" for such input)
    r = least_squares(lambda x: x - 1, np.zeros(3), jac=lambda x: fmt(J), bounds=bounds,
                      x_scale=x_scale, method="trf")
    assert r.status in (0, 1, 2, 3, 4) and np.all(np.isfinite(r.x))
    dense = least_squares(lambda x: x - 1, np.zeros(3), jac=lambda x: J, bounds=bounds,
                          x_scale=x_scale, method="trf")
    # (sparse Jacobians default to tr_solver="lsmr", dense ones to "exact", as SciPy)
    np.testing.assert_allclose(r.x, dense.x, atol=1e-4)


CURVE_FIT_ERRORS = [
    ("xdata/ydata lengths", dict(f=lambda t, a: a * t, xdata=np.arange(5.0),
                                 ydata=np.arange(4.0)),
     ValueError, "xdata and ydata must have the same length, got 5 and 4"),
    ("model output length", dict(f=lambda t, a: a * np.ones(3), xdata=list(range(5)),
                                 ydata=np.arange(5.0)),
     ValueError, r"f\(xdata, \*p\) returned 3 values, but ydata has 5"),
    ("p0 too long", dict(f=lambda t, a, b: a * t + b, xdata=np.arange(5.0),
                         ydata=np.arange(5.0), p0=[1.0, 2.0, 3.0]),
     ValueError, "p0 has 3 values, but the model f takes 2 fit parameters"),
    ("p0 too short", dict(f=lambda t, a, b: a * t + b, xdata=np.arange(5.0),
                          ydata=np.arange(5.0), p0=[1.0]),
     ValueError, "p0 has 1 values, but the model f takes 2 fit parameters"),
    ("complex model", dict(f=lambda t, a: a * t + 1j, xdata=np.arange(5.0),
                           ydata=np.arange(5.0)),
     TypeError, "f must return real values"),
]


@pytest.mark.parametrize("label,kw,exc,match", CURVE_FIT_ERRORS,
                         ids=[c[0] for c in CURVE_FIT_ERRORS])
def test_curve_fit_bad_input(label, kw, exc, match):
    with pytest.raises(exc, match=match):
        curve_fit(**kw)


def test_curve_fit_defaulted_parameters_may_be_left_out():
    def model(t, a, b=0.0):
        return a * t + b
    t = np.arange(6.0)
    popt, _ = curve_fit(model, t, 2.0 * t, p0=[1.0])
    np.testing.assert_allclose(popt, [2.0])
    popt, _ = curve_fit(model, t, 2.0 * t + 1.0, p0=[1.0, 0.0])
    np.testing.assert_allclose(popt, [2.0, 1.0])


# ------------------------------------------------------------------- Ctrl-C
def _interrupting(fn, at):
    calls = {"n": 0}

    def f(x, *a):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return fn(x, *a)
    return f


CTRL_C_METHODS = ["Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "dogleg",
                  "L-BFGS-B", "BFGS", "CG"]


@pytest.mark.parametrize("method", CTRL_C_METHODS)
@pytest.mark.parametrize("callback", [False, True])
def test_ctrl_c_returns_the_best_point(method, callback):
    kw = {"hess": rosen_hess} if method in ("trust-exact", "dogleg") else \
        ({"hessp": rosen_hess_prod} if method in ("Newton-CG", "trust-ncg", "trust-krylov")
         else {})
    r = minimize(_interrupting(rosen, 15), X0, jac=rosen_der, method=method,
                 callback=(lambda xk: None) if callback else None, **kw)
    assert r.reason == Status.INTERRUPTED and not r.success
    assert "KeyboardInterrupt" in r.message
    # progress was made and is returned: not x0, and f is the value at x
    assert r.fun < rosen(X0)
    assert not np.array_equal(r.x, X0)
    assert r.fun == pytest.approx(rosen(r.x), rel=1e-12)


@pytest.mark.parametrize("method", ["lm", "trf", "gn"])
@pytest.mark.parametrize("loss", ["linear", "huber"])
def test_ctrl_c_least_squares(method, loss):
    if method == "lm" and loss != "linear":
        pytest.skip("lm supports only the linear loss")
    r = least_squares(_interrupting(_rosen_res, 9), X0, method=method, loss=loss)
    assert r.status == -3 and not r.success
    assert "KeyboardInterrupt" in r.message
    f0 = _rosen_res(X0)
    assert r.cost <= 0.5 * float(f0 @ f0)
    np.testing.assert_array_equal(r.fun, _rosen_res(r.x))
    assert r.jac is None and r.grad is None and math.isnan(r.optimality)
    assert r.nfev == 8


def test_ctrl_c_gauss_newton_minimize():
    r = minimize(_interrupting(_rosen_res, 9), X0, method="gauss-newton")
    assert r.reason == Status.INTERRUPTED and not r.success
    assert r.fun <= 0.5 * float(_rosen_res(X0) @ _rosen_res(X0))


def test_ctrl_c_at_x0_still_raises():
    # nothing was evaluated: there is no point to return
    with pytest.raises(KeyboardInterrupt):
        least_squares(_interrupting(_rosen_res, 1), X0)


# ------------------------------------------------------------------ maxtime
def _sleeping(fn, at, seconds):
    calls = {"n": 0}

    def f(x, *a):
        calls["n"] += 1
        if calls["n"] == at:
            time.sleep(seconds)
        return fn(x, *a)
    return f, calls


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG", "Newton-CG", "trust-ncg",
                                    "trust-krylov", "trust-exact", "adam"])
def test_maxtime_inside_an_iteration(method):
    # the limit passes during the 4th call of fun (inside a line search or a trial
    # step): no further call is made, the best point so far comes back
    fun, calls = _sleeping(rosen, 4, 0.1)
    kw = {"hess": rosen_hess} if method == "trust-exact" else {}
    r = minimize(fun, X0, jac=rosen_der, method=method, options={"maxtime": 0.05}, **kw)
    assert r.reason == Status.MAXTIME and not r.success
    assert calls["n"] == 4
    assert r.fun <= rosen(X0)


def test_maxtime_inside_the_inner_cg_loop():
    # hessp sleeps past the limit in the middle of the inner CG loop
    hp, calls = _sleeping(rosen_hess_prod, 2, 0.1)
    x0 = np.tile(X0, 50)
    r = minimize(rosen, x0, jac=rosen_der, hessp=hp, method="Newton-CG",
                 options={"maxtime": 0.05})
    assert r.reason == Status.MAXTIME
    assert calls["n"] == 2


def test_maxtime_gauss_newton():
    fun, calls = _sleeping(_rosen_res, 3, 0.1)
    r = minimize(fun, X0, method="gauss-newton", options={"maxtime": 0.05})
    assert r.reason == Status.MAXTIME and not r.success
    assert calls["n"] == 3


def test_maxtime_large_cg_returns_promptly():
    # a 10**5-variable CG run with an expensive line search stops within the limit
    # (checked by counting calls, not by timing: no call after the deadline)
    state = {"n": 0, "t": None}

    def fg(x):
        state["n"] += 1
        if state["t"] is not None:
            state["late"] = state.get("late", 0) + 1
        return float(np.sum(x ** 4)), 4 * x ** 3
    t0 = time.perf_counter()

    def slow(x):
        out = fg(x)
        if time.perf_counter() - t0 > 0.2 and state["t"] is None:
            state["t"] = state["n"]
        return out
    r = minimize(slow, np.ones(10 ** 5), jac=True, method="CG", options={"maxtime": 0.2})
    assert r.reason in (Status.MAXTIME, Status.GTOL, Status.SUCCESS)
    assert state.get("late", 0) == 0


# ------------------------------------------------------------------ fuzzing
_METHODS = ["L-BFGS-B", "BFGS", "CG", "Newton-CG", "trust-ncg", "trust-krylov",
            "trust-exact", "dogleg", "adam", "sgd", "gauss-newton"]
#: anything a user might pass where a number belongs
_JUNK = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.integers(-10 ** 30, 10 ** 30), st.none(), st.text(max_size=2),
                  st.booleans(), st.lists(st.integers(), max_size=2))
_FLOATS = st.floats(-5, 5, width=64)
_OPTION_VALUES = {
    "maxiter": st.integers(0, 20), "gtol": st.floats(0, 1), "ftol": st.floats(0, 1),
    "xtol": st.floats(1e-12, 1), "maxcor": st.integers(1, 12), "maxls": st.integers(1, 30),
    "c1": st.floats(1e-6, 0.4), "c2": st.floats(0.5, 0.99), "lr": st.floats(1e-4, 1),
    "initial_trust_radius": st.floats(1e-3, 10), "max_trust_radius": st.floats(10, 1e3),
    "eta": st.floats(0, 0.2), "maxtime": st.floats(0.5, 5),
    "finite_diff_rel_step": st.floats(1e-10, 1e-2), "maxfun": st.integers(1, 100)}
_GOOD = {
    "x0": st.lists(_FLOATS, min_size=1, max_size=4),
    "bounds": st.one_of(st.none(), st.lists(
        st.tuples(st.one_of(st.none(), st.floats(-10, -6)), st.one_of(st.none(), st.floats(6, 10))),
        min_size=4, max_size=4)),
    "options": st.fixed_dictionaries({}, optional=_OPTION_VALUES),
    "jac": st.sampled_from([None, "grad", "3-point"]),
    "tol": st.one_of(st.none(), st.floats(0, 1e-2)),
}
_BAD = {
    "method": st.sampled_from(["nope", 3, "", b"BFGS"]),
    "x0": st.one_of(st.lists(_FLOATS, max_size=0), st.floats(-3, 3),
                    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                       st.text(max_size=1), st.lists(_FLOATS, max_size=2)),
                             min_size=1, max_size=3),
                    st.lists(st.lists(_FLOATS, min_size=2, max_size=2), min_size=2, max_size=2)),
    "bounds": st.one_of(st.just([(np.inf, np.inf)] * 4), st.just([(-np.inf, -np.inf)] * 4),
                        st.integers(), st.lists(st.tuples(_JUNK, _JUNK), max_size=5),
                        st.just(Bounds([0, 0, 0, 0], [-1, 1, 1, 1]))),
    "options": st.one_of(st.integers(), st.text(max_size=3),
                         st.dictionaries(st.sampled_from(sorted(_OPTION_VALUES) + ["bogus"]),
                                         _JUNK, min_size=1, max_size=2)),
    "jac": st.sampled_from(["bad", "4-point", "wrong-length", "nan"]),
    "tol": st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), _JUNK),
}
_ALLOWED = (ValueError, TypeError)
_FUZZ = settings(max_examples=150, deadline=2000, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))


def _draw(data, bad, name, good):
    """The argument ``name``: from its bad values when it is the one chosen to be
    bad, else a valid one (one bad argument at most, so most examples reach a
    solver and every bad one is met alone)."""
    return data.draw(_BAD[name] if bad == name else good, label=name)


def _well_formed(r):
    assert isinstance(r.status, (int, np.integer))
    assert isinstance(r.success, (bool, np.bool_))
    assert isinstance(r.message, str) and r.message
    assert np.asarray(r.x).ndim == 1
    assert isinstance(r.fun, (float, np.floating))


def _quad(x):
    x = np.asarray(x)
    return float(np.sum((x - 0.5) ** 2) + np.sum(x ** 4))


def _quad_grad(x):
    return 2 * (x - 0.5) + 4 * x ** 3


def _lsq_res(x):
    return np.concatenate([x - 0.5, [np.sum(x) ** 2]])


def _lsq_jac(x):
    x = np.asarray(x)
    return np.vstack([np.eye(x.size), 2 * np.sum(x) * np.ones((1, x.size))])


_JACS = {"grad": _quad_grad, "bad": 7, "wrong-length": lambda x: np.ones(np.size(x) + 1),
         "nan": lambda x: np.full(np.size(x), np.nan)}


@_FUZZ
@given(data=st.data())
def test_fuzz_minimize(data):
    bad = data.draw(st.sampled_from([None, None, None, *_BAD]), label="bad")
    method = _draw(data, bad, "method", st.sampled_from(_METHODS))
    x0 = _draw(data, bad, "x0", _GOOD["x0"])
    bounds = _draw(data, bad, "bounds", _GOOD["bounds"])
    if isinstance(bounds, list) and bad is None:
        bounds = bounds[:np.size(x0)]
    options = _draw(data, bad, "options", _GOOD["options"])
    if isinstance(options, dict):
        # every example short: a bounded number of iterations
        options = dict(options)
        mi = options.get("maxiter")
        if not (type(mi) is int and 0 <= mi <= 20):
            options["maxiter"] = 20
    jac = _JACS.get(_draw(data, bad, "jac", _GOOD["jac"]))
    tol = _draw(data, bad, "tol", _GOOD["tol"])
    fun = _quad
    if method == "gauss-newton":
        fun = _lsq_res
        jac = _lsq_jac if jac is _quad_grad else jac
        if isinstance(options, dict):
            # gauss-newton counts residual evaluations
            options = {k: v for k, v in options.items()
                       if k in ("ftol", "xtol", "gtol", "maxtime")}
            options["max_nfev"] = 40
    kw = dict(method=method, jac=jac, bounds=bounds, options=options, tol=tol)
    if method in ("trust-exact", "dogleg"):
        kw["hess"] = lambda x: np.diag(2 + 12 * np.asarray(x) ** 2)
    if method in ("Newton-CG", "trust-ncg", "trust-krylov"):
        kw["hessp"] = lambda x, p: (2 + 12 * np.asarray(x) ** 2) * p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = minimize(fun, x0, **kw)
        except _ALLOWED:
            return
    assert bad != "method", bad
    _well_formed(r)


_LSQ_GOOD = {
    "method": st.sampled_from(["lm", "trf", "gn"]),
    "bounds": st.one_of(st.just((-np.inf, np.inf)), st.just((-10.0, 10.0)),
                        st.tuples(st.floats(-10, -6), st.floats(6, 10))),
    "loss": st.sampled_from(["linear", "huber", "soft_l1", "cauchy", "arctan"]),
    "f_scale": st.floats(0.1, 10), "max_nfev": st.one_of(st.none(), st.integers(1, 50)),
    "ftol": st.one_of(st.none(), st.floats(1e-12, 1e-2)),
    "xtol": st.floats(1e-12, 1e-2), "gtol": st.floats(1e-12, 1e-2),
    "x_scale": st.one_of(st.none(), st.just("jac"), st.floats(0.1, 10)),
    "jac": st.sampled_from(["2-point", "3-point", "cs", "callable", "sparse"]),
}
_LSQ_BAD = {
    "method": st.sampled_from(["nope", None, 1]),
    "bounds": st.one_of(st.tuples(_JUNK, _JUNK), st.just((np.inf, np.inf)), st.just((1.0, 0.0))),
    "loss": st.sampled_from(["bad", None, 2]),
    "f_scale": _JUNK, "max_nfev": _JUNK, "ftol": _JUNK, "xtol": _JUNK, "gtol": _JUNK,
    "x_scale": st.one_of(_JUNK, st.just("bad"), st.just([1.0, -1.0])),
    "jac": st.sampled_from(["bad", "complex", "nan", "wrong-shape"]),
}


@_FUZZ
@given(data=st.data())
def test_fuzz_least_squares(data):
    bad = data.draw(st.sampled_from([None, None, None, "x0", *_LSQ_BAD]), label="bad")
    x0 = data.draw(_BAD["x0"] if bad == "x0" else _GOOD["x0"], label="x0")
    kw = {k: data.draw(_LSQ_BAD[k] if bad == k else v, label=k) for k, v in _LSQ_GOOD.items()}
    if kw["max_nfev"] is None or (type(kw["max_nfev"]) is int and kw["max_nfev"] > 50):
        kw["max_nfev"] = 50
    kw["jac"] = {"callable": _lsq_jac, "sparse": lambda x: sparse.csr_matrix(_lsq_jac(x)),
                 "bad": 5, "complex": lambda x: _lsq_jac(x) * 1j,
                 "nan": lambda x: _lsq_jac(x) * np.nan,
                 "wrong-shape": lambda x: _lsq_jac(x)[:-1]}.get(kw["jac"], kw["jac"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = least_squares(_lsq_res, x0, **kw)
        except _ALLOWED:
            return
    assert bad not in ("method", "loss"), bad
    assert r.status in (-2, -1, 0, 1, 2, 3, 4)
    assert np.asarray(r.x).ndim == 1 and isinstance(r.message, str)
    assert np.isfinite(r.cost)


_OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "AdaBelief",
               "LAMB", "LARS", "LBFGS"]
_HYPER = st.dictionaries(
    st.sampled_from(["lr", "momentum", "weight_decay", "betas", "eps", "dampening",
                     "nesterov", "alpha", "lr_decay", "amsgrad", "trust_coefficient",
                     "max_iter", "history_size", "momentum_decay", "bogus"]),
    st.one_of(_JUNK, st.floats(0, 1), st.tuples(st.floats(0, 1), st.floats(0, 1)), st.tuples(_JUNK, _JUNK)), max_size=3)


def _snapshot(opt, params):
    return ([p.data.copy() for p in params],
            repr(sorted((k, repr(v)) for g in opt.param_groups for k, v in g.items()
                        if k != "params")),
            repr({id(k): {kk: np.array(vv, copy=True).tolist() if hasattr(vv, "shape")
                          else vv for kk, vv in v.items()} for k, v in opt.state.items()}))


def _refused_unchanged(opt, params, closure, state_only):
    """Take a step; when it is refused (ValueError/TypeError), check that the
    parameters and the state (and, unless ``state_only``, the groups) are as
    before.  Returns whether it was refused."""
    before = _snapshot(opt, params)
    try:
        opt.step(closure)
    except _ALLOWED:
        after = _snapshot(opt, params)
        for a, b in zip(before[0], after[0]):
            np.testing.assert_array_equal(a, b)
        assert before[2] == after[2]
        if not state_only:
            assert before[1] == after[1]
        return True
    return False


@_FUZZ
@given(name=st.sampled_from(_OPTIMIZERS), hyper=_HYPER,
       bad=st.sampled_from(["nan grad", "lr", "none"]),
       shape=st.sampled_from([(3,), (2, 2), (1,)]))
def test_fuzz_optimizers(name, hyper, bad, shape):
    params = [optim.Parameter(np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape))]
    try:
        opt = getattr(optim, name)(params, **hyper)
    except _ALLOWED:
        return

    def closure():
        opt.zero_grad()
        p = params[0]
        p.grad = 2 * p.data
        return float(np.sum(p.data ** 2))
    # one ordinary step: either accepted or refused before any change
    for p in params:
        p.grad = 2 * p.data
    if _refused_unchanged(opt, params, closure, state_only=False):
        return
    # then a step with bad input, which must be refused with nothing changed
    if bad == "nan grad":
        def closure_bad():
            params[0].grad = np.full(shape, np.nan)
            return float("nan")
        for p in params:
            p.grad = np.full(shape, np.nan)
    elif bad == "lr":
        opt.param_groups[0]["lr"] = -1.0
        closure_bad = closure
    else:
        return
    _refused_unchanged(opt, params, closure_bad, state_only=True)
