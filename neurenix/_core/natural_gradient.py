"""Natural-gradient pieces shared by ``minimize(method="natural-gradient")`` and
:class:`neurenix.optim.NaturalGradient` (one home for each).

A natural-gradient step (Amari 1998) solves ``(F + lambda I) p = -g`` for the
Fisher information ``F`` of the model's predictive distribution, damped by
``lambda`` (Martens 2010).  ``F`` is never formed: the solve is conjugate
gradients on Fisher-vector products, run by the package's one CG loop
(:func:`neurenix._ext._krylov.cg_newton`) on one of three curvature sources:

* the model's output Jacobian ``J`` and the Fisher of the loss in the outputs
  ``H`` -- the generalized Gauss-Newton matrix ``J^T H J``, which *is* the
  Fisher for losses that are negative log-likelihoods of exponential-family
  outputs in their natural parameters (Martens 2020, section 9.2), and then also
  the Hessian when the link is canonical and the model is linear (GLMs: the
  step with ``lr = 1, lambda = 0`` is Newton's, i.e. IRLS);
* per-sample gradients ``G`` (rows): the *empirical* Fisher ``G^T G / N``
  (Martens 2020, section 11, on why it is not the Fisher in general);
* a user's Fisher-vector product ``v -> F v``.

The Jacobian and per-sample-gradient products are compiled
(:class:`neurenix._ext._natgrad.FisherOperator`).

References
----------
S. Amari, "Natural gradient works efficiently in learning", Neural Computation
10(2):251-276, 1998.
J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
approximate curvature", ICML 2015.
J. Martens, "New insights and perspectives on the natural gradient method",
JMLR 21(146):1-76, 2020.
"""
import numpy as np

from .._ext import _krylov
from .._ext._natgrad import FisherOperator

__all__ = ["SingularFisherError", "as_real_array", "jacobian_fisher", "empirical_fisher",
           "CallableFisher", "natural_direction", "predicted_change", "adapt_damping"]


class SingularFisherError(np.linalg.LinAlgError):
    """The damped Fisher matrix ``F + damping I`` is singular (or not positive
    semidefinite) along a conjugate-gradient direction; raise ``damping``."""


def as_real_array(a, name, dtype, ndim_ok):
    """``a`` as a C-contiguous array of ``dtype`` with ``ndim`` in ``ndim_ok``, finite;
    errors name ``name``."""
    try:
        arr = np.asarray(a)
    except Exception as e:  # noqa: BLE001 - anything NumPy cannot read
        raise TypeError(f"{name} must be an array, got {type(a).__name__}") from e
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if arr.ndim not in ndim_ok:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim_ok))} dimensions, "
                         f"got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def jacobian_fisher(J, H, n, dtype, name="ggn"):
    """The operator ``v -> (J^T H J + damping I) v`` from validated ``J``, ``H``.

    ``J`` has shape ``(m, n)`` with ``H`` of shape ``(m,)`` (diagonal) or None
    (identity), or ``J`` has shape ``(N, K, n)`` with ``H`` of shape ``(N, K, K)``
    (one block per sample).  Both are cast to ``dtype``; errors name ``name``.
    """
    J = as_real_array(J, f"{name}: J", dtype, (2, 3))
    if J.shape[-1] != n:
        raise ValueError(f"{name}: J must have {n} columns (one per variable), got shape "
                         f"{J.shape}")
    if H is None:
        if J.ndim == 3:
            raise ValueError(f"{name}: a 3-D J of shape (N, K, n) needs H of shape (N, K, K)")
        return FisherOperator(J)
    H = as_real_array(H, f"{name}: H", dtype, (1, 3))
    if J.ndim == 2:
        if H.shape != (J.shape[0],):
            raise ValueError(f"{name}: H must have shape ({J.shape[0]},) for J of shape "
                             f"{J.shape}, got {H.shape}")
        return FisherOperator(J, H)
    N, K = J.shape[0], J.shape[1]
    if H.shape != (N, K, K):
        raise ValueError(f"{name}: H must have shape ({N}, {K}, {K}) for J of shape {J.shape}, "
                         f"got {H.shape}")
    return FisherOperator(J.reshape(N * K, n), H)


def empirical_fisher(G, n, dtype, name="sample_grads"):
    """The operator ``v -> (G^T G / N + damping I) v`` of per-sample gradients ``G``
    (shape ``(N, n)``, one row per sample)."""
    G = as_real_array(G, name, dtype, (2,))
    if G.shape[1] != n or G.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, {n}) with N >= 1, got {G.shape}")
    return FisherOperator(G, None, 1.0 / G.shape[0])


class CallableFisher:
    """A user's ``fvp(v) -> F v`` as a damped, validated, counted operator."""

    def __init__(self, fvp, n, dtype, name="fvp"):
        self.fvp = fvp
        self.n = n
        self.dtype = np.dtype(dtype)
        self.name = name
        self.damping = 0.0
        self.nprod = 0

    def __call__(self, v):
        out = self.fvp(np.array(v, copy=True))
        self.nprod += 1
        arr = np.asarray(out)
        if arr.shape != (self.n,):
            raise ValueError(f"{self.name} must return an array of shape ({self.n},), got "
                             f"shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{self.name} must return a real array, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.isfinite(arr).all():
            raise ValueError(f"{self.name} returned NaN or inf")
        if self.damping:
            arr = arr + self.dtype.type(self.damping) * v
        return arr


def natural_direction(op, g, tol, maxiter, name="fvp"):
    """Solve ``(F + damping I) p = -g`` by CG from ``p = 0``; return ``(p, cg_iters)``.

    ``op`` is a :class:`FisherOperator` or :class:`CallableFisher` with its
    ``damping`` set.  CG stops at ``||r|| <= tol`` or after ``maxiter``
    products.  Raises :class:`SingularFisherError` when a direction ``d`` with
    ``d^T (F + damping I) d <= 0`` is met.
    """
    p = np.empty_like(g)
    try:
        status, it = _krylov.cg_newton(g, op, float(tol), int(maxiter), p)
    except ValueError as e:
        if "non-finite" in str(e):
            raise ValueError(f"{name}: the Fisher-vector product is not finite "
                             "(overflow); rescale the problem") from None
        raise
    if status == _krylov.CG_NEGATIVE_CURVATURE:
        raise SingularFisherError(
            f"the damped Fisher matrix (damping={op.damping:g}) is singular or not positive "
            f"semidefinite along a CG direction ({name}); use a larger damping")
    return p, it


def predicted_change(g, p, damping, lr):
    """Change of the *undamped* quadratic model ``g^T s + s^T F s / 2`` at ``s = lr p``
    (Martens & Grosse 2015, section 6.5), for a CG solution ``p`` of
    ``(F + damping I) p = -g`` from zero.

    CG's Galerkin condition (the residual is orthogonal to the Krylov space that
    holds ``p``) gives ``p^T (F + damping I) p = -g^T p`` with no further
    product, so ``p^T F p = -g^T p - damping ||p||^2``.
    """
    gp = float(g @ p)
    pFp = -gp - damping * float(p @ p)
    return lr * gp + 0.5 * lr * lr * pFp


def adapt_damping(damping, rho, boost=1.5, drop=2.0 / 3.0):
    """Levenberg-Marquardt rule of Martens (2010), section 4.1: multiply ``damping``
    by ``boost`` when the reduction ratio ``rho < 1/4``, by ``drop`` when
    ``rho > 3/4``."""
    if not rho >= 0.25:          # also NaN
        return damping * boost
    if rho > 0.75:
        return damping * drop
    return damping
