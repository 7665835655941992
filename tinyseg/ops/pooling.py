"""Max-pooling ops: VGG's 2×2/2 SAME pooling and DeepLab's 3×3 pooling with padding 1.

Each forward returns ``(out, cache)`` with the winners' positions (``argmax``) in the cache; each
backward routes ``dout`` to those winners. Kernels: :mod:`tinyseg.backend.cpu.pooling` (and the
CUDA twin); readable twins in :mod:`tinyseg.reference`.
"""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_same_shape


def maxpool_forward(x):
    """Max pooling 2×2 stride 2, SAME: ``(N, H, W, C) -> (N, ⌈H/2⌉, ⌈W/2⌉, C)``."""
    x = check_array("x", x, 4)
    be = backend_for(x)
    N, H, W, C = x.shape
    out = be.empty((N, (H + 1) // 2, (W + 1) // 2, C), np.float32)
    argmax = be.empty(out.shape, np.int8)
    be.maxpool2x2_forward(x, out, argmax)
    return out, (x.shape, argmax)


def maxpool_backward(dout, cache):
    """Route each ``dout`` to the pixel that won its window; returns ``dx`` shaped like ``x``."""
    x_shape, argmax = cache
    dout = check_array("dout", dout, 4)
    check_same_shape("dout", dout, "the pooled output", argmax)
    be = backend_for(dout)
    dx = be.empty(x_shape, np.float32)
    be.maxpool2x2_backward(dout, argmax, dx)
    return dx


def maxpool3x3_forward(x, stride: int):
    """Max pooling 3×3, padding 1 (with −∞), stride 1 or 2 (DeepLab's pools):

    ``out[n, y, x, c] = max_{dy, dx ∈ {0,1,2}} x[n, s·y + dy − 1, s·x + dx − 1, c]`` over the taps
    inside the image, ``(N, H, W, C) -> (N, ⌈H/s⌉, ⌈W/s⌉, C)``; equal to
    ``torch.nn.functional.max_pool2d(x, 3, s, 1)``, ties included (the first maximum in row-major
    window order wins; a NaN wins over numbers).

    Returns
    -------
    out : (N, ⌈H/s⌉, ⌈W/s⌉, C) float32
    cache : (x.shape, argmax, stride), ``argmax`` int8 ``3·dy + dx`` of each window's winner
    """
    x = check_array("x", x, 4)
    if (isinstance(stride, (bool, np.bool_)) or not isinstance(stride, (int, np.integer))
            or stride not in (1, 2)):
        raise ValueError(f"`stride` must be 1 or 2, got {stride!r}")
    stride = int(stride)
    be = backend_for(x)
    N, H, W, C = x.shape
    out = be.empty((N, -(-H // stride), -(-W // stride), C), np.float32)
    argmax = be.empty(out.shape, np.int8)
    be.maxpool3x3_forward(x, stride, out, argmax)
    return out, (x.shape, argmax, stride)


def maxpool3x3_backward(dout, cache):
    """``dx[p] = Σ dout[o]`` over the (overlapping) windows ``o`` that pixel ``p`` won."""
    x_shape, argmax, stride = cache
    dout = check_array("dout", dout, 4)
    check_same_shape("dout", dout, "the pooled output", argmax)
    be = backend_for(dout)
    dx = be.empty(x_shape, np.float32)
    be.maxpool3x3_backward(dout, argmax, stride, dx)
    return dx
