"""K-FAC: Kronecker-factored approximate Fisher blocks of dense layers.

For a dense layer ``y = W a + b`` (``W`` of shape ``(d_out, d_in)``, as
``torch.nn.Linear``) the gradient of one sample's loss is ``g a_bar^T`` with
``a_bar = [a; 1]`` (the ``1`` only with a bias) and ``g = dl/dy``, so the
layer's Fisher block ``E[(a_bar a_bar^T) (x) (g g^T)]`` is approximated by the
Kronecker product ``A (x) G`` of ``A = E[a_bar a_bar^T]`` and ``G = E[g g^T]``
(Martens & Grosse 2015, section 3), whose inverse applies to a gradient matrix
as ``G^{-1} V A^{-1}``.  For one sample the product is exact.

The factors are exponential moving averages (section 5) with decay
``min(1 - 1/k, factor_decay)`` at the ``k``-th update (so the first update
takes the batch statistics as they are), updated in place by a BLAS ``syrk``
(:func:`neurenix._ext._natgrad.ema_gram`).  Damping is factored Tikhonov
damping (section 6.3): ``(A + pi sqrt(lambda) I) (x) (G + sqrt(lambda)/pi I)``
with ``pi = sqrt((tr A / dim A) / (tr G / dim G))``; the damped inverses are
recomputed every ``inv_update_period`` steps (section 8, ``T_3``).

This module holds the math; :class:`neurenix.optim.NaturalGradient` drives it.

References
----------
J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
approximate curvature", ICML 2015.
J. Ba, R. Grosse and J. Martens, "Distributed second-order optimization using
Kronecker-factored approximations", ICLR 2017 (the KL-based step clipping).
"""
import math

import numpy as np

from .._core.natural_gradient import SingularFisherError, as_real_array
from .._ext._natgrad import ema_gram

__all__ = ["KFACLayer"]


class KFACLayer:
    """A dense layer registered with :meth:`NaturalGradient.register_layer`.

    Attributes
    ----------
    weight : Parameter, shape (d_out, d_in)
    bias : Parameter of shape (d_out,), or None
    name : str or None
    """

    __slots__ = ("weight", "bias", "name", "d_in", "d_out", "dtype", "_A", "_G", "_nA", "_nG")

    def __init__(self, weight, bias=None, name=None):
        self.weight = weight
        self.bias = bias
        self.name = name
        self.d_out, self.d_in = weight.data.shape
        self.dtype = weight.data.dtype
        self._clear()

    def __repr__(self):
        nm = f"{self.name!r}, " if self.name else ""
        return (f"KFACLayer({nm}d_in={self.d_in}, d_out={self.d_out}, "
                f"bias={self.bias is not None})")

    @property
    def dim_a(self):
        """Size of the activation factor ``A`` (``d_in``, plus 1 with a bias)."""
        return self.d_in + (self.bias is not None)

    def _label(self):
        return f"layer {self.name!r}" if self.name else "layer"

    def _clear(self):
        self._A = self._G = None
        self._nA = self._nG = 0

    @property
    def pending(self):
        """Whether statistics were recorded since the last step."""
        return self._nA > 0

    def accumulate(self, activations, output_grads, reduction):
        """Add one batch's sums ``a_bar^T a_bar`` and ``g^T g`` to the pending statistics
        (validated here; nothing changes on error)."""
        a = _batch(activations, "activations", self.d_in, self.dtype, self._label())
        g = _batch(output_grads, "output_grads", self.d_out, self.dtype, self._label())
        if a.shape[0] != g.shape[0]:
            raise ValueError(f"{self._label()}: activations and output_grads must have the "
                             f"same number of rows (samples), got {a.shape[0]} and {g.shape[0]}")
        N = a.shape[0]
        if self.bias is not None:
            a = np.concatenate([a, np.ones((N, 1), dtype=self.dtype)], axis=1)
        if reduction == "mean":
            # rows of the gradient of a mean loss are dl_i/dy_i / N: per-sample scale
            g = g * self.dtype.type(N)
        if self._A is None:
            self._A = np.zeros((self.dim_a, self.dim_a), dtype=self.dtype)
            self._G = np.zeros((self.d_out, self.d_out), dtype=self.dtype)
        ema_gram(self._A, np.ascontiguousarray(a), 1.0, 1.0)
        ema_gram(self._G, np.ascontiguousarray(g), 1.0, 1.0)
        self._nA += N
        self._nG += N

    def batch_factors(self):
        """The pending statistics as ``(A_hat, G_hat)`` (means over recorded samples)."""
        return self._A / self.dtype.type(self._nA), self._G / self.dtype.type(self._nG)


def _batch(x, what, d, dtype, label):
    arr = as_real_array(x, f"{label}: {what}", dtype, (2,))
    if arr.shape[1] != d or arr.shape[0] < 1:
        raise ValueError(f"{label}: {what} must have shape (N, {d}) with N >= 1, got "
                         f"{arr.shape}")
    return arr


def update_factor(F, F_hat, k, factor_decay):
    """EMA of a factor at its ``k``-th update (``k >= 1``), as a new array."""
    eps = min(1.0 - 1.0 / k, factor_decay)
    if F is None or eps == 0.0:
        return np.array(F_hat, copy=True)
    return (eps * F + (1.0 - eps) * F_hat).astype(F_hat.dtype, copy=False)


def damped_inverses(A, G, damping, label="layer"):
    """``((A + pi gamma I)^{-1}, (G + gamma/pi I)^{-1})`` with ``gamma = sqrt(damping)``
    (factored Tikhonov damping, Martens & Grosse 2015, section 6.3)."""
    gamma = math.sqrt(damping)
    ta = float(np.trace(A)) / A.shape[0]
    tg = float(np.trace(G)) / G.shape[0]
    pi = math.sqrt(ta / tg) if ta > 0 and tg > 0 else 1.0
    return (_spd_inverse(A, pi * gamma, f"{label}: activation factor A"),
            _spd_inverse(G, gamma / pi, f"{label}: gradient factor G"))


def _spd_inverse(M, shift, what):
    Ms = np.array(M, dtype=np.float64, copy=True)
    Ms[np.diag_indices_from(Ms)] += shift
    try:
        L = np.linalg.cholesky(Ms)
    except np.linalg.LinAlgError:
        raise SingularFisherError(f"{what} plus damping is singular (not positive definite); "
                                  "use a larger damping") from None
    Li = np.linalg.inv(L)
    inv = Li.T @ Li
    if not np.isfinite(inv).all():
        raise SingularFisherError(f"{what} plus damping is numerically singular; use a "
                                  "larger damping")
    return inv.astype(M.dtype)


def precondition(G_inv, V, A_inv):
    """``G^{-1} V A^{-1}``, the Kronecker-factored inverse applied to the gradient
    matrix ``V = [dW, db]`` (``(A (x) G)^{-1} vec(V) = vec(G^{-1} V A^{-1})``)."""
    return G_inv @ V @ A_inv
