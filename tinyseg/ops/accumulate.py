"""In-place buffer updates: copy, accumulate (two gradients of one tensor meeting), scale."""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_in_place

__all__ = ["copy_into", "add_into", "scale_into"]


def copy_into(dst, src):
    """``dst ← src`` (same shape, float32, C-contiguous ``dst``)."""
    check_in_place(dst=dst, src=src)
    backend_for(dst).copy_into(dst, src)


def add_into(acc, x):
    """``acc ← acc + x``: accumulate a gradient into a buffer; returns ``acc``."""
    check_in_place(acc=acc, x=x)
    backend_for(acc).add_into(acc, x)
    return acc


def scale_into(x, s: float):
    """``x ← s·x`` in place."""
    check_in_place(x=x)
    backend_for(x).scale_into(x, np.float32(s))
