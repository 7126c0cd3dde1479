"""_ext._natgrad kernels against their NumPy formulas."""
import numpy as np
import pytest
import scipy.linalg as sl

from neurenix._ext._natgrad import FisherOperator, ema_gram


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_fisher_operator_matches_formula(dtype, tol):
    rng = np.random.default_rng(0)
    v = rng.standard_normal(5).astype(dtype)
    J = rng.standard_normal((12, 5)).astype(dtype)
    h = rng.random(12).astype(dtype)
    B = rng.standard_normal((4, 3, 3))
    B = np.ascontiguousarray(B @ B.transpose(0, 2, 1), dtype=dtype)
    cases = [(FisherOperator(J, None, 0.25, 0.5), 0.25 * J.T @ J),
             (FisherOperator(J, h, 2.0, 0.5), 2.0 * J.T @ (h[:, None] * J)),
             (FisherOperator(J, B, 1.0, 0.5), J.T @ sl.block_diag(*B) @ J)]
    for op, F in cases:
        out = op(v)
        assert out.dtype == dtype and op.nprod == 1
        scale = float(np.abs(F).max() * np.abs(v).max())
        np.testing.assert_allclose(out, F @ v + 0.5 * v, rtol=0, atol=tol * scale * 10)
        assert op.quad(v) == pytest.approx(float(v @ F @ v), rel=tol * 10, abs=tol * scale)
        assert op.nprod == 1
    with pytest.raises(ValueError, match="v has length 4"):
        cases[0][0](np.ones(4, dtype))


def test_fisher_operator_empty_rows():
    op = FisherOperator(np.zeros((0, 3)), None, 1.0, 2.0)
    np.testing.assert_array_equal(op(np.ones(3)), np.full(3, 2.0))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_ema_gram(dtype, tol):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4))
    A = (A + A.T).astype(dtype)
    X = rng.standard_normal((9, 4)).astype(dtype)
    ref = 0.9 * A + 0.3 * X.T @ X
    ema_gram(A, X, 0.9, 0.3)
    np.testing.assert_allclose(A, ref, rtol=tol, atol=tol * 10)
    assert np.array_equal(A, A.T)
    ema_gram(A, np.zeros((0, 4), dtype), 0.5, 1.0)
    np.testing.assert_allclose(A, 0.5 * ref, rtol=tol, atol=tol * 10)
