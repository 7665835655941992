"""Launch-configuration helpers shared by the CUDA host wrappers.

Kernels only compute; the host wrappers here decide how many blocks and threads to launch. Under
the simulator (``NUMBA_ENABLE_CUDASIM=1``) every CUDA thread is a Python thread, so blocks are
kept small there; on a GPU, 1-D element-wise kernels use 256 threads per block.
"""
from __future__ import annotations

import contextlib
import warnings

import numba
import numpy as np

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

# Threads per block of the 1-D kernels (one thread per output element).
THREADS_1D = 16 if SIMULATOR else 256


def blocks_for(n: int, threads: int = THREADS_1D) -> int:
    """Blocks of ``threads`` needed to cover ``n`` elements (at least one)."""
    return max(1, (int(n) + threads - 1) // threads)


def launch_1d(kernel, n: int, *args) -> None:
    """Launch ``kernel`` with one thread per element ``i < n`` (the kernel checks ``i < n``)."""
    if n <= 0:
        return
    kernel[blocks_for(n), THREADS_1D](*args)


def row_blocks(N: int, H: int, rows: int):
    """``(n, r0, r1)`` for each block of rows ``[r0, r1)``, at most ``rows`` long, of each of ``N``
    images of ``H`` rows, image by image, top to bottom."""
    for n in range(N):
        for r0 in range(0, H, rows):
            yield n, r0, min(r0 + rows, H)


@contextlib.contextmanager
def wrapping_uint64():
    """Silence NumPy's overflow warnings for intentionally wrapping uint64 arithmetic.

    On a GPU ``uint64`` products wrap silently; the simulator runs kernels as Python on NumPy
    scalars, which wrap too but warn. Only used around the dropout hash in the simulator.
    """
    if not SIMULATOR:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
        yield


_scratch: dict = {}


def scratch(shape, dtype):
    """A device work array of ``shape`` carved from one growing buffer per dtype (no memset).

    Saves a ``cudaMalloc`` per call for the split-K partials and column-sum partials. Safe
    because every kernel runs on the default stream, in launch order, and a wrapper uses its
    scratch array only between its own launches (one array per dtype at a time).
    """
    from numba import cuda

    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = _scratch.get(dtype)
    if buf is None or buf.size < n:
        buf = cuda.device_array(max(n, 1024), dtype)
        _scratch[dtype] = buf
    return buf[:n].reshape(shape)
