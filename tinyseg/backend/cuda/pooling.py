"""Max pooling on the GPU, the twins of :mod:`tinyseg.backend.cpu.pooling` (same math, same ties).

2×2, stride 2, SAME (ceil): ``(N, H, W, C) -> (N, ⌈H/2⌉, ⌈W/2⌉, C)``,

    out[n, y, x, c] = max_{dy, dx ∈ {0,1}, inside} x[n, 2y + dy, 2x + dx, c]

``argmax`` stores ``2·dy + dx`` of the winner (the first on ties), as on the CPU. Forward: one
thread per output element. Backward: one thread per ``dx`` element, which takes ``dout`` of its
window when it is that window's winner and 0 otherwise (no separate clearing pass, no races).

3×3, padding 1, stride s ∈ {1, 2}: ``(N, H, W, C) -> (N, ⌈H/s⌉, ⌈W/s⌉, C)``, ``argmax = 3·dy + dx``
(first maximum in row-major order; a NaN wins, the last one if several, as PyTorch's). Backward:
one thread per ``dx`` element gathers the ``dout`` of every overlapping window it won.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._index import thread_element
from ._launch import launch_1d


@cuda.jit
def _maxpool_forward_kernel(x, out, argmax):
    inside, n, y, xo, c = thread_element(out)
    H, W = x.shape[1], x.shape[2]
    if inside:
        best = x[n, 2 * y, 2 * xo, c]
        arg = 0
        for k in range(1, 4):
            yy = 2 * y + k // 2
            xx = 2 * xo + k % 2
            if yy < H and xx < W:
                v = x[n, yy, xx, c]
                if v > best:
                    best = v
                    arg = k
        out[n, y, xo, c] = best
        argmax[n, y, xo, c] = arg


@cuda.jit
def _maxpool_backward_kernel(dout, argmax, dx):
    inside, n, yy, xx, c = thread_element(dx)
    if inside:
        k = (yy % 2) * 2 + xx % 2
        if argmax[n, yy // 2, xx // 2, c] == k:
            dx[n, yy, xx, c] = dout[n, yy // 2, xx // 2, c]
        else:
            dx[n, yy, xx, c] = np.float32(0.0)


def maxpool2x2_forward(x, out, argmax):
    launch_1d(_maxpool_forward_kernel, out.size, x, out, argmax)


def maxpool2x2_backward(dout, argmax, dx):
    launch_1d(_maxpool_backward_kernel, dx.size, dout, argmax, dx)


@cuda.jit
def _maxpool3x3_forward_kernel(x, stride, out, argmax):
    inside, n, y, xo, c = thread_element(out)
    H, W = x.shape[1], x.shape[2]
    if inside:
        best = np.float32(0.0)
        arg = -1
        for k in range(9):
            yy = stride * y - 1 + k // 3
            xx = stride * xo - 1 + k % 3
            if yy >= 0 and yy < H and xx >= 0 and xx < W:
                v = x[n, yy, xx, c]
                if arg < 0 or v > best or v != v:      # v != v: NaN
                    best = v
                    arg = k
        out[n, y, xo, c] = best
        argmax[n, y, xo, c] = arg


@cuda.jit
def _maxpool3x3_backward_kernel(dout, argmax, stride, dx):
    inside, n, y, xx, c = thread_element(dx)
    Ho, Wo = dout.shape[1], dout.shape[2]
    if inside:
        # windows whose rows [s·yo − 1, s·yo + 1] contain y: yo ∈ [⌈(y − 1)/s⌉, ⌊(y + 1)/s⌋]
        yo0 = (y - 1 + stride - 1) // stride
        yo1 = (y + 1) // stride
        xo0 = (xx - 1 + stride - 1) // stride
        xo1 = (xx + 1) // stride
        acc = np.float32(0.0)
        for yo in range(yo0, yo1 + 1):
            if yo >= 0 and yo < Ho:
                for xo in range(xo0, xo1 + 1):
                    if xo >= 0 and xo < Wo:
                        k = 3 * (y - stride * yo + 1) + (xx - stride * xo + 1)
                        if argmax[n, yo, xo, c] == k:
                            acc += dout[n, yo, xo, c]
        dx[n, y, xx, c] = acc


def maxpool3x3_forward(x, stride, out, argmax):
    launch_1d(_maxpool3x3_forward_kernel, out.size, x, stride, out, argmax)


def maxpool3x3_backward(dout, argmax, stride, dx):
    launch_1d(_maxpool3x3_backward_kernel, dx.size, dout, argmax, stride, dx)
