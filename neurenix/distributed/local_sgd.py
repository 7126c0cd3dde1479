"""Local SGD and post-local SGD: local steps, periodic model averaging."""
import numpy as np

from ..optim import Optimizer
from ._comm import get_comm, mpi, collective_errors

__all__ = ["LocalSGD"]


class LocalSGD:
    """Wrap an optimizer: every rank steps locally, models are averaged every ``period`` steps.

    Each rank runs ``optimizer.step()`` on its own gradients; after every
    ``period``-th local step the parameters are replaced by their mean over
    the ranks (one ``Allreduce`` of a flat buffer).  With ``warmup_steps > 0``
    this is *post-local SGD* (Lin et al. 2020): the first ``warmup_steps``
    steps are ordinary synchronous data-parallel steps (gradients averaged with
    ``Allreduce`` before the step, parameters stay identical on every rank),
    the local phase starts afterwards.  The optimizer's state (momentum,
    moments) stays local, as in the paper's experiments; the parameters are
    all that is averaged.

    Parameters
    ----------
    optimizer : neurenix.optim.Optimizer
        Over NumPy parameters; the same model on every rank.
    period : int, >= 1
        Local steps between two averagings (``H`` in the paper; ``1`` is
        synchronous SGD up to the optimizer's local state).
    warmup_steps : int, default 0
        Steps of gradient averaging before the local phase (``t'`` in the
        paper).
    comm : communicator, optional

    Attributes
    ----------
    num_steps : int
        Steps taken (warm-up and local).
    num_averages : int
        Model averagings done.

    Notes
    -----
    Every rank must call :meth:`step` the same number of times: the averaging
    is a collective.  Before a step the ranks agree that every local step
    succeeded (an all-reduced flag,
    :func:`neurenix.distributed.collective_errors`), so an exception on one
    rank raises on all of them instead of leaving the others in the
    ``Allreduce``.  Parameters are averaged in float64 and written back in
    their own dtype.

    References
    ----------
    Lin, Stich, Patel & Jaggi (2020), "Don't use large mini-batches, use local
    SGD", ICLR.  Stich (2019), "Local SGD converges fast and communicates
    little", ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from neurenix.optim import Parameter, SGD
    >>> from neurenix.distributed import LocalSGD
    >>> w = Parameter(np.array([1.0, -2.0]))
    >>> opt = LocalSGD(SGD([w], lr=0.5), period=4)
    >>> for _ in range(8):
    ...     w.grad = w.data.copy()          # gradient of 0.5 * |w|^2
    ...     _ = opt.step()
    >>> opt.num_averages, w.data
    (2, array([ 0.00390625, -0.0078125 ]))
    """

    def __init__(self, optimizer, period, warmup_steps=0, comm=None):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a neurenix.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
            raise ValueError(f"period must be an int >= 1, got {period!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) \
                or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative int, got {warmup_steps!r}")
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        for i, p in enumerate(self.params):
            if not isinstance(p.data, np.ndarray):
                raise TypeError(f"parameter {i} must hold a NumPy array")
        self.optimizer = optimizer
        self.period = int(period)
        self.warmup_steps = int(warmup_steps)
        self.comm = get_comm(comm)
        self.num_steps = 0
        self.num_averages = 0
        self._sizes = [p.data.size for p in self.params]
        self._buf = np.empty(int(sum(self._sizes)), dtype=np.float64)

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def zero_grad(self, set_to_none=False):
        """``optimizer.zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    # ----------------------------------------------------------- averaging
    def _allreduce_mean(self, arrays):
        """Average ``arrays`` (one per parameter) over the ranks, in place."""
        buf = self._buf
        off = 0
        for a, k in zip(arrays, self._sizes):
            buf[off:off + k] = a.reshape(-1)
            off += k
        MPI = mpi()
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        buf /= self.comm.Get_size()
        off = 0
        for a, k in zip(arrays, self._sizes):
            a.reshape(-1)[:] = buf[off:off + k]
            off += k

    def average_parameters(self):
        """Replace every rank's parameters by their mean over the ranks (collective)."""
        if self.comm.Get_size() > 1:
            self._allreduce_mean([p.data for p in self.params])
        self.num_averages += 1

    # ---------------------------------------------------------------- step
    def step(self, closure=None):
        """One step (collective when it averages); returns what ``closure`` returned."""
        size = self.comm.Get_size()
        loss = None
        if self.num_steps < self.warmup_steps:
            grads = None
            with collective_errors(self.comm, what="LocalSGD warm-up step"):
                if closure is not None:
                    loss = closure()
                grads = []
                for i, p in enumerate(self.params):
                    if p.grad is None:
                        raise ValueError(f"parameter {i} has no gradient (every rank must "
                                         "provide every gradient during the warm-up)")
                    grads.append(np.array(p.grad, dtype=p.data.dtype, order="C", copy=True))
            if size > 1:
                self._allreduce_mean(grads)
            with collective_errors(self.comm, what="LocalSGD warm-up step"):
                for p, g in zip(self.params, grads):
                    p.grad = g
                self.optimizer.step()
            self.num_steps += 1
            return loss
        with collective_errors(self.comm, what="LocalSGD local step"):
            loss = self.optimizer.step(closure)
        self.num_steps += 1
        if (self.num_steps - self.warmup_steps) % self.period == 0:
            self.average_parameters()
        return loss

    def state_dict(self):
        """The wrapped optimizer's ``state_dict`` plus the step counters."""
        return {"optimizer": self.optimizer.state_dict(), "num_steps": self.num_steps,
                "num_averages": self.num_averages}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`'s output."""
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.num_steps = int(state_dict["num_steps"])
        self.num_averages = int(state_dict["num_averages"])
