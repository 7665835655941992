"""The BLAS behind Numba's ``np.dot``: scipy's OpenBLAS, and a switch to run it single-threaded.

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
