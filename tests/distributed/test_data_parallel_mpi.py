"""Multi-rank invariants of neurenix.distributed, run under mpiexec -n K (K = 1, 2, 4).

The script (scripts/data_parallel.py) checks, on every rank and every step,
that parameters and optimizer state are bit-identical (all-gathered SHA-256)
and that K-rank training equals single-process training on the pooled data.
"""
import pathlib

import pytest

from ._mpi import requires_mpi, run_mpi

SCRIPT = pathlib.Path(__file__).with_name("scripts") / "data_parallel.py"
CHECKS = ["pooled-equivalence", "backward_passes_per_step=2", "LBFGS closure",
          "missing grads and collective failure", "compressors keep ranks identical",
          "PowerSGD exact", "ring and hierarchical", "ShardedOptimizer", "broadcast_optimizer_state"]


@requires_mpi
@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_data_parallel_invariants(nprocs):
    rc, out, err = run_mpi(SCRIPT, nprocs, timeout=90, env={"NEURENIX_DIST_TIMEOUT": "60"})
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    for c in CHECKS:
        assert f"OK {c}" in out, (c, out)
    if nprocs == 4:
        assert "OK hybrid 2x2" in out
    assert f"OK all K={nprocs}" in out
