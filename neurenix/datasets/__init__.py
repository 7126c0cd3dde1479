"""Reference data sets shipped with neurenix.

- :func:`nist_strd` — the 27 NIST StRD nonlinear regression problems with certified
  values, for certifying least-squares solvers (:mod:`neurenix.optimize`).
"""
from ._nist import NistProblem, nist_strd, nist_strd_names, log_relative_error

__all__ = ["NistProblem", "nist_strd", "nist_strd_names", "log_relative_error"]
