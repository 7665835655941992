"""Transposed convolution, stride ``f``, TensorFlow SAME crop, on the GPU (gather form).

Shapes and math as in :mod:`tinyseg.backend.cpu.transposed`: ``x (N, H, W, Ci)``,
``w (k, k, Co, Ci)``, ``out (N, f·H, f·W, Co)``, ``pad = (k − f) // 2``:

    out[n, y, x, o]  = Σ_{i, j, c} x[n, i, j, c] · w[y + pad − f·i, x + pad − f·j, o, c]
    dx[n, i, j, c]   = Σ_{ky, kx, o} dout[n, f·i + ky − pad, f·j + kx − pad, o] · w[ky, kx, o, c]
    dw[ky, kx, o, c] = Σ_{n, i, j} x[n, i, j, c] · dout[n, f·i + ky − pad, f·j + kx − pad, o]

Every kernel runs one thread per element of what it writes and gathers what reaches it, so no
two threads write the same element. The depthwise variants use one ``(k, k)`` kernel for every
channel: the same kernels, given its ``(k, k, 1, 1)`` view and ``depthwise=True``.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._index import thread_element
from ._launch import launch_1d


@cuda.jit(device=True)
def _source_range(y, f, k, pad, n_in):
    """Input indices i with 0 <= y + pad − f·i < k, clipped to [0, n_in): returns (lo, hi)."""
    hi = (y + pad) // f + 1
    lo = (y + pad - k) // f + 1
    if lo < 0:
        lo = 0
    if hi > n_in:
        hi = n_in
    return lo, hi


@cuda.jit(device=True)
def _reach(start, k, n_out):
    """The output indices an input row (or column) reaches, [start, start + k) ∩ [0, n_out), with
    ``start = f·i − pad``: returns (lo, hi)."""
    lo = start
    hi = start + k
    if lo < 0:
        lo = 0
    if hi > n_out:
        hi = n_out
    return lo, hi


@cuda.jit
def _forward_kernel(x, w, f, depthwise, out):
    """Full kernel ``w (k, k, Co, Ci)``, or with ``depthwise`` the ``(k, k, 1, 1)`` view of one
    ``(k, k)`` kernel that maps channel ``o`` to itself alone (``c`` runs over ``[o, o + 1)``)."""
    inside, n, y, xo, o = thread_element(out)
    H, W, Ci = x.shape[1], x.shape[2], x.shape[3]
    k = w.shape[0]
    if inside:
        c_lo, c_hi, wo = 0, Ci, o
        if depthwise:
            c_lo, c_hi, wo = o, o + 1, 0
        pad = (k - f) // 2
        i_lo, i_hi = _source_range(y, f, k, pad, H)
        j_lo, j_hi = _source_range(xo, f, k, pad, W)
        acc = np.float32(0.0)
        for i in range(i_lo, i_hi):
            ky = y + pad - f * i
            for j in range(j_lo, j_hi):
                kx = xo + pad - f * j
                for c in range(c_lo, c_hi):
                    acc += x[n, i, j, c] * w[ky, kx, wo, c - c_lo]
        out[n, y, xo, o] = acc


@cuda.jit
def _backward_input_kernel(dout, w, f, depthwise, dx):
    """Adjoint of :func:`_forward_kernel`, the same ``depthwise`` view (``o`` over ``[c, c + 1)``):
    input pixel (i, j) gathers the ``dout`` pixels its taps (ky, kx) land on."""
    inside, n, i, j, c = thread_element(dx)
    k = w.shape[0]
    Ho, Wo, Co = dout.shape[1], dout.shape[2], dout.shape[3]
    if inside:
        o_lo, o_hi, wc = 0, Co, c
        if depthwise:
            o_lo, o_hi, wc = c, c + 1, 0
        pad = (k - f) // 2
        acc = np.float32(0.0)
        y_lo, y_hi = _reach(f * i - pad, k, Ho)
        x_lo, x_hi = _reach(f * j - pad, k, Wo)
        for y in range(y_lo, y_hi):
            ky = y + pad - f * i
            for xo in range(x_lo, x_hi):
                kx = xo + pad - f * j
                for o in range(o_lo, o_hi):
                    acc += dout[n, y, xo, o] * w[ky, kx, o - o_lo, wc]
        dx[n, i, j, c] = acc


@cuda.jit
def _backward_weights_kernel(x, dout, f, dw):
    inside, ky, kx, o, c = thread_element(dw)
    N, H, W = x.shape[0], x.shape[1], x.shape[2]
    k = dw.shape[0]
    Ho, Wo = dout.shape[1], dout.shape[2]
    if inside:
        pad = (k - f) // 2
        acc = np.float32(0.0)
        for n in range(N):
            for i in range(H):
                y = f * i + ky - pad
                if y >= 0 and y < Ho:
                    for j in range(W):
                        xo = f * j + kx - pad
                        if xo >= 0 and xo < Wo:
                            acc += x[n, i, j, c] * dout[n, y, xo, o]
        dw[ky, kx, o, c] = acc


def _as_4d(kernel):
    """The ``(k, k, 1, 1)`` view of a depthwise ``(k, k)`` kernel, for the full kernels' layout."""
    return kernel.reshape(kernel.shape[0], kernel.shape[1], 1, 1)


def conv_transpose2d_forward(x, w, f, out):
    launch_1d(_forward_kernel, out.size, x, w, int(f), False, out)


def conv_transpose2d_backward_input(dout, w, f, dx):
    launch_1d(_backward_input_kernel, dx.size, dout, w, int(f), False, dx)


def conv_transpose2d_backward_weights(x, dout, f, dw):
    launch_1d(_backward_weights_kernel, dw.size, x, dout, int(f), dw)


def conv_transpose2d_depthwise_forward(x, kernel, f, out):
    launch_1d(_forward_kernel, out.size, x, _as_4d(kernel), int(f), True, out)


def conv_transpose2d_depthwise_backward_input(dout, kernel, f, dx):
    launch_1d(_backward_input_kernel, dx.size, dout, _as_4d(kernel), int(f), True, dx)
