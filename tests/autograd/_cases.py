"""One table of differentiable expressions, written once for both libraries.

Every entry is ``(name, fn, shapes, positive)``: ``fn(L, *tensors)`` uses only the
API that ``torch`` and ``neurenix`` share (``L.F`` is ``nn.functional``, ``L.tensor``
builds a constant), so the same expression runs on both; ``positive`` asks for
inputs in (0.5, 2) (log, sqrt, pow).
"""
import types

import numpy as np

import neurenix
import neurenix.nn.functional as NF

NEURENIX = types.SimpleNamespace(F=NF, tensor=neurenix.tensor, name="neurenix")


def torch_lib():
    import torch
    import torch.nn.functional as TF

    return types.SimpleNamespace(F=TF, tensor=torch.tensor, name="torch")


T = [1, 2, 0, 2, 1]                      # class targets of the cross-entropy cases
W = [0.5, 2.0, 1.0]

CASES = [
    ("add_broadcast", lambda L, a, b: a + b, [(4, 3), (3,)], False),
    ("add_broadcast_keep", lambda L, a, b: a + b, [(4, 1), (1, 3)], False),
    ("sub", lambda L, a, b: a - b, [(2, 3), (2, 3)], False),
    ("rsub_scalar", lambda L, a: 1.5 - a, [(3,)], False),
    ("mul_broadcast", lambda L, a, b: a * b, [(2, 3, 4), (3, 1)], False),
    ("rmul_scalar", lambda L, a: 2.5 * a, [(3, 2)], False),
    ("div", lambda L, a, b: a / b, [(3, 2), (2,)], True),
    ("rdiv_scalar", lambda L, a: 3.0 / a, [(4,)], True),
    ("neg", lambda L, a: -a, [(3,)], False),
    ("pow_scalar", lambda L, a: a ** 3, [(3, 2)], False),
    ("pow_tensor", lambda L, a, b: a ** b, [(3,), (3,)], True),
    ("rpow", lambda L, a: 2.0 ** a, [(3,)], False),
    ("matmul_2d", lambda L, a, b: a @ b, [(3, 4), (4, 2)], False),
    ("matmul_vec_mat", lambda L, a, b: a @ b, [(4,), (4, 2)], False),
    ("matmul_mat_vec", lambda L, a, b: a @ b, [(3, 4), (4,)], False),
    ("matmul_dot", lambda L, a, b: a @ b, [(4,), (4,)], False),
    ("matmul_batched", lambda L, a, b: a.matmul(b), [(2, 3, 4), (4, 2)], False),
    ("exp", lambda L, a: a.exp(), [(3, 2)], False),
    ("log", lambda L, a: a.log(), [(3, 2)], True),
    ("sqrt", lambda L, a: a.sqrt(), [(4,)], True),
    ("tanh", lambda L, a: a.tanh(), [(4,)], False),
    ("sigmoid", lambda L, a: a.sigmoid(), [(4,)], False),
    ("relu", lambda L, a: a.relu(), [(3, 4)], False),
    ("abs", lambda L, a: a.abs(), [(5,)], False),
    ("sum_all", lambda L, a: a.sum(), [(3, 4)], False),
    ("sum_dim", lambda L, a: a.sum(1), [(3, 4)], False),
    ("sum_dims_keepdim", lambda L, a: a.sum(dim=(0, 2), keepdim=True), [(2, 3, 4)], False),
    ("mean_all", lambda L, a: a.mean(), [(3, 4)], False),
    ("mean_dim_keepdim", lambda L, a: a.mean(0, keepdim=True), [(3, 4)], False),
    ("max_all", lambda L, a: a.max(), [(3, 4)], False),
    ("max_dim_values", lambda L, a: a.max(1)[0], [(3, 4)], False),
    ("max_dim_keepdim", lambda L, a: a.max(0, keepdim=True).values, [(3, 4)], False),
    ("min_dim_values", lambda L, a: a.min(dim=1).values, [(3, 4)], False),
    ("log_softmax", lambda L, a: a.log_softmax(1), [(3, 4)], False),
    ("softmax", lambda L, a: a.softmax(0), [(3, 4)], False),
    ("reshape", lambda L, a: a.reshape(4, -1) * a.reshape(4, -1), [(2, 6)], False),
    ("view_flat", lambda L, a: a.view(-1).exp(), [(2, 3)], False),
    ("flatten", lambda L, a: a.flatten(1).tanh(), [(2, 3, 2)], False),
    ("transpose", lambda L, a, b: a.transpose(0, 1) @ b, [(3, 2), (3, 4)], False),
    ("t_T", lambda L, a: a.T.exp().t() * (a.t() @ a).sum(), [(3, 2)], False),
    ("unsqueeze_squeeze", lambda L, a: a.unsqueeze(1).exp().squeeze(1), [(3, 2)], False),
    ("index_basic", lambda L, a: a[1:, ::2] * a[0, 1], [(3, 4)], False),
    ("index_int_repeat", lambda L, a: a[[0, 2, 0, 0]], [(3, 2)], False),
    ("index_mask", lambda L, a: a[a > 0].exp(), [(3, 4)], False),
    ("clone", lambda L, a: a.clone() * a, [(3,)], False),
    ("linear", lambda L, x, w, b: L.F.linear(x, w, b), [(5, 3), (4, 3), (4,)], False),
    ("linear_3d", lambda L, x, w, b: L.F.linear(x, w, b), [(2, 5, 3), (4, 3), (4,)], False),
    ("linear_1d_nobias", lambda L, x, w: L.F.linear(x, w), [(3,), (4, 3)], False),
    ("F_relu", lambda L, x: L.F.relu(x), [(3, 3)], False),
    ("mse_mean", lambda L, x, y: L.F.mse_loss(x, y), [(4, 3), (4, 3)], False),
    ("mse_sum", lambda L, x, y: L.F.mse_loss(x, y, reduction="sum"), [(4, 3), (4, 3)], False),
    ("mse_none", lambda L, x, y: L.F.mse_loss(x, y, reduction="none"), [(4,), (4,)], False),
    ("ce_mean", lambda L, x: L.F.cross_entropy(x, L.tensor(T)), [(5, 3)], False),
    ("ce_sum", lambda L, x: L.F.cross_entropy(x, L.tensor(T), reduction="sum"), [(5, 3)], False),
    ("ce_none", lambda L, x: L.F.cross_entropy(x, L.tensor(T), reduction="none"), [(5, 3)], False),
    ("ce_weight_ignore", lambda L, x: L.F.cross_entropy(
        x, L.tensor([1, -100, 0, 2, 1]), weight=L.tensor(W, dtype=x.dtype)), [(5, 3)], False),
    ("ce_weight_ignore_sum", lambda L, x: L.F.cross_entropy(
        x, L.tensor([1, 5, 0, 2, 1]), weight=L.tensor(W, dtype=x.dtype), ignore_index=5,
        reduction="sum"), [(5, 3)], False),
    ("ce_single", lambda L, x: L.F.cross_entropy(x, L.tensor(2)), [(3,)], False),
    ("ce_large_logits", lambda L, x: L.F.cross_entropy(x * 400.0, L.tensor(T)), [(5, 3)], False),
    ("mlp", lambda L, x, w1, b1, w2: L.F.cross_entropy(
        L.F.linear(L.F.relu(L.F.linear(x, w1, b1)), w2), L.tensor([0, 1, 1, 0])),
        [(4, 3), (5, 3), (5,), (2, 5)], False),
]


def inputs(shapes, positive, seed=0):
    rng = np.random.default_rng(seed)
    if positive:
        return [rng.uniform(0.5, 2.0, s) for s in shapes]
    return [rng.standard_normal(s) for s in shapes]


def check_backend_equals_numpy(fn, shapes, positive, L, convert, rtol=1e-12):
    """Run case ``fn`` on NumPy and on another backend (``convert`` maps a NumPy array
    to it, ``L`` builds its constants): values and gradients agree, gradients stay in
    that backend with their parameter's dtype."""
    from neurenix.backend import to_numpy

    arrays = inputs(shapes, positive, seed=3)
    ours = [neurenix.tensor(a, requires_grad=True) for a in arrays]
    other = [neurenix.tensor(convert(a), requires_grad=True) for a in arrays]
    out, oout = fn(NEURENIX, *ours), fn(L, *other)
    assert type(oout.data) is type(other[0].data)
    np.testing.assert_allclose(to_numpy(oout.data), out.detach().numpy(), rtol=rtol, atol=rtol / 10)
    seed = np.random.default_rng(4).standard_normal(out.shape)
    out.backward(neurenix.tensor(seed))
    oout.backward(neurenix.tensor(convert(seed)))
    for a, b in zip(ours, other):
        assert type(b.grad) is type(b.data) and b.grad.dtype == b.data.dtype
        np.testing.assert_allclose(to_numpy(b.grad), a.grad, rtol=rtol, atol=rtol / 10)
