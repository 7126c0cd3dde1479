"""Test harness: run a script under ``mpiexec -n K python -m mpi4py`` as a subprocess.

``run_mpi(script, nprocs)`` returns ``(rc, stdout, stderr)``; a run that
exceeds ``timeout`` is killed (the whole process group) and reported with
``rc == TIMEOUT_RC``.  ``mpiexec`` is looked up next to ``sys.executable``
first (pip's ``mpich`` package installs it into the venv's ``bin``), then on
``PATH``.  Tests that need it use the ``requires_mpi`` mark, which skips with
the reason when mpiexec or mpi4py is missing.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_RC = 124


def find_mpiexec():
    """Path of ``mpiexec`` (venv ``bin`` first, then ``PATH``), or ``None``."""
    bindir = os.path.dirname(sys.executable)
    for name in ("mpiexec", "mpirun", "mpiexec.hydra"):
        cand = os.path.join(bindir, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _have_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def skip_reason():
    """Why MPI tests cannot run here (``None`` when they can)."""
    if not _have_mpi4py():
        return "mpi4py is not installed (pip install '.[test]' installs mpi4py and mpich)"
    if find_mpiexec() is None:
        return (f"mpiexec not found next to {sys.executable} nor on PATH "
                "(pip install mpich provides it)")
    return None


requires_mpi = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def run_mpi(script, nprocs, timeout=60, args=(), env=None):
    """Run ``mpiexec -n nprocs python -m mpi4py script [args]``.

    Parameters
    ----------
    script : str or path
        A file path, or Python source text (written to a temporary file).
    nprocs : int
    timeout : float
        Seconds before the whole process group is killed.
    args : sequence of str
    env : dict, optional
        Extra environment variables.

    Returns
    -------
    (rc, stdout, stderr)
        ``rc == TIMEOUT_RC`` when the run was killed on timeout.
    """
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise RuntimeError(skip_reason())
    tmp = None
    path = str(script)
    if "\n" in path or not os.path.exists(path):
        tmp = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
        tmp.write(textwrap.dedent(str(script)))
        tmp.close()
        path = tmp.name
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + (os.pathsep + full_env["PYTHONPATH"]
                                          if full_env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        full_env.setdefault(var, "1")
    full_env.pop("NEURENIX_NO_MPI", None)
    if env:
        full_env.update(env)
    cmd = [mpiexec, "-n", str(int(nprocs)), sys.executable, "-m", "mpi4py", path, *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(ROOT), env=full_env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        rc = TIMEOUT_RC
        err += f"\n[harness] killed after {timeout} s timeout\n"
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    return rc, out, err
