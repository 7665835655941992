"""Process-wide tuning for training and inference: glibc's malloc thresholds and how idle threads wait.

``import tinyseg`` changes nothing in the process. The ``tinyseg`` command line (before Numba
starts its threads) and :class:`tinyseg.training.Trainer` call :func:`tune_process`; a program
that uses the library directly opts in by calling it early (before its first parallel kernel), or
by setting ``TINYSEG_TUNE=1`` in the environment, which makes ``import tinyseg`` call it.

What it does, and why:

* **malloc** (Linux with glibc): a forward pass allocates its activations afresh (tens to hundreds
  of MB each at 375×500) and ``model.clear()`` frees them. glibc serves blocks above
  ``M_MMAP_THRESHOLD`` (at most 32 MB by default) with ``mmap`` and returns them with ``munmap``
  on free, so every step the kernel hands out and zero-fills the same pages again: page faults
  that cost 10–20 % of a full-width FCN-32s forward on 2 cores. Raising the mmap and trim
  thresholds to 1 GiB lets ``malloc`` reuse the freed heap instead, for a peak RSS about 1 %
  higher; the process keeps its peak heap until it exits. Elsewhere (musl, macOS, Windows)
  nothing is done. Opt out with ``TINYSEG_SYSTEM_MALLOC=1`` or ``tune_process(malloc=False)``.
* **OMP_WAIT_POLICY=PASSIVE** (unless already set): Numba's OpenMP workers otherwise spin after
  each parallel loop and fight OpenBLAS's threads for the cores while a convolution alternates
  im2col (Numba) and GEMM (BLAS) block by block; passive waiting made the blocked convolution
  several times faster on 2 cores. It only takes effect if set before Numba starts its thread
  pool. Opt out by setting ``OMP_WAIT_POLICY`` yourself or ``tune_process(omp=False)``.
* **OPENBLAS_THREAD_TIMEOUT=4** (unless already set): after a multi-threaded GEMM (fc6, fc7)
  OpenBLAS's worker threads spin for about 2²⁸ cycles (a tenth of a second) before they sleep,
  so when images follow each other the next image's first convolutions (Numba's parallel loops)
  share the cores with spinning threads. 4, OpenBLAS's smallest setting (2⁴ cycles), lets them
  sleep at once.
  OpenBLAS reads the variable when it is loaded, and Numba loads SciPy's OpenBLAS (the one its
  matrix products call) at its first product, after ``import tinyseg``; an OpenBLAS loaded
  before :func:`tune_process` keeps its spin. Opt out by setting the variable yourself or
  ``tune_process(openblas=False)``.

Benchmarks compare peers with the same settings on both sides (see ``docs/architecture.md``).
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_process", "keep_freed_memory", "tuned", "FAST_FLOATS"]

#: LLVM fast-math flags of the hot float32 loops: ``reassoc`` lets the compiler vectorise sums and
#: maxima over labels and reorder additions, ``contract`` fuses multiply-adds, ``nsz`` and ``arcp``
#: drop the sign of zero and allow reciprocals. NaN and infinity stay honoured (no ``nnan``/``ninf``):
#: an infinite unary is a hard constraint, and ``exp32(-inf) = 0`` depends on comparing with it.
FAST_FLOATS = {"reassoc", "contract", "nsz", "arcp"}

M_TRIM_THRESHOLD = -1          # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30            # blocks up to 1 GiB come from the reusable heap

_done: dict = {}


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; return whether it was done.

    Does nothing (returns False) with ``TINYSEG_SYSTEM_MALLOC=1`` or without glibc.
    """
    if os.environ.get("TINYSEG_SYSTEM_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * THRESHOLD - 1))


def tune_process(malloc: bool = True, omp: bool = True, openblas: bool = True) -> dict:
    """Tune this process for tinyseg's work (once; later calls return the first call's result).

    Parameters
    ----------
    malloc : raise glibc's malloc thresholds (:func:`keep_freed_memory`)
    omp : set ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it
    openblas : set ``OPENBLAS_THREAD_TIMEOUT=4`` unless the environment already sets it

    Returns
    -------
    dict ``{"malloc": bool, "omp_wait_policy": str | None, "openblas_thread_timeout": str | None}``:
    what was done (None: left as it was).
    """
    if not _done:
        _done["malloc"] = keep_freed_memory() if malloc else False
        if omp and "OMP_WAIT_POLICY" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            _done["omp_wait_policy"] = "PASSIVE"
        else:
            _done["omp_wait_policy"] = None
        if openblas and "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
            _done["openblas_thread_timeout"] = "4"
        else:
            _done["openblas_thread_timeout"] = None
    return dict(_done)


def tuned() -> bool:
    """Whether :func:`tune_process` has run in this process."""
    return bool(_done)
