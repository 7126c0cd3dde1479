"""Shared test problems of the distributed tests: the MPI scripts and the serial references
import the same definitions (the data is generated from fixed seeds, then split by rows)."""
import numpy as np

N_ROWS, N_FEAT = 120, 5


def logistic_data():
    rng = np.random.default_rng(12)
    A = rng.normal(size=(N_ROWS, N_FEAT))
    y = (A @ rng.normal(size=N_FEAT) + 0.5 * rng.normal(size=N_ROWS) > 0).astype(float)
    return A, y


def shard(n, size, rank, empty_last=False):
    """Row indices of ``rank``: uneven blocks; the last rank gets none when ``empty_last``."""
    parts = size - 1 if (empty_last and size > 2) else size
    if rank >= parts:
        return np.arange(0)
    return np.array_split(np.arange(n), parts)[rank]


def logistic(A, y, lam, size):
    """f_r, its gradient, Hessian and Hessian-vector product on the rows (A, y); the L2 term
    ``lam/2 |x|^2`` is split evenly over ``size`` ranks, so the sum over ranks is the pooled
    objective."""
    def fg(x):
        z = A @ x
        f = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * (x @ x) / size
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        return f, A.T @ (s - y) + lam * x / size

    def f(x):
        return fg(x)[0]

    def g(x):
        return fg(x)[1]

    def hess(x):
        s = 0.5 * (1.0 + np.tanh(0.5 * (A @ x)))
        return (A.T * (s * (1 - s))) @ A + lam * np.eye(A.shape[1]) / size

    def hessp(x, p):
        s = 0.5 * (1.0 + np.tanh(0.5 * (A @ x)))
        return A.T @ (s * (1 - s) * (A @ p)) + lam * p / size

    return fg, f, g, hess, hessp


def decay_data():
    t = np.linspace(0.0, 4.0, 60)
    y = 2.5 * np.exp(-1.3 * t) + 0.3 + 0.02 * np.sin(9 * t)
    return t, y


def decay_residual(x, t, y):
    return x[0] * np.exp(-x[1] * t) + x[2] - y


def decay_jac(x, t, y):
    e = np.exp(-x[1] * t)
    return np.column_stack((e, -x[0] * t * e, np.ones_like(t)))


LAM = 0.3
MIN_CASES = ("lbfgs", "newton_cg", "trust_exact", "bfgs_jac_callable", "lbfgs_fd",
             "lbfgs_bounds", "lbfgs_float32")


def minimize_case(name, fns):
    """``(fun, x0, kwargs)`` of a minimize test case, for ``neurenix.optimize.minimize``
    (pooled ``fns``) and ``neurenix.distributed.minimize`` (local ``fns``) alike."""
    fg, f, g, hess, hessp = fns
    x0 = np.full(N_FEAT, 0.1)
    if name == "lbfgs":
        return fg, x0, dict(method="L-BFGS", jac=True)
    if name == "newton_cg":
        return fg, x0, dict(method="Newton-CG", jac=True, hessp=hessp)
    if name == "trust_exact":
        return fg, x0, dict(method="trust-exact", jac=True, hess=hess)
    if name == "bfgs_jac_callable":
        return f, x0, dict(method="BFGS", jac=g)
    if name == "lbfgs_fd":
        return f, x0, dict(method="L-BFGS", jac=None)
    if name == "lbfgs_bounds":
        return fg, x0, dict(method="L-BFGS", jac=True, bounds=[(-0.4, 0.4)] * N_FEAT)
    if name == "lbfgs_float32":
        return fg, x0.astype(np.float32), dict(method="L-BFGS", jac=True)
    raise KeyError(name)


LSQ_CASES = ("lm_jac", "trf_2point_soft_l1", "gn_jac")


def lsq_case(name, t, y):
    x0 = np.array([1.0, 1.0, 0.0])
    if name == "lm_jac":
        return x0, dict(method="lm", jac=decay_jac, args=(t, y))
    if name == "trf_2point_soft_l1":
        return x0, dict(method="trf", jac="2-point", loss="soft_l1", f_scale=0.1, args=(t, y),
                        bounds=([0, 0, -1], [10, 10, 1]))
    if name == "gn_jac":
        return x0, dict(method="gn", jac=decay_jac, args=(t, y))
    raise KeyError(name)


# ------------------------------------------------------------------ federated / local SGD
def client_rows(client_index):
    """Client ``c`` (0-based) has ``10 (c + 1)`` rows of a linear regression (unequal sizes)."""
    rng = np.random.default_rng(100 + client_index)
    n = 10 * (client_index + 1)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * client_index + 0.1 * rng.normal(size=n)
    return X, y


BATCH = 5


def client_grad(w, X, y, batch):
    """Mean-squared-error loss and gradient of minibatch ``batch`` (rows 5b .. 5b+4)."""
    i = slice(BATCH * batch, BATCH * (batch + 1))
    r = X[i] @ w - y[i]
    return 0.5 * float(np.mean(r * r)), X[i].T @ r / r.size


# ------------------------------------------------------------- MPI script helpers
def attempt(name, run, rank, msgs):
    """Run ``run()`` and record ``"<name> rank <r>: <outcome>"`` in ``msgs``: ``no error``,
    ``DistributedError [ranks] message`` or ``<Type>: message``."""
    from neurenix.distributed import DistributedError
    try:
        run()
        msgs.append(f"{name} rank {rank}: no error")
    except DistributedError as e:
        msgs.append(f"{name} rank {rank}: DistributedError {e.ranks} {e}")
    except Exception as e:
        msgs.append(f"{name} rank {rank}: {type(e).__name__}: {e}")


def print_gathered(comm, msgs):
    """Gather every rank's lines on rank 0 and print them there (one writer: no interleaving)."""
    allm = comm.gather(msgs, root=0)
    if comm.Get_rank() == 0:
        print("\n".join(m for ms in allm for m in ms), flush=True)


def result_of(out):
    """The JSON object a script printed on its ``RESULT `` line."""
    import json
    return json.loads([ln for ln in out.splitlines() if ln.startswith("RESULT ")][0][7:])


def has(lines, prefix):
    return any(ln.startswith(prefix) for ln in lines)
