"""Max pooling 2×2, stride 2, SAME (ceil) on the GPU: ``(N, H, W, C) -> (N, ⌈H/2⌉, ⌈W/2⌉, C)``.

    out[n, y, x, c] = max_{dy, dx ∈ {0,1}, inside} x[n, 2y + dy, 2x + dx, c]

``argmax`` stores ``2·dy + dx`` of the winner (the first on ties), as on the CPU. Forward: one
thread per output element. Backward: one thread per ``dx`` element, which takes ``dout`` of its
window when it is that window's winner and 0 otherwise (no separate clearing pass, no races).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import launch_1d


@cuda.jit
def _maxpool_forward_kernel(x, out, argmax):
    e = cuda.grid(1)
    N, H, W, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    if e < N * Ho * Wo * C:
        c = e % C
        t = e // C
        xo = t % Wo
        t = t // Wo
        y = t % Ho
        n = t // Ho
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
    e = cuda.grid(1)
    N, H, W, C = dx.shape
    if e < N * H * W * C:
        c = e % C
        t = e // C
        xx = t % W
        t = t // W
        yy = t % H
        n = t // H
        k = (yy % 2) * 2 + xx % 2
        if argmax[n, yy // 2, xx // 2, c] == k:
            dx[n, yy, xx, c] = dout[n, yy // 2, xx // 2, c]
        else:
            dx[n, yy, xx, c] = np.float32(0.0)


def maxpool2x2_forward(x, out, argmax):
    launch_1d(_maxpool_forward_kernel, out.size, x, out, argmax)


def maxpool2x2_backward(dout, argmax, dx):
    launch_1d(_maxpool_backward_kernel, dx.size, dout, argmax, dx)
