"""Argument checks shared by the public ops: each names the argument and what was expected."""
from __future__ import annotations

import numpy as np


def check_array(name: str, a, ndim: int | None = None, dtype=np.float32):
    """Check that ``a`` is an array of rank ``ndim`` and dtype ``dtype``; return it C-contiguous.

    Raises ``TypeError`` for a non-array or a wrong dtype and ``ValueError`` for a wrong rank, each
    naming the argument. Non-contiguous NumPy input is copied to a contiguous array.
    """
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"`{name}` must be an array, got {type(a).__name__}")
    if ndim is not None and len(a.shape) != ndim:
        raise ValueError(f"`{name}` must be a {ndim}-dimensional array, got shape {tuple(a.shape)}")
    if dtype is not None and np.dtype(a.dtype) != np.dtype(dtype):
        raise TypeError(f"`{name}` must have dtype {np.dtype(dtype).name}, got {np.dtype(a.dtype).name}"
                        f" (convert with .astype(np.{np.dtype(dtype).name}))")
    if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def check_same_shape(name_a, a, name_b, b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"`{name_a}` has shape {tuple(a.shape)} but `{name_b}` has shape "
                         f"{tuple(b.shape)}: they must match")


def check_positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value}")
    return int(value)


def output_buffer(be, name, out, shape):
    """A float32 array of ``shape`` to write into: ``out`` if given (checked), else a new one."""
    if out is None:
        return be.empty(shape, np.float32)
    out = check_array(name, out, len(shape))
    if tuple(out.shape) != tuple(shape) or (isinstance(out, np.ndarray) and not out.flags.c_contiguous):
        raise ValueError(f"`{name}` must be a C-contiguous array of shape {tuple(shape)}, "
                         f"got {tuple(out.shape)}")
    return out


def check_in_place(**arrays):
    """Arrays updated in place: float32, C-contiguous, all of the first one's shape."""
    first_name, first = next(iter(arrays.items()))
    for name, a in arrays.items():
        check_array(name, a)
        if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
            raise ValueError(f"`{name}` must be C-contiguous: it is updated in place")
        if tuple(a.shape) != tuple(first.shape):
            raise ValueError(f"`{name}` has shape {tuple(a.shape)} but `{first_name}` has shape "
                             f"{tuple(first.shape)}: they must match")
