"""The small kernels of the skip and DeepLab heads: crop-and-add, scale, 3×3 box, interp.

    crop_add:    out[n, y, x, c] = big[n, y, x, c] + small[n, y, x, c]     (out is small's shape)
    scale:       out = s · x
    box3x3:      out[n, y, x, c] = (1/9) Σ_{|dy|,|dx| <= 1} x[n, y+dy, x+dx, c]   (zeros outside)
    interp:      out[n, y, x, c] = Σ_{i, j} x[n, i, j, c] · t(y − f·i) · t(x − f·j),
                 t(d) = max(0, 1 − |d|/f)                    (score i lands on output row f·i)
    interp_backward: its transpose, dx[n, i, j, c] = Σ_{y, x} dout[n, y, x, c] · t(y − f·i) · t(x − f·j)

``crop_add`` is FCN's fuse of an upsampled score map with a finer one: with SAME pooling and TF
SAME transposed convolutions both maps are aligned at their top-left, so the larger one is only
cut at the bottom/right (no offset, unlike Caffe's FCN with its 100-pixel input padding).
``box3x3`` is DeepLab's ``pool5a`` (3×3 average pooling, stride 1, padding 1, the padded zeros
counted as Caffe does); it is its own adjoint, so backward runs the same kernel on ``dout``.
``interp`` is DeepLab's bilinear ×f upsampling (Caffe's ``Interp``); equal to a depthwise
transposed convolution with the odd tent ``upsample_filt(2f − 1)`` cropped by ``f − 1``.
The output size is whatever ``out`` is (the image's), so no overhang is ever computed.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def crop_add(big, small, out):
    N, h, w, C = small.shape
    for p in prange(N * h):
        n = p // h
        y = p % h
        for x in range(w):
            for c in range(C):
                out[n, y, x, c] = big[n, y, x, c] + small[n, y, x, c]


@njit(parallel=True, cache=True)
def scale(x, s, out):
    a = x.reshape(x.size)                   # any C-contiguous shape -> (size,)
    o = out.reshape(out.size)
    for i in prange(a.size):
        o[i] = a[i] * s


@njit(parallel=True, cache=True)
def box3x3(x, out):
    N, H, W, C = x.shape
    ninth = np.float32(1.0 / 9.0)
    for p in prange(N * H):
        n = p // H
        y = p % H
        for xo in range(W):
            for c in range(C):
                out[n, y, xo, c] = 0.0
            for yy in range(max(y - 1, 0), min(y + 2, H)):
                for xx in range(max(xo - 1, 0), min(xo + 2, W)):
                    for c in range(C):
                        out[n, y, xo, c] += x[n, yy, xx, c]
            for c in range(C):
                out[n, y, xo, c] *= ninth


@njit(parallel=True, cache=True)
def interp(x, f, out):
    N, h, w, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    inv = np.float32(1.0 / f)
    one = np.float32(1.0)
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        i0 = y // f
        ay = np.float32(y - f * i0) * inv               # weight of row i0 + 1
        for xo in range(Wo):
            j0 = xo // f
            ax = np.float32(xo - f * j0) * inv
            for c in range(C):
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


@njit(inline="always")
def _tent(d, inv):
    """t(d) = 1 − |d|·inv for |d| < f, ``inv = 1/f``: the bilinear weight of a pixel ``d`` away."""
    return np.float32(1.0) - np.float32(abs(d)) * inv


@njit(parallel=True, cache=True)
def interp_backward(dout, f, dx):
    N, h, w, C = dx.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    inv = np.float32(1.0 / f)
    for p in prange(N * h):
        n = p // h
        i = p % h
        y_lo = max(f * i - f + 1, 0)
        y_hi = min(f * i + f, Ho)                       # rows with t(y − f·i) > 0
        for j in range(w):
            x_lo = max(f * j - f + 1, 0)
            x_hi = min(f * j + f, Wo)
            for c in range(C):
                dx[n, i, j, c] = 0.0
            for y in range(y_lo, y_hi):
                ty = _tent(y - f * i, inv)
                for xo in range(x_lo, x_hi):
                    t = ty * _tent(xo - f * j, inv)
                    for c in range(C):
                        dx[n, i, j, c] += t * dout[n, y, xo, c]
