"""Transposed convolution ("deconvolution") with stride ``f``, TensorFlow SAME cropping.

Shapes: ``x (N, H, W, Ci)``, ``w (k, k, Co, Ci)`` (TensorFlow's conv2d_transpose layout),
``out (N, f·H, f·W, Co)``. Each input pixel stamps a copy of the kernel, scaled by its value,
at stride ``f``; the full result is cropped by ``pad = (k − f) // 2`` at the top/left:

    out[n, y, x, o] = Σ_{i, j, c} x[n, i, j, c] · w[y + pad − f·i, x + pad − f·j, o, c]

over the (i, j) that put both kernel indices in [0, k). Here it is computed as a gather over
output pixels (at most ⌈k/f⌉² input pixels reach each one), so threads never write the same
element. Backward:

    dx[n, i, j, c] = Σ_{ky, kx, o} dout[n, f·i + ky − pad, f·j + kx − pad, o] · w[ky, kx, o, c]
    dw[ky, kx, o, c] = Σ_{n, i, j} x[n, i, j, c] · dout[n, f·i + ky − pad, f·j + kx − pad, o]

The depthwise variants take one ``(k, k)`` kernel applied to every channel on its own; with the
post's diagonal bilinear weights they equal the full kernel at 1/C of the work.
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _source_range(y, f, k, pad, n_in):
    """Input indices i with 0 <= y + pad − f·i < k, clipped to [0, n_in): returns (lo, hi)."""
    hi = (y + pad) // f + 1
    lo = (y + pad - k) // f + 1          # smallest i with y + pad − f·i <= k − 1
    if lo < 0:
        lo = 0
    if hi > n_in:
        hi = n_in
    return lo, hi


@njit(cache=True, inline="always")
def _reach(start, k, n_out):
    """The output indices an input row (or column) reaches, [start, start + k) ∩ [0, n_out), with
    ``start = f·i − pad``: returns (lo, hi)."""
    return max(start, 0), min(start + k, n_out)


@njit(parallel=True, cache=True)
def _forward(x, w, f, depthwise, out):
    """The full kernel ``w (k, k, Co, Ci)``, or with ``depthwise`` the ``(k, k, 1, 1)`` view of
    one ``(k, k)`` kernel applied to every channel on its own."""
    N, H, W, Ci = x.shape
    k, Co = w.shape[0], out.shape[3]
    Ho, Wo = out.shape[1], out.shape[2]
    pad = (k - f) // 2
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        i_lo, i_hi = _source_range(y, f, k, pad, H)
        for xo in range(Wo):
            j_lo, j_hi = _source_range(xo, f, k, pad, W)
            if depthwise:       # channels innermost: one weight scales a contiguous pixel
                for c in range(Co):
                    out[n, y, xo, c] = 0.0
                for i in range(i_lo, i_hi):
                    ky = y + pad - f * i
                    for j in range(j_lo, j_hi):
                        wgt = w[ky, xo + pad - f * j, 0, 0]
                        for c in range(Co):
                            out[n, y, xo, c] += wgt * x[n, i, j, c]
                continue
            for o in range(Co):
                acc = np.float32(0.0)
                for i in range(i_lo, i_hi):
                    ky = y + pad - f * i
                    for j in range(j_lo, j_hi):
                        kx = xo + pad - f * j
                        for c in range(Ci):
                            acc += x[n, i, j, c] * w[ky, kx, o, c]
                out[n, y, xo, o] = acc


@njit(parallel=True, cache=True)
def _backward_input(dout, w, f, depthwise, dx):
    """Adjoint of :func:`_forward`, the same ``depthwise`` view: input pixel (i, j) gathers
    the ``dout`` pixels (f·i + ky − pad, f·j + kx − pad) that its taps (ky, kx) land on."""
    N, Ho, Wo, Co = dout.shape
    H, W, Ci = dx.shape[1], dx.shape[2], dx.shape[3]
    k = w.shape[0]
    pad = (k - f) // 2
    for p in prange(N * H):
        n = p // H
        i = p % H
        y_lo, y_hi = _reach(f * i - pad, k, Ho)
        for j in range(W):
            x_lo, x_hi = _reach(f * j - pad, k, Wo)
            for c in range(Ci):
                dx[n, i, j, c] = 0.0
            for y in range(y_lo, y_hi):
                ky = y + pad - f * i
                for xo in range(x_lo, x_hi):
                    kx = xo + pad - f * j
                    if depthwise:
                        wgt = w[ky, kx, 0, 0]
                        for c in range(Ci):
                            dx[n, i, j, c] += wgt * dout[n, y, xo, c]
                        continue
                    for o in range(Co):
                        g = dout[n, y, xo, o]
                        for c in range(Ci):
                            dx[n, i, j, c] += g * w[ky, kx, o, c]


def _as_4d(kernel):
    """The ``(k, k, 1, 1)`` view of a depthwise ``(k, k)`` kernel, for the full kernels' layout."""
    return kernel.reshape(kernel.shape[0], kernel.shape[1], 1, 1)


def conv_transpose2d_forward(x, w, f, out):
    _forward(x, w, f, False, out)


def conv_transpose2d_backward_input(dout, w, f, dx):
    _backward_input(dout, w, f, False, dx)


@njit(parallel=True, cache=True)
def conv_transpose2d_backward_weights(x, dout, f, dw):
    N, H, W, Ci = x.shape
    k, Co = dw.shape[0], dw.shape[2]
    Ho, Wo = dout.shape[1], dout.shape[2]
    pad = (k - f) // 2
    for ky in prange(k):
        for kx in range(k):
            for o in range(Co):
                for c in range(Ci):
                    dw[ky, kx, o, c] = 0.0
            for n in range(N):
                for i in range(H):
                    y = f * i + ky - pad
                    if y < 0 or y >= Ho:
                        continue
                    for j in range(W):
                        xo = f * j + kx - pad
                        if xo < 0 or xo >= Wo:
                            continue
                        for o in range(Co):
                            g = dout[n, y, xo, o]
                            for c in range(Ci):
                                dw[ky, kx, o, c] += x[n, i, j, c] * g


def conv_transpose2d_depthwise_forward(x, kernel, f, out):
    """out[n, y, x, c] = Σ_{i, j} x[n, i, j, c] · kernel[y + pad − f·i, x + pad − f·j]."""
    _forward(x, _as_4d(kernel), f, True, out)


def conv_transpose2d_depthwise_backward_input(dout, kernel, f, dx):
    """dx[n, i, j, c] = Σ_{ky, kx} dout[n, f·i + ky − pad, f·j + kx − pad, c] · kernel[ky, kx]."""
    _backward_input(dout, _as_4d(kernel), f, True, dx)
