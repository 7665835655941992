"""Convolution ops: SAME stride-1 convolution with dilation, and the transposed convolutions.

``conv2d_forward(x, w, b, dilation)`` returns ``(out, cache)``; ``conv2d_backward(dout, cache)``
returns ``(dx, dw, db)``. The kernels (im2col with dilated taps + blocked GEMM) are in
:mod:`tinyseg.backend.cpu.conv` and its CUDA twin; readable twins in :mod:`tinyseg.reference`.
"""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_positive_int, output_buffer


# ----------------------------------------------------------------------------- convolution
def conv2d_forward(x, w, b, dilation: int = 1):
    """SAME convolution, stride 1, dilation ``d``:

    ``out[n,y,x,f] = b[f] + Σ_{i,j,c} x[n, y + d·i − ph, x + d·j − pw, c] · w[i,j,c,f]``

    with ``ph = d·(kh − 1)/2``, ``pw = d·(kw − 1)/2`` and zeros outside the image, so ``out`` has
    the input's height and width (PyTorch: ``F.conv2d(x, w, b, padding=d·(k−1)//2, dilation=d)``).

    Parameters
    ----------
    x : (N, H, W, C) float32
    w : (kh, kw, C, F) float32, kh and kw odd
    b : (F,) float32
    dilation : int >= 1, the spacing of the kernel's taps (1: an ordinary convolution)

    Returns
    -------
    out : (N, H, W, F) float32
    cache : (x, w, dilation) for :func:`conv2d_backward`
    """
    x = check_array("x", x, 4)
    w = check_array("w", w, 4)
    b = check_array("b", b, 1)
    dilation = check_positive_int("dilation", dilation)
    kh, kw, c_in, c_out = w.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"`w` must have odd kernel sizes for SAME padding, got {kh}×{kw}")
    if x.shape[3] != c_in:
        raise ValueError(f"`x` has {x.shape[3]} channels but `w` expects {c_in} (w.shape[2])")
    if b.shape[0] != c_out:
        raise ValueError(f"`b` has {b.shape[0]} entries but `w` has {c_out} output channels")
    be = backend_for(x)
    N, H, W, _ = x.shape
    out = be.empty((N, H, W, c_out), np.float32)
    col = _conv_workspace(be, x.shape, w.shape)
    be.conv2d_forward(x, w, b, out, col, dilation)
    return out, (x, w, dilation)


def conv2d_backward(dout, cache, dw=None, db=None, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`: returns ``(dx, dw, db)`` shaped like ``x, w, b``.

    ``dx = Σ_{i,j} shift_{−(d·i−ph), −(d·j−pw)}(dout) @ w[i,j]ᵀ``, ``dw[i,j] = Σ shift(x)ᵀ dout``,
    ``db = Σ dout``. ``dw`` and ``db``, when given, are arrays to overwrite with the weight and
    bias gradients (a layer passes last step's, so fc6's 411 MB gradient is not allocated afresh
    every step). With ``need_dx=False`` the input gradient is not computed and ``dx`` is None
    (the first layer's input is the image: nobody needs its gradient).
    """
    x, w, dilation = cache
    dout = check_array("dout", dout, 4)
    N, H, W, _ = x.shape
    if tuple(dout.shape) != (N, H, W, w.shape[3]):
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected {(N, H, W, w.shape[3])}")
    be = backend_for(x)
    dx = be.empty(x.shape if need_dx else (1, 1, 1, 1), np.float32)
    dw = output_buffer(be, "dw", dw, w.shape)
    db = output_buffer(be, "db", db, (w.shape[3],))
    col = _conv_workspace(be, x.shape, w.shape)
    kh, kw, c_in, c_out = w.shape
    # One block (a 1×1 kernel, or a single image whose rows all fit the workspace) needs no
    # buffer for partial dw sums.
    one_block = kh * kw == 1 or (N == 1 and col.shape[0] == H * W)
    dw_tmp = be.empty((1, 1) if one_block else (kh * kw * c_in, c_out), np.float32)
    be.conv2d_backward(x, w, dout, dx, dw, db, col, dw_tmp, dilation, bool(need_dx))
    return (dx if need_dx else None), dw, db


def conv_rows_per_block(x_shape, w_shape, workspace_bytes: int) -> int:
    """Image rows per im2col block so that the block buffer stays within ``workspace_bytes``.

    The buffer holds ``rows·W`` im2col rows of ``kh·kw·C`` float32 each; at least one image row,
    at most the whole image. This is the bound on a convolution's extra memory. A layer whose
    weight gradient ``(K, F)`` is at least as large as its whole im2col matrix ``(H·W, K)`` (fc6 on
    a small map) is done in one block: backward would otherwise add a ``(K, F)`` partial ``dw``
    per block, costing more than the buffer saves.
    """
    _, H, W, C = x_shape
    kh, kw, F = w_shape[0], w_shape[1], w_shape[3]
    if F >= H * W:
        return H
    row_bytes = W * kh * kw * C * 4
    return max(1, min(H, workspace_bytes // row_bytes))


def _conv_workspace(be, x_shape, w_shape):
    kh, kw, c_in, _ = w_shape
    if kh == 1 and kw == 1:
        return be.empty((1, 1), np.float32)  # a 1×1 convolution multiplies x directly
    rows = conv_rows_per_block(x_shape, w_shape, be.CONV_WORKSPACE_BYTES)
    return be.empty((rows * x_shape[2], kh * kw * c_in), np.float32)


# ----------------------------------------------------------------------------- transposed conv
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


