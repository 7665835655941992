"""Keep freed activation memory in the process instead of handing it back to the OS each step.

A forward pass allocates its activations afresh (tens to hundreds of MB each at 375×500) and
``model.clear()`` frees them. glibc serves blocks above ``M_MMAP_THRESHOLD`` (at most 32 MB, by
default) with ``mmap`` and returns them with ``munmap`` on free, so every step the kernel hands
out and zero-fills the same pages again: page faults that cost 10–20 % of a full-width FCN-32s
forward on 2 cores and made its time bimodal (0.64 or 0.78 s, alternating). Raising the mmap and
trim thresholds lets ``malloc`` reuse the freed heap instead: the forward then takes a steady
0.63 s and a training step about 5 % less, for a peak RSS 1 % higher (measured,
``benchmarks/bench_train.py``-sized FCN-32s). The process keeps its peak heap until it exits.

Applied once at ``import tinyseg`` on Linux with glibc; ``TINYSEG_SYSTEM_MALLOC=1`` in the
environment leaves malloc as it is. Elsewhere (musl, macOS, Windows) it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1          # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30            # blocks up to 1 GiB come from the reusable heap


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; return whether it was done."""
    if os.environ.get("TINYSEG_SYSTEM_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * THRESHOLD - 1))
