"""Transposed-convolution ops: ×f upsampling with a learned or a fixed (depthwise) kernel.

Kernels: :mod:`tinyseg.backend.cpu.transposed` and its CUDA twin; twins in :mod:`tinyseg.reference`.
"""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_positive_int


def _check_transposed(x, factor):
    x = check_array("x", x, 4)
    factor = check_positive_int("factor", factor)
    return x, factor


def conv_transpose2d_forward(x, w, factor: int):
    """Transposed convolution, stride ``factor``, TensorFlow SAME crop to ``(N, f·H, f·W, Co)``.

    Parameters
    ----------
    x : (N, H, W, Ci) float32
    w : (k, k, Co, Ci) float32 with ``k = get_kernel_size(factor) = 2f - f mod 2``
    factor : int >= 1
    """
    x, factor = _check_transposed(x, factor)
    w = check_array("w", w, 4)
    k = 2 * factor - factor % 2
    if w.shape[0] != k or w.shape[1] != k:
        raise ValueError(f"`w` must be {k}×{k} for factor {factor} (get_kernel_size), "
                         f"got {w.shape[0]}×{w.shape[1]}")
    if w.shape[3] != x.shape[3]:
        raise ValueError(f"`x` has {x.shape[3]} channels but `w` expects {w.shape[3]} (w.shape[3])")
    be = backend_for(x)
    N, H, W, _ = x.shape
    out = be.empty((N, factor * H, factor * W, w.shape[2]), np.float32)
    be.conv_transpose2d_forward(x, w, factor, out)
    return out, (x, w, factor)


def conv_transpose2d_backward(dout, cache):
    """Gradients of :func:`conv_transpose2d_forward`: ``(dx, dw)``."""
    x, w, factor = cache
    dout = check_array("dout", dout, 4)
    N, H, W, _ = x.shape
    expected = (N, factor * H, factor * W, w.shape[2])
    if tuple(dout.shape) != expected:
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected {expected}")
    be = backend_for(x)
    dx = be.empty(x.shape, np.float32)
    dw = be.empty(w.shape, np.float32)
    be.conv_transpose2d_backward_input(dout, w, factor, dx)
    be.conv_transpose2d_backward_weights(x, dout, factor, dw)
    return dx, dw


def conv_transpose2d_depthwise_forward(x, kernel, factor: int):
    """Transposed convolution of every channel with the same ``(k, k)`` kernel (e.g. bilinear)."""
    x, factor = _check_transposed(x, factor)
    kernel = check_array("kernel", kernel, 2)
    k = 2 * factor - factor % 2
    if tuple(kernel.shape) != (k, k):
        raise ValueError(f"`kernel` must be {k}×{k} for factor {factor}, got {tuple(kernel.shape)}")
    be = backend_for(x)
    N, H, W, C = x.shape
    out = be.empty((N, factor * H, factor * W, C), np.float32)
    be.conv_transpose2d_depthwise_forward(x, kernel, factor, out)
    return out, (x.shape, kernel, factor)


def conv_transpose2d_depthwise_backward(dout, cache):
    """Input gradient of :func:`conv_transpose2d_depthwise_forward` (the kernel is fixed)."""
    x_shape, kernel, factor = cache
    dout = check_array("dout", dout, 4)
    N, H, W, C = x_shape
    expected = (N, factor * H, factor * W, C)
    if tuple(dout.shape) != expected:
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected {expected}")
    be = backend_for(dout)
    dx = be.empty(x_shape, np.float32)
    be.conv_transpose2d_depthwise_backward_input(dout, kernel, factor, dx)
    return dx


