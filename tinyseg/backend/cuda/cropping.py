"""Crop and its adjoint on the GPU, for aligning the ×32 upsampled logits with the image.

    crop:    out[n, y, x, c] = x[n, y, x, c]          for y < H, x < W   (out is (N, H, W, C))
    uncrop:  dx[n, y, x, c]  = dout[n, y, x, c]       for y < H, x < W   (dx pre-zeroed, larger)

One thread per element of the small ``(N, H, W, C)`` array.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._index import unravel
from ._launch import launch_1d


@cuda.jit
def _corner_copy_kernel(src, dst, H, W):
    """``dst[n, y, x, c] = src[n, y, x, c]`` for ``y < H, x < W``: crop and uncrop alike."""
    e = cuda.grid(1)
    N, C = dst.shape[0], dst.shape[3]
    if e < N * H * W * C:
        n, y, xx, c = unravel(e, H, W, C)
        dst[n, y, xx, c] = src[n, y, xx, c]


def crop(x, H, W):
    """A contiguous device copy of the top-left ``H × W`` of an ``(N, H', W', C)`` device array."""
    N, C = x.shape[0], x.shape[3]
    out = cuda.device_array((N, H, W, C), x.dtype)
    launch_1d(_corner_copy_kernel, out.size, x, out, np.int64(H), np.int64(W))
    return out


def uncrop(dout, dx):
    """Write ``dout (N, H, W, C)`` into the top-left of the zeroed ``dx (N, H', W', C)``."""
    launch_1d(_corner_copy_kernel, dout.size, dout, dx, np.int64(dout.shape[1]),
              np.int64(dout.shape[2]))
