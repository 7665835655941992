"""Max pooling 2×2, stride 2, SAME (ceil) padding: ``(N, H, W, C) -> (N, ⌈H/2⌉, ⌈W/2⌉, C)``.

    out[n, y, x, c] = max_{dy, dx ∈ {0,1}, inside} x[n, 2y + dy, 2x + dx, c]

For odd H or W the last window hangs over the edge and only its inside pixels compete (as if
padded with −∞, TensorFlow's SAME). ``argmax`` stores ``2·dy + dx`` of the winner (first one on
ties); backward sends each ``dout`` to that pixel alone — windows do not overlap, so no races.
"""
from numba import njit, prange


@njit(parallel=True, cache=True)
def maxpool2x2_forward(x, out, argmax):
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
                    yy = 2 * y + k // 2
                    xx = 2 * xo + k % 2
                    if yy < H and xx < W:
                        v = x[n, yy, xx, c]
                        if v > best:
                            best = v
                            arg = k
                out[n, y, xo, c] = best
                argmax[n, y, xo, c] = arg


@njit(parallel=True, cache=True)
def maxpool2x2_backward(dout, argmax, dx):
    N, H, W, C = dx.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    for p in prange(N * Ho):
        n = p // Ho
        y = p % Ho
        for k in range(4):               # clear this window band, then route
            yy = 2 * y + k // 2
            if k % 2 == 0 and yy < H:
                for xx in range(W):
                    for c in range(C):
                        dx[n, yy, xx, c] = 0.0
        for xo in range(Wo):
            for c in range(C):
                k = argmax[n, y, xo, c]
                dx[n, 2 * y + k // 2, 2 * xo + k % 2, c] = dout[n, y, xo, c]
