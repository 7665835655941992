"""Readable NumPy twins of :mod:`tinyseg.model_ops` (same signatures), for study and for tests."""
from __future__ import annotations

import numpy as np


def crop_add_forward(big, small):
    h, w = small.shape[1:3]
    return big[:, :h, :w, :] + small, tuple(big.shape)


def crop_add_backward(dout, cache):
    dbig = np.zeros(cache, dout.dtype)
    dbig[:, :dout.shape[1], :dout.shape[2], :] = dout
    return dbig, dout


def accumulate(acc, x):
    acc += x
    return acc


def scale_forward(x, s):
    return x * np.float32(s), float(s)


def scale_backward(dout, cache):
    return dout * np.float32(cache)


def avgpool3x3_forward(x):
    """Mean of the 3×3 window, zero padding counted (Caffe's AVE pooling, stride 1, pad 1)."""
    H, W = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = sum(padded[:, dy:dy + H, dx:dx + W, :] for dy in range(3) for dx in range(3)) / 9
    return out.astype(x.dtype), None


def avgpool3x3_backward(dout, cache=None):
    return avgpool3x3_forward(dout)[0]


def interp_weights(n_out: int, n_in: int, factor: int) -> np.ndarray:
    """``T[y, i] = max(0, 1 − |y − f·i| / f)``: the (n_out, n_in) matrix of 1-D interpolation."""
    y = np.arange(n_out)[:, None]
    i = np.arange(n_in)[None, :]
    return np.maximum(0.0, 1.0 - np.abs(y - factor * i) / factor)


def interp_forward(x, factor, size):
    """``out = T_H · x · T_Wᵀ`` per image and channel (separable bilinear)."""
    H, W = size
    Ty = interp_weights(H, x.shape[1], factor)
    Tx = interp_weights(W, x.shape[2], factor)
    out = np.einsum("yi,nijc,xj->nyxc", Ty, x.astype(np.float64), Tx)
    return out.astype(x.dtype), (tuple(x.shape), factor)


def interp_backward(dout, cache):
    """``dx = T_Hᵀ · dout · T_W`` (the transpose)."""
    x_shape, factor = cache
    Ty = interp_weights(dout.shape[1], x_shape[1], factor)
    Tx = interp_weights(dout.shape[2], x_shape[2], factor)
    return np.einsum("yi,nyxc,xj->nijc", Ty, dout.astype(np.float64), Tx).astype(dout.dtype)
