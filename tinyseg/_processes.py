"""What a process learns from its launcher's environment, and what it tells the processes it starts.

* :func:`world_size_from_env` -- how many ranks an MPI launcher started, read from the launcher's
  variables *before* ``mpi4py`` is imported (so that one process never imports it);
* :func:`single_threaded_children` -- children spawned inside the block start with every thread
  pool (Numba, OpenMP, the BLAS libraries) at one thread: one process per core, as a pool of
  workers needs.

Both the data-parallel trainer (:mod:`tinyseg.training.distributed`) and the many-image CRF
(:mod:`tinyseg.crf.batch`) read them from here, so they agree on what "under MPI" means.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["MPI_SIZE_VARIABLES", "THREAD_VARIABLES", "usable_cores", "world_size_from_env",
           "single_threaded_children"]

#: Variables through which MPI launchers (MPICH/Hydra, Open MPI, MVAPICH, Slurm's srun with PMI)
#: announce the number of ranks.
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
#: Thread pools' sizes, read when each library loads (so set before a child starts).
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def world_size_from_env(environ=os.environ) -> int:
    """The number of ranks the launcher started (1 when not launched by an MPI launcher)."""
    for name in MPI_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    if environ.get("SLURM_STEP_ID") is not None and environ.get("SLURM_NTASKS", "").isdigit():
        return int(environ["SLURM_NTASKS"])
    return 1


@contextmanager
def single_threaded_children():
    """Children spawned inside this block start with every thread pool at one thread."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        for name in THREAD_VARIABLES:
            os.environ[name] = "1"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
