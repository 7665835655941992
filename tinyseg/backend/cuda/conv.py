"""2-D convolution (stride 1, SAME, odd kernel, dilation d) on the GPU: im2col + tiled GEMM + col2im.

The math, shapes and blocking are those of :mod:`tinyseg.backend.cpu.conv`:

    out[n, y, x, f] = b[f] + Σ_{i, j, c} x[n, y + d·i - ph, x + d·j - pw, c] · w[i, j, c, f]

with ``ph = d·(kh - 1)/2``, ``pw = d·(kw - 1)/2``.

For each block of image rows, :func:`_im2col_kernel` writes the ``(rows·W, kh·kw·C)`` im2col
matrix (one thread per element, so consecutive threads write consecutive addresses), and
:func:`tinyseg.backend.cuda.matmul.gemm` multiplies it by ``w`` viewed as ``(K, F)`` with the bias
fused into its epilogue. Backward, per block: ``dw (+)= colᵀ @ dout`` (the GEMM's ``trans_a`` and
``beta = 1`` accumulate, so ``dw_tmp`` is not needed), ``dcol = dout @ wᵀ`` (``trans_b``) into the
same buffer, then :func:`_col2im_add_kernel` gathers each ``dx`` pixel's windows (one thread per
``dx`` element: no two threads write the same element, no atomics). ``db`` is a two-pass column
sum accumulated in float64, as on the CPU. ``need_dx = False`` skips ``dcol`` and col2im.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._index import thread_cell
from ._launch import SIMULATOR, launch_1d, row_blocks, scratch
from .matmul import gemm

# Row chunks of the first pass of the column sum (partials per column).
_SUM_CHUNKS = 4 if SIMULATOR else 256


@cuda.jit
def _im2col_kernel(x, n, r0, r1, kh, kw, dil, col):
    """col[(r - r0)·W + c, (i·kw + j)·C + ch] = x[n, r + d·i - ph, c + d·j - pw, ch], 0 outside."""
    e = cuda.grid(1)
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    K = kh * kw * C
    if e < (r1 - r0) * W * K:
        p = e // K
        q = e % K
        ch = q % C
        ij = q // C
        i = ij // kw
        j = ij % kw
        y = r0 + p // W + dil * i - dil * (kh - 1) // 2
        xx = p % W + dil * j - dil * (kw - 1) // 2
        if 0 <= y < H and 0 <= xx < W:
            col[p, q] = x[n, y, xx, ch]
        else:
            col[p, q] = np.float32(0.0)


@cuda.jit
def _col2im_add_kernel(col, n, r0, r1, y0, kh, kw, dil, dx):
    """dx[n, y, x, ch] += Σ_{i, j} col[(y - d·i + ph - r0)·W + (x - d·j + pw), (i·kw + j)·C + ch].

    One thread per ``dx`` element of rows ``[y0, y1)`` (those some output row in ``[r0, r1)`` saw).
    """
    e = cuda.grid(1)
    H, W, C = dx.shape[1], dx.shape[2], dx.shape[3]
    ph = dil * (kh - 1) // 2
    pw = dil * (kw - 1) // 2
    y1 = r1 + ph if r1 + ph < H else H      # min(); builtin min/max do not compile for CUDA here
    if e < (y1 - y0) * W * C:
        ch = e % C
        p = e // C
        y = y0 + p // W
        xx = p % W
        acc = np.float32(0.0)
        for i in range(kh):
            oy = y - dil * i + ph
            if oy >= r0 and oy < r1:
                for j in range(kw):
                    ox = xx - dil * j + pw
                    if ox >= 0 and ox < W:
                        acc += col[(oy - r0) * W + ox, (i * kw + j) * C + ch]
        dx[n, y, xx, ch] += acc


@cuda.jit
def _column_partials_kernel(a2, part):
    """part[r, f] = Σ_{m ≡ r mod R} a2[m, f] in float64, for R = part.shape[0] row chunks."""
    inside, r, f = thread_cell(part)
    M, R = a2.shape[0], part.shape[0]
    if inside:
        acc = 0.0
        for m in range(r, M, R):
            acc += a2[m, f]
        part[r, f] = acc


@cuda.jit
def _column_finish_kernel(part, out):
    """out[f] = Σ_r part[r, f], rounded to float32 once."""
    f = cuda.grid(1)
    if f < out.shape[0]:
        acc = 0.0
        for r in range(part.shape[0]):
            acc += part[r, f]
        out[f] = acc


@cuda.jit
def _fill_kernel(a1, value):
    i = cuda.grid(1)
    if i < a1.shape[0]:
        a1[i] = value


def fill(a, value) -> None:
    """Set every element of the C-contiguous device array ``a`` to ``value``."""
    flat = a.reshape(a.size)
    launch_1d(_fill_kernel, a.size, flat, flat.dtype.type(value))


def column_sums(a2, out) -> None:
    """out[f] = Σ_m a2[m, f] for a (M, F) device matrix, accumulated in float64."""
    M, F = a2.shape
    chunks = max(1, min(_SUM_CHUNKS, M))
    part = scratch((chunks, F), np.float64)
    launch_1d(_column_partials_kernel, chunks * F, a2, part)
    launch_1d(_column_finish_kernel, F, part, out)


def conv2d_forward(x, w, b, out, col, dil):
    """out = conv(x, w; dilation dil) + b. ``col``: the (rows·W, kh·kw·C) workspace (unused for 1×1)."""
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    K = kh * kw * C
    w2 = w.reshape(K, F)                    # (kh, kw, C, F) -> (K, F)
    out2 = out.reshape(N * H * W, F)        # (N, H, W, F) -> (N·H·W, F)
    if kh == 1 and kw == 1:
        gemm(x.reshape(N * H * W, C), w2, out2, bias=b)
        return
    rows = col.shape[0] // W
    for n, r0, r1 in row_blocks(N, H, rows):
        m = (r1 - r0) * W
        launch_1d(_im2col_kernel, m * K, x, n, r0, r1, kh, kw, dil, col)
        start = (n * H + r0) * W
        gemm(col[:m], w2, out2[start:start + m], bias=b)      # (m, K) @ (K, F) + b


def conv2d_backward(x, w, dout, dx, dw, db, col, dw_tmp, dil, need_dx):
    """dx, dw, db of ``out = conv(x, w; dilation dil) + b`` given ``dout``; outputs are overwritten.

    ``dw_tmp`` is accepted for the backend contract and unused: the GEMM accumulates into ``dw``.
    With ``need_dx`` false, ``dx`` is neither read nor written.
    """
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    K = kh * kw * C
    w2 = w.reshape(K, F)                    # (kh, kw, C, F) -> (K, F)
    dw2 = dw.reshape(K, F)
    dout2 = dout.reshape(N * H * W, F)      # (N, H, W, F) -> (N·H·W, F)
    column_sums(dout2, db)
    if kh == 1 and kw == 1:
        x2 = x.reshape(N * H * W, C)
        gemm(x2, dout2, dw2, trans_a=True)                    # (C, M) @ (M, F)
        if need_dx:
            gemm(dout2, w2, dx.reshape(N * H * W, C), trans_b=True)  # (M, F) @ (F, C)
        return
    if need_dx:
        fill(dx, 0.0)
    rows = col.shape[0] // W
    ph = dil * (kh - 1) // 2
    first = True
    for n, r0, r1 in row_blocks(N, H, rows):
        m = (r1 - r0) * W
        start = (n * H + r0) * W
        d = dout2[start:start + m]
        c = col[:m]
        launch_1d(_im2col_kernel, m * K, x, n, r0, r1, kh, kw, dil, c)
        gemm(c, d, dw2, trans_a=True, beta=0.0 if first else 1.0)   # (K, m) @ (m, F)
        first = False
        if need_dx:
            gemm(d, w2, c, trans_b=True)                            # dcol: (m, F) @ (F, K)
            y0 = max(r0 - ph, 0)
            y1 = min(r1 + ph, H)
            launch_1d(_col2im_add_kernel, (y1 - y0) * W * C, c, n, r0, r1, y0, kh, kw, dil, dx)


def conv2d_forward_blocks(x, w, b, out, cols, dil):
    """The CPU's per-worker forward, for the backend contract: one worker (``cols[0]``) here."""
    conv2d_forward(x, w, b, out, cols[0], dil)


def conv2d_weight_grad_blocks(x, dout, dw, parts, cols, tmp, dil):
    """The CPU's per-worker ``dw``, for the backend contract: one worker here, the GEMM
    accumulating into ``dw`` directly (``parts`` and ``tmp`` unused)."""
    N, H, W, C = x.shape
    kh, kw, _, F = dw.shape
    K = kh * kw * C
    dw2 = dw.reshape(K, F)                    # (kh, kw, C, F) -> (K, F)
    dout2 = dout.reshape(N * H * W, F)
    col = cols[0]
    rows = col.shape[0] // W
    first = True
    for n, r0, r1 in row_blocks(N, H, rows):
        m = (r1 - r0) * W
        start = (n * H + r0) * W
        launch_1d(_im2col_kernel, m * K, x, n, r0, r1, kh, kw, dil, col)
        gemm(col[:m], dout2[start:start + m], dw2, trans_a=True, beta=0.0 if first else 1.0)
        first = False


def _kernel_row_span(i, kh, dil, H):
    """Kernel row ``i``'s shift ``dy = d·i − ph`` and the output rows ``[y0, y1)`` it reaches."""
    dy = dil * i - dil * (kh - 1) // 2
    return dy, max(0, -dy), min(H, H - dy)


def conv2d_forward_by_kernel_rows(x, w, b, out, col, tmp, dil):
    """out = conv(x, w; dilation dil) + b, one GEMM per kernel row over the output rows it reaches
    (the CPU's :func:`tinyseg.backend.cpu.conv.conv2d_forward_by_kernel_rows`). The GEMM adds
    each row's product into ``out`` itself (``beta = 1``), so ``tmp`` is unused."""
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    out2 = out.reshape(N * H * W, F)        # (N, H, W, F) -> (N·H·W, F)
    centre = (kh - 1) // 2
    for n in range(N):
        image = out2[n * H * W:(n + 1) * H * W]
        for step in range(kh):
            i = (centre + step) % kh        # the centre row first: it reaches every row
            dy, y0, y1 = _kernel_row_span(i, kh, dil, H)
            if y1 <= y0:
                continue
            m = (y1 - y0) * W
            launch_1d(_im2col_kernel, m * kw * C, x, n, y0 + dy, y1 + dy, 1, kw, dil, col)
            w_i = w[i].reshape(kw * C, F)
            if step == 0:
                gemm(col[:m], w_i, image, bias=b)
            else:
                gemm(col[:m], w_i, image[y0 * W:y1 * W], beta=1.0)


def conv2d_backward_by_kernel_rows(x, w, dout, dx, dw, db, col, tmp, dil, need_dx):
    """dx, dw, db of :func:`conv2d_forward_by_kernel_rows`; outputs are overwritten (``tmp``
    unused: the GEMM accumulates the images' parts of ``dw`` itself)."""
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    dout2 = dout.reshape(N * H * W, F)      # (N, H, W, F) -> (N·H·W, F)
    column_sums(dout2, db)
    if need_dx:
        fill(dx, 0.0)
    for i in range(kh):
        dy, y0, y1 = _kernel_row_span(i, kh, dil, H)
        w_i = w[i].reshape(kw * C, F)
        dw_i = dw[i].reshape(kw * C, F)
        if y1 <= y0:
            fill(dw_i, 0.0)
            continue
        m = (y1 - y0) * W
        for n in range(N):
            d = dout2[(n * H + y0) * W:(n * H + y1) * W]
            c = col[:m]
            launch_1d(_im2col_kernel, m * kw * C, x, n, y0 + dy, y1 + dy, 1, kw, dil, c)
            gemm(c, d, dw_i, trans_a=True, beta=0.0 if n == 0 else 1.0)   # (kw·C, m) @ (m, F)
            if need_dx:
                gemm(d, w_i, c, trans_b=True)                               # dcol: (m, F) @ (F, kw·C)
                launch_1d(_col2im_add_kernel, m * C, c, n, y0 + dy, y1 + dy, y0 + dy, 1, kw, dil, dx)
