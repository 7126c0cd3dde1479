"""Trust-region subproblem solvers and the Hessian access they share.

Each solver approximately minimizes the quadratic model

.. math::  m(p) = g^T p + \\tfrac12 p^T H p \\quad \\text{s.t.} \\quad \\|p\\| \\le \\Delta

and follows SciPy's protocol: ``solve(radius) -> (p, hits_boundary)``; after a
solve, ``model_value`` holds :math:`m(p)` (computed without an extra Hessian
product).  The inner loops run in Cython (:mod:`neurenix._ext._krylov`); only
the Hessian-vector product is a Python call.

* :class:`SteihaugCG` -- Steihaug-Toint truncated CG (Steihaug 1983, Toint 1981;
  Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.2).
* :class:`KrylovGLTR` -- generalized Lanczos trust-region method (Gould,
  Lucidi, Roma & Toint, "Solving the trust-region subproblem using the Lanczos
  method", SIAM J. Optim. 9(2):504-525, 1999).
* :class:`ExactMoreSorensen` -- nearly exact solution by Cholesky factorizations
  of ``H + lam I`` and Newton's method on the secular equation, hard case
  included (Moré & Sorensen, "Computing a trust region step", SIAM J. Sci. Stat.
  Comput. 4(3):553-572, 1983; N&W Algorithm 4.3).
* :class:`Dogleg` -- Powell's dogleg path between the Cauchy point and the
  Newton point (N&W section 4.1); requires a positive definite Hessian.
"""
import math

import numpy as np

from .._ext import _krylov
from .objective import _EVAL_MODES

__all__ = ["HessianOperator", "SteihaugCG", "KrylovGLTR", "ExactMoreSorensen", "Dogleg",
           "NotPositiveDefinite", "SUBPROBLEMS", "make_problem"]


class NotPositiveDefinite(Exception):
    """Raised by :class:`Dogleg` when the Hessian is not positive definite."""


def _symmetry_tol(dtype):
    return 100.0 * math.sqrt(float(np.finfo(dtype).eps))


def check_hessian_matrix(H, n, dtype, check_symmetry=True):
    """Validate what ``hess`` returned; return it as a dense array, sparse matrix or
    LinearOperator of shape (n, n).  Errors name ``hess``."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import LinearOperator
    if isinstance(H, LinearOperator):
        if tuple(H.shape) != (n, n):
            raise ValueError(f"hess must return a square ({n}, {n}) matrix, got shape "
                             f"{tuple(H.shape)}")
        return H
    if sp.issparse(H):
        if H.shape != (n, n):
            raise ValueError(f"hess must return a square ({n}, {n}) matrix, got shape {H.shape}")
        H = sp.csr_array(H) if hasattr(sp, "csr_array") else sp.csr_matrix(H)
        if not np.all(np.isfinite(H.data)):
            raise ValueError("hess returned non-finite values")
        if check_symmetry and H.nnz:
            scale = max(1.0, float(np.abs(H.data).max()))
            asym = abs(H - H.T)
            if asym.nnz and float(asym.max()) > _symmetry_tol(dtype) * scale:
                raise ValueError("hess must return a symmetric matrix (|H - H^T| = "
                                 f"{float(asym.max()):.3g})")
        return H
    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"hess must return a square matrix, got shape {H.shape}")
    if H.shape != (n, n):
        raise ValueError(f"hess must return a ({n}, {n}) matrix, got shape {H.shape}")
    if H.dtype.kind not in "fiub":
        raise TypeError(f"hess must return a real matrix, got dtype {H.dtype}")
    H = np.ascontiguousarray(H, dtype=dtype)
    if not np.all(np.isfinite(H)):
        raise ValueError("hess returned non-finite values")
    if check_symmetry and n:
        scale = max(1.0, float(np.abs(H).max()))
        asym = float(np.abs(H - H.T).max())
        if asym > _symmetry_tol(dtype) * scale:
            raise ValueError(f"hess must return a symmetric matrix (max |H - H^T| = {asym:.3g})")
    return H


class HessianOperator:
    """Hessian access at one point ``x`` for the subproblem solvers.

    With a user ``hess``, the matrix is evaluated once (one ``nhev``) and
    validated (square, finite, and -- when ``check_symmetry``, which the
    drivers pass for the first point only, the check costing O(n^2) --
    symmetric); products are ``H @ p``.  Otherwise
    products come from the objective's ``hessp`` (user ``hessp`` -- validated
    for shape and finiteness -- or finite differences of the gradient).

    ``nprod`` counts the Hessian-vector products made.
    """

    def __init__(self, obj, x, check_symmetry=True, H=None):
        self.obj = obj
        self.x = x
        self.n = obj.n
        self.dtype = obj.dtype
        self.nprod = 0
        self._dense = None
        self.H = None
        if obj.has_hessian:
            if H is None:           # else: what the user's hess returned at x, already counted
                H = obj.hess(x)
            self.H = check_hessian_matrix(H, self.n, self.dtype, check_symmetry=check_symmetry)
            if isinstance(self.H, np.ndarray):
                self._dense = self.H

    def matvec(self, p):
        """``H @ p`` as a C-contiguous array of x's dtype (validated)."""
        self.nprod += 1
        if self.H is not None:
            out = self.H @ p
            out = np.ascontiguousarray(np.asarray(out).reshape(-1), dtype=self.dtype)
            if out.shape != (self.n,):
                raise ValueError(f"hess @ p has shape {out.shape}, expected ({self.n},)")
            if not np.all(np.isfinite(out)):
                raise ValueError("hess returned an operator whose product is not finite")
            return out
        out = self.obj.hessp(self.x, p)
        if not self.obj.has_hessp and not np.all(np.isfinite(out)):
            raise ValueError("finite-difference Hessian-vector product is not finite "
                             "(the gradient is not finite near x); pass hess or hessp")
        return out

    __call__ = matvec

    def dense(self):
        """The Hessian as a dense (n, n) array: the user's matrix (sparse and
        LinearOperator converted), or assembled from ``n`` products and
        symmetrized when only ``hessp``/finite differences are available."""
        if self._dense is not None:
            return self._dense
        import scipy.sparse as sp
        if self.H is not None and sp.issparse(self.H):
            D = np.ascontiguousarray(self.H.toarray(), dtype=self.dtype)
        else:
            D = np.empty((self.n, self.n), dtype=self.dtype)
            e = np.zeros(self.n, dtype=self.dtype)
            for i in range(self.n):
                e[i] = 1
                D[:, i] = self.matvec(e)
                e[i] = 0
            if self.H is None:
                D = 0.5 * (D + D.T)
            D = np.ascontiguousarray(D)
        self._dense = D
        return D


def make_problem(obj, *, dense=False, eps=None):
    """The compiled loops' view (:class:`neurenix._ext._krylov.Problem`) of a
    :class:`~neurenix._core.objective.ScalarObjective`.

    Hessian products come from the user's ``hessp`` called directly when it is
    given (and ``hess`` is not); from a :class:`HessianOperator` per point
    when ``hess`` is given, when ``dense`` (the dense subproblems), or for the
    objective's finite differences; or, with ``eps``, from SciPy's
    ``(g(x + eps p) - g(x)) / eps`` (Newton-CG's ``eps`` option).  ``f`` and
    ``g`` go straight to the user's ``fun``/``jac`` when those are callables,
    otherwise through the objective (finite-difference gradients).
    """
    fun, jac, hess, hessp = obj.callables()
    mode = _EVAL_MODES.get(obj.mode, 2)
    if obj.has_hessian or dense:
        hmode = 1
    elif obj.has_hessp:
        hmode = 0
    elif eps is not None:
        hmode = 2
    else:
        hmode = 1
        mode = 2      # the objective's finite-difference products use its gradient cache

    def hop_factory(x, first):
        return HessianOperator(obj, x, check_symmetry=first)

    def dense_fallback(H, first):
        # what the user's hess returned, validated (symmetry at the first point) and
        # made a dense C-contiguous matrix of the working dtype
        return HessianOperator(obj, None, check_symmetry=first, H=H)

    return _krylov.Problem(obj, mode, hmode, fun, jac, hessp, tuple(obj.args), hop_factory,
                           0.0 if eps is None else float(eps), obj.n, obj.dtype,
                           hess=hess if dense else None, dense_fallback=dense_fallback)


class _Subproblem:
    """Quadratic model at ``x`` (value f, gradient g, Hessian access ``hop``)."""

    def __init__(self, x, f, g, hop):
        self.x = x
        self.fun = f
        self.jac = g
        self.hop = hop
        self.jac_mag = float(np.linalg.norm(g))
        self.model_value = 0.0
        self.lam = 0.0
        self.inner_iterations = 0

    def solve(self, radius):  # pragma: no cover - abstract
        raise NotImplementedError

    def _forcing_tol(self):
        # residual tolerance of the inexact solves: min(0.5, sqrt(|g|)) |g| (N&W 7.1)
        return min(0.5, math.sqrt(self.jac_mag)) * self.jac_mag


class SteihaugCG(_Subproblem):
    """Steihaug-Toint truncated conjugate gradients (N&W Algorithm 7.2).

    Parameters
    ----------
    maxiter : int, optional
        Cap on CG iterations per solve (default ``2 n``).
    """

    def __init__(self, x, f, g, hop, maxiter=None):
        super().__init__(x, f, g, hop)
        self.maxiter = max(2 * g.size, 1) if maxiter is None else int(maxiter)

    def solve(self, radius):
        p = np.empty_like(self.jac)
        hits, model, status, k = _krylov.steihaug_cg(self.jac, self.hop, float(radius),
                                                     self._forcing_tol(), self.maxiter, p)
        self.model_value = float(model)
        self.inner_iterations = k
        return p, bool(hits)


class KrylovGLTR(_Subproblem):
    """Generalized Lanczos trust-region method (Gould, Lucidi, Roma & Toint 1999).

    The subproblem is solved nearly exactly on the growing Krylov space
    ``span{g, Hg, H^2 g, ...}``: Lanczos tridiagonalization ``T_k = Q_k^T H Q_k``
    and, after each step, Moré-Sorensen on ``T_k`` (Sturm bisection for its
    smallest eigenvalue, hard case included).  Stops when the residual of the
    full problem, ``beta_{k+1} |h_k|``, is below ``min(0.5, sqrt|g|) |g|``
    (``inexact=True``, SciPy's default) or below ``1e-8 |g|`` (``inexact=False``).
    When the Krylov space becomes invariant early, one restart from a vector
    orthogonal to it lets the method see negative curvature orthogonal to the
    gradient (the hard case).

    The Krylov space (:class:`neurenix._ext._krylov.Lanczos`) is kept between
    solves: a second ``solve`` with another radius (a rejected trust-region
    step) re-solves the tridiagonal problem and extends the space only if the
    residual test then fails.
    """

    def __init__(self, x, f, g, hop, maxiter=None, inexact=True):
        super().__init__(x, f, g, hop)
        self.maxiter = g.size if maxiter is None else int(maxiter)
        self.inexact = inexact
        self._lanczos = _krylov.Lanczos(g, 1)

    def solve(self, radius):
        p = np.empty_like(self.jac)
        tol = self._forcing_tol() if self.inexact else 1e-8 * self.jac_mag
        hits, model, lam, k = _krylov.gltr_solve(self._lanczos, self.hop, float(radius), tol,
                                                 self.maxiter, p)
        self.model_value = float(model)
        self.lam = float(lam)
        self.inner_iterations = k
        return p, bool(hits)


class ExactMoreSorensen(_Subproblem):
    """Nearly exact trust-region step (Moré & Sorensen 1983; N&W Algorithm 4.3;
    Conn, Gould & Toint, *Trust-Region Methods*, 2000, Algorithm 7.3.4).

    Finds ``lam >= max(0, -lambda_min(H))`` with ``(H + lam I) p = -g`` and
    ``||p|| = radius`` (or ``lam = 0`` and ``||p|| <= radius``) by safeguarded
    Newton iterations on ``1/||p(lam)|| - 1/radius``, each with a Cholesky
    factorization by LAPACK ``?potrf``.  The safeguarding interval starts from
    Gershgorin bounds and norms of H; a failed factorization raises its lower
    end by the shift that makes a leading block singular, and the smallest
    singular value of the Cholesky factor (LINPACK's estimator, Cline, Moler,
    Stewart & Wilkinson 1979) raises it too.  In the hard case (``g`` nearly
    orthogonal to the eigenspace of ``lambda_min``) the estimated null vector
    ``z`` is added so that ``||p + tau z|| = radius``; the step is accepted when
    ``tau^2 z^T (H + lam I) z <= k_hard (p^T (H + lam I) p + lam radius^2)``.
    Same iteration, tests and defaults as SciPy's ``trust-exact``.

    The whole solve is compiled (:class:`neurenix._ext._krylov.DenseSubproblem`,
    the code ``minimize(method="trust-exact")`` runs inside its compiled loop);
    this class is its face with SciPy's subproblem protocol.  A band Hessian (at
    most ``n // 8`` nonzero diagonals on each side) is factored by a band
    Cholesky instead of ``?potrf``: the same factor, so the same step to rounding.

    Parameters
    ----------
    k_easy, k_hard : float
        Relative accuracy of ``||p||`` against the radius, and of the model
        value in the hard case (Moré-Sorensen's sigma_1, sigma_2; defaults as
        SciPy's ``trust-exact``).
    maxiter : int
        Factorization rounds per solve (SciPy's ``subproblem_maxiter``, 25).
        When they run out, the last step (scaled into the region) is returned.
    """

    def __init__(self, x, f, g, hop, k_easy=0.1, k_hard=0.2, maxiter=25):
        super().__init__(x, f, g, hop)
        self.H = np.ascontiguousarray(hop.dense(), dtype=g.dtype)
        self.k_easy = k_easy
        self.k_hard = k_hard
        self.maxiter = maxiter
        self._ds = _krylov.DenseSubproblem(g.size, g.dtype, float(k_easy), float(k_hard),
                                           int(maxiter))
        self._ds.set_point(self.H, np.ascontiguousarray(g))

    def solve(self, radius):
        p, hits, model = self._ds.solve(float(radius))
        self.lam = self._ds.lam
        self.inner_iterations = self._ds.niter
        self.model_value = float(model)
        return p, hits


class Dogleg(_Subproblem):
    """Powell's dogleg step (N&W section 4.1) for a positive definite Hessian.

    The path runs from 0 to the Cauchy point ``-(g^T g / g^T H g) g`` and then
    to the Newton point ``-H^{-1} g`` (Cholesky by LAPACK ``?potrf``, or a band
    Cholesky for a band Hessian, as :class:`ExactMoreSorensen`); the step
    is the Newton point when it lies strictly inside the region, else where the
    path leaves it.  The Newton point and ``H g`` are computed once per point
    (compiled: :class:`neurenix._ext._krylov.DenseSubproblem`).  Raises
    :class:`NotPositiveDefinite` when the Cholesky factorization fails.
    """

    def __init__(self, x, f, g, hop):
        super().__init__(x, f, g, hop)
        self.H = np.ascontiguousarray(hop.dense(), dtype=g.dtype)
        self._ds = _krylov.DenseSubproblem(g.size, g.dtype)
        self._ds.set_point(self.H, np.ascontiguousarray(g))

    def solve(self, radius):
        out = self._ds.solve(float(radius), True)
        if out is None:
            raise NotPositiveDefinite("the Hessian is not positive definite")
        p, hits, model = out
        self.model_value = float(model)
        return p, hits


#: subproblem name -> class (the ``subproblem`` argument of the trust-region loop)
SUBPROBLEMS = {
    "cg": SteihaugCG,
    "steihaug": SteihaugCG,
    "krylov": KrylovGLTR,
    "gltr": KrylovGLTR,
    "exact": ExactMoreSorensen,
    "dogleg": Dogleg,
}
