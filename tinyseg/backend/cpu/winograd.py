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
workspace), one block per worker thread. Float32 results differ from im2col's by rounding only (the transforms' coefficients
are 0, ±1/2, ±1; tested against the NumPy twin and PyTorch).
"""
import numba
import numpy as np
from numba import njit, prange

from ._blocks import block_rows, blocks_per_image
from .matmul import single_threaded

# Bytes of one worker's block of tiles (V and M) that the wrapper aims at: small enough to stay in
# the 1 MB L2 cache where it can, while a block still has at least 128 tiles for an efficient GEMM
# (measured on VGG's shapes with benchmarks/bench_ops.py).
WINOGRAD_BLOCK_BYTES = 2 * 2**20
# The filter bank rotated by 180° with its channels swapped (the convolution that maps dout back to
# dx) has, at ξ = 4a + b, the transform U[4σ(a) + σ(b)]ᵀ of the bank itself, σ = (3, 1, 2, 0):
# G·reverse(g) is G·g with rows 0 and 3 swapped. FLIPPED_XI[ξ] = 4σ(a) + σ(b).
FLIPPED_XI = np.array([4 * sa + sb for sa in (3, 1, 2, 0) for sb in (3, 1, 2, 0)], np.int64)


@njit(inline="always")
def anchors(size, dil):
    """Number of tile anchors along an axis of ``size`` pixels: rows ``y0 < size``, ``y0 mod 2d < d``."""
    return (size // (2 * dil)) * dil + min(dil, size % (2 * dil))


@njit(inline="always")
def tile_blocks(H, W, dil, V):
    """``(TW, TH, rows, per_image)`` of an ``H × W`` image cut into blocks of tile rows for the
    per-worker workspace ``V (P, 16, rows·TW, ·)``: ``TW × TH`` tile anchors, ``rows`` anchor rows
    a block, ``per_image`` blocks an image."""
    TW = anchors(W, dil)
    TH = anchors(H, dil)
    rows = V.shape[2] // TW
    return TW, TH, rows, blocks_per_image(TH, rows)


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
def winograd_weights(w, U):
    """U[4a + b, c, f] = (G g Gᵀ)[a, b] with g = w[:, :, c, f].

    The backward's bank (rotated 180°, channels swapped) needs no transform of its own: it is
    ``U[FLIPPED_XI[ξ]]ᵀ`` (:func:`conv2d_winograd` with ``flip``).
    """
    C, F = w.shape[2], w.shape[3]
    half = w.dtype.type(0.5)
    for c in prange(C):
        for f in range(F):
            _filter_tile(U, c, f, w[0, 0, c, f], w[0, 1, c, f], w[0, 2, c, f],
                         w[1, 0, c, f], w[1, 1, c, f], w[1, 2, c, f],
                         w[2, 0, c, f], w[2, 1, c, f], w[2, 2, c, f], half)


@njit(inline="always")
def _bt(e0, e1, e2, e3):
    """Bᵀ e for a 4-vector e (one column, or one row, of a tile)."""
    return e0 - e2, e1 + e2, e2 - e1, e1 - e3


@njit(inline="always")
def gather_taps(a, n, y0, x0, dil, taps, T, p):
    """T[taps·i + j, p, :] = a[n, y0 + d·i, x0 + d·j, :] for i, j < taps, zeros outside the image.

    A tile's pixels copied into its slot ``p`` of a per-tile workspace, to be transformed there in
    place (4×4 input taps for Bᵀ d B here, 2×2 output gradients for A dY Aᵀ in the weight
    gradient). Copying first keeps each channel loop on one array and free of branches, so it
    vectorises (one loop reading ``a`` and writing ``T`` did not when compiled outside a parallel
    loop: LLVM cannot rule out that the two overlap).
    """
    H, W, C = a.shape[1], a.shape[2], a.shape[3]
    zero = a.dtype.type(0)
    for i in range(taps):
        yy = y0 + i * dil
        for j in range(taps):
            xx = x0 + j * dil
            if 0 <= yy < H and 0 <= xx < W:
                for c in range(C):
                    T[taps * i + j, p, c] = a[n, yy, xx, c]
            else:
                for c in range(C):
                    T[taps * i + j, p, c] = zero


@njit(cache=True)
def _input_tile(x, n, y0, x0, dil, V, p):
    """V[:, p, :] = Bᵀ d B for the tile whose 4×4 taps start at input pixel (y0, x0): the taps
    are gathered into the tile's 16 rows of ``V`` (:func:`gather_taps`), then transformed in place.
    """
    gather_taps(x, n, y0, x0, dil, 4, V, p)
    for c in range(x.shape[3]):
        # Bᵀ d, column by column, then (Bᵀ d) B, row by row
        r00, r10, r20, r30 = _bt(V[0, p, c], V[4, p, c], V[8, p, c], V[12, p, c])
        r01, r11, r21, r31 = _bt(V[1, p, c], V[5, p, c], V[9, p, c], V[13, p, c])
        r02, r12, r22, r32 = _bt(V[2, p, c], V[6, p, c], V[10, p, c], V[14, p, c])
        r03, r13, r23, r33 = _bt(V[3, p, c], V[7, p, c], V[11, p, c], V[15, p, c])
        V[0, p, c], V[1, p, c], V[2, p, c], V[3, p, c] = _bt(r00, r01, r02, r03)
        V[4, p, c], V[5, p, c], V[6, p, c], V[7, p, c] = _bt(r10, r11, r12, r13)
        V[8, p, c], V[9, p, c], V[10, p, c], V[11, p, c] = _bt(r20, r21, r22, r23)
        V[12, p, c], V[13, p, c], V[14, p, c], V[15, p, c] = _bt(r30, r31, r32, r33)


@njit(cache=True)
def winograd_input(x, n, a0, a1, dil, V):
    """V[4i' + j', t, c] = (Bᵀ d B)[i', j'] for the tiles of anchor rows [a0, a1) of image ``n``,

    ``d[i, j] = x[n, y0 + d·(i − 1), x0 + d·(j − 1), c]``, 0 outside the image.
    """
    TW = anchors(x.shape[2], dil)
    for p in range((a1 - a0) * TW):
        _input_tile(x, n, anchor(a0 + p // TW, dil) - dil, anchor(p % TW, dil) - dil, dil, V, p)


@njit(cache=True)
def winograd_output(M, b, n, a0, a1, dil, out):
    """out[n, y0 + d·a, x0 + d·b', f] = (Aᵀ M[:, t, f] A)[a, b'] + b[f], inside the image only."""
    H, W, F = out.shape[1], out.shape[2], out.shape[3]
    TW = anchors(W, dil)
    for p in range((a1 - a0) * TW):
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


def conv2d_winograd(x, U, b, dil, out, V, M, flip=False):
    """out = conv3×3(x; dilation dil) + b from ``U (16, C, F)``; ``V``, ``M``: one block per worker.

    ``flip``: with the bank rotated 180° and its channels swapped, read from the same ``U``
    (``U (16, F, C)`` of ``w (3, 3, F, C)``, x with ``C`` channels, out with ``F``): the backward
    needs no second, transposed filter transform. Each worker multiplies its own blocks, so the
    BLAS runs single-threaded meanwhile.
    """
    with single_threaded():
        conv2d_winograd_blocks(x, U, b, dil, out, V, M, bool(flip))


@njit(parallel=True, cache=True)
def conv2d_winograd_blocks(x, U, b, dil, out, V, M, flip):
    """out = conv3×3(x; dilation dil) + b from transformed filters ``U (16, C, F)``
    (``flip``: ``U[FLIPPED_XI[ξ]]ᵀ`` at ξ, the rotated and channel-swapped bank).

    ``V (P, 16, T, C)`` and ``M (P, 16, T, F)`` hold one block of ``T = rows·anchors(W)`` tiles
    for each of ``P`` workers. Worker ``k`` takes blocks ``k, k + P, …`` and does all of a
    block's work itself — input transform, the 16 products, output transform — so a layer is
    one parallel region, not eighteen per block (a synchronisation each, costly on a busy
    machine); :func:`conv2d_winograd` runs the BLAS single-threaded meanwhile.
    """
    N, H, W, F = out.shape
    TW, TH, rows, per_image = tile_blocks(H, W, dil, V)
    P = V.shape[0]
    for worker in prange(P):
        for block in range(worker, N * per_image, P):
            n, a0, a1 = block_rows(block, rows, TH)
            T = (a1 - a0) * TW
            v, m = V[worker], M[worker]
            winograd_input(x, n, a0, a1, dil, v)
            for k in range(16):
                if flip:
                    np.dot(v[k, :T], U[FLIPPED_XI[k]].T, m[k, :T])      # (T, F) @ (F, C)
                else:
                    np.dot(v[k, :T], U[k], m[k, :T])                    # (T, C) @ (C, F)
            winograd_output(m, b, n, a0, a1, dil, out)


def conv2d_winograd_one_block(x, U, b, dil, out, V, M, flip=False):
    """:func:`conv2d_winograd` for a batch whose tiles all fit one block ``V (1, 16, T, C)``,
    ``M (1, 16, T, F)`` (``T`` = every tile of every image). On a small map (fewer tiles than
    one efficient block), blocks per worker would make 16·P thin products that each pack all of
    ``U``; here the workers split the anchor rows for the two transforms and the 16 products
    among them, each product over every tile (BLAS single-threaded meanwhile)."""
    with single_threaded():
        _conv2d_winograd_one_block(x, U, b, dil, out, V[0], M[0], bool(flip), numba.get_num_threads())


@njit(parallel=True, cache=True)
def _conv2d_winograd_one_block(x, U, b, dil, out, V, M, flip, P):
    N, H, W, F = out.shape
    TW, TH = anchors(W, dil), anchors(H, dil)
    rows = N * TH                                    # anchor rows of the batch, image by image
    for worker in prange(P):
        for r in range(worker * rows // P, (worker + 1) * rows // P):
            winograd_input(x, r // TH, r % TH, r % TH + 1, dil, V[:, r * TW:(r + 1) * TW])
    T = rows * TW
    for k in prange(16):
        if flip:
            np.dot(V[k, :T], U[FLIPPED_XI[k]].T, M[k, :T])              # (T, F) @ (F, C)
        else:
            np.dot(V[k, :T], U[k], M[k, :T])                            # (T, C) @ (C, F)
    for worker in prange(P):
        for r in range(worker * rows // P, (worker + 1) * rows // P):
            winograd_output(M[:, r * TW:(r + 1) * TW], b, r // TH, r % TH, r % TH + 1, dil, out)


def parallel_workers() -> int:
    """Workers of :func:`conv2d_winograd_blocks` (Numba's threads): the first axis of ``V``, ``M``."""
    return numba.get_num_threads()
