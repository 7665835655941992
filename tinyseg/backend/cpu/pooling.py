"""Max pooling on the CPU: VGG's 2×2/2 SAME pooling and DeepLab's 3×3 pooling with padding 1.

**2×2, stride 2, SAME (ceil)**: ``(N, H, W, C) -> (N, ⌈H/2⌉, ⌈W/2⌉, C)``,

    out[n, y, x, c] = max_{dy, dx ∈ {0,1}, inside} x[n, 2y + dy, 2x + dx, c]

For odd H or W the last window hangs over the edge and only its inside pixels compete (as if
padded with −∞, TensorFlow's SAME). ``argmax`` stores ``2·dy + dx`` of the winner (first one on
ties); backward sends each ``dout`` to that pixel alone — windows do not overlap, so no races.

**3×3, padding 1 (−∞), stride s ∈ {1, 2}**: ``(N, H, W, C) -> (N, ⌈H/s⌉, ⌈W/s⌉, C)``,

    out[n, y, x, c] = max_{dy, dx ∈ {0,1,2}, inside} x[n, s·y + dy - 1, s·x + dx - 1, c]

(Caffe's and ``torch.nn.functional.max_pool2d(x, 3, s, 1)``'s output size ``⌊(H + 2 − 3)/s⌋ + 1 =
⌈H/s⌉``). ``argmax`` stores ``3·dy + dx`` of the winner. Ties go to the first maximum in
row-major window order and a NaN wins over any number (the last NaN, if several), exactly as
PyTorch's CPU kernel chooses. Windows overlap, so backward is a gather: each ``dx`` pixel sums the
``dout`` of the (at most 9, for s = 1, or 4, for s = 2) windows that it won — race-free in
parallel, no clearing pass.
"""
import numpy as np
from numba import njit, prange


@njit(inline="always")
def _cell2x2(y, xo, k):
    """The input pixel (row, column) of entry ``k = 2·dy + dx`` of output pixel (y, xo)'s window."""
    return 2 * y + k // 2, 2 * xo + k % 2


@njit(parallel=True, cache=True)
def maxpool2x2_forward(x, out, argmax):
    """out[n, y, x, c] = the maximum of x over the 2×2 window at (2y, 2x), its inside pixels only;
    argmax[n, y, x, c] = 2·dy + dx of the winner (the first one on ties)."""
    N, H, W, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        for xo in range(Wo):
            for c in range(C):
                best = x[n, 2 * y, 2 * xo, c]
                arg = 0
                for k in range(1, 4):
                    yy, xx = _cell2x2(y, xo, k)
                    if yy < H and xx < W:
                        v = x[n, yy, xx, c]
                        if v > best:
                            best = v
                            arg = k
                out[n, y, xo, c] = best
                argmax[n, y, xo, c] = arg


@njit(parallel=True, cache=True)
def maxpool2x2_backward(dout, argmax, dx):
    """dx = each ``dout`` at its window's winner, 0 elsewhere: output row y clears the input rows
    of its windows, 2y and 2y + 1, then writes its winners (the windows do not overlap)."""
    N, H, W, C = dx.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        for yy in range(2 * y, min(2 * y + 2, H)):
            for xx in range(W):
                for c in range(C):
                    dx[n, yy, xx, c] = 0.0
        for xo in range(Wo):
            for c in range(C):
                yy, xx = _cell2x2(y, xo, argmax[n, y, xo, c])
                dx[n, yy, xx, c] = dout[n, y, xo, c]


@njit(parallel=True, cache=True)
def maxpool3x3_forward(x, stride, out, argmax):
    """out[n, y, x, c] = the maximum of x over the 3×3 window at (s·y − 1, s·x − 1), its inside
    pixels only; argmax = 3·dy + dx of the winner (the first maximum, or the last NaN)."""
    N, H, W, C = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        top = stride * y - 1
        for xo in range(Wo):
            left = stride * xo - 1
            first = True
            for k in range(9):
                yy = top + k // 3
                xx = left + k % 3
                if yy < 0 or yy >= H or xx < 0 or xx >= W:
                    continue
                if first:                         # the window's first inside pixel starts it
                    for c in range(C):
                        out[n, y, xo, c] = x[n, yy, xx, c]
                        argmax[n, y, xo, c] = k
                    first = False
                else:
                    for c in range(C):
                        v = x[n, yy, xx, c]
                        if v > out[n, y, xo, c] or np.isnan(v):
                            out[n, y, xo, c] = v
                            argmax[n, y, xo, c] = k


@njit(parallel=True, cache=True)
def maxpool3x3_backward(dout, argmax, stride, dx):
    """dx[n, y, x, c] = Σ dout[n, yo, xo, c] over the windows (yo, xo) whose winner is (y, x): a
    gather over the windows that contain the pixel (at most 9 for s = 1, 4 for s = 2)."""
    N, H, W, C = dx.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    for p in prange(N * H):
        n = p // H
        y = p % H
        # windows whose rows [s·yo − 1, s·yo + 1] contain y: yo ∈ [⌈(y − 1)/s⌉, ⌊(y + 1)/s⌋]
        yo0 = max((y - 1 + stride - 1) // stride, 0)
        yo1 = min((y + 1) // stride, Ho - 1)
        for xx in range(W):
            xo0 = max((xx - 1 + stride - 1) // stride, 0)
            xo1 = min((xx + 1) // stride, Wo - 1)
            for c in range(C):
                dx[n, y, xx, c] = 0.0
            for yo in range(yo0, yo1 + 1):
                for xo in range(xo0, xo1 + 1):
                    k = 3 * (y - stride * yo + 1) + (xx - stride * xo + 1)
                    for c in range(C):
                        if argmax[n, yo, xo, c] == k:
                            dx[n, y, xx, c] += dout[n, yo, xo, c]
