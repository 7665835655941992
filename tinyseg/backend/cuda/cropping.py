"""Crop and its adjoint on the GPU, for aligning the ×32 upsampled logits with the image.

    crop:    out[n, y, x, c] = x[n, y, x, c]          for y < H, x < W   (out is (N, H, W, C))
    uncrop:  dx[n, y, x, c]  = dout[n, y, x, c]       for y < H, x < W   (dx pre-zeroed, larger)

One thread per element of the small ``(N, H, W, C)`` array.
"""
from __future__ import annotations

from numba import cuda

from ._launch import launch_1d


@cuda.jit
def _crop_kernel(x, out):
    e = cuda.grid(1)
    N, H, W, C = out.shape
    if e < N * H * W * C:
        c = e % C
        t = e // C
        xx = t % W
        t = t // W
        y = t % H
        n = t // H
        out[n, y, xx, c] = x[n, y, xx, c]


@cuda.jit
def _uncrop_kernel(dout, dx):
    e = cuda.grid(1)
    N, H, W, C = dout.shape
    if e < N * H * W * C:
        c = e % C
        t = e // C
        xx = t % W
        t = t // W
        y = t % H
        n = t // H
        dx[n, y, xx, c] = dout[n, y, xx, c]


def crop(x, H, W):
    """A contiguous device copy of the top-left ``H × W`` of an ``(N, H', W', C)`` device array."""
    N, C = x.shape[0], x.shape[3]
    out = cuda.device_array((N, H, W, C), x.dtype)
    launch_1d(_crop_kernel, out.size, x, out)
    return out


def uncrop(dout, dx):
    """Write ``dout (N, H, W, C)`` into the top-left of the zeroed ``dx (N, H', W', C)``."""
    launch_1d(_uncrop_kernel, dout.size, dout, dx)
