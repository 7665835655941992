"""Matrix products on the CPU: :func:`gemm` by BLAS, and a switch to run that BLAS single-threaded.

The CPU's GEMM is BLAS (NumPy's ``@``; inside kernels Numba's ``np.dot``); the CUDA backend's
file of the same name holds a hand-written tiled GEMM with the same :func:`gemm` signature.

Numba's ``np.dot`` calls ``scipy.linalg.cython_blas``, whose OpenBLAS keeps its own thread pool.
A kernel that runs its own parallel loop and calls ``np.dot`` inside it (each worker multiplying
its own block, as :func:`tinyseg.backend.cpu.winograd.conv2d_winograd` does) wants that BLAS
single-threaded meanwhile, or the two pools fight over the cores. :func:`single_threaded` does
that through OpenBLAS's ``*_set_num_threads``; where it cannot find them (another BLAS), it does
nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading

import numpy as np

_lock = threading.Lock()
_functions: list = []          # [get_num_threads, set_num_threads] once found ([None, None]: none)


def _blas_thread_functions():
    if not _functions:
        get = set_ = None
        try:
            import scipy.linalg.cython_blas as cython_blas
            lib = ctypes.CDLL(cython_blas.__file__)    # resolves symbols of the OpenBLAS it links
        except (ImportError, OSError):
            lib = None
        for prefix in ("scipy_openblas", "openblas"):
            if lib is not None and hasattr(lib, prefix + "_set_num_threads"):
                get, set_ = getattr(lib, prefix + "_get_num_threads"), getattr(lib, prefix + "_set_num_threads")
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                break
        _functions.extend([get, set_])
    return _functions


@contextlib.contextmanager
def single_threaded():
    """Run the enclosed BLAS calls on one thread each, then restore the previous thread count."""
    get, set_ = _blas_thread_functions()
    if get is None:
        yield
        return
    with _lock:
        before = get()
        set_(1)
        try:
            yield
        finally:
            set_(before)


def gemm(a, b, c, *, trans_a: bool = False, trans_b: bool = False, beta: float = 0.0,
         bias=None, config=None, split_k=None) -> None:
    """``c = op(a) @ op(b) + beta·c (+ bias)`` on NumPy arrays, by BLAS.

    Same arguments as the CUDA backend's tiled :func:`tinyseg.backend.cuda.matmul.gemm`
    (``config`` and ``split_k``, the CUDA kernel's tiling, are ignored: BLAS tiles for itself).
    a : (M, K), or (K, M) with ``trans_a``; b : (K, N), or (N, K) with ``trans_b``;
    c : (M, N), written in place; bias : (N,) or None, added to every row.
    """
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)     # (M, K) @ (K, N) -> (M, N)
    if beta != 0.0:
        product += np.float32(beta) * c
    if bias is not None:
        product += bias
    c[...] = product
