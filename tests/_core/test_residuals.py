"""``neurenix._core.residuals``: the one check of residual vectors and Jacobians, used by
``least_squares`` (and ``minimize(method="gauss-newton")``) and ``optim.GaussNewton``."""
import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

from neurenix import optim, optimize
from neurenix._core.residuals import check_jacobian, check_residuals


def test_check_residuals():
    f = np.arange(3.0)
    assert check_residuals(f) is f                          # no copy in the common case
    assert check_residuals(f, 3) is f
    out = check_residuals(2.5)
    assert out.shape == (1,) and out[0] == 2.5
    out = check_residuals([1, 2], what="closure")
    assert out.dtype == np.float64 and np.array_equal(out, [1.0, 2.0])
    out = check_residuals(np.arange(3, dtype=np.float32))
    assert out.dtype == np.float64
    with pytest.raises(ValueError, match=r"closure must return the residual vector .*\(2, 2\)"):
        check_residuals(np.ones((2, 2)), what="closure")
    with pytest.raises(ValueError, match="fun returned 3 residuals, expected 4"):
        check_residuals(f, 4)


def test_check_jacobian():
    J = np.ones((3, 2))
    assert check_jacobian(J, 3, 2) is J
    with pytest.raises(ValueError, match=r"jacobian must return an array of shape \(3, 2\)"):
        check_jacobian(np.ones((2, 3)), 3, 2, what="jacobian")
    bad = J.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="jac returned non-finite values at x0$"):
        check_jacobian(bad, 3, 2, where="x0")
    with pytest.raises(ValueError, match="jac returned non-finite values$"):
        check_jacobian(bad, 3, 2)
    assert check_jacobian(bad, 3, 2, check_finite=False) is not None
    S = sparse.coo_matrix(J)
    with pytest.raises(ValueError, match="need method='trf'"):
        check_jacobian(S, 3, 2)
    assert sparse.isspmatrix_csr(check_jacobian(S, 3, 2, allow_sparse=True))
    op = aslinearoperator(J)
    assert check_jacobian(op, 3, 2, allow_sparse=True) is op
    with pytest.raises(ValueError, match=r"jac must return shape \(2, 2\)"):
        check_jacobian(op, 2, 2, allow_sparse=True)


def test_both_callers_use_it():
    """least_squares and GaussNewton refuse the same bad residuals with the same message
    (naming their own callable)."""
    with pytest.raises(ValueError, match=r"fun must return the residual vector"):
        optimize.least_squares(lambda x: np.ones((2, 2)), np.zeros(2))
    p = optim.Parameter(np.zeros(2))
    opt = optim.GaussNewton([p])
    with pytest.raises(ValueError, match=r"closure must return the residual vector"):
        opt.step(lambda: np.ones((2, 2)))
    opt = optim.GaussNewton([p], jacobian=lambda: np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"jacobian must return an array of shape \(3, 2\)"):
        opt.step(lambda: p.data.sum() * np.ones(3))
