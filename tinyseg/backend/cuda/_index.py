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


@cuda.jit(device=True)
def thread_element(a):
    """This thread's element of the 4-D array ``a``, one thread per element in row-major order:
    ``(inside, n, y, x, c)``, ``inside`` false for the threads past the end of ``a``."""
    e = cuda.grid(1)
    N, H, W, C = a.shape
    n, y, x, c = unravel(e, H, W, C)
    return e < N * H * W * C, n, y, x, c


@cuda.jit(device=True)
def thread_cell(a):
    """This thread's cell of the 2-D array ``a``, one thread per cell in row-major order:
    ``(inside, i, j)``, ``inside`` false for the threads past the end of ``a``."""
    e = cuda.grid(1)
    n, m = a.shape
    return e < n * m, e // m, e % m
