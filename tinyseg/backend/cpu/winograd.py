"""3×3 convolution (stride 1, SAME, dilation d) by Winograd's minimal filtering F(2×2, 3×3).

Lavin & Gray (2016), "Fast Algorithms for Convolutional Neural Networks": a 2×2 block of outputs
of a 3×3 filter needs 16 multiplications instead of 36,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A            d: a 4×4 input tile, g: the 3×3 filter

    Bᵀ = [[1, 0, -1, 0],      G = [[ 1,    0,   0 ],      Aᵀ = [[1, 1,  1,  0],
          [0, 1,  1, 0],           [ 1/2, 1/2, 1/2],            [0, 1, -1, -1]]
          [0, -1, 1, 0],           [ 1/2,-1/2, 1/2],
          [0, 1,  0, -1]]          [ 0,    0,   1 ]]

and over channels the element-wise products become 16 independent matrix products: with
``U[ξ, c, f] = (G g_{c,f} Gᵀ)[ξ]`` and ``V[ξ, t, c] = (Bᵀ d_{t,c} B)[ξ]`` for every tile ``t``,

    M[ξ] = V[ξ] @ U[ξ]            (T, C) @ (C, F), ξ = 0 … 15
    out[tile t, f] = Aᵀ M[:, t, f] A + b[f]

so the GEMMs do 16/36 = 1/2.25 of im2col's multiply-adds; the transforms are cheap additions.

**Dilation** ``d``: the taps of a dilated filter are ``d`` apart, so output rows ``y`` and
``y + d`` share 3 of their 4 input rows at spacing ``d``. A tile here is the 2×2 outputs
``(y0 + d·a, x0 + d·b)`` for ``a, b ∈ {0, 1}``; it reads the 4×4 inputs ``(y0 + d·(i−1),
x0 + d·(j−1))``. Tile corners ("anchors") are the rows ``y0`` with ``y0 mod 2d < d`` (for d = 1:
the even rows), enumerated by :func:`anchor`; together their tiles cover every output once.
Inputs outside the image read as 0 (SAME zero padding); outputs outside it are not written.

The image is processed a block of anchor rows at a time, so ``V (16, T, C)`` and
``M (16, T, F)`` hold only that block's tiles (the wrapper sizes them within the convolution
workspace). Float32 results differ from im2col's by rounding only (the transforms' coefficients
are 0, ±1/2, ±1; tested against the NumPy twin and PyTorch).
"""
import numpy as np
from numba import njit, prange


@njit(inline="always")
def anchors(size, dil):
    """Number of tile anchors along an axis of ``size`` pixels: rows ``y0 < size``, ``y0 mod 2d < d``."""
    return (size // (2 * dil)) * dil + min(dil, size % (2 * dil))


@njit(inline="always")
def anchor(a, dil):
    """The ``a``-th anchor row: ``(a // d)·2d + a mod d`` (d = 1: ``2a``)."""
    return (a // dil) * 2 * dil + a % dil


@njit(inline="always")
def _filter_tile(U, p, q, g00, g01, g02, g10, g11, g12, g20, g21, g22, half):
    """U[:, p, q] = G g Gᵀ (16 values) for one 3×3 filter g."""
    # rows: G g (4 × 3)
    t00, t01, t02 = g00, g01, g02
    t10, t11, t12 = half * (g00 + g10 + g20), half * (g01 + g11 + g21), half * (g02 + g12 + g22)
    t20, t21, t22 = half * (g00 - g10 + g20), half * (g01 - g11 + g21), half * (g02 - g12 + g22)
    t30, t31, t32 = g20, g21, g22
    # columns: (G g) Gᵀ (4 × 4)
    U[0, p, q], U[1, p, q] = t00, half * (t00 + t01 + t02)
    U[2, p, q], U[3, p, q] = half * (t00 - t01 + t02), t02
    U[4, p, q], U[5, p, q] = t10, half * (t10 + t11 + t12)
    U[6, p, q], U[7, p, q] = half * (t10 - t11 + t12), t12
    U[8, p, q], U[9, p, q] = t20, half * (t20 + t21 + t22)
    U[10, p, q], U[11, p, q] = half * (t20 - t21 + t22), t22
    U[12, p, q], U[13, p, q] = t30, half * (t30 + t31 + t32)
    U[14, p, q], U[15, p, q] = half * (t30 - t31 + t32), t32


@njit(parallel=True, cache=True)
def winograd_weights(w, flip, U):
    """U[4a + b, c, f] = (G g Gᵀ)[a, b] with g = w[:, :, c, f]; ``flip``: U[4a + b, f, c] from w[2 − i, 2 − j, c, f].

    With ``flip`` the filter bank is rotated by 180° and its channels swapped — the convolution
    that maps ``dout`` back to ``dx`` — and ``U`` is ``(16, F, C)`` for ``w (3, 3, C, F)``.
    """
    C, F = w.shape[2], w.shape[3]
    half = w.dtype.type(0.5)
    if flip:
        for f in prange(F):
            for c in range(C):
                _filter_tile(U, f, c, w[2, 2, c, f], w[2, 1, c, f], w[2, 0, c, f],
                             w[1, 2, c, f], w[1, 1, c, f], w[1, 0, c, f],
                             w[0, 2, c, f], w[0, 1, c, f], w[0, 0, c, f], half)
    else:
        for c in prange(C):
            for f in range(F):
                _filter_tile(U, c, f, w[0, 0, c, f], w[0, 1, c, f], w[0, 2, c, f],
                             w[1, 0, c, f], w[1, 1, c, f], w[1, 2, c, f],
                             w[2, 0, c, f], w[2, 1, c, f], w[2, 2, c, f], half)


@njit(parallel=True, cache=True)
def winograd_input(x, n, a0, a1, dil, V):
    """V[4i' + j', t, c] = (Bᵀ d B)[i', j'] for the tiles of anchor rows [a0, a1) of image ``n``.

    ``d[i, j] = x[n, y0 + d·(i − 1), x0 + d·(j − 1), c]``, 0 outside the image. Every tap is read
    from a clamped (valid) address and then selected, so the channel loop has no branches.
    """
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    TW = anchors(W, dil)
    zero = x.dtype.type(0)
    for p in prange((a1 - a0) * TW):
        y0 = anchor(a0 + p // TW, dil) - dil          # first input row / column of the tile
        x0 = anchor(p % TW, dil) - dil
        y_0, y_1, y_2, y_3 = y0, y0 + dil, y0 + 2 * dil, y0 + 3 * dil
        x_0, x_1, x_2, x_3 = x0, x0 + dil, x0 + 2 * dil, x0 + 3 * dil
        oy0, oy1, oy2, oy3 = 0 <= y_0 < H, 0 <= y_1 < H, 0 <= y_2 < H, 0 <= y_3 < H
        ox0, ox1, ox2, ox3 = 0 <= x_0 < W, 0 <= x_1 < W, 0 <= x_2 < W, 0 <= x_3 < W
        y_0, y_1, y_2, y_3 = min(max(y_0, 0), H - 1), min(max(y_1, 0), H - 1), min(max(y_2, 0), H - 1), min(y_3, H - 1)
        x_0, x_1, x_2, x_3 = min(max(x_0, 0), W - 1), min(max(x_1, 0), W - 1), min(max(x_2, 0), W - 1), min(x_3, W - 1)
        for c in range(C):
            # Bᵀ d: combine the 4 rows, for each of the 4 columns j
            e0 = x[n, y_0, x_0, c] if oy0 and ox0 else zero
            e1 = x[n, y_1, x_0, c] if oy1 and ox0 else zero
            e2 = x[n, y_2, x_0, c] if oy2 and ox0 else zero
            e3 = x[n, y_3, x_0, c] if oy3 and ox0 else zero
            r00, r10, r20, r30 = e0 - e2, e1 + e2, e2 - e1, e1 - e3
            e0 = x[n, y_0, x_1, c] if oy0 and ox1 else zero
            e1 = x[n, y_1, x_1, c] if oy1 and ox1 else zero
            e2 = x[n, y_2, x_1, c] if oy2 and ox1 else zero
            e3 = x[n, y_3, x_1, c] if oy3 and ox1 else zero
            r01, r11, r21, r31 = e0 - e2, e1 + e2, e2 - e1, e1 - e3
            e0 = x[n, y_0, x_2, c] if oy0 and ox2 else zero
            e1 = x[n, y_1, x_2, c] if oy1 and ox2 else zero
            e2 = x[n, y_2, x_2, c] if oy2 and ox2 else zero
            e3 = x[n, y_3, x_2, c] if oy3 and ox2 else zero
            r02, r12, r22, r32 = e0 - e2, e1 + e2, e2 - e1, e1 - e3
            e0 = x[n, y_0, x_3, c] if oy0 and ox3 else zero
            e1 = x[n, y_1, x_3, c] if oy1 and ox3 else zero
            e2 = x[n, y_2, x_3, c] if oy2 and ox3 else zero
            e3 = x[n, y_3, x_3, c] if oy3 and ox3 else zero
            r03, r13, r23, r33 = e0 - e2, e1 + e2, e2 - e1, e1 - e3
            # (Bᵀ d) B: combine the 4 columns of each row i'
            V[0, p, c], V[1, p, c], V[2, p, c], V[3, p, c] = r00 - r02, r01 + r02, r02 - r01, r01 - r03
            V[4, p, c], V[5, p, c], V[6, p, c], V[7, p, c] = r10 - r12, r11 + r12, r12 - r11, r11 - r13
            V[8, p, c], V[9, p, c], V[10, p, c], V[11, p, c] = r20 - r22, r21 + r22, r22 - r21, r21 - r23
            V[12, p, c], V[13, p, c], V[14, p, c], V[15, p, c] = r30 - r32, r31 + r32, r32 - r31, r31 - r33


@njit(parallel=True, cache=True)
def winograd_output(M, b, n, a0, a1, dil, out):
    """out[n, y0 + d·a, x0 + d·b', f] = (Aᵀ M[:, t, f] A)[a, b'] + b[f], inside the image only."""
    H, W, F = out.shape[1], out.shape[2], out.shape[3]
    TW = anchors(W, dil)
    for p in prange((a1 - a0) * TW):
        y0 = anchor(a0 + p // TW, dil)
        x0 = anchor(p % TW, dil)
        down = y0 + dil < H
        right = x0 + dil < W
        for f in range(F):
            # Aᵀ M: rows 0 and 1 of the 2 × 4 intermediate
            s0 = M[0, p, f] + M[4, p, f] + M[8, p, f]
            s1 = M[1, p, f] + M[5, p, f] + M[9, p, f]
            s2 = M[2, p, f] + M[6, p, f] + M[10, p, f]
            s3 = M[3, p, f] + M[7, p, f] + M[11, p, f]
            u0 = M[4, p, f] - M[8, p, f] - M[12, p, f]
            u1 = M[5, p, f] - M[9, p, f] - M[13, p, f]
            u2 = M[6, p, f] - M[10, p, f] - M[14, p, f]
            u3 = M[7, p, f] - M[11, p, f] - M[15, p, f]
            out[n, y0, x0, f] = s0 + s1 + s2 + b[f]
            if right:
                out[n, y0, x0 + dil, f] = s1 - s2 - s3 + b[f]
            if down:
                out[n, y0 + dil, x0, f] = u0 + u1 + u2 + b[f]
                if right:
                    out[n, y0 + dil, x0 + dil, f] = u1 - u2 - u3 + b[f]


@njit(cache=True)
def conv2d_winograd(x, U, b, dil, out, V, M):
    """out = conv3×3(x; dilation dil) + b from transformed filters ``U (16, C, F)``.

    ``V (16, T, C)`` and ``M (16, T, F)`` are the workspace for ``T = rows·anchors(W)`` tiles, a
    block of ``rows`` anchor rows at a time.
    """
    N, H, W, F = out.shape
    TW = anchors(W, dil)
    TH = anchors(H, dil)
    rows = V.shape[1] // TW
    for n in range(N):
        for a0 in range(0, TH, rows):
            a1 = min(a0 + rows, TH)
            T = (a1 - a0) * TW
            winograd_input(x, n, a0, a1, dil, V)
            for k in range(16):
                np.dot(V[k, :T], U[k], M[k, :T])          # (T, C) @ (C, F)
            winograd_output(M, b, n, a0, a1, dil, out)
