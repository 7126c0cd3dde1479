"""Data-parallel ``minimize`` and ``least_squares``: the objective is a sum over ranks.

Each rank holds one shard of the data and a *local* objective on it.  The
global objective is

- ``minimize``: :math:`f(x) = \\sum_r f_r(x)` (gradients, Hessian-vector
  products and Hessians add up the same way), and
- ``least_squares``: the residual vector :math:`F(x) = [F_0(x); F_1(x); ...]`,
  the rank-ordered concatenation of every rank's residual block (the Jacobian
  is the concatenation of the row blocks).

The root (rank 0) runs the serial solver — :func:`neurenix.optimize.minimize`
or :func:`neurenix.optimize.least_squares`, never a second implementation —
on an objective whose every evaluation is a collective: the root broadcasts a
command code (``EVAL_F``, ``EVAL_FG``, ``EVAL_G``, ``EVAL_HV``, ``EVAL_HESS``,
``EVAL_RES``, ``EVAL_JAC``, then ``STOP`` or ``ABORT``) and the point ``x``
(``Bcast`` on a contiguous buffer), every rank evaluates its shard, a failure
flag is all-reduced (:func:`neurenix.distributed.collective_errors`), and the
pieces are combined with ``Reduce`` (sums) or ``Gatherv`` (residual and
Jacobian row blocks) on the root.  The other ranks serve evaluations in a loop
until ``STOP``; the result is then broadcast, so every rank returns the same
:class:`~neurenix.optimize.OptimizeResult`.

No rank is ever left waiting:

- an exception in any rank's ``local_fun`` (or a malformed return value) is
  detected by the failure flag of that evaluation, and *every* rank raises
  (the failing rank its own exception, the others
  :class:`~neurenix.distributed.DistributedError`);
- an exception on the root outside an evaluation (bad options, a callback
  raising, an error inside the solver) is sent to the workers as ``ABORT``;
  they raise :class:`~neurenix.distributed.DistributedError`.

The result equals the serial solve on the pooled data up to the rounding of
the sum (``Reduce`` adds the ranks' contributions in its own order).
"""
import numpy as np

from ..optimize import minimize as _serial_minimize, least_squares as _serial_least_squares
from .._core.objective import as_float_array
from ._comm import (get_comm, mpi, collective_errors, DistributedError, wait_all,
                    get_default_timeout, _check_timeout)

__all__ = ["minimize", "least_squares", "EVAL_F", "EVAL_FG", "EVAL_G", "EVAL_HV",
           "EVAL_HESS", "EVAL_RES", "EVAL_JAC", "STOP", "ABORT"]

# command codes broadcast by the root before each collective step
STOP, ABORT, EVAL_F, EVAL_FG, EVAL_G, EVAL_HV, EVAL_HESS, EVAL_RES, EVAL_JAC = range(9)
_NAMES = {STOP: "STOP", ABORT: "ABORT", EVAL_F: "EVAL_F", EVAL_FG: "EVAL_FG", EVAL_G: "EVAL_G",
          EVAL_HV: "EVAL_HV", EVAL_HESS: "EVAL_HESS", EVAL_RES: "EVAL_RES", EVAL_JAC: "EVAL_JAC"}


class _RootAborted(DistributedError):
    pass


class _Service:
    """The evaluation protocol shared by the root (client) and the workers (servers).

    ``local`` maps a command code to a function of the broadcast vectors that
    returns this rank's contribution (a 1-D float64 array for the reduced
    commands, a 1-D or 2-D array of rows for the gathered ones).
    """

    def __init__(self, comm, n, dtype, local, timeout):
        self.comm = comm
        self.timeout = timeout
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.n = n
        self.dtype = dtype
        self.local = local
        self._cmd = np.zeros(1, dtype=np.int64)
        self.failed = None     # the exception of an evaluation that failed collectively

    # ---------------------------------------------------------- both sides
    def _bcast_vec(self, v):
        buf = np.empty(self.n, dtype=self.dtype) if v is None else \
            np.array(v, dtype=self.dtype, order="C", copy=True)
        self.comm.Bcast(buf, root=0)
        return buf

    def _evaluate(self, cmd, vecs):
        """Local evaluation under the failure flag, then the combination (collective)."""
        MPI = mpi()
        out = None
        with collective_errors(self.comm, what=f"{_NAMES[cmd]} of local_fun", timeout=self.timeout):
            out = self.local[cmd](*vecs)
        if cmd in (EVAL_RES, EVAL_JAC):
            rows = out if out.ndim == 2 else out.reshape(-1, 1)
            width = rows.shape[1]
            mine = np.array([rows.shape[0] * width], dtype=np.int64)
            counts = np.empty(self.size, dtype=np.int64) if self.rank == 0 else None
            self.comm.Gather(mine, counts, root=0)
            if self.rank == 0:
                total = np.empty(int(counts.sum()), dtype=np.float64)
                displs = np.concatenate(([0], np.cumsum(counts)[:-1]))
                self.comm.Gatherv(np.ascontiguousarray(rows, dtype=np.float64).reshape(-1),
                                  [total, counts, displs, MPI.DOUBLE], root=0)
                return total.reshape(-1, width) if out.ndim == 2 else total
            self.comm.Gatherv(np.ascontiguousarray(rows, dtype=np.float64).reshape(-1),
                              None, root=0)
            return None
        send = np.ascontiguousarray(out, dtype=np.float64)
        recv = np.empty_like(send) if self.rank == 0 else None
        self.comm.Reduce(send, recv, op=MPI.SUM, root=0)
        return recv

    def _bcast_cmd(self):
        """The command broadcast; with a timeout an ``Ibcast`` waited on with a deadline
        (the workers wait here while the root's solver works between evaluations)."""
        if self.timeout is None:
            self.comm.Bcast(self._cmd, root=0)
        else:
            wait_all(self.comm.Ibcast(self._cmd, root=0), self.comm, self.timeout,
                     what="the root's next command")

    # -------------------------------------------------------------- root
    def call(self, cmd, *vecs):
        """Root: run one collective evaluation and return the combined value."""
        self._cmd[0] = cmd
        self._bcast_cmd()
        vecs = [self._bcast_vec(v) for v in vecs]
        try:
            return self._evaluate(cmd, vecs)
        except Exception as e:
            self.failed = e    # every rank knows: the workers have left their loop
            raise

    def finish(self, result=None, error=None):
        """Root: end the workers' loop (STOP, then the result) or abort it."""
        if self.failed is not None:
            return        # the workers raised with the failed evaluation already
        self._cmd[0] = ABORT if error is not None else STOP
        self._bcast_cmd()
        if error is None:
            self.comm.bcast(result, root=0)
        else:
            self.comm.bcast(f"{type(error).__name__}: {error}", root=0)

    # ----------------------------------------------------------- workers
    def serve(self):
        """Workers: evaluate until STOP (return the root's result) or ABORT (raise)."""
        nvec = {EVAL_F: 1, EVAL_FG: 1, EVAL_G: 1, EVAL_HV: 2, EVAL_HESS: 1,
                EVAL_RES: 1, EVAL_JAC: 1}
        while True:
            self._bcast_cmd()
            cmd = int(self._cmd[0])
            if cmd == STOP:
                return self.comm.bcast(None, root=0)
            if cmd == ABORT:
                msg = self.comm.bcast(None, root=0)
                raise _RootAborted(f"the root (rank 0) failed: {msg}", ranks=[0])
            vecs = [self._bcast_vec(None) for _ in range(nvec[cmd])]
            self._evaluate(cmd, vecs)


def _flat(value, n, what):
    a = np.asarray(value, dtype=np.float64)
    if a.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {a.shape}")
    return a


def _scalar(value, what):
    a = np.asarray(value, dtype=np.float64)
    if a.size != 1:
        raise ValueError(f"{what} must be a scalar, got shape {a.shape}")
    return a.reshape(1)


def _setup(comm, x0, timeout):
    """Root's x0 (validated everywhere) and agreement on its size and dtype."""
    comm = get_comm(comm)
    timeout = get_default_timeout() if timeout == "default" else _check_timeout(timeout)
    x = None
    with collective_errors(comm, what="validation of x0", timeout=timeout):
        x = as_float_array(x0, "x0")
    meta = comm.bcast((x.shape[0], x.dtype.str), root=0)
    with collective_errors(comm, what="validation of x0", timeout=timeout):
        if (x.shape[0], x.dtype.str) != meta:
            raise ValueError(f"x0 on rank {comm.Get_rank()} has size {x.shape[0]} and dtype "
                             f"{x.dtype}, but the root's has size {meta[0]} and dtype "
                             f"{np.dtype(meta[1])}")
    return comm, x, timeout


def _run(comm, service, solve):
    """Root: solve, then STOP (or ABORT on failure); workers: serve.  Same result everywhere."""
    if service.rank != 0:
        return service.serve()
    try:
        res = solve()
    except BaseException as e:
        service.finish(error=e)
        raise
    if service.failed is not None:     # the solver swallowed a collective failure
        raise service.failed
    service.finish(result=res)
    return res


def minimize(local_fun, x0, args=(), method="L-BFGS", jac=True, hess=None, hessp=None,
             bounds=None, tol=None, callback=None, options=None, comm=None, timeout="default"):
    """Minimize :math:`f(x) = \\sum_r f_r(x)` where rank ``r`` holds ``f_r``.

    Every rank calls this function (it is collective).  The root runs
    :func:`neurenix.optimize.minimize` with the given ``method``, ``bounds``,
    ``tol``, ``callback`` and ``options``; each objective, gradient,
    Hessian-vector product or Hessian it asks for is evaluated on every rank's
    shard at the broadcast point and summed with ``Reduce``.

    Parameters
    ----------
    local_fun : callable
        ``local_fun(x, *args) -> f_r`` on this rank's data, or ``(f_r, g_r)``
        when ``jac=True``.
    x0 : array_like, shape (n,)
        The root's ``x0`` is used; every rank must pass one of the same size and
        dtype (float32 stays float32, as in the serial ``minimize``).
    args : tuple
        Extra arguments of ``local_fun``, ``jac``, ``hess``, ``hessp`` (per rank).
    method : str, default ``"L-BFGS"``
        Any method of :func:`neurenix.optimize.minimize` (``"L-BFGS"``,
        ``"Newton-CG"``, ``"trust-ncg"``, ``"trust-exact"``, ``"BFGS"``, ...).
    jac : True, callable, None, "2-point" or "3-point"
        ``True``: ``local_fun`` returns ``(f_r, g_r)`` (one collective per
        evaluation).  A callable ``jac(x, *args) -> g_r`` is summed the same way.
        Finite differences run on the root, each difference quotient being one
        collective evaluation of the global ``f``.
    hess, hessp : callable, optional
        Local Hessian ``hess(x, *args) -> (n, n)`` or Hessian-vector product
        ``hessp(x, p, *args) -> (n,)``; summed over ranks.
    bounds, tol, callback, options
        As in :func:`neurenix.optimize.minimize`; the callback runs on the root.
    comm : communicator, optional
        Default: the library's duplicate of ``COMM_WORLD``
        (:func:`neurenix.distributed.get_comm`).
    timeout : float or None, optional
        Deadline in seconds of the workers' wait for the root's next command
        and of every failure-flag reduction; past it the job is aborted
        (``comm.Abort(1)``, see :func:`neurenix.distributed.wait_all`).  It must
        exceed the root's longest stretch between two evaluations (solver work
        and callback).  Default: :func:`neurenix.distributed.get_default_timeout`
        (``None``: wait forever).

    Returns
    -------
    OptimizeResult
        The same object (broadcast from the root) on every rank.  ``nfev``,
        ``njev``, ``nhev`` count global (collective) evaluations.

    Raises
    ------
    DistributedError
        On every rank other than the failing one when ``local_fun`` raises on
        some rank, or on the workers when the root fails.

    Notes
    -----
    Data parallelism for second-order methods as in the "sum of local
    objectives" setting of e.g. Agarwal, Chapelle, Dudik & Langford (2014),
    "A reliable effective terascale linear learning system", JMLR 15, where
    L-BFGS runs on all-reduced gradients.

    Examples
    --------
    On one process (no ``mpiexec``) this is the serial solve:

    >>> import numpy as np
    >>> from neurenix import distributed
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, 1.0])
    >>> def local_fun(x):
    ...     r = A @ x - b
    ...     return 0.5 * r @ r, A.T @ r
    >>> res = distributed.minimize(local_fun, np.zeros(2), method="L-BFGS")
    >>> np.allclose(res.x, np.linalg.solve(A, b), atol=1e-6)
    True
    """
    if not callable(local_fun):
        raise TypeError(f"local_fun must be callable, got {type(local_fun).__name__}")
    if not isinstance(args, tuple):
        args = (args,)
    if jac is not True and not callable(jac) and jac not in (None, "2-point", "3-point"):
        raise ValueError("jac must be True, a callable, None, '2-point' or '3-point', "
                         f"got {jac!r}")
    for name, f in (("hess", hess), ("hessp", hessp)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be callable or None, got {type(f).__name__}")
    comm, x, timeout = _setup(comm, x0, timeout)
    n = x.shape[0]
    if comm.Get_size() == 1:
        return _serial_minimize(local_fun, x, args=args, method=method, jac=jac, hess=hess,
                                hessp=hessp, bounds=bounds, tol=tol, callback=callback,
                                options=options)

    def eval_f(xb):
        val = local_fun(xb, *args)
        if jac is True:
            if not (isinstance(val, tuple) and len(val) == 2):
                raise TypeError("local_fun must return (f, g) when jac=True")
            return np.concatenate((_scalar(val[0], "f"), _flat(val[1], n, "the gradient")))
        return _scalar(val, "local_fun(x)")

    local = {EVAL_F: eval_f, EVAL_FG: eval_f,
             EVAL_G: lambda xb: _flat(jac(xb, *args), n, "jac(x)"),
             EVAL_HV: lambda xb, p: _flat(hessp(xb, p, *args), n, "hessp(x, p)"),
             EVAL_HESS: lambda xb: np.asarray(hess(xb, *args), dtype=np.float64)}
    service = _Service(comm, n, x.dtype, local, timeout)

    def solve():
        def fun(xk, *_):
            v = service.call(EVAL_FG if jac is True else EVAL_F, xk)
            if jac is True:
                return float(v[0]), v[1:].astype(x.dtype)
            return float(v[0])

        def g(xk, *_):
            return service.call(EVAL_G, xk).astype(x.dtype)

        def hv(xk, p, *_):
            return service.call(EVAL_HV, xk, p).astype(x.dtype)

        def h(xk, *_):
            H = service.call(EVAL_HESS, xk)
            if H.shape != (n, n):
                raise ValueError(f"hess(x) must have shape ({n}, {n}), got {H.shape}")
            return H

        return _serial_minimize(fun, x, method=method,
                                jac=g if callable(jac) else jac,
                                hess=h if hess is not None else None,
                                hessp=hv if hessp is not None else None,
                                bounds=bounds, tol=tol, callback=callback, options=options)

    return _run(comm, service, solve)


def least_squares(local_fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="lm",
                  ftol=1e-8, xtol=1e-8, gtol=1e-8, x_scale=None, loss="linear", f_scale=1.0,
                  max_nfev=None, diff_step=None, args=(), kwargs=None, callback=None,
                  verbose=0, comm=None, timeout="default"):
    """Nonlinear least squares on residuals split by rows across ranks.

    The residual vector is the rank-ordered concatenation of each rank's
    ``local_fun(x)`` block.  The root runs :func:`neurenix.optimize.least_squares`
    with every option given here; each residual (and Jacobian) evaluation
    broadcasts ``x``, evaluates the blocks on every rank and gathers them on
    the root (``Gatherv``).  Every rank calls this function and gets the same
    result.

    Parameters
    ----------
    local_fun : callable ``local_fun(x, *args, **kwargs) -> (m_r,)``
        This rank's residual block (``m_r`` may differ between ranks and may be 0).
    x0 : array_like, shape (n,)
        The root's ``x0`` is used (every rank's must have the same size).
    jac : {"2-point", "3-point"} or callable
        A callable returns this rank's dense ``(m_r, n)`` block; finite
        differences run on the root over global residual evaluations.
        ``"cs"`` (complex step) is not supported here: ``ValueError``.
    bounds, method, ftol, xtol, gtol, x_scale, loss, f_scale, max_nfev, diff_step,
    callback, verbose
        As in :func:`neurenix.optimize.least_squares` (root-side; the callback
        runs on the root).
    args, kwargs
        Extra arguments of ``local_fun`` and ``jac`` (per rank).
    comm : communicator, optional
    timeout : float or None, optional
        As in :func:`minimize`.

    Returns
    -------
    OptimizeResult
        Broadcast from the root: the same on every rank (``fun`` and ``jac``
        hold the full, concatenated residuals and Jacobian).
    """
    if not callable(local_fun):
        raise TypeError(f"local_fun must be callable, got {type(local_fun).__name__}")
    if not callable(jac) and jac not in ("2-point", "3-point"):
        raise ValueError("jac must be '2-point', '3-point' or a callable returning the local "
                         f"block, got {jac!r}")
    if not isinstance(args, tuple):
        args = (args,)
    kwargs = {} if kwargs is None else dict(kwargs)
    comm, x, timeout = _setup(comm, x0, timeout)
    x = x.astype(np.float64)
    n = x.shape[0]
    common = dict(bounds=bounds, method=method, ftol=ftol, xtol=xtol, gtol=gtol,
                  x_scale=x_scale, loss=loss, f_scale=f_scale, max_nfev=max_nfev,
                  diff_step=diff_step, callback=callback, verbose=verbose)
    if comm.Get_size() == 1:
        return _serial_least_squares(local_fun, x, jac=jac, args=args, kwargs=kwargs, **common)

    def res(xb):
        r = np.asarray(local_fun(xb, *args, **kwargs), dtype=np.float64)
        if r.ndim > 1:
            raise ValueError(f"local_fun(x) must return a 1-D residual block, got shape {r.shape}")
        return np.atleast_1d(r)

    def jb(xb):
        J = np.asarray(jac(xb, *args, **kwargs), dtype=np.float64)
        if J.ndim != 2 or J.shape[1] != n:
            raise ValueError(f"jac(x) must return a dense (m_r, {n}) block, got shape {J.shape}")
        return J

    service = _Service(comm, n, np.float64, {EVAL_RES: res, EVAL_JAC: jb}, timeout)

    def solve():
        def fun(xk, *_a, **_k):
            return service.call(EVAL_RES, xk)

        def jfun(xk, *_a, **_k):
            J = service.call(EVAL_JAC, xk)
            return J.reshape(-1, n)

        return _serial_least_squares(fun, x, jac=jfun if callable(jac) else jac, **common)

    return _run(comm, service, solve)
