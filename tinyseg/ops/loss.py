"""Softmax and the pixel-wise softmax cross-entropy loss with its gradient."""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array


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
    ``ignore_label`` (``reduction="sum"``, the post's loss), or that sum divided by the number of
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


