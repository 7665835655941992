"""Winograd F(2×2, 3×3) weight gradient on the GPU, same names and arguments as the CPU's
(:mod:`tinyseg.backend.cpu.winograd_grad`): ``dU[ξ] = Σ_t V[ξ, t]ᵀ dM[ξ, t]`` with ``dM = A dY Aᵀ``
per tile, then ``dw = Gᵀ dU G``. The input transform is the forward's (:mod:`.winograd`).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import launch_1d, row_blocks
from .matmul import gemm
from .winograd import _input_kernel, _tile_thread, _tiles


@cuda.jit
def _output_grad_kernel(dout, n, a0, a1, dil, dM):
    """dM[ξ, t, f] = (A dY_t Aᵀ)[ξ], dY_t the tile's 2×2 block of ``dout`` (0 outside the image)."""
    inside, f, p, y0, x0 = _tile_thread(dout, a0, a1, dil)
    H, W = dout.shape[1], dout.shape[2]
    if inside:
        zero = np.float32(0.0)
        down = y0 + dil < H
        right = x0 + dil < W
        y00 = dout[n, y0, x0, f]
        y01 = dout[n, y0, x0 + dil, f] if right else zero
        y10 = dout[n, y0 + dil, x0, f] if down else zero
        y11 = dout[n, y0 + dil, x0 + dil, f] if down and right else zero
        # A dY (4 × 2), then (A dY) Aᵀ, A = [[1, 0], [1, 1], [1, -1], [0, -1]]
        c00, c10, c20, c30 = y00, y00 + y10, y00 - y10, -y10
        c01, c11, c21, c31 = y01, y01 + y11, y01 - y11, -y11
        dM[0, p, f], dM[1, p, f], dM[2, p, f], dM[3, p, f] = c00, c00 + c01, c00 - c01, -c01
        dM[4, p, f], dM[5, p, f], dM[6, p, f], dM[7, p, f] = c10, c10 + c11, c10 - c11, -c11
        dM[8, p, f], dM[9, p, f], dM[10, p, f], dM[11, p, f] = c20, c20 + c21, c20 - c21, -c21
        dM[12, p, f], dM[13, p, f], dM[14, p, f], dM[15, p, f] = c30, c30 + c31, c30 - c31, -c31


@cuda.jit
def _filter_grad_kernel(dU, dw):
    """dw[:, :, c, f] = Gᵀ (Σ_workers dU[:, :, c, f]) G, one thread per (c, f)."""
    e = cuda.grid(1)
    P, C, F = dU.shape[0], dU.shape[2], dU.shape[3]
    if e < C * F:
        c = e // F
        f = e % F
        half = np.float32(0.5)
        u = cuda.local.array(16, np.float32)
        for k in range(16):
            acc = np.float32(0.0)
            for w in range(P):
                acc += dU[w, k, c, f]
            u[k] = acc
        for b in range(4):                       # Gᵀ over the rows of each column b
            r0 = u[b] + half * (u[4 + b] + u[8 + b])
            r1 = half * (u[4 + b] - u[8 + b])
            r2 = half * (u[4 + b] + u[8 + b]) + u[12 + b]
            u[b] = r0
            u[4 + b] = r1
            u[8 + b] = r2
        for i in range(3):                       # then over the columns of each row
            dw[i, 0, c, f] = u[4 * i] + half * (u[4 * i + 1] + u[4 * i + 2])
            dw[i, 1, c, f] = half * (u[4 * i + 1] - u[4 * i + 2])
            dw[i, 2, c, f] = half * (u[4 * i + 1] + u[4 * i + 2]) + u[4 * i + 3]


def winograd_weight_grad(x, dout, dil, dU, V, dM, tmp):
    """dU[0][ξ] = Σ_t V[ξ, t]ᵀ dM[ξ, t] over all tiles (one worker; ``tmp`` unused: the GEMM
    accumulates with ``beta = 1``)."""
    N, H, W, C = x.shape
    F = dout.shape[3]
    TW, TH = _tiles(W, dil), _tiles(H, dil)
    V, dM, dU0 = V[0], dM[0], dU[0]
    rows = V.shape[1] // TW
    first = True
    for n, a0, a1 in row_blocks(N, TH, rows):
        T = (a1 - a0) * TW
        launch_1d(_input_kernel, T * C, x, n, a0, a1, dil, V)
        launch_1d(_output_grad_kernel, T * F, dout, n, a0, a1, dil, dM)
        for k in range(16):
            gemm(V[k, :T], dM[k, :T], dU0[k], trans_a=True, beta=0.0 if first else 1.0)  # (C, T) @ (T, F)
        first = False


def winograd_filter_grad(dU, dw):
    """dw = Gᵀ (Σ_workers dU) G for every (c, f)."""
    launch_1d(_filter_grad_kernel, dw.shape[2] * dw.shape[3], dU, dw)
