"""The skip and DeepLab heads' small kernels on the GPU, one thread per output element.

Same names, arguments and formulas as :mod:`tinyseg.backend.cpu.fuse`:

    crop_add:    out[n, y, x, c] = big[n, y, x, c] + small[n, y, x, c]     (out is small's shape)
    scale:       out = s · x
    box3x3:      out = (1/9) · 3×3 window sum, zeros outside (DeepLab's pool5a; self-adjoint)
    interp:      out[n, y, x, c] = Σ_{i, j} x[n, i, j, c] · t(y − f·i) · t(x − f·j), t(d) = max(0, 1 − |d|/f)
    interp_backward: dx[n, i, j, c] = Σ_{y, x} dout[n, y, x, c] · t(y − f·i) · t(x − f·j)
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._index import thread_element
from ._launch import launch_1d


@cuda.jit
def _crop_add_kernel(big, small, out):
    inside, n, y, x, c = thread_element(small)
    if inside:
        out[n, y, x, c] = big[n, y, x, c] + small[n, y, x, c]


@cuda.jit
def _scale_kernel(xf, s, of):
    i = cuda.grid(1)
    if i < xf.shape[0]:
        of[i] = xf[i] * s


@cuda.jit
def _box3x3_kernel(x, out):
    inside, n, y, xo, c = thread_element(x)
    N, H, W, C = x.shape
    if inside:
        acc = np.float32(0.0)
        for yy in range(y - 1, y + 2):
            if 0 <= yy < H:
                for xx in range(xo - 1, xo + 2):
                    if 0 <= xx < W:
                        acc += x[n, yy, xx, c]
        out[n, y, xo, c] = acc * np.float32(1.0 / 9.0)


@cuda.jit
def _interp_kernel(x, f, out):
    inside, n, y, xo, c = thread_element(out)
    h, w = x.shape[1], x.shape[2]
    if inside:
        inv = np.float32(1.0) / np.float32(f)
        one = np.float32(1.0)
        i0 = y // f
        j0 = xo // f
        ay = np.float32(y - f * i0) * inv
        ax = np.float32(xo - f * j0) * inv
        acc = np.float32(0.0)
        if i0 < h:
            if j0 < w:
                acc += (one - ay) * (one - ax) * x[n, i0, j0, c]
            if ax > 0 and j0 + 1 < w:
                acc += (one - ay) * ax * x[n, i0, j0 + 1, c]
        if ay > 0 and i0 + 1 < h:
            if j0 < w:
                acc += ay * (one - ax) * x[n, i0 + 1, j0, c]
            if ax > 0 and j0 + 1 < w:
                acc += ay * ax * x[n, i0 + 1, j0 + 1, c]
        out[n, y, xo, c] = acc


@cuda.jit(device=True)
def _tent(d, f):
    """t(d) = 1 − |d|·(1/f) for |d| < f: the bilinear weight of a pixel ``d`` away."""
    return np.float32(1.0) - np.float32(abs(d)) * (np.float32(1.0) / np.float32(f))


@cuda.jit
def _interp_backward_kernel(dout, f, dx):
    inside, n, i, j, c = thread_element(dx)
    Ho, Wo = dout.shape[1], dout.shape[2]
    if inside:
        acc = np.float32(0.0)
        for y in range(f * i - f + 1, f * i + f):
            if 0 <= y < Ho:
                ty = _tent(y - f * i, f)
                for xo in range(f * j - f + 1, f * j + f):
                    if 0 <= xo < Wo:
                        acc += ty * _tent(xo - f * j, f) * dout[n, y, xo, c]
        dx[n, i, j, c] = acc


def _flat(a):
    return a.reshape(a.size)                # any C-contiguous shape -> (size,)


def crop_add(big, small, out):
    launch_1d(_crop_add_kernel, out.size, big, small, out)


def scale(x, s, out):
    launch_1d(_scale_kernel, x.size, _flat(x), np.float32(s), _flat(out))


def box3x3(x, out):
    launch_1d(_box3x3_kernel, out.size, x, out)


def interp(x, f, out):
    launch_1d(_interp_kernel, out.size, x, np.int64(f), out)


def interp_backward(dout, f, dx):
    launch_1d(_interp_backward_kernel, dx.size, dout, np.int64(f), dx)
