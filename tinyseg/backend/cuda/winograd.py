"""Winograd F(2×2, 3×3) convolution on the GPU: the twin of :mod:`tinyseg.backend.cpu.winograd`.

Same math, tiles, blocking and arguments: the filter transform ``U = G g Gᵀ`` (one thread per
filter), the input transform ``V = Bᵀ d B`` (one thread per tile and channel, so consecutive
threads read consecutive channels), 16 products ``M[ξ] = V[ξ] @ U[ξ]`` by the tiled GEMM
(:mod:`tinyseg.backend.cuda.matmul`), and the output transform ``Aᵀ M A + b`` (one thread per
tile and output channel). The weight gradient (twin of :mod:`tinyseg.backend.cpu.winograd_grad`):
``dM = A dY Aᵀ`` per tile, ``dU[ξ] += V[ξ]ᵀ dM[ξ]`` (the GEMM accumulates with ``beta = 1``),
``dw = Gᵀ dU G``. See the CPU modules for the matrices and the dilated tiling.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import launch_1d, row_blocks
from .matmul import gemm

# Bytes of a block of tiles (V and M) that the wrapper aims at: large, so that each of the 16
# GEMMs of a block fills the GPU (bounded by CONV_WORKSPACE_BYTES).
WINOGRAD_BLOCK_BYTES = 128 * 2**20
# The rotated, channel-swapped bank at ξ = 4a + b is U[4σ(a) + σ(b)]ᵀ, σ = (3, 1, 2, 0) (the CPU's).
FLIPPED_XI = np.array([4 * sa + sb for sa in (3, 1, 2, 0) for sb in (3, 1, 2, 0)], np.int64)


@cuda.jit(device=True)
def _anchors(size, dil):
    r = size % (2 * dil)
    return (size // (2 * dil)) * dil + (r if r < dil else dil)


@cuda.jit(device=True)
def _anchor(a, dil):
    return (a // dil) * 2 * dil + a % dil


@cuda.jit(device=True)
def _tile_thread(a, a0, a1, dil):
    """This thread's (tile, channel) among the tiles of anchor rows ``[a0, a1)`` of the NHWC
    image ``a`` (``anchors(W)`` tiles a row, ``C = a.shape[3]`` channels, channel fastest).

    Returns ``(inside, c, p, y0, x0)``: channel ``c`` of tile ``p``, whose anchor (its top-left
    output pixel) is ``(y0, x0)``; ``inside`` is false for the threads past the last tile.
    """
    e = cuda.grid(1)
    TW = _anchors(a.shape[2], dil)
    C = a.shape[3]
    p = e // C
    return e < (a1 - a0) * TW * C, e % C, p, _anchor(a0 + p // TW, dil), _anchor(p % TW, dil)


@cuda.jit
def _weights_kernel(w, U):
    """U[4a + b, c, f] = (G g Gᵀ)[a, b] with g = w[:, :, c, f]; one thread per filter (c, f)."""
    e = cuda.grid(1)
    C, F = w.shape[2], w.shape[3]
    if e < C * F:
        c = e // F
        f = e % F
        half = np.float32(0.5)
        g00, g01, g02 = w[0, 0, c, f], w[0, 1, c, f], w[0, 2, c, f]
        g10, g11, g12 = w[1, 0, c, f], w[1, 1, c, f], w[1, 2, c, f]
        g20, g21, g22 = w[2, 0, c, f], w[2, 1, c, f], w[2, 2, c, f]
        t00, t01, t02 = g00, g01, g02
        t10, t11, t12 = half * (g00 + g10 + g20), half * (g01 + g11 + g21), half * (g02 + g12 + g22)
        t20, t21, t22 = half * (g00 - g10 + g20), half * (g01 - g11 + g21), half * (g02 - g12 + g22)
        t30, t31, t32 = g20, g21, g22
        U[0, c, f], U[1, c, f] = t00, half * (t00 + t01 + t02)
        U[2, c, f], U[3, c, f] = half * (t00 - t01 + t02), t02
        U[4, c, f], U[5, c, f] = t10, half * (t10 + t11 + t12)
        U[6, c, f], U[7, c, f] = half * (t10 - t11 + t12), t12
        U[8, c, f], U[9, c, f] = t20, half * (t20 + t21 + t22)
        U[10, c, f], U[11, c, f] = half * (t20 - t21 + t22), t22
        U[12, c, f], U[13, c, f] = t30, half * (t30 + t31 + t32)
        U[14, c, f], U[15, c, f] = half * (t30 - t31 + t32), t32


@cuda.jit(device=True)
def _tap(x, n, y, xx, c, H, W):
    """x[n, y, xx, c], or 0 outside the image (SAME zero padding)."""
    if y >= 0 and y < H and xx >= 0 and xx < W:
        return x[n, y, xx, c]
    return np.float32(0.0)


@cuda.jit(device=True)
def _bt(e0, e1, e2, e3):
    """Bᵀ e for a 4-vector e (one column, or one row, of a tile)."""
    return e0 - e2, e1 + e2, e2 - e1, e1 - e3


@cuda.jit(device=True)
def _bt_column(x, n, y0, xx, dil, c, H, W):
    """Bᵀ d[:, j] for the tile column at input column ``xx``: taps at rows ``y0 + i·d``."""
    return _bt(_tap(x, n, y0, xx, c, H, W), _tap(x, n, y0 + dil, xx, c, H, W),
               _tap(x, n, y0 + 2 * dil, xx, c, H, W), _tap(x, n, y0 + 3 * dil, xx, c, H, W))


@cuda.jit
def _input_kernel(x, n, a0, a1, dil, V):
    """V[4i' + j', t, c] = (Bᵀ d B)[i', j'] for tile t of anchor rows [a0, a1), channel c."""
    inside, c, p, y0, x0 = _tile_thread(x, a0, a1, dil)
    H, W = x.shape[1], x.shape[2]
    if inside:
        y0, x0 = y0 - dil, x0 - dil             # the 4×4 input patch starts one step up-left
        # Bᵀ d, column by column
        r00, r10, r20, r30 = _bt_column(x, n, y0, x0, dil, c, H, W)
        r01, r11, r21, r31 = _bt_column(x, n, y0, x0 + dil, dil, c, H, W)
        r02, r12, r22, r32 = _bt_column(x, n, y0, x0 + 2 * dil, dil, c, H, W)
        r03, r13, r23, r33 = _bt_column(x, n, y0, x0 + 3 * dil, dil, c, H, W)
        # (Bᵀ d) B, row by row
        V[0, p, c], V[1, p, c], V[2, p, c], V[3, p, c] = _bt(r00, r01, r02, r03)
        V[4, p, c], V[5, p, c], V[6, p, c], V[7, p, c] = _bt(r10, r11, r12, r13)
        V[8, p, c], V[9, p, c], V[10, p, c], V[11, p, c] = _bt(r20, r21, r22, r23)
        V[12, p, c], V[13, p, c], V[14, p, c], V[15, p, c] = _bt(r30, r31, r32, r33)


@cuda.jit
def _output_kernel(M, b, n, a0, a1, dil, out):
    """out[n, y0 + d·a, x0 + d·b', f] = (Aᵀ M[:, t, f] A)[a, b'] + b[f], inside the image only."""
    inside, f, p, y0, x0 = _tile_thread(out, a0, a1, dil)
    H, W = out.shape[1], out.shape[2]
    if inside:
        s0 = M[0, p, f] + M[4, p, f] + M[8, p, f]
        s1 = M[1, p, f] + M[5, p, f] + M[9, p, f]
        s2 = M[2, p, f] + M[6, p, f] + M[10, p, f]
        s3 = M[3, p, f] + M[7, p, f] + M[11, p, f]
        u0 = M[4, p, f] - M[8, p, f] - M[12, p, f]
        u1 = M[5, p, f] - M[9, p, f] - M[13, p, f]
        u2 = M[6, p, f] - M[10, p, f] - M[14, p, f]
        u3 = M[7, p, f] - M[11, p, f] - M[15, p, f]
        out[n, y0, x0, f] = s0 + s1 + s2 + b[f]
        if x0 + dil < W:
            out[n, y0, x0 + dil, f] = s1 - s2 - s3 + b[f]
        if y0 + dil < H:
            out[n, y0 + dil, x0, f] = u0 + u1 + u2 + b[f]
            if x0 + dil < W:
                out[n, y0 + dil, x0 + dil, f] = u1 - u2 - u3 + b[f]


def _tiles(size, dil):
    return (size // (2 * dil)) * dil + min(dil, size % (2 * dil))


def winograd_weights(w, U):
    """U = G g Gᵀ for every filter (the backward reads the rotated bank from it, ``flip``)."""
    launch_1d(_weights_kernel, w.shape[2] * w.shape[3], w, U)


def parallel_workers() -> int:
    """One worker: the GPU parallelises inside each block (``V``, ``M`` have a first axis of 1)."""
    return 1


def conv2d_winograd(x, U, b, dil, out, V, M, flip=False):
    """out = conv3×3(x; dilation dil) + b from ``U (16, C, F)``; ``V (1, 16, T, C)``, ``M (1, 16, T, F)``.

    ``flip``: the bank rotated 180° with its channels swapped, ``U[FLIPPED_XI[ξ]]ᵀ`` (the CPU's).
    """
    N, H, W, F = out.shape
    C = x.shape[3]
    TW, TH = _tiles(W, dil), _tiles(H, dil)
    V, M = V[0], M[0]
    rows = V.shape[1] // TW
    for n, a0, a1 in row_blocks(N, TH, rows):
        T = (a1 - a0) * TW
        launch_1d(_input_kernel, T * C, x, n, a0, a1, dil, V)
        for k in range(16):
            if flip:
                gemm(V[k, :T], U[FLIPPED_XI[k]], M[k, :T], trans_b=True)   # (T, F) @ (F, C)
            else:
                gemm(V[k, :T], U[k], M[k, :T])                            # (T, C) @ (C, F)
        launch_1d(_output_kernel, T * F, M, b, n, a0, a1, dil, out)


def conv2d_winograd_one_block(x, U, b, dil, out, V, M, flip=False):
    """:func:`conv2d_winograd` with ``V``, ``M`` holding every tile of the batch (the CPU's
    :func:`tinyseg.backend.cpu.winograd.conv2d_winograd_one_block`): on the GPU the blocks run one
    after another anyway, each product over the whole device, so one block is the same code."""
    conv2d_winograd(x, U, b, dil, out, V, M, flip)
