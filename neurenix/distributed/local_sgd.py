"""Local SGD and post-local SGD: local steps, periodic model averaging."""
import numpy as np

from ..optim import Optimizer
from ._comm import get_comm, collective_errors
from ._flat import FlatParams
from .collectives import allreduce
from .optimizer import DistributedOptimizer

__all__ = ["LocalSGD"]


class LocalSGD:
    """Wrap an optimizer: every rank steps locally, models are averaged every ``period`` steps.

    Each rank runs ``optimizer.step()`` on its own gradients; after every
    ``period``-th local step the parameters are replaced by their mean over
    the ranks (one ``Allreduce`` of a flat buffer).  With ``warmup_steps > 0``
    this is *post-local SGD* (Lin et al. 2020): the first ``warmup_steps``
    steps are ordinary synchronous data-parallel steps
    (:class:`~neurenix.distributed.DistributedOptimizer`: gradients averaged
    before the step, parameters stay identical on every rank), the local phase
    starts afterwards.  The optimizer's state (momentum,
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
        self.flat = FlatParams([p for g in optimizer.param_groups for p in g["params"]],
                               same_dtype=False)
        self.params = self.flat.params
        self.optimizer = optimizer
        self.period = int(period)
        self.warmup_steps = int(warmup_steps)
        self.comm = get_comm(comm)
        self.num_steps = 0
        self.num_averages = 0
        self._buf = self.flat.empty()
        self._sync = DistributedOptimizer(optimizer, comm=self.comm) if self.warmup_steps else None

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
    def average_parameters(self):
        """Replace every rank's parameters by their mean over the ranks (collective)."""
        if self.comm.Get_size() > 1:
            buf = self.flat.data(self._buf)
            allreduce(buf, self.comm)
            buf /= self.comm.Get_size()
            self.flat.set_data(buf)
        self.num_averages += 1

    # ---------------------------------------------------------------- step
    def step(self, closure=None):
        """One step (collective when it averages); returns what ``closure`` returned.

        In the warm-up, :meth:`DistributedOptimizer.step` (the closure's loss is
        then the mean over the ranks); afterwards the wrapped optimizer's step.
        """
        if self.num_steps < self.warmup_steps:
            loss = self._sync.step(closure)
            self.num_steps += 1
            return loss
        loss = None
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
