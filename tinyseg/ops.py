"""The public operations: validate, allocate, run the backend's kernel, return ``(out, cache)``.

Each forward returns its output and a ``cache`` holding what backward needs; each backward takes
``(dout, cache)`` and returns the gradients (CS231n's convention). The backend is the one that
owns the input array (NumPy → ``cpu``, device arrays → ``cuda``), so data stays where it is.
Readable NumPy twins with the same signatures live in :mod:`tinyseg.reference`.

Layouts: activations ``(N, H, W, C)`` float32; conv kernels ``(kh, kw, c_in, c_out)``;
transposed-conv kernels ``(k, k, c_out, c_in)`` (TensorFlow's); biases ``(c_out,)``.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import backend_for

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "maxpool_forward", "maxpool_backward",
    "relu_forward", "relu_backward",
    "dropout_forward", "dropout_backward",
    "conv_transpose2d_forward", "conv_transpose2d_backward",
    "conv_transpose2d_depthwise_forward", "conv_transpose2d_depthwise_backward",
    "softmax", "softmax_cross_entropy",
    "adam_update", "adam_lr_t",
]


# ----------------------------------------------------------------------------- validation
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


def _check_same_shape(name_a, a, name_b, b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"`{name_a}` has shape {tuple(a.shape)} but `{name_b}` has shape "
                         f"{tuple(b.shape)}: they must match")


def _check_positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value}")
    return int(value)


# ----------------------------------------------------------------------------- convolution
def conv2d_forward(x, w, b):
    """SAME convolution, stride 1: ``out[n,y,x,f] = b[f] + Σ x[n,y+i-ph,x+j-pw,c] w[i,j,c,f]``.

    Parameters
    ----------
    x : (N, H, W, C) float32
    w : (kh, kw, C, F) float32, kh and kw odd
    b : (F,) float32

    Returns
    -------
    out : (N, H, W, F) float32
    cache : (x, w) for :func:`conv2d_backward`
    """
    x = check_array("x", x, 4)
    w = check_array("w", w, 4)
    b = check_array("b", b, 1)
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
    be.conv2d_forward(x, w, b, out, col)
    return out, (x, w)


def conv2d_backward(dout, cache, dw=None, db=None):
    """Gradients of :func:`conv2d_forward`: returns ``(dx, dw, db)`` shaped like ``x, w, b``.

    ``dw`` and ``db``, when given, are arrays to overwrite with the weight and bias gradients
    (a layer passes last step's, so fc6's 411 MB gradient is not allocated afresh every step).
    """
    x, w = cache
    dout = check_array("dout", dout, 4)
    N, H, W, _ = x.shape
    if tuple(dout.shape) != (N, H, W, w.shape[3]):
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected {(N, H, W, w.shape[3])}")
    be = backend_for(x)
    dx = be.empty(x.shape, np.float32)
    dw = _output_buffer(be, "dw", dw, w.shape)
    db = _output_buffer(be, "db", db, (w.shape[3],))
    col = _conv_workspace(be, x.shape, w.shape)
    kh, kw, c_in, c_out = w.shape
    # One block (a 1×1 kernel, or a single image whose rows all fit the workspace) needs no
    # buffer for partial dw sums.
    one_block = kh * kw == 1 or (N == 1 and col.shape[0] == H * W)
    dw_tmp = be.empty((1, 1) if one_block else (kh * kw * c_in, c_out), np.float32)
    be.conv2d_backward(x, w, dout, dx, dw, db, col, dw_tmp)
    return dx, dw, db


def _output_buffer(be, name, out, shape):
    """A float32 array of ``shape`` to write into: ``out`` if given (checked), else a new one."""
    if out is None:
        return be.empty(shape, np.float32)
    out = check_array(name, out, len(shape))
    if tuple(out.shape) != tuple(shape) or (isinstance(out, np.ndarray) and not out.flags.c_contiguous):
        raise ValueError(f"`{name}` must be a C-contiguous array of shape {tuple(shape)}, "
                         f"got {tuple(out.shape)}")
    return out


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


# ----------------------------------------------------------------------------- pooling
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
    _check_same_shape("dout", dout, "the pooled output", argmax)
    be = backend_for(dout)
    dx = be.empty(x_shape, np.float32)
    be.maxpool2x2_backward(dout, argmax, dx)
    return dx


# ----------------------------------------------------------------------------- ReLU, dropout
def relu_forward(x):
    """``out = max(x, 0)``, any shape."""
    x = check_array("x", x)
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    be.relu_forward(x, out)
    return out, out


def relu_backward(dout, cache):
    """``dx = dout · [out > 0]``."""
    out = cache
    dout = check_array("dout", dout)
    _check_same_shape("dout", dout, "the ReLU output", out)
    be = backend_for(out)
    dx = be.empty(out.shape, np.float32)
    be.relu_backward(out, dout, dx)
    return dx


def dropout_forward(x, p: float, seed: int):
    """Inverted dropout: keep each element with probability ``1 - p`` and scale it by ``1/(1 - p)``.

    The mask is a pure function of ``(seed, element index)`` (a counter-based hash), so a given
    seed reproduces the same mask on every backend; use a new seed for every training step.
    """
    x = check_array("x", x)
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"`p` must be in [0, 1), got {p}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    mask = be.empty(x.shape, np.uint8)
    be.dropout_forward(x, np.float32(p), np.uint64(seed), out, mask)
    return out, (mask, float(p))


def dropout_backward(dout, cache):
    """``dx = dout · mask / (1 - p)`` with the forward's mask."""
    mask, p = cache
    dout = check_array("dout", dout)
    _check_same_shape("dout", dout, "the dropout mask", mask)
    be = backend_for(dout)
    dx = be.empty(dout.shape, np.float32)
    be.dropout_backward(dout, mask, np.float32(p), dx)
    return dx


# ----------------------------------------------------------------------------- transposed conv
def _check_transposed(x, factor):
    x = check_array("x", x, 4)
    factor = _check_positive_int("factor", factor)
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


# ----------------------------------------------------------------------------- softmax, loss
def softmax(logits):
    """Softmax over the last axis of ``(..., C)`` float32 logits."""
    logits = check_array("logits", logits)
    be = backend_for(logits)
    C = tuple(logits.shape)[-1]             # tuple(): the CUDA simulator's shapes reject index -1
    probs = be.empty(logits.shape, np.float32)
    be.softmax(logits.reshape(-1, C), probs.reshape(-1, C))
    return probs


def softmax_cross_entropy(logits, labels, reduction: str = "sum", ignore_label: int = 255):
    """Pixel-wise softmax cross-entropy and its gradient.

    ``loss = Σ_pixels (log Σ_c exp z_c − z_label)`` over pixels whose label is not
    ``ignore_label`` (``reduction="sum"``, the seed's loss), or that sum divided by the number of
    such pixels (``"mean"``; 0 when every pixel is ignored).

    Parameters
    ----------
    logits : (N, H, W, C) float32
    labels : (N, H, W) integer array, values in [0, C) or ``ignore_label``

    Returns
    -------
    loss : float
    dlogits : (N, H, W, C) float32, ∂loss/∂logits
    """
    logits = check_array("logits", logits, 4)
    if not hasattr(labels, "dtype") or not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise TypeError(f"`labels` must be an integer array, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if tuple(labels.shape) != tuple(logits.shape[:3]):
        raise ValueError(f"`labels` has shape {tuple(labels.shape)} but `logits` is "
                         f"{tuple(logits.shape)}: labels must be {tuple(logits.shape[:3])}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"`reduction` must be 'sum' or 'mean', got {reduction!r}")
    be = backend_for(logits)
    C = logits.shape[3]
    labels_host = labels if isinstance(labels, np.ndarray) else be.to_numpy(labels)
    valid = labels_host != ignore_label
    bad = labels_host[valid & ((labels_host < 0) | (labels_host >= C))]
    if bad.size:
        raise ValueError(f"`labels` contains the value {int(bad.flat[0])}, which is neither a "
                         f"class in [0, {C}) nor the ignore label {ignore_label}")
    count = int(valid.sum())
    scale = 1.0 if reduction == "sum" else 1.0 / max(count, 1)
    labels32 = be.asarray(np.ascontiguousarray(labels_host, dtype=np.int32))
    M = logits.shape[0] * logits.shape[1] * logits.shape[2]
    losses = be.empty((M,), np.float32)
    dlogits = be.empty(logits.shape, np.float32)
    be.softmax_cross_entropy(logits.reshape(M, C), labels32.reshape(M), np.int32(ignore_label),
                             np.float32(scale), losses, dlogits.reshape(M, C))
    total = float(np.sum(be.to_numpy(losses), dtype=np.float64))
    return total * scale, dlogits


# ----------------------------------------------------------------------------- Adam
def adam_lr_t(lr: float, beta1: float, beta2: float, step: int) -> float:
    """TensorFlow's bias-corrected step size ``lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ)`` for step ``t >= 1``."""
    return lr * math.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)


def adam_update(param, grad, m, v, step: int, lr: float = 1e-4, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8):
    """One Adam step (TensorFlow's formula) on ``param`` in place; ``m`` and ``v`` updated in place.

    ``step`` is the 1-based index of this update. See :mod:`tinyseg.backend.cpu.adam` for the math.
    """
    for name, a in (("param", param), ("grad", grad), ("m", m), ("v", v)):
        check_array(name, a)
        if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
            raise ValueError(f"`{name}` must be C-contiguous: Adam updates it in place")
    for name, a in (("grad", grad), ("m", m), ("v", v)):
        _check_same_shape(name, a, "param", param)
    step = _check_positive_int("step", step)
    be = backend_for(param)
    be.adam_update(param, grad, m, v, np.float32(adam_lr_t(lr, beta1, beta2, step)),
                   np.float32(beta1), np.float32(beta2), np.float32(eps))
