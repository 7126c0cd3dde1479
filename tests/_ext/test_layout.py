"""The split of ``neurenix._ext`` (kernel -> step -> loop) keeps its import surface,
and the shared reductions of ``_vec.pxd`` sum in the order their names state."""
import numpy as np
import pytest

from neurenix._ext import _first_order, _krylov, _lbfgs, _lsq, _subproblems

KRYLOV_NAMES = [
    "CG_BOUNDARY", "CG_CONVERGED", "CG_MAXITER", "CG_NEGATIVE_CURVATURE", "DenseSubproblem",
    "Lanczos", "Problem", "SUB_CG", "SUB_DOGLEG", "SUB_EXACT", "SUB_GLTR", "SUB_PYTHON",
    "_Hess", "_PyHess", "_dtype_of", "_generic_unit", "bandwidth", "cg_newton",
    "dense_bounds", "gltr", "gltr_solve", "newton_cg", "steihaug_cg", "tridiag_lambda_min",
    "tridiag_trs", "trust_region", "update_radius", "wolfe_search",
]
STEP_NAMES = [n for n in KRYLOV_NAMES
              if n not in ("Problem", "newton_cg", "trust_region", "wolfe_search")
              and not n.startswith("SUB_")]


@pytest.mark.parametrize("name", KRYLOV_NAMES)
def test_krylov_names_importable(name):
    assert hasattr(_krylov, name)


@pytest.mark.parametrize("name", STEP_NAMES)
def test_krylov_reexports_the_steps(name):
    # one object, whether reached through the loops' module or the steps' module
    assert getattr(_krylov, name) is getattr(_subproblems, name)


@pytest.mark.parametrize("mod, names", [
    (_lbfgs, ["BFGS", "CG", "LBFGS", "LBFGSB", "all_finite", "bounds_kind", "prepare_box",
              "run", "same_point", "two_loop"]),
    (_lsq, ["enorm_py", "fd_columns", "fd_steps", "gn_solve", "lm_solve", "lm_step",
            "loss_weights", "qr_lstsq", "qrfac_py", "trf_solve"]),
])
def test_other_names_importable(mod, names):
    for name in names:
        assert hasattr(mod, name), name


def _lanes8_sumsq(a):
    # the documented lanes8 order: lane j takes i = j mod 8 of the full blocks, the
    # tail goes to lane 0, lanes combined ((0+1)+(2+3))+((4+5)+(6+7))
    s = [0.0] * 8
    a = [float(v) for v in a]
    nb = len(a) - len(a) % 8
    for i in range(0, nb, 8):
        for j in range(8):
            s[j] += a[i + j] * a[i + j]
    for i in range(nb, len(a)):
        s[0] += a[i] * a[i]
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 13, 257])
def test_sum_squares_lanes8_order_bitwise(dtype, n):
    a = np.random.default_rng(n).standard_normal(n).astype(dtype)
    got = float(np.asarray(_first_order.sum_squares([a])).ravel()[0])
    assert got == _lanes8_sumsq(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_kernels(dtype):
    a = np.ones(37, dtype=dtype)
    assert _lbfgs.all_finite(a) is True and _first_order.all_finite([a]) is True
    for bad in (np.inf, -np.inf, np.nan):
        b = a.copy()
        b[33] = bad
        assert _lbfgs.all_finite(b) is False and _first_order.all_finite([b]) is False
