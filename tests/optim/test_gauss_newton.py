"""GaussNewton optimizer: converges to SciPy's least-squares solution, the plain
Gauss-Newton step equals the closed form, state_dict round trip, bad input."""
import numpy as np
import pytest
import scipy.optimize

from neurenix.optim import GaussNewton, Parameter

T = np.linspace(0, 3, 50)
Y = 2.0 * np.exp(-0.7 * T) + 0.3 + 0.01 * np.sin(7 * T)


def make(dtype=np.float64):
    a = Parameter(np.array([1.0, 0.2], dtype=dtype))      # amplitude, rate
    c = Parameter(np.array(0.0, dtype=dtype))             # offset (0-d)
    return a, c


def residual(a, c):
    return a.data[0] * np.exp(-a.data[1] * T) + c.data - Y


def jac(a, c):
    e = np.exp(-a.data[1] * T)
    return np.column_stack((e, -a.data[0] * T * e, np.ones_like(T)))


REF = scipy.optimize.least_squares(lambda p: p[0] * np.exp(-p[1] * T) + p[2] - Y,
                                   [1.0, 0.2, 0.0], method="lm", xtol=1e-14, ftol=1e-14).x


@pytest.mark.parametrize("analytic", [False, True])
@pytest.mark.parametrize("damping", [1e-3, 0.0])
def test_converges_to_scipy_solution(analytic, damping):
    a, c = make()
    opt = GaussNewton([a, c], damping=damping,
                      jacobian=(lambda: jac(a, c)) if analytic else None)
    for _ in range(30):
        opt.step(lambda: residual(a, c))
    np.testing.assert_allclose([*a.data, float(c.data)], REF, rtol=1e-7)


def test_finite_difference_jacobian_is_scipys_rule_and_restores_parameters():
    # float64: the columns equal SciPy's 2-point approximation (same steps);
    # float32: steps from float32's epsilon, so the fit still converges
    a, c = make()
    opt = GaussNewton([a, c])
    theta = np.array([*a.data, float(c.data)])
    J = opt._jac(lambda: residual(a, c), theta, residual(a, c))
    from scipy.optimize._numdiff import approx_derivative
    ref = approx_derivative(lambda p: p[0] * np.exp(-p[1] * T) + p[2] - Y, theta,
                            method="2-point")
    np.testing.assert_allclose(J, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal([*a.data, float(c.data)], theta)
    a, c = make(np.float32)
    opt = GaussNewton([a, c])
    for _ in range(30):
        opt.step(lambda: residual(a, c))
    assert a.data.dtype == np.float32
    np.testing.assert_allclose([*a.data, float(c.data)], REF, rtol=2e-3)


def test_plain_step_is_the_gauss_newton_closed_form():
    a, c = make()
    theta = np.array([*a.data, float(c.data)])
    r = residual(a, c)
    J = jac(a, c)
    expected = theta - 0.5 * np.linalg.solve(J.T @ J, J.T @ r)
    opt = GaussNewton([a, c], lr=0.5, damping=0.0, jacobian=lambda: jac(a, c))
    loss = opt.step(lambda: residual(a, c))
    assert loss == pytest.approx(0.5 * r @ r)
    np.testing.assert_allclose([*a.data, float(c.data)], expected, rtol=1e-10)


def test_damped_step_is_the_marquardt_closed_form():
    a, c = make()
    theta = np.array([*a.data, float(c.data)])
    r = residual(a, c)
    J = jac(a, c)
    D2 = np.diag((J ** 2).sum(0))
    lam = 0.1
    expected = theta - np.linalg.solve(J.T @ J + lam * D2, J.T @ r)
    opt = GaussNewton([a, c], damping=lam, jacobian=lambda: jac(a, c))
    opt.step(lambda: residual(a, c))
    np.testing.assert_allclose([*a.data, float(c.data)], expected, rtol=1e-9)
    assert opt.state[a]["damping"] == pytest.approx(lam / 3)


def test_state_dict_round_trip_resumes_identically():
    a, c = make()
    opt = GaussNewton([a, c])
    for _ in range(2):
        opt.step(lambda: residual(a, c))
    sd = opt.state_dict()
    a2, c2 = Parameter(a.data.copy()), Parameter(c.data.copy())
    opt2 = GaussNewton([a2, c2])
    opt2.load_state_dict(sd)
    assert opt2.state[a2]["damping"] == opt.state[a]["damping"]
    for _ in range(3):
        opt.step(lambda: residual(a, c))
        opt2.step(lambda: residual(a2, c2))
    np.testing.assert_array_equal(a.data, a2.data)
    np.testing.assert_array_equal(c.data, c2.data)


def test_float32_parameters_stay_float32():
    a, c = make(np.float32)
    opt = GaussNewton([a, c], jacobian=lambda: jac(a, c))
    for _ in range(10):
        opt.step(lambda: residual(a, c))
    assert a.data.dtype == np.float32
    np.testing.assert_allclose(a.data, REF[:2], rtol=1e-4)


@pytest.mark.parametrize("kw,exc,word", [
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(damping=-1.0), ValueError, "damping"),
    (dict(damping_increase=1.0), ValueError, "damping_increase"),
    (dict(max_trials=0), ValueError, "max_trials"),
    (dict(jacobian=3), TypeError, "jacobian"),
])
def test_bad_arguments(kw, exc, word):
    a, c = make()
    with pytest.raises(exc, match=word):
        GaussNewton([a, c], **kw)


def test_bad_closure_and_jacobian():
    a, c = make()
    opt = GaussNewton([a, c], jacobian=lambda: np.ones((3, 3)))
    before = a.data.copy()
    with pytest.raises(ValueError, match="jacobian"):
        opt.step(lambda: residual(a, c))
    np.testing.assert_array_equal(a.data, before)
    with pytest.raises(ValueError, match="closure"):
        GaussNewton([a, c]).step(lambda: np.ones((2, 2)))
    with pytest.raises(TypeError, match="closure"):
        GaussNewton([a, c]).step(None)


def test_non_finite_jacobians_and_changing_residual_counts_are_named():
    # nothing non-finite reaches the QR kernel; parameters are left as they were
    a, c = make()
    before = (a.data.copy(), c.data.copy())
    J = jac(a, c)
    J[0, 0] = np.nan
    with pytest.raises(ValueError, match="jacobian returned non-finite"):
        GaussNewton([a, c], jacobian=lambda: J).step(lambda: residual(a, c))
    calls = []

    def grows():                            # residual count changes under the FD probe
        calls.append(1)
        return np.ones(T.size + (len(calls) > 1))
    with pytest.raises(ValueError, match="closure returned"):
        GaussNewton([a, c]).step(grows)

    def blows_up():                         # finite at theta, NaN at the probe points
        r = residual(a, c)
        return r if a.data[0] == before[0][0] else r * np.nan
    with pytest.raises(ValueError, match="non-finite residuals at a finite-difference"):
        GaussNewton([a, c]).step(blows_up)
    np.testing.assert_array_equal(a.data, before[0])
    np.testing.assert_array_equal(c.data, before[1])


def test_qr_lstsq_rejects_bad_input_before_lapack():
    from neurenix._ext import _lsq
    with pytest.raises(ValueError, match="2-D"):
        _lsq.qr_lstsq(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="f must have shape"):
        _lsq.qr_lstsq(np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        _lsq.qr_lstsq(np.full((3, 2), np.inf), np.ones(3))
    p, rank = _lsq.qr_lstsq(np.eye(3)[:, :2], -np.ones(3))
    np.testing.assert_allclose(p, [1.0, 1.0])
    assert rank == 2
