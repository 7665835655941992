"""Device-side index helpers shared by the one-thread-per-element CUDA kernels."""
from __future__ import annotations

from numba import cuda


@cuda.jit(device=True)
def unravel(e, H, W, C):
    """Flat row-major index ``e`` of an ``(N, H, W, C)`` array -> ``(n, y, x, c)``."""
    c = e % C
    t = e // C
    x = t % W
    t = t // W
    return t // H, t % H, x, c
