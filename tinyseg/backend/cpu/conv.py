"""2-D convolution (stride 1, SAME padding, odd kernel, dilation d ≥ 1) as im2col + GEMM.

Shapes: ``x (N, H, W, C)``, ``w (kh, kw, C, F)``, ``b (F,)``, ``out (N, H, W, F)``.

    out[n, y, x, f] = b[f] + Σ_{i, j, c} x[n, y + d·i - ph, x + d·j - pw, c] · w[i, j, c, f]

with ``ph = d·(kh - 1) / 2``, ``pw = d·(kw - 1) / 2`` and zeros outside the image: the taps of a
dilated ("atrous") kernel are ``d`` pixels apart, so a 3×3 kernel with ``d = 12`` sees a 25×25
field with the cost of a 3×3 one (DeepLab's fc6). ``d = 1`` is the ordinary convolution.

im2col writes, for each output pixel, the ``kh·kw·C`` input values its window sees into one row of
``col``; the convolution is then the matrix product ``col (M, K) @ w.reshape(K, F)``. The image is
processed a block of rows at a time so ``col`` holds only ``rows·W`` rows (the wrapper sizes it):
the extra memory of a convolution is bounded by that one buffer, whatever the image size.

Backward, for the same block of rows:

* ``dw += colᵀ @ dout``                                       (K, M) @ (M, F)
* ``dcol = dout @ wᵀ`` into the same buffer, then col2im adds each row's window back into ``dx``;
  col2im is written as a gather over ``dx`` pixels (each ``dx`` pixel sums the windows that saw it),
  so the parallel loop never has two threads writing the same element;
* ``db = Σ dout`` over all pixels.

``need_dx = False`` skips the two ``dx`` steps (the first layer's input gradient is never used).
:func:`conv2d_forward_blocks` is the forward with one im2col buffer per worker thread, each
worker doing whole blocks (used when the image has several blocks per thread);
:func:`conv2d_weight_grad_blocks` likewise computes ``dw`` alone (a first layer's backward).
A 1×1 kernel needs no im2col: ``x`` viewed as ``(N·H·W, C)`` already is ``col``.

:func:`conv2d_forward_by_kernel_rows` and :func:`conv2d_backward_by_kernel_rows` split the sum
over the kernel's rows instead of the image's (for a layer whose weights outweigh its im2col, such
as FCN's 7×7 fc6 on a 12×16 map). Kernel row ``i`` shifts the image by ``dy = d·i − ph`` rows, so
it only reaches the output rows ``y`` with ``0 ≤ y + dy < H``:

    out[y] += im2col_i[y] @ w[i].reshape(kw·C, F)      for those rows only

``im2col_i`` is the ``kh = 1`` im2col of the shifted rows. The zero rows that SAME padding puts
into the full im2col (a seventh of fc6's at 12 rows) are never multiplied, and every weight is
still read once per image.
"""
import numpy as np
from numba import njit, prange

from ._blocks import block_rows, blocks_per_image
from .matmul import single_threaded


@njit(inline="always")
def _im2col_pixel(x, n, r, c, kh, kw, dil, col, p):
    """col[p, (i·kw + j)·C + ch] = x[n, r + d·i - ph, c + d·j - pw, ch] (0 outside the image)."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    ph, pw = dil * (kh - 1) // 2, dil * (kw - 1) // 2
    for i in range(kh):
        y = r + dil * i - ph
        for j in range(kw):
            xx = c + dil * j - pw
            base = (i * kw + j) * C
            if 0 <= y < H and 0 <= xx < W:
                for ch in range(C):
                    col[p, base + ch] = x[n, y, xx, ch]
            else:
                for ch in range(C):
                    col[p, base + ch] = 0.0


@njit(parallel=True, cache=True)
def im2col_rows(x, n, r0, r1, kh, kw, dil, col):
    """col[(r - r0)·W + c, (i·kw + j)·C + ch] = x[n, r + d·i - ph, c + d·j - pw, ch], r in [r0, r1)."""
    W = x.shape[2]
    for p in prange((r1 - r0) * W):
        _im2col_pixel(x, n, r0 + p // W, p % W, kh, kw, dil, col, p)


@njit(cache=True)
def im2col_rows_serial(x, n, r0, r1, kh, kw, dil, col):
    """:func:`im2col_rows` on the calling thread (inside a worker of a parallel loop)."""
    W = x.shape[2]
    for p in range((r1 - r0) * W):
        _im2col_pixel(x, n, r0 + p // W, p % W, kh, kw, dil, col, p)


@njit(parallel=True, cache=True)
def col2im_rows_add(col, n, r0, r1, kh, kw, dil, dx):
    """Add the windows of output rows [r0, r1) stored in ``col`` back into ``dx`` (gather form).

    dx[n, y, x, ch] += Σ_{i, j} col[(y - d·i + ph - r0)·W + (x - d·j + pw), (i·kw + j)·C + ch]
    over the (i, j) whose output pixel lies in rows [r0, r1) and inside the image.
    """
    H, W, C = dx.shape[1], dx.shape[2], dx.shape[3]
    ph, pw = dil * (kh - 1) // 2, dil * (kw - 1) // 2
    y0 = max(r0 - ph, 0)                     # input rows some output row in [r0, r1) saw
    y1 = min(r1 + ph, H)
    for p in prange((y1 - y0) * W):
        y = y0 + p // W
        xx = p % W
        for i in range(kh):
            oy = y - dil * i + ph
            if oy < r0 or oy >= r1:
                continue
            for j in range(kw):
                ox = xx - dil * j + pw
                if ox < 0 or ox >= W:
                    continue
                row = (oy - r0) * W + ox
                base = (i * kw + j) * C
                for ch in range(C):
                    dx[n, y, xx, ch] += col[row, base + ch]


@njit(parallel=True, cache=True)
def add_bias(out2, b):
    """out2[m, f] += b[f] for a (M, F) matrix."""
    for m in prange(out2.shape[0]):
        for f in range(out2.shape[1]):
            out2[m, f] += b[f]


@njit(cache=True)
def column_sums(a2, out):
    """out[f] = Σ_m a2[m, f], accumulated in float64 for a (M, F) matrix."""
    acc = np.zeros(a2.shape[1], np.float64)
    for m in range(a2.shape[0]):
        for f in range(a2.shape[1]):
            acc[f] += a2[m, f]
    for f in range(a2.shape[1]):
        out[f] = acc[f]


@njit(parallel=True, cache=True)
def add_into(dst, src):
    """dst += src, elementwise over two C-contiguous 2-D arrays of the same shape."""
    for i in prange(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] += src[i, j]


@njit(inline="always")
def _as_matrices(x, w, out):
    """The convolution's GEMM views: ``w (kh, kw, C, F) -> (K, F)``, K = kh·kw·C, and
    ``out (N, H, W, F) -> (N·H·W, F)`` (or any array shaped like the output, such as ``dout``)."""
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    return w.reshape(kh * kw * C, F), out.reshape(N * H * W, F)


@njit(cache=True)
def conv2d_forward(x, w, b, out, col, dil):
    """out = conv(x, w; dilation dil) + b. ``col``: the (rows·W, kh·kw·C) workspace (unused for 1×1)."""
    N, H, W, C = x.shape
    kh, kw = w.shape[0], w.shape[1]
    w2, out2 = _as_matrices(x, w, out)      # (K, F), (N·H·W, F)
    if kh == 1 and kw == 1:
        np.dot(x.reshape(N * H * W, C), w2, out2)
        add_bias(out2, b)
        return
    rows = col.shape[0] // W
    for block in range(N * blocks_per_image(H, rows)):
        n, r0, r1 = block_rows(block, rows, H)
        m = (r1 - r0) * W
        im2col_rows(x, n, r0, r1, kh, kw, dil, col)
        start = (n * H + r0) * W
        o = out2[start:start + m]
        np.dot(col[:m], w2, o)
        add_bias(o, b)


def conv2d_forward_blocks(x, w, b, out, cols, dil):
    """out = conv(x, w; dilation dil) + b, each worker doing whole blocks: ``cols (P, rows·W, K)``.

    Worker ``k`` im2cols and multiplies blocks ``k, k + P, …`` of ``rows`` image rows with its own
    buffer ``cols[k]``: one parallel region for the layer instead of three per block (each a
    synchronisation, costly on a busy machine); the BLAS runs single-threaded meanwhile.
    """
    with single_threaded():
        _conv2d_forward_blocks(x, w, b, out, cols, dil)


@njit(parallel=True, cache=True)
def _conv2d_forward_blocks(x, w, b, out, cols, dil):
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    w2, out2 = _as_matrices(x, w, out)      # (K, F), (N·H·W, F)
    P = cols.shape[0]
    rows = cols.shape[1] // W
    per_image = blocks_per_image(H, rows)
    for worker in prange(P):
        col = cols[worker]
        for block in range(worker, N * per_image, P):
            n, r0, r1 = block_rows(block, rows, H)
            m = (r1 - r0) * W
            im2col_rows_serial(x, n, r0, r1, kh, kw, dil, col)
            start = (n * H + r0) * W
            o = out2[start:start + m]
            np.dot(col[:m], w2, o)                      # (m, K) @ (K, F)
            for i in range(m):
                for f in range(F):
                    o[i, f] += b[f]


def conv2d_weight_grad_blocks(x, dout, dw, parts, cols, tmp, dil):
    """dw of ``out = conv(x, w; dilation dil)`` (no dx), each worker doing whole blocks of rows.

    Worker ``k`` im2cols its blocks into ``cols[k]`` and sums ``colᵀ @ dout`` into ``parts[k]``
    (``tmp[k]`` holds one product); then ``dw = Σ_k parts[k]``. Two parallel regions for the
    layer; the BLAS runs single-threaded meanwhile. ``parts``, ``tmp``: (P, K, F).
    """
    with single_threaded():
        _conv2d_weight_grad_blocks(x, dout, dw, parts, cols, tmp, dil)


@njit(parallel=True, cache=True)
def _conv2d_weight_grad_blocks(x, dout, dw, parts, cols, tmp, dil):
    N, H, W, C = x.shape
    kh, kw, _, F = dw.shape
    K = kh * kw * C
    dout2 = dout.reshape(N * H * W, F)      # (N, H, W, F) -> (N·H·W, F)
    P = cols.shape[0]
    rows = cols.shape[1] // W
    per_image = blocks_per_image(H, rows)
    for worker in prange(P):
        col, part, t = cols[worker], parts[worker], tmp[worker]
        part[...] = 0.0
        for block in range(worker, N * per_image, P):
            n, r0, r1 = block_rows(block, rows, H)
            m = (r1 - r0) * W
            im2col_rows_serial(x, n, r0, r1, kh, kw, dil, col)
            start = (n * H + r0) * W
            np.dot(col[:m].T, dout2[start:start + m], t)          # (K, m) @ (m, F)
            part += t
    dw2 = dw.reshape(K, F)
    for k in prange(K):
        for f in range(F):
            acc = parts[0, k, f]
            for worker in range(1, P):
                acc += parts[worker, k, f]
            dw2[k, f] = acc


@njit(cache=True)
def conv2d_backward(x, w, dout, dx, dw, db, col, dw_tmp, dil, need_dx):
    """dx, dw, db of ``out = conv(x, w; dilation dil) + b`` given ``dout``; outputs are overwritten.

    ``col`` is the im2col workspace of the forward; ``dw_tmp`` (K, F) holds one block's partial
    ``dw`` when the image takes more than one block (else it may be a dummy (1, 1) array). With
    ``need_dx`` false, ``dx`` is neither read nor written (it may be a dummy array).
    """
    N, H, W, C = x.shape
    kh, kw = w.shape[0], w.shape[1]
    w2, dout2 = _as_matrices(x, w, dout)    # (K, F), (N·H·W, F)
    dw2 = dw.reshape(w2.shape)
    column_sums(dout2, db)
    if kh == 1 and kw == 1:
        x2 = x.reshape(N * H * W, C)
        np.dot(x2.T, dout2, dw2)                              # (C, M) @ (M, F)
        if need_dx:
            np.dot(dout2, w2.T, dx.reshape(N * H * W, C))     # (M, F) @ (F, C)
        return
    if need_dx:
        dx[...] = 0.0
    rows = col.shape[0] // W
    first = True
    for block in range(N * blocks_per_image(H, rows)):
        n, r0, r1 = block_rows(block, rows, H)
        m = (r1 - r0) * W
        start = (n * H + r0) * W
        d = dout2[start:start + m]
        c = col[:m]
        im2col_rows(x, n, r0, r1, kh, kw, dil, c)
        if first:
            np.dot(c.T, d, dw2)                       # (K, m) @ (m, F)
            first = False
        else:
            np.dot(c.T, d, dw_tmp)
            add_into(dw2, dw_tmp)
        if need_dx:
            np.dot(d, w2.T, c)                        # dcol: (m, F) @ (F, K)
            col2im_rows_add(c, n, r0, r1, kh, kw, dil, dx)


@njit(inline="always")
def kernel_row_span(i, kh, dil, H):
    """Kernel row ``i``'s shift ``dy = d·i − ph`` and the output rows ``[y0, y1)`` it reaches."""
    dy = dil * i - dil * (kh - 1) // 2
    return dy, max(0, -dy), min(H, H - dy)


@njit(cache=True)
def conv2d_forward_by_kernel_rows(x, w, b, out, col, tmp, dil):
    """out = conv(x, w; dilation dil) + b, one GEMM per kernel row over the rows it reaches.

    ``col``: (H·W, kw·C) workspace; ``tmp``: (H·W, F), one kernel row's product before it is
    added. The centre row (``dy = 0``) reaches every row and writes ``out`` first.
    """
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    out2 = out.reshape(N * H * W, F)         # (N, H, W, F) -> (N·H·W, F)
    centre = (kh - 1) // 2
    for n in range(N):
        image = out2[n * H * W:(n + 1) * H * W]
        for step in range(kh):
            i = (centre + step) % kh         # the centre row first
            dy, y0, y1 = kernel_row_span(i, kh, dil, H)
            if y1 <= y0:
                continue
            m = (y1 - y0) * W
            im2col_rows(x, n, y0 + dy, y1 + dy, 1, kw, dil, col)
            w_i = w[i].reshape(kw * C, F)
            if step == 0:
                np.dot(col[:m], w_i, image)              # (H·W, kw·C) @ (kw·C, F)
                add_bias(image, b)
            else:
                np.dot(col[:m], w_i, tmp[:m])            # (m, kw·C) @ (kw·C, F)
                add_into(image[y0 * W:y1 * W], tmp[:m])


@njit(cache=True)
def conv2d_backward_by_kernel_rows(x, w, dout, dx, dw, db, col, tmp, dil, need_dx):
    """dx, dw, db of :func:`conv2d_forward_by_kernel_rows`; outputs are overwritten.

    Per kernel row ``i`` and image: ``dw[i] (+)= im2col_iᵀ @ dout[rows]`` and, with ``need_dx``,
    ``dcol = dout[rows] @ w[i]ᵀ`` added back into the shifted rows of ``dx`` (col2im with
    ``kh = 1``). ``tmp``: (kw·C, F), a later image's part of ``dw[i]`` (unused for one image).
    """
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    dout2 = dout.reshape(N * H * W, F)       # (N, H, W, F) -> (N·H·W, F)
    column_sums(dout2, db)
    if need_dx:
        dx[...] = 0.0
    for i in range(kh):
        dy, y0, y1 = kernel_row_span(i, kh, dil, H)
        w_i = w[i].reshape(kw * C, F)
        dw_i = dw[i].reshape(kw * C, F)
        if y1 <= y0:
            dw_i[...] = 0.0
            continue
        m = (y1 - y0) * W
        for n in range(N):
            d = dout2[(n * H + y0) * W:(n * H + y1) * W]
            c = col[:m]
            im2col_rows(x, n, y0 + dy, y1 + dy, 1, kw, dil, c)
            if n == 0:
                np.dot(c.T, d, dw_i)                     # (kw·C, m) @ (m, F)
            else:
                np.dot(c.T, d, tmp)
                add_into(dw_i, tmp)
            if need_dx:
                np.dot(d, w_i.T, c)                      # dcol: (m, F) @ (F, kw·C)
                col2im_rows_add(c, n, y0 + dy, y1 + dy, 1, kw, dil, dx)
