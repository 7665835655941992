"""Weight gradient of the Winograd F(2×2, 3×3) convolution (:mod:`tinyseg.backend.cpu.winograd`).

The forward is ``M[ξ] = V[ξ] @ U[ξ]`` with ``U = G g Gᵀ`` and ``Y_t = Aᵀ M_t A``, so by the chain
rule, for each tile ``t`` with output gradient ``dY_t`` (its 2×2 block of ``dout``, 0 outside
the image):

    dM_t = A dY_t Aᵀ                  A = [[1, 0], [1, 1], [1, -1], [0, -1]]  (4 × 2)
    dU[ξ] = Σ_t V[ξ, t]ᵀ dM[ξ, t]     16 products (C, T) @ (T, F), summed over all tiles
    dg = Gᵀ dU G                      back from the 4×4 transform domain to the 3×3 filter

— 16/36 of im2col's multiply-adds for ``dw``, as in the forward. Each worker thread sums the
products of its own blocks of tiles into its own ``dU[worker]`` (one parallel region for the
whole layer, the BLAS single-threaded meanwhile); :func:`winograd_filter_grad` adds the workers'
partial sums and applies ``Gᵀ · G``.
"""
import numpy as np
from numba import njit, prange

from ._blocks import block_rows
from .matmul import single_threaded
from .winograd import anchor, anchors, gather_taps, tile_blocks, winograd_input


@njit(inline="always")
def _a2(u0, u1):
    """A u for a 2-vector u: (u0, u0 + u1, u0 − u1, −u1)."""
    return u0, u0 + u1, u0 - u1, -u1


@njit(cache=True)
def _output_grad_tile(dout, n, y0, x0, dil, dM, p):
    """dM[:, p, :] = A dY Aᵀ for the tile whose outputs are (y0 + d·a, x0 + d·b), a, b ∈ {0, 1}.

    The 4 output gradients are first gathered into rows 0–3 of the tile's slot (zeros outside the
    image, :func:`gather_taps`), then expanded in place (each channel reads its 4 values before
    writing 16).
    """
    gather_taps(dout, n, y0, x0, dil, 2, dM, p)
    for f in range(dout.shape[3]):
        y00, y01, y10, y11 = dM[0, p, f], dM[1, p, f], dM[2, p, f], dM[3, p, f]
        c00, c10, c20, c30 = _a2(y00, y10)            # A dY: column 0, then column 1
        c01, c11, c21, c31 = _a2(y01, y11)
        dM[0, p, f], dM[1, p, f], dM[2, p, f], dM[3, p, f] = _a2(c00, c01)    # (A dY) Aᵀ, row by row
        dM[4, p, f], dM[5, p, f], dM[6, p, f], dM[7, p, f] = _a2(c10, c11)
        dM[8, p, f], dM[9, p, f], dM[10, p, f], dM[11, p, f] = _a2(c20, c21)
        dM[12, p, f], dM[13, p, f], dM[14, p, f], dM[15, p, f] = _a2(c30, c31)


@njit(cache=True)
def winograd_output_grad(dout, n, a0, a1, dil, dM):
    """dM[ξ, t, f] = (A dY_t Aᵀ)[ξ] for the tiles of anchor rows [a0, a1) of image ``n``."""
    TW = anchors(dout.shape[2], dil)
    for p in range((a1 - a0) * TW):
        _output_grad_tile(dout, n, anchor(a0 + p // TW, dil), anchor(p % TW, dil), dil, dM, p)


def winograd_weight_grad(x, dout, dil, dU, V, dM, tmp):
    """dU[w] = Σ over worker w's tiles of V[ξ]ᵀ dM[ξ]; see :func:`winograd_weight_grad_blocks`."""
    with single_threaded():
        winograd_weight_grad_blocks(x, dout, dil, dU, V, dM, tmp)


@njit(parallel=True, cache=True)
def winograd_weight_grad_blocks(x, dout, dil, dU, V, dM, tmp):
    """Per-worker partial sums ``dU (P, 16, C, F)`` of the transformed weight gradient.

    ``V (P, 16, T, C)``, ``dM (P, 16, T, F)`` and ``tmp (P, C, F)`` are each worker's block
    workspace; worker ``k`` takes blocks ``k, k + P, …`` (as in the forward) and overwrites
    ``dU[k]`` (zeros if it has no block).
    """
    N, H, W, _ = x.shape
    TW, TH, rows, per_image = tile_blocks(H, W, dil, V)
    P = V.shape[0]
    for worker in prange(P):
        du, v, dm, t = dU[worker], V[worker], dM[worker], tmp[worker]
        du[...] = 0.0
        for block in range(worker, N * per_image, P):
            n, a0, a1 = block_rows(block, rows, TH)
            T = (a1 - a0) * TW
            winograd_input(x, n, a0, a1, dil, v)
            winograd_output_grad(dout, n, a0, a1, dil, dm)
            for k in range(16):
                np.dot(v[k, :T].T, dm[k, :T], t)          # (C, T) @ (T, F)
                du[k] += t


@njit(inline="always")
def _gt(u0, u1, u2, u3, half):
    """Gᵀ u for a 4-vector u (3 values)."""
    return u0 + half * (u1 + u2), half * (u1 - u2), half * (u1 + u2) + u3


@njit(parallel=True, cache=True)
def winograd_filter_grad(dU, dw):
    """dw[:, :, c, f] = Gᵀ (Σ_workers dU[:, :, c, f]) G, the 4×4 sums brought back to 3×3."""
    P, C, F = dU.shape[0], dU.shape[2], dU.shape[3]
    half = dw.dtype.type(0.5)
    for c in prange(C):
        for f in range(F):
            u0, u1, u2, u3, u4, u5, u6, u7 = dU[0, 0, c, f], dU[0, 1, c, f], dU[0, 2, c, f], \
                dU[0, 3, c, f], dU[0, 4, c, f], dU[0, 5, c, f], dU[0, 6, c, f], dU[0, 7, c, f]
            u8, u9, u10, u11, u12, u13, u14, u15 = dU[0, 8, c, f], dU[0, 9, c, f], dU[0, 10, c, f], \
                dU[0, 11, c, f], dU[0, 12, c, f], dU[0, 13, c, f], dU[0, 14, c, f], dU[0, 15, c, f]
            for w in range(1, P):                      # the other workers' partial sums
                u0, u1, u2, u3 = u0 + dU[w, 0, c, f], u1 + dU[w, 1, c, f], u2 + dU[w, 2, c, f], u3 + dU[w, 3, c, f]
                u4, u5, u6, u7 = u4 + dU[w, 4, c, f], u5 + dU[w, 5, c, f], u6 + dU[w, 6, c, f], u7 + dU[w, 7, c, f]
                u8, u9, u10, u11 = u8 + dU[w, 8, c, f], u9 + dU[w, 9, c, f], u10 + dU[w, 10, c, f], u11 + dU[w, 11, c, f]
                u12, u13, u14, u15 = (u12 + dU[w, 12, c, f], u13 + dU[w, 13, c, f], u14 + dU[w, 14, c, f],
                                      u15 + dU[w, 15, c, f])
            # Gᵀ u: the 4 rows a of each column b become 3, then the 4 columns of each row
            r00, r10, r20 = _gt(u0, u4, u8, u12, half)
            r01, r11, r21 = _gt(u1, u5, u9, u13, half)
            r02, r12, r22 = _gt(u2, u6, u10, u14, half)
            r03, r13, r23 = _gt(u3, u7, u11, u15, half)
            dw[0, 0, c, f], dw[0, 1, c, f], dw[0, 2, c, f] = _gt(r00, r01, r02, r03, half)
            dw[1, 0, c, f], dw[1, 1, c, f], dw[1, 2, c, f] = _gt(r10, r11, r12, r13, half)
            dw[2, 0, c, f], dw[2, 1, c, f], dw[2, 2, c, f] = _gt(r20, r21, r22, r23, half)
