"""The convolution op: SAME, stride 1, odd kernel, dilation d ≥ 1, forward and backward.

``conv2d_forward(x, w, b, dilation)`` returns ``(out, cache)``; ``conv2d_backward(dout, cache)``
returns ``(dx, dw, db)``. Two algorithms compute the same convolution (results differ by rounding):

* ``"im2col"`` — im2col with dilated taps + a row-blocked GEMM (:mod:`tinyseg.backend.cpu.conv`):
  any odd kernel; its backward gives ``dw`` (and ``dx`` through col2im).
* ``"winograd"`` — Winograd F(2×2, 3×3) (:mod:`tinyseg.backend.cpu.winograd`): 3×3 kernels only,
  2.25× fewer multiply-adds in its GEMMs. Backward uses it too: ``dx`` is the convolution of
  ``dout`` with the 180°-rotated, channel-swapped filters — whose transform is the forward's,
  permuted and transposed (``FLIPPED_XI``), so the GEMMs read it transposed — and ``dw`` is
  brought back from the transform domain (:mod:`tinyseg.backend.cpu.winograd_grad`) — under
  "auto" only on maps of at least ``WINOGRAD_GRAD_MIN_PIXELS`` pixels; smaller ones (conv5 of a
  224×224 input) take im2col's ``dw``, which there costs less than the per-thread transform sums.

``algorithm="auto"`` (the default) takes Winograd for 3×3 kernels with at least
``WINOGRAD_MIN_CHANNELS`` input and output channels (VGG's conv1_2 … conv5_3, DeepLab's conv5 and
fc6) and im2col otherwise (conv1_1's 3 input channels, fc6's 7×7, the 1×1 layers).
``with conv_algorithm("im2col"):`` makes "auto" mean im2col for every layer in the block (the demo
does so: its few iterations at width 0.25 do not repay compiling Winograd's kernels on a first run).

Extra memory: one block workspace of at most ``CONV_WORKSPACE_BYTES`` (the im2col rows; one per
worker thread when the image has several blocks per thread), or for
Winograd one block of tiles ``V`` and products ``M`` per worker thread (each at most
``CONV_WORKSPACE_BYTES``; a batch of fewer tiles than one block is a single block whose 16
products the workers share) plus the transformed filters ``U (16, C, F)`` (16/9 of the weights);
Winograd's backward adds one transformed weight gradient ``(16, C, F)`` per worker.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_positive_int, output_buffer

ALGORITHMS = ("auto", "im2col", "winograd")
# "auto" uses Winograd for 3×3 kernels when both channel counts reach this: below it the 16 GEMMs
# are too thin (conv1_1 has 3 input channels) and im2col's single GEMM is faster.
WINOGRAD_MIN_CHANNELS = 16
# Winograd tiles per block: at least this many (an efficient GEMM); beyond that the backend's
# WINOGRAD_BLOCK_BYTES target (cache-sized on the CPU) and CONV_WORKSPACE_BYTES bound apply.
WINOGRAD_MIN_TILES = 128
# "auto" computes a Winograd layer's weight gradient by im2col below this many pixels (N·H·W):
# on 2 cores im2col's dw took 0.3× Winograd's at 14×14, 0.8× at 28×28 and 1.1× at 32×32.
WINOGRAD_GRAD_MIN_PIXELS = 1000
_auto_means = "auto"            # what algorithm="auto" resolves to; see conv_algorithm()


@contextlib.contextmanager
def conv_algorithm(name: str):
    """Within the block, ``algorithm="auto"`` (every layer's default) means ``name``.

    ``"im2col"`` runs every convolution by im2col (no Winograd kernel is compiled or called),
    ``"auto"`` restores the usual choice. Forward and backward must run in the same setting.
    """
    global _auto_means
    if name not in ("auto", "im2col"):
        raise ValueError(f"`name` must be 'auto' or 'im2col', got {name!r}")
    before, _auto_means = _auto_means, name
    try:
        yield
    finally:
        _auto_means = before


def conv2d_forward(x, w, b, dilation: int = 1, algorithm: str = "auto"):
    """SAME convolution, stride 1, dilation ``d``:

    ``out[n,y,x,f] = b[f] + Σ_{i,j,c} x[n, y + d·i − ph, x + d·j − pw, c] · w[i,j,c,f]``

    with ``ph = d·(kh − 1)/2``, ``pw = d·(kw − 1)/2`` and zeros outside the image, so ``out`` has
    the input's height and width (PyTorch: ``F.conv2d(x, w, b, padding=d·(k−1)//2, dilation=d)``).

    Parameters
    ----------
    x : (N, H, W, C) float32
    w : (kh, kw, C, F) float32, kh and kw odd
    b : (F,) float32
    dilation : int >= 1, the spacing of the kernel's taps (1: an ordinary convolution)
    algorithm : "auto", "im2col" or "winograd" (3×3 only); see the module docstring

    Returns
    -------
    out : (N, H, W, F) float32
    cache : (x, w, dilation, algorithm) for :func:`conv2d_backward`
    """
    x = check_array("x", x, 4)
    w = check_array("w", w, 4)
    b = check_array("b", b, 1)
    dilation = check_positive_int("dilation", dilation)
    kh, kw, c_in, c_out = w.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"`w` must have odd kernel sizes for SAME padding, got {kh}×{kw}")
    if x.shape[3] != c_in:
        raise ValueError(f"`x` has {x.shape[3]} channels but `w` expects {c_in} (w.shape[2])")
    if b.shape[0] != c_out:
        raise ValueError(f"`b` has {b.shape[0]} entries but `w` has {c_out} output channels")
    winograd = _use_winograd(algorithm, w.shape)
    be = backend_for(x)
    N, H, W, _ = x.shape
    out = be.empty((N, H, W, c_out), np.float32)
    if winograd:
        _winograd(be, x, w, b, dilation, out, flip=False)
    elif by_kernel_rows(x.shape, w.shape):
        col = be.empty((H * W, kw * c_in), np.float32)
        tmp = be.empty((H * W, c_out), np.float32)
        be.conv2d_forward_by_kernel_rows(x, w, b, out, col, tmp, dilation)
    elif kh * kw > 1 and _rows_per_worker_block(x.shape, w.shape, be.CONV_WORKSPACE_BYTES,
                                                be.parallel_workers()) is not None:
        workers = be.parallel_workers()
        rows = _rows_per_worker_block(x.shape, w.shape, be.CONV_WORKSPACE_BYTES, workers)
        cols = be.empty((workers, rows * W, kh * kw * c_in), np.float32)
        be.conv2d_forward_blocks(x, w, b, out, cols, dilation)
    else:
        col = _conv_workspace(be, x.shape, w.shape)
        be.conv2d_forward(x, w, b, out, col, dilation)
    return out, (x, w, dilation, algorithm)


def weights_outweigh_im2col(x_shape, w_shape) -> bool:
    """Whether the weights ``(K, F)`` are at least as large as the whole im2col ``(H·W, K)``:
    ``F ≥ H·W`` (fc6 on a small map). Such a layer is one block of rows, so that no block reads
    all the weights again."""
    return w_shape[3] >= x_shape[1] * x_shape[2]


def by_kernel_rows(x_shape, w_shape) -> bool:
    """Whether im2col runs one GEMM per kernel row (``conv2d_*_by_kernel_rows``), skipping the
    rows of zeros SAME padding adds: for kernels taller than one row whose weights outweigh the
    whole im2col, where the image is one block anyway and the kernel rows each read their own
    weights once."""
    return w_shape[0] > 1 and weights_outweigh_im2col(x_shape, w_shape)


def _rows_per_worker_block(x_shape, w_shape, workspace_bytes: int, workers: int):
    """Rows per block when the im2col forward can give every worker thread whole blocks, else None.

    With several workers and at least two blocks each (blocks small enough to balance: at most
    ⌈H/4P⌉ rows), each worker does its own blocks; a layer that fits in fewer blocks (fc6 on a
    small map) keeps one shared buffer and the BLAS's own threads.
    """
    N, H = x_shape[0], x_shape[1]
    if weights_outweigh_im2col(x_shape, w_shape):
        return None                    # every block would read all the weights again
    rows = min(conv_rows_per_block(x_shape, w_shape, workspace_bytes), -(-H // (4 * workers)))
    if workers < 2 or N * -(-H // rows) < 2 * workers:
        return None
    return rows


def conv2d_backward(dout, cache, dw=None, db=None, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`: returns ``(dx, dw, db)`` shaped like ``x, w, b``.

    ``dx = Σ_{i,j} shift_{−(d·i−ph), −(d·j−pw)}(dout) @ w[i,j]ᵀ``, ``dw[i,j] = Σ shift(x)ᵀ dout``,
    ``db = Σ dout``. ``dw`` and ``db``, when given, are arrays to overwrite with the weight and
    bias gradients (a layer passes last step's, so fc6's 411 MB gradient is not allocated afresh
    every step). With ``need_dx=False`` the input gradient is not computed and ``dx`` is None
    (the first layer's input is the image: nobody needs its gradient).
    """
    x, w, dilation, algorithm = cache
    dout = check_array("dout", dout, 4)
    N, H, W, _ = x.shape
    if tuple(dout.shape) != (N, H, W, w.shape[3]):
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected {(N, H, W, w.shape[3])}")
    be = backend_for(x)
    dw = output_buffer(be, "dw", dw, w.shape)
    db = output_buffer(be, "db", db, (w.shape[3],))
    kh, kw, c_in, c_out = w.shape
    if _use_winograd(algorithm, w.shape):
        if _winograd_weight_grad_pays(algorithm, x.shape):
            be.column_sums(dout.reshape(N * H * W, c_out), db)
            _winograd_weight_grad(be, x, dout, dilation, dw)
        else:
            _im2col_backward(be, x, w, dout, dw, db, dilation, need_dx=False)
        if not need_dx:
            return None, dw, db
        dx = be.empty(x.shape, np.float32)
        _winograd(be, dout, w, be.zeros((c_in,), np.float32), dilation, dx, flip=True)
        return dx, dw, db
    dx = _im2col_backward(be, x, w, dout, dw, db, dilation, need_dx)
    return dx, dw, db


def _winograd_weight_grad_pays(algorithm, x_shape) -> bool:
    """Whether a Winograd layer's ``dw`` comes from the transform domain (else from im2col).

    Winograd's weight gradient does 16/36 of im2col's multiply-adds, but every worker thread
    accumulates its own ``(16, C, F)`` transform-domain gradient, which is then summed and brought
    back: a cost that does not shrink with the map. ``"auto"`` therefore takes im2col's ``dw``
    below ``WINOGRAD_GRAD_MIN_PIXELS`` pixels (VGG's conv5 on a 224×224 input: 14×14);
    ``algorithm="winograd"`` always uses Winograd's.
    """
    return algorithm == "winograd" or x_shape[0] * x_shape[1] * x_shape[2] >= WINOGRAD_GRAD_MIN_PIXELS


def _im2col_backward(be, x, w, dout, dw, db, dilation, need_dx):
    """The im2col backward into ``dw`` and ``db``; returns ``dx`` (None without ``need_dx``)."""
    N, H, W, _ = x.shape
    kh, kw, c_in, c_out = w.shape
    workers = be.parallel_workers()
    rows = _rows_per_worker_block(x.shape, w.shape, be.CONV_WORKSPACE_BYTES, workers)
    if (not need_dx and kh * kw > 1 and rows is not None
            and 2 * workers * kh * kw * c_in * c_out * 4 <= be.CONV_WORKSPACE_BYTES):
        # dw alone (a first layer), each worker summing its own blocks (small per-worker partials)
        be.column_sums(dout.reshape(N * H * W, c_out), db)
        parts = be.empty((workers, kh * kw * c_in, c_out), np.float32)
        tmp = be.empty((workers, kh * kw * c_in, c_out), np.float32)
        cols = be.empty((workers, rows * W, kh * kw * c_in), np.float32)
        be.conv2d_weight_grad_blocks(x, dout, dw, parts, cols, tmp, dilation)
        return None
    if by_kernel_rows(x.shape, w.shape):
        col = be.empty((H * W, kw * c_in), np.float32)
        tmp = be.empty((kw * c_in, c_out) if N > 1 else (1, 1), np.float32)
        dx = be.empty(x.shape if need_dx else (1, 1, 1, 1), np.float32)
        be.conv2d_backward_by_kernel_rows(x, w, dout, dx, dw, db, col, tmp, dilation, bool(need_dx))
        return dx if need_dx else None
    col = _conv_workspace(be, x.shape, w.shape)
    # One block (a 1×1 kernel, or a single image whose rows all fit the workspace) needs no
    # buffer for partial dw sums.
    one_block = kh * kw == 1 or (N == 1 and col.shape[0] == H * W)
    dw_tmp = be.empty((1, 1) if one_block else (kh * kw * c_in, c_out), np.float32)
    dx = be.empty(x.shape if need_dx else (1, 1, 1, 1), np.float32)
    be.conv2d_backward(x, w, dout, dx, dw, db, col, dw_tmp, dilation, bool(need_dx))
    return dx if need_dx else None


def _use_winograd(algorithm, w_shape) -> bool:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {ALGORITHMS}, got {algorithm!r}")
    kh, kw, c_in, c_out = w_shape
    if algorithm == "winograd" and (kh, kw) != (3, 3):
        raise ValueError(f"`algorithm='winograd'` needs a 3×3 kernel, got {kh}×{kw}")
    if algorithm == "auto":
        return (_auto_means == "auto" and (kh, kw) == (3, 3)
                and min(c_in, c_out) >= WINOGRAD_MIN_CHANNELS)
    return algorithm == "winograd"


def winograd_tiles(size: int, dilation: int) -> int:
    """Winograd tiles along an axis of ``size`` pixels: the rows ``y0 < size`` with ``y0 mod 2d < d``."""
    return (size // (2 * dilation)) * dilation + min(dilation, size % (2 * dilation))


def winograd_batch_tiles(x_shape, dilation: int) -> int:
    """Winograd tiles of a whole batch ``(N, H, W, C)``: ``N · tiles(H) · tiles(W)``."""
    return x_shape[0] * winograd_tiles(x_shape[1], dilation) * winograd_tiles(x_shape[2], dilation)


def winograd_one_block(x_shape, c_out: int, dilation: int, workers: int, workspace_bytes: int) -> bool:
    """Whether a Winograd convolution takes all the batch's tiles as one block, the workers
    splitting its 16 products (``conv2d_winograd_one_block``): when the whole batch has fewer
    than ``WINOGRAD_MIN_TILES`` tiles (VGG's conv5 on a 224×224 input has 49), so that a block
    per worker would make twice as many, thinner products, each packing all of ``U``; and only
    while ``V`` and ``M`` each stay within ``workspace_bytes``."""
    tiles = winograd_batch_tiles(x_shape, dilation)
    c_in = x_shape[3]
    return (workers > 1 and tiles < WINOGRAD_MIN_TILES
            and 16 * tiles * max(c_in, c_out) * 4 <= workspace_bytes)


def winograd_rows_per_block(x_shape, c_out: int, dilation: int, workspace_bytes: int,
                            block_bytes: int = 2 * 2**20, workers: int = 1) -> int:
    """Tile rows per Winograd block: ``V (16, T, C)`` and ``M (16, T, F)`` for ``T = rows·tiles(W)``.

    Aims at ``block_bytes`` (the backend's ``WINOGRAD_BLOCK_BYTES``), takes at least
    ``WINOGRAD_MIN_TILES`` tiles (an efficient GEMM), and never exceeds ``workspace_bytes``; at
    least one tile row. The image's blocks are then evened out so that each of ``workers``
    threads gets the same number of equal blocks where the rows allow (conv5 of a 375×500 image
    has 12 tile rows: two blocks of 6, not 8 + 4).
    """
    _, H, W, c_in = x_shape
    tw, th = winograd_tiles(W, dilation), winograd_tiles(H, dilation)
    tile_bytes = 16 * (c_in + c_out) * 4
    tiles = max(block_bytes // tile_bytes, WINOGRAD_MIN_TILES)
    tiles = min(tiles, workspace_bytes // tile_bytes)
    rows = max(1, min(th, tiles // tw))
    blocks = -(-th // rows)
    blocks = workers * -(-blocks // workers)           # a multiple of the workers
    return max(1, -(-th // blocks))


def _winograd(be, x, w, b, dilation, out, flip):
    """out = conv3×3(x) + b by Winograd; ``flip``: with w rotated 180° and its channels swapped.

    Both read the transform of ``w`` itself, ``U (16, C, F)``; the flipped bank's is
    ``U[FLIPPED_XI[ξ]]ᵀ``, which the GEMMs take transposed (no second transform).
    """
    U = be.empty((16,) + tuple(w.shape[2:]), np.float32)
    be.winograd_weights(w, U)
    c_in, c_out = x.shape[3], out.shape[3]
    workers = be.parallel_workers()                 # one block of tiles per worker thread
    if winograd_one_block(x.shape, c_out, dilation, workers, be.CONV_WORKSPACE_BYTES):
        tiles = winograd_batch_tiles(x.shape, dilation)
        V = be.empty((1, 16, tiles, c_in), np.float32)
        M = be.empty((1, 16, tiles, c_out), np.float32)
        be.conv2d_winograd_one_block(x, U, b, dilation, out, V, M, flip)
        return
    rows = winograd_rows_per_block(x.shape, c_out, dilation, be.CONV_WORKSPACE_BYTES,
                                   be.WINOGRAD_BLOCK_BYTES, workers)
    tiles = rows * winograd_tiles(x.shape[2], dilation)
    V = be.empty((workers, 16, tiles, c_in), np.float32)
    M = be.empty((workers, 16, tiles, c_out), np.float32)
    be.conv2d_winograd(x, U, b, dilation, out, V, M, flip)


def conv2d_workspace_bytes(x_shape, w_shape, dilation: int = 1, algorithm: str = "auto",
                           workspace_bytes: int = 8 * 2**20, workers: int = 1,
                           block_bytes: int = 2 * 2**20) -> int:
    """Extra bytes a :func:`conv2d_forward` allocates besides its output (the memory bound).

    im2col: one block of im2col rows (≤ ``workspace_bytes``; none for 1×1). Winograd: each
    worker's tiles ``V`` and products ``M`` (≤ ``workspace_bytes`` each) and the filters
    ``U (16, C, F)``.
    """
    kh, kw, c_in, c_out = w_shape
    if _use_winograd(algorithm, w_shape):
        if winograd_one_block(x_shape, c_out, dilation, workers, workspace_bytes):
            tiles = winograd_batch_tiles(x_shape, dilation)
            return 4 * (16 * tiles * (c_in + c_out) + 16 * c_in * c_out)
        rows = winograd_rows_per_block(x_shape, c_out, dilation, workspace_bytes, block_bytes, workers)
        tiles = rows * winograd_tiles(x_shape[2], dilation)
        return 4 * (workers * 16 * tiles * (c_in + c_out) + 16 * c_in * c_out)
    if kh * kw == 1:
        return 0
    if by_kernel_rows(x_shape, w_shape):                 # col (H·W, kw·C) and tmp (H·W, F)
        return 4 * x_shape[1] * x_shape[2] * (kw * c_in + c_out)
    rows = _rows_per_worker_block(x_shape, w_shape, workspace_bytes, workers)
    if rows is not None:
        return 4 * workers * rows * x_shape[2] * kh * kw * c_in
    return 4 * conv_rows_per_block(x_shape, w_shape, workspace_bytes) * x_shape[2] * kh * kw * c_in


def _winograd_weight_grad(be, x, dout, dilation, dw):
    """dw of the 3×3 convolution by Winograd: per-worker sums of V[ξ]ᵀ dM[ξ], then Gᵀ · G."""
    c_in, c_out = x.shape[3], dout.shape[3]
    workers = be.parallel_workers()
    rows = winograd_rows_per_block(x.shape, c_out, dilation, be.CONV_WORKSPACE_BYTES,
                                   be.WINOGRAD_BLOCK_BYTES, workers)
    tiles = rows * winograd_tiles(x.shape[2], dilation)
    V = be.empty((workers, 16, tiles, c_in), np.float32)
    dM = be.empty((workers, 16, tiles, c_out), np.float32)
    dU = be.empty((workers, 16, c_in, c_out), np.float32)
    tmp = be.empty((workers, c_in, c_out), np.float32)
    be.winograd_weight_grad(x, dout, dilation, dU, V, dM, tmp)
    be.winograd_filter_grad(dU, dw)


def conv_rows_per_block(x_shape, w_shape, workspace_bytes: int) -> int:
    """Image rows per im2col block so that the block buffer stays within ``workspace_bytes``.

    The buffer holds ``rows·W`` im2col rows of ``kh·kw·C`` float32 each; at least one image row,
    at most the whole image. This is the bound on a convolution's extra memory. A layer whose
    weight gradient ``(K, F)`` is at least as large as its whole im2col matrix ``(H·W, K)`` (fc6 on
    a small map) is done in one block: backward would otherwise add a ``(K, F)`` partial ``dw``
    per block, costing more than the buffer saves.
    """
    _, H, W, C = x_shape
    kh, kw = w_shape[0], w_shape[1]
    if weights_outweigh_im2col(x_shape, w_shape):
        return H
    row_bytes = W * kh * kw * C * 4
    return max(1, min(H, workspace_bytes // row_bytes))


def _conv_workspace(be, x_shape, w_shape):
    kh, kw, c_in, _ = w_shape
    if kh == 1 and kw == 1:
        return be.empty((1, 1), np.float32)  # a 1×1 convolution multiplies x directly
    rows = conv_rows_per_block(x_shape, w_shape, be.CONV_WORKSPACE_BYTES)
    return be.empty((rows * x_shape[2], kh * kw * c_in), np.float32)
