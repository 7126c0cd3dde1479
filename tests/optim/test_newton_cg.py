"""optim.NewtonCG against the functional Newton-CG / SciPy on the same problem."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optim import Parameter, NewtonCG


def _closure(w):
    def closure():
        w.grad = so.rosen_der(w.data)
        return so.rosen(w.data)
    return closure


@pytest.mark.parametrize("kw", [dict(line_search_fn="strong_wolfe"), dict(),
                                dict(line_search_fn="strong_wolfe", hvp="user")])
def test_converges_like_scipy(kw):
    w = Parameter(np.array([-1.2, 1.0, -1.2, 1.0]))
    if kw.get("hvp") == "user":
        kw = dict(kw, hvp=lambda v: so.rosen_hess_prod(w.data, v))
    opt = NewtonCG([w], **kw)
    closure = _closure(w)
    for _ in range(150):
        opt.step(closure)
    ref = so.minimize(so.rosen, np.array([-1.2, 1.0, -1.2, 1.0]), jac=so.rosen_der,
                      hess=so.rosen_hess, method="Newton-CG", options={"xtol": 1e-12})
    np.testing.assert_allclose(w.data, ref.x, atol=1e-5)


def test_quadratic_exact_step_and_state_dict():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 5))
    Q = A @ A.T + np.eye(5)
    b = rng.standard_normal(5)
    w = Parameter(np.zeros(5))

    def closure():
        w.grad = Q @ w.data - b
        return 0.5 * w.data @ Q @ w.data - b @ w.data

    opt = NewtonCG([w], hvp=lambda v: Q @ v)
    for _ in range(12):
        opt.step(closure)
    np.testing.assert_allclose(w.data, np.linalg.solve(Q, b), rtol=1e-8)
    sd = opt.state_dict()
    assert sd["state"][0]["step"] >= 1
    opt2 = NewtonCG([Parameter(np.zeros(5))])
    opt2.load_state_dict(sd)
    assert opt2.state_dict()["state"] == sd["state"]


def test_bad_arguments():
    w = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="lr"):
        NewtonCG([w], lr=-1.0)
    with pytest.raises(ValueError, match="line_search_fn"):
        NewtonCG([w], line_search_fn="armijo")
    with pytest.raises(TypeError, match="hvp"):
        NewtonCG([w], hvp=3)
    with pytest.raises(ValueError, match="max_iter"):
        NewtonCG([w], max_iter=0)
    opt = NewtonCG([w])
    with pytest.raises(TypeError, match="closure"):
        opt.step()
