"""``GaussNewton``: a closure-driven Gauss-Newton / Levenberg-Marquardt optimizer.

The closure returns the residual vector ``r(theta)`` (not a scalar loss); the
optimizer minimizes ``0.5 * ||r||**2``.  Each :meth:`GaussNewton.step` forms the
Jacobian (a user callable, or forward differences that perturb the parameters'
``.data`` in place and restore it), then solves the damped normal equations

    (J^T J + lambda D^2) p = -J^T r,   D = diag(column norms of J)

as the least-squares problem ``min || [J; sqrt(lambda) D] p + [r; 0] ||`` by QR with
column pivoting (LAPACK ``dgeqp3`` in Cython, :func:`neurenix._ext._lsq.qr_lstsq`;
no normal equations are formed).  With damping (the default) the step is
accepted only if it lowers the cost; ``lambda`` is divided by ``damping_decrease``
after a success and multiplied by ``damping_increase`` after a failure (Marquardt
1963; Nielsen's simple schedule).  ``damping=0`` gives plain Gauss-Newton with step
length ``lr``.

References
----------
K. Levenberg, "A method for the solution of certain non-linear problems in least
squares", Q. Appl. Math. 2 (1944); D. W. Marquardt, "An algorithm for least-squares
estimation of nonlinear parameters", SIAM J. Appl. Math. 11 (1963); J. J. Moré,
"The Levenberg-Marquardt algorithm: implementation and theory" (1978) for the
scaling by column norms.
"""
import numpy as np

from .._ext import _lsq as _k
from .optimizer import Optimizer
from .._core.residuals import check_jacobian, check_residuals
from .._core.validation import check_lr, check_nonneg, check_positive

__all__ = ["GaussNewton"]



class GaussNewton(Optimizer):
    """Gauss-Newton with Levenberg-Marquardt damping over :class:`Parameter` objects.

    Parameters
    ----------
    params : iterable of Parameter or a single param group (dict)
        Like ``torch.optim.LBFGS``, only one param group is supported.  NumPy
        parameters only; the solve runs in float64 and the result is cast back to
        each parameter's dtype.
    lr : float, default 1.0
        Step length multiplying the (damped) Gauss-Newton step.
    damping : float, default 1e-3
        Initial Levenberg-Marquardt parameter ``lambda`` (``0`` turns damping off:
        plain Gauss-Newton, every step accepted).
    damping_increase, damping_decrease : float, default 10.0, 3.0
        Factors applied to ``lambda`` after a rejected / accepted trial step (> 1).
    max_trials : int, default 10
        Trial steps per :meth:`step` before giving up (parameters left unchanged).
    jacobian : callable, optional
        ``jacobian() -> (m, n)`` array at the current parameter values, columns
        ordered as the parameters' flattened ``.data`` in group order.  Default:
        forward differences with SciPy's steps ``sqrt(eps) * sign(theta_j) *
        max(1, |theta_j|)``, ``eps`` that of the parameters' dtype (the shared
        :func:`neurenix._ext._lsq.fd_columns`).

    Notes
    -----
    ``step(closure)`` returns the cost ``0.5 * ||r||**2`` at the parameters it was
    called with (as ``torch.optim.LBFGS`` returns the first loss).  The state
    (``lambda``, step count, last cost) lives in ``state[first parameter]`` and
    round-trips through ``state_dict``.
    """

    def __init__(self, params, lr=1.0, damping=1e-3, damping_increase=10.0,
                 damping_decrease=3.0, max_trials=10, jacobian=None):
        if jacobian is not None and not callable(jacobian):
            raise TypeError(f"jacobian must be callable or None, got {type(jacobian).__name__}")
        defaults = dict(lr=lr, damping=damping, damping_increase=damping_increase,
                        damping_decrease=damping_decrease, max_trials=max_trials)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("params: GaussNewton supports only one param group")
        for p in self.param_groups[0]["params"]:
            if not isinstance(p.data, np.ndarray):
                raise TypeError("params: GaussNewton works on NumPy parameters only")
        self.jacobian = jacobian

    def _check_group(self, group):
        check_lr(group["lr"])
        check_nonneg(group["damping"], "damping")
        for k in ("damping_increase", "damping_decrease"):
            check_positive(group[k], k)
            if group[k] <= 1:
                raise ValueError(f"{k} must be > 1, got {group[k]!r}")
        mt = group["max_trials"]
        if isinstance(mt, bool) or not isinstance(mt, (int, np.integer)) or mt < 1:
            raise ValueError(f"max_trials must be a positive integer, got {mt!r}")

    # flat view of the group ------------------------------------------------
    def _params(self):
        return self.param_groups[0]["params"]

    def _get(self):
        return np.concatenate([p.data.ravel().astype(np.float64) for p in self._params()])

    def _set(self, theta):
        i = 0
        for p in self._params():
            k = p.data.size
            p.data[...] = theta[i:i + k].reshape(p.data.shape).astype(p.data.dtype)
            i += k

    @staticmethod
    def _residual(closure):
        return check_residuals(closure(), what="closure")

    def _jac(self, closure, theta, r):
        n = theta.size
        if self.jacobian is not None:
            return check_jacobian(self.jacobian(), r.size, n, what="jacobian")
        # SciPy's forward-difference step rule (neurenix._ext._lsq.fd_steps) with the
        # epsilon of the least precise parameter dtype, rounded to a step the
        # parameters can hold; the columns by the shared kernel (fd_columns)
        eps = max(float(np.finfo(p.data.dtype).eps) for p in self._params())
        h = _k.fd_steps(theta, "2-point", None, eps)
        try:
            self._set(theta + h)
            h = self._get() - theta                 # the steps actually representable
            if np.any(h == 0):
                raise ValueError("jacobian: finite-difference step vanished in the "
                                 "parameters' dtype; pass jacobian=")

            def fun(x):
                self._set(x)
                return self._residual(closure)
            J = _k.fd_columns(fun, theta, r, h, np.zeros(n, dtype=bool), False, "closure")
        finally:
            self._set(theta)
        if not np.isfinite(J).all():
            raise ValueError("closure returned non-finite residuals at a finite-difference "
                             "point; pass jacobian=")
        return J

    def step(self, closure):
        """One Gauss-Newton / Levenberg-Marquardt step.

        Parameters
        ----------
        closure : callable
            Returns the residual vector at the current parameter values.

        Returns
        -------
        float
            ``0.5 * ||r||**2`` at the parameters on entry.
        """
        if closure is None or not callable(closure):
            raise TypeError("closure: GaussNewton.step needs a closure returning residuals")
        group = self.param_groups[0]
        self._check_group(group)
        first = self._params()[0]
        st = self.state.get(first)
        if not st:
            st = self.state[first] = {"step": 0, "damping": float(group["damping"]),
                                      "cost": float("nan")}
        theta = self._get()
        r = self._residual(closure)
        if not np.all(np.isfinite(r)):
            raise ValueError("closure returned non-finite residuals")
        cost = 0.5 * float(r @ r)
        J = self._jac(closure, theta, r)
        lam = float(st["damping"])
        lr = float(group["lr"])
        damped = group["damping"] > 0
        d = np.linalg.norm(J, axis=0)
        d[d == 0] = 1.0
        new_cost = cost
        for _ in range(int(group["max_trials"]) if damped else 1):
            if damped:
                A = np.vstack((J, np.sqrt(lam) * np.diag(d)))
                b = np.concatenate((r, np.zeros(theta.size)))
            else:
                A, b = J, r
            p, _ = _k.qr_lstsq(A, b)
            trial = theta + lr * p
            self._set(trial)
            if not damped:
                break
            rt = self._residual(closure)
            ct = 0.5 * float(rt @ rt) if np.all(np.isfinite(rt)) else np.inf
            if ct < cost:
                lam = lam / group["damping_decrease"]
                new_cost = ct
                break
            lam = lam * group["damping_increase"]
            self._set(theta)
        st["step"] += 1
        st["damping"] = lam
        st["cost"] = new_cost if damped else float("nan")
        return cost
