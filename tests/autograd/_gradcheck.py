"""Central finite differences: the independent reference for every gradient."""
import numpy as np

import neurenix


def numeric_grads(fn, arrays, eps=1e-6):
    """d fn / d arrays[k] by central differences; ``fn`` maps float64 arrays to a float."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        flat = a.reshape(-1)
        gf = g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            fp = fn(*arrays)
            flat[i] = old - eps
            fm = fn(*arrays)
            flat[i] = old
            gf[i] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


def check_grads(f, arrays, rtol=1e-6, atol=1e-8, seed=0):
    """Compare the autograd gradients of ``f`` (a function of tensors, projected on a
    fixed random direction when its value is not a scalar) with central differences."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    proj = {}

    def scalar(*arrs, grad=False):
        ts = [neurenix.tensor(a, requires_grad=grad) for a in arrs]
        out = f(*ts)
        if out.numel() != 1:
            if "r" not in proj:
                proj["r"] = np.random.default_rng(seed).standard_normal(out.shape)
            out = (out * neurenix.tensor(proj["r"])).sum()
        return out, ts

    out, ts = scalar(*arrays, grad=True)
    out.backward()
    num = numeric_grads(lambda *a: scalar(*a)[0].item(), arrays)
    for k, (t, n) in enumerate(zip(ts, num)):
        assert t.grad is not None, f"argument {k} got no gradient"
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
        np.testing.assert_allclose(t.grad, n, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of argument {k}")
