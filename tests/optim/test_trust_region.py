"""optim.TrustRegion against SciPy's trust-region methods on the same problem."""
import numpy as np
import pytest
import scipy.optimize as so

from neurenix.optim import Parameter, TrustRegion
from neurenix import optim

SCIPY = {"cg": "trust-ncg", "krylov": "trust-krylov", "exact": "trust-exact"}


@pytest.mark.parametrize("sub", ["cg", "krylov", "exact"])
@pytest.mark.parametrize("user_hvp", [False, True])
def test_matches_scipy(sub, user_hvp):
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    w = Parameter(x0.copy())
    hvp = (lambda v: so.rosen_hess_prod(w.data, v)) if user_hvp else None
    opt = TrustRegion([w], subproblem=sub, hvp=hvp)

    def closure():
        w.grad = so.rosen_der(w.data)
        return so.rosen(w.data)

    for _ in range(300):
        opt.step(closure)
    ref = so.minimize(so.rosen, x0, jac=so.rosen_der, hess=so.rosen_hess, method=SCIPY[sub],
                      options={"gtol": 1e-10})
    np.testing.assert_allclose(w.data, ref.x, atol=1e-6)


def test_state_dict_resume_bit_for_bit(tmp_path):
    def make():
        w = Parameter(np.array([-1.2, 1.0, 0.5]))

        def closure():
            w.grad = so.rosen_der(w.data)
            return so.rosen(w.data)
        return w, closure

    w1, c1 = make()
    o1 = TrustRegion([w1], subproblem="krylov")
    for _ in range(5):
        o1.step(c1)
    optim.save(o1.state_dict(), tmp_path / "tr.npz")
    snap = w1.data.copy()
    for _ in range(5):
        o1.step(c1)
    w2, c2 = make()
    w2.data[...] = snap
    o2 = TrustRegion([w2], subproblem="krylov")
    o2.load_state_dict(optim.load(tmp_path / "tr.npz"))
    for _ in range(5):
        o2.step(c2)
    np.testing.assert_array_equal(w1.data, w2.data)
    assert o1.state_dict()["state"] == o2.state_dict()["state"]


@pytest.mark.parametrize("kw,match", [
    (dict(initial_trust_radius=0.0), "initial_trust_radius"),
    (dict(eta=0.3), "eta"),
    (dict(subproblem="dogleg2"), "subproblem"),
    (dict(max_trust_radius=-1.0), "max_trust_radius"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        TrustRegion([Parameter(np.zeros(2))], **kw)
