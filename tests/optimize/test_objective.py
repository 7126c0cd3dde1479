"""ScalarObjective: cache, counters, validation, finite differences vs analytic."""
import numpy as np
import pytest

from neurenix._core.objective import ScalarObjective, as_float_array

from ._problems import rosen_chained, trigonometric


def test_cache_and_counters():
    calls = []

    def f(x):
        calls.append(x.copy())
        return rosen_chained(x)
    x = np.array([0.3, -0.2, 0.1])
    obj = ScalarObjective(f, x, jac=True)
    assert obj.nfev == 1 and obj.njev == 1
    obj.fun(x), obj.grad(x), obj.fun_and_grad(x)
    assert len(calls) == 1
    obj.grad(x + 1)
    assert obj.nfev == 2 and len(calls) == 2


@pytest.mark.parametrize("dtype,mode,tol", [(np.float64, "2-point", 1e-6),
                                            (np.float64, "3-point", 1e-8),
                                            (np.float32, "2-point", 5e-2),
                                            (np.float32, "3-point", 5e-3)])
def test_fd_gradient_accuracy(dtype, mode, tol):
    x = np.linspace(0.1, 0.9, 6).astype(dtype)
    obj = ScalarObjective(lambda x: trigonometric(x.astype(float))[0], x, jac=mode)
    g = obj.grad(x)
    assert g.dtype == dtype
    ref = trigonometric(x.astype(float))[1]
    np.testing.assert_allclose(g, ref, rtol=tol, atol=tol)
    assert obj.nfev == 1 + (6 if mode == "2-point" else 12)


def test_fd_hessp_matches_analytic():
    x = np.array([0.5, 1.5, -0.5])
    obj = ScalarObjective(lambda x: rosen_chained(x)[0], x, jac=lambda x: rosen_chained(x)[1])
    import scipy.optimize as so
    p = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(obj.hessp(x, p), so.rosen_hess_prod(x, p), rtol=1e-5)


@pytest.mark.parametrize("x0,exc,word", [([1.0, np.nan], ValueError, "x0"),
                                         ([np.inf], ValueError, "x0"),
                                         ([[1.0, 2.0]], ValueError, "x0"),
                                         ([1 + 1j], TypeError, "x0"),
                                         (["a"], TypeError, "x0")])
def test_bad_x0(x0, exc, word):
    with pytest.raises(exc, match=word):
        as_float_array(x0)


def test_bad_returns():
    x = np.ones(3)
    with pytest.raises(ValueError, match="scalar"):
        ScalarObjective(lambda x: x, x)
    with pytest.raises(ValueError, match="non-finite"):
        ScalarObjective(lambda x: np.nan, x)
    with pytest.raises(TypeError, match="pair"):
        ScalarObjective(lambda x: 1.0, x, jac=True)
    obj = ScalarObjective(lambda x: 1.0, x, jac=lambda x: np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        obj.grad(x)
    with pytest.raises(TypeError, match="fun"):
        ScalarObjective(3, x)


def test_integer_x0_becomes_float64_float32_kept():
    assert as_float_array([1, 2]).dtype == np.float64
    assert as_float_array(np.ones(2, np.float32)).dtype == np.float32


def test_public_cache_api():
    x = np.array([0.3, -0.2, 0.1])
    obj = ScalarObjective(rosen_chained, x, jac=True, share_x0=True)
    cx, cf, cxg, cg = obj.cache()
    assert cx is x and cxg is x and cf == rosen_chained(x)[0]
    assert np.array_equal(cg, rosen_chained(x)[1])
    saved = obj.cache()
    obj.fun(x + 1.0)                               # moves the cache
    assert obj.cache()[0] is not x
    obj.restore_cache(saved)
    assert obj.cache()[0] is x and obj.nfev == 2
    obj.fun(x)                                     # served from the restored cache
    assert obj.nfev == 2
    obj.reset_cache()
    assert obj.cache()[0] is None and obj.cache()[2] is None
    obj.fun(x)
    assert obj.nfev == 3
    fun, jac, hess, hessp = obj.callables()
    assert fun is rosen_chained and jac is None and hess is None and hessp is None


def test_hessp_return_checked():
    x = np.array([0.3, -0.2, 0.1])
    p = np.ones(3)
    good = ScalarObjective(rosen_chained, x, jac=True,
                           hessp=lambda x, p: (2.0 * p).reshape(3, 1))    # a column: accepted
    assert np.array_equal(good.hessp(x, p), 2.0 * p)
    bad = ScalarObjective(rosen_chained, x, jac=True, hessp=lambda x, p: np.ones(4))
    with pytest.raises(ValueError, match=r"hessp must return an array of shape \(3,\)"):
        bad.hessp(x, p)
    nan = ScalarObjective(rosen_chained, x, jac=True, hessp=lambda x, p: np.full(3, np.nan))
    with pytest.raises(ValueError, match="hessp returned non-finite"):
        nan.hessp(x, p)
