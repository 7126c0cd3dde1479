"""Distributed optimization on MPI (mpi4py).

Run a script with ``mpiexec -n K python -m mpi4py script.py``; the same script
runs as one process with plain ``python`` (without mpi4py installed it uses a
size-1 :class:`SelfComm`).  Every class takes ``comm=None``: the library's own
duplicate of ``MPI.COMM_WORLD`` (see :func:`get_comm`).

Communication layer (:mod:`neurenix.distributed._comm`):
:func:`get_comm`, :class:`SelfComm`, :class:`CommStats`, and the reliability
helpers :func:`collective_errors`, :func:`run_collective`,
:func:`failed_ranks`, :func:`wait_all`, :func:`barrier`.
"""
from ._comm import (  # noqa: F401
    get_comm, mpi, have_mpi, SelfComm, CommStats, DistributedError,
    collective_errors, run_collective, failed_ranks, wait_all, barrier,
    get_default_timeout, set_default_timeout,
)

__all__ = [
    "get_comm", "mpi", "have_mpi", "SelfComm", "CommStats", "DistributedError",
    "collective_errors", "run_collective", "failed_ranks", "wait_all", "barrier",
    "get_default_timeout", "set_default_timeout",
]

# part 2 (issue #15): parameter server, local SGD, federated learning, data-parallel solvers
from .parameter_server import ParameterServer, staleness_inverse  # noqa: E402,F401
from .local_sgd import LocalSGD  # noqa: E402,F401
from .federated import FedAvg, FedProx, SecureAggregator, GaussianDP  # noqa: E402,F401
from .solvers import minimize, least_squares  # noqa: E402,F401

__all__ += ["ParameterServer", "staleness_inverse", "LocalSGD", "FedAvg", "FedProx",
            "SecureAggregator", "GaussianDP", "minimize", "least_squares"]
