"""neurenix.distributed._comm: the size-1 fallback, get_comm, CommStats, the reliability helpers."""
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from neurenix.distributed import _comm
from neurenix.distributed import (SelfComm, CommStats, DistributedError, collective_errors,
                                  run_collective, failed_ranks, wait_all, get_comm)
from ._mpi import requires_mpi, run_mpi, ROOT, TIMEOUT_RC


# ------------------------------------------------------------------ SelfComm
def test_selfcomm_collectives_copy():
    c = SelfComm()
    MPI = _comm._fallback_namespace()
    assert (c.Get_rank(), c.Get_size(), c.rank, c.size) == (0, 1, 0, 1)
    a = np.arange(6.0)
    b = np.zeros(6)
    c.Allreduce(a, b, op=MPI.SUM)
    np.testing.assert_array_equal(a, b)
    b2 = a.copy()
    c.Allreduce(MPI.IN_PLACE, b2, op=MPI.SUM)
    np.testing.assert_array_equal(b2, a)
    r = np.zeros(6)
    req = c.Iallreduce(a, r, op=MPI.SUM)
    assert req.Test()
    req.Wait()
    np.testing.assert_array_equal(r, a)
    out = np.zeros(3)
    c.Reduce_scatter_block(np.array([1.0, 2.0, 3.0]), out, op=MPI.SUM)
    np.testing.assert_array_equal(out, [1, 2, 3])
    g = np.full(5, -1.0)
    c.Allgatherv(np.array([7.0, 8.0]), [g, [2], [1], None])
    np.testing.assert_array_equal(g, [-1, 7, 8, -1, -1])
    g2 = np.zeros(2)
    c.Allgatherv(np.array([7.0, 8.0]), [g2, ([2], [0])])
    np.testing.assert_array_equal(g2, [7, 8])
    gv = np.zeros(3)
    c.Gatherv(np.array([1.0, 2.0]), [gv, [2], [1], None])
    np.testing.assert_array_equal(gv, [0, 1, 2])
    s = np.zeros(2)
    c.Sendrecv(np.array([4.0, 5.0]), dest=0, recvbuf=s, source=0)
    np.testing.assert_array_equal(s, [4, 5])
    with pytest.raises(ValueError, match="only rank 0"):
        c.Sendrecv(a, dest=1, recvbuf=s, source=0)
    with pytest.raises(ValueError, match="root"):
        c.Bcast(a, root=1)
    with pytest.raises(ValueError, match="contiguous"):
        c.Allreduce(np.zeros((4, 4))[:, 0], np.zeros(4))
    with pytest.raises(ValueError, match="truncated"):
        c.Allreduce(np.zeros(4), np.zeros(3))
    assert isinstance(c.Split(0, 0), SelfComm) and isinstance(c.Dup(), SelfComm)
    assert c.bcast({"a": 1}) == {"a": 1} and c.allgather(3) == [3]


def test_get_comm_cached_and_validates():
    c = get_comm()
    assert get_comm() is c and get_comm(None) is c
    s = SelfComm()
    assert get_comm(s) is s
    with pytest.raises(TypeError, match="comm must be"):
        get_comm(42)


def test_without_mpi4py_in_a_fresh_process():
    """With mpi4py unimportable, get_comm falls back to SelfComm and collectives still work."""
    code = textwrap.dedent("""
        import sys
        sys.modules["mpi4py"] = None          # import mpi4py -> ImportError
        import numpy as np
        from neurenix.distributed import get_comm, have_mpi, mpi, SelfComm
        c = get_comm()
        assert isinstance(c, SelfComm) and not have_mpi()
        MPI = mpi()
        a = np.ones(3)
        c.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
        MPI.Request.Waitall([c.Iallreduce(MPI.IN_PLACE, a, op=MPI.SUM)])
        print("ok", a.sum())
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok 3.0"


# ------------------------------------------------------------------ CommStats
def test_commstats_ring_model():
    st = CommStats()
    st.collective("Allreduce", 1000, 4)
    assert st.sent == st.received == 1500          # 2 (p-1)/p n
    st.collective("Allgather", 800, 4)
    assert st.sent == 1500 + 600
    rec = st.end_step()
    assert rec == {"sent": 2100, "received": 2100, "payload": 1800}
    st.point_to_point("Sendrecv", 10, 20)
    assert st.end_step() == {"sent": 10, "received": 20, "payload": 10}
    st.collective("Allreduce", 1000, 1)
    assert st.end_step()["sent"] == 0
    assert st.calls["Allreduce"] == 2


# ----------------------------------------------------------------- reliability
def test_collective_errors_size1():
    c = SelfComm()
    with collective_errors(c):
        pass
    with pytest.raises(KeyError, match="boom"):
        with collective_errors(c):
            raise KeyError("boom")
    assert failed_ranks(True, c) == [0] and failed_ranks(False, c) == []
    assert run_collective(lambda x: x + 1, 2, comm=c) == 3
    wait_all([c.Iallreduce(np.zeros(1), np.zeros(1))], c, timeout=1.0)
    with pytest.raises(ValueError, match="timeout"):
        wait_all([], c, timeout=-1)


SCRIPT_ERRORS = """
import numpy as np
from mpi4py import MPI
from neurenix.distributed import collective_errors, DistributedError, get_comm
comm = get_comm()
assert comm is not MPI.COMM_WORLD and comm.Get_size() == MPI.COMM_WORLD.Get_size()
r = comm.Get_rank()
try:
    with collective_errors(comm, what="local check", timeout=20):
        if r == 1:
            raise ValueError("bad input on rank 1")
except DistributedError as e:
    print(f"rank {r}: DistributedError {e.ranks}", flush=True)
except ValueError as e:
    print(f"rank {r}: ValueError {e}", flush=True)
a = np.full(2, float(r))
comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)   # every rank is still in step
print(f"rank {r}: sum {a[0]:g}", flush=True)
"""


@requires_mpi
def test_collective_errors_raise_on_every_rank():
    rc, out, err = run_mpi(SCRIPT_ERRORS, 3, timeout=60)
    assert rc == 0, err
    assert "rank 0: DistributedError [1]" in out
    assert "rank 2: DistributedError [1]" in out
    assert "rank 1: ValueError bad input on rank 1" in out
    assert out.count("sum 3") == 3


SCRIPT_DEADLINE = """
import sys, time
import numpy as np
from mpi4py import MPI
from neurenix.distributed import get_comm, wait_all
comm = get_comm()
if comm.Get_rank() == 1:
    time.sleep(60)                 # never joins the all-reduce
a = np.ones(1)
wait_all(comm.Iallreduce(MPI.IN_PLACE, a, op=MPI.SUM), comm, timeout=2.0, what="test all-reduce")
print("unreachable", flush=True)
"""


@requires_mpi
def test_deadline_aborts_instead_of_hanging():
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_DEADLINE, 2, timeout=40)
    assert rc not in (0, TIMEOUT_RC), (rc, err)
    assert time.monotonic() - t0 < 30
    assert "did not complete within 2 s" in err
    assert "unreachable" not in out


SCRIPT_RAISE = """
import numpy as np
from mpi4py import MPI
from neurenix.distributed import get_comm
comm = get_comm()
if comm.Get_rank() == 2:
    raise RuntimeError("injected failure")
a = np.ones(1)
comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)   # ranks 0, 1, 3 would wait forever
"""


@requires_mpi
def test_uncaught_exception_ends_the_job():
    """python -m mpi4py turns an uncaught exception into MPI_Abort: non-zero exit, no hang."""
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_RAISE, 4, timeout=40)
    assert rc not in (0, TIMEOUT_RC), (rc, err)
    assert "injected failure" in err
    assert time.monotonic() - t0 < 30


SCRIPT_OPT_HANG = """
import time
import numpy as np
from neurenix.optim import Parameter, SGD
from neurenix.distributed import DistributedOptimizer
w = Parameter(np.zeros(3))
opt = DistributedOptimizer(SGD([w], lr=0.1))
if opt.comm.Get_rank() == 2:
    time.sleep(60)                 # this rank never reaches the gradient all-reduce
w.grad = np.ones(3)
opt.step()
print("unreachable", flush=True)
"""


@requires_mpi
def test_distributed_optimizer_deadline():
    """NEURENIX_DIST_TIMEOUT bounds every wait of DistributedOptimizer: a missing rank aborts the job."""
    t0 = time.monotonic()
    rc, out, err = run_mpi(SCRIPT_OPT_HANG, 4, timeout=40, env={"NEURENIX_DIST_TIMEOUT": "2"})
    assert rc not in (0, TIMEOUT_RC), (rc, err)
    assert "gradient all-reduce did not complete within 2 s" in err
    assert "unreachable" not in out
    assert time.monotonic() - t0 < 30
