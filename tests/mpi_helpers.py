"""Running tinyseg under ``mpiexec`` from the tests (skipped without mpi4py/mpiexec, failed under
CI=true)."""
import os
import shutil
import subprocess
import sys

from conftest import missing_oracle, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mpiexec_or_skip() -> list:
    """The launcher command, e.g. ``["mpiexec"]`` (Open MPI gets its as-root/oversubscribe flags)."""
    require("mpi4py")
    exe = shutil.which("mpiexec")
    if exe is None:
        missing_oracle("mpiexec", "pip install 'tinyseg[mpi]'")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        return [exe, "--allow-run-as-root", "--oversubscribe"]
    return [exe]


def run_mpi(n: int, args: list, timeout: float = 240, env=None, **kwargs):
    """Run ``mpiexec -n n python ARGS`` in the repository root with this tree on PYTHONPATH."""
    environ = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    environ.update(env or {})
    return subprocess.run(mpiexec_or_skip() + ["-n", str(n), sys.executable, *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=timeout, **kwargs)


def tinyseg_mpi(n: int, args: list, **kwargs):
    """``mpiexec -n n tinyseg ARGS`` (through ``python -m tinyseg.cli``)."""
    return run_mpi(n, ["-m", "tinyseg.cli", *args], **kwargs)
