"""Per-iteration kernels of the sparse bilateral grid: splat, blur passes, slice (and the blur's
transpose), in a one-channel and a channels-last (many labels) flavour.

The NumPy twin of the whole chain is :func:`tinyseg.crf.filters.grid.grid_filter_reference`.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["grid_filter_reference", "layout_filter_reference", "invert_neighbours",
           "blur_pass_rows"]


def _grid_geometry(features: np.ndarray, cell: float):
    """Cell coordinates of every point: lower corner (N, D) int64, fractions (N, D), grid sizes."""
    f = np.asarray(features, dtype=np.float64)
    g = (f - f.min(axis=0)) / cell                       # (N, D), >= 0, in cells
    base = np.floor(g).astype(np.int64)
    frac = g - base
    sizes = base.max(axis=0) + 2                         # corners base and base + 1 always exist
    return base, frac, sizes


def grid_filter_reference(features: np.ndarray, values: np.ndarray, *, cell: float = 0.75,
                          truncate: float = 2.0) -> np.ndarray:
    """The bilateral-grid filter on a dense grid, float64 NumPy (what :class:`GridFilter` prunes).

    1. splat: every point adds ``prod_d (1 - |g_d - corner_d|)`` times its values to the ``2^D``
       corners of its cell (multilinear), ``g = (f - min f) / cell``;
    2. blur: convolve the grid along each axis with :func:`grid_blur_taps` (zeros outside);
    3. slice: read every point back with the same multilinear weights.

    features (N, D), values (N, M) -> (N, M).
    """
    from scipy.ndimage import correlate1d

    base, frac, sizes = _grid_geometry(features, cell)
    n, d = base.shape
    v = np.asarray(values, dtype=np.float64).reshape(n, -1)
    grid = np.zeros((*sizes, v.shape[1]))                # (*sizes, M)
    corners = []
    for corner in range(2 ** d):
        bits = np.array([(corner >> k) & 1 for k in range(d)])
        weight = np.prod(np.where(bits, frac, 1.0 - frac), axis=1)   # (N,)
        index = tuple((base + bits).T)
        corners.append((index, weight))
        np.add.at(grid, index, weight[:, None] * v)
    taps = _blur_taps(cell, truncate).astype(np.float64)
    for axis in range(d):
        grid = correlate1d(grid, taps, axis=axis, mode="constant", cval=0.0)
    out = np.zeros_like(v)
    for index, weight in corners:
        out += weight[:, None] * grid[index]
    return out




def layout_filter_reference(layout, values: np.ndarray, *,
                            transpose: bool = False) -> np.ndarray:
    """``K @ values`` (or ``K^T @ values``) read literally off a :class:`GridLayout`, float64 NumPy.

    The twin of what a backend does with the description: splat with ``np.add.at``, each pass as
    a gather over its table (transposed: a scatter, passes in reverse order), slice.
    values (N, M) -> (N, M).
    """
    v = np.asarray(values, dtype=np.float64).reshape(layout.n_points, -1)
    lower_w = layout.pair_weights * (1.0 - layout.frac_last[:, None])     # (N, P)
    upper_w = layout.pair_weights * layout.frac_last[:, None]
    rows = layout.corner_pairs                                            # (N, P)
    # One row past the cells: the "empty" row, which only a corner of weight 0 reaches (a simplex
    # grid's last cell); it stays out of the blur.
    grid = np.zeros((layout.n_cells + 1, v.shape[1]))
    np.add.at(grid, rows, lower_w[:, :, None] * v[:, None, :])            # splat
    np.add.at(grid, rows + 1, upper_w[:, :, None] * v[:, None, :])
    grid = grid[:-1]
    sizes = [layout.n_cells] + [nb.shape[0] for nb in layout.passes]
    taps = layout.taps.astype(np.float64)
    order = range(len(layout.passes))
    for p in (reversed(order) if transpose else order):
        nb = layout.passes[p]
        if not transpose:                                                  # gather
            src = np.vstack([grid, np.zeros((1, grid.shape[1]))])          # + the "empty" row
            grid = np.einsum("t,ktm->km", taps, src[nb])
        else:                                                              # scatter
            out = np.zeros((sizes[p] + 1, grid.shape[1]))
            np.add.at(out, nb, taps[None, :, None] * grid[:, None, :])
            grid = out[:-1]
    grid = np.vstack([grid, np.zeros((1, grid.shape[1]))])                 # + the "empty" row
    return (np.einsum("np,npm->nm", lower_w, grid[rows])                  # slice
            + np.einsum("np,npm->nm", upper_w, grid[rows + 1]))



def _blur_taps(cell, truncate):
    from .grid_layout import grid_blur_taps

    return grid_blur_taps(cell, truncate)


# Splat and slice. A point's 2^D corners come in 2^(D-1) pairs one cell apart along the last axis,
# hence consecutive in the compact numbering: pair_base[i] + pair_delta[i, j] is the lower one, +1
# the upper (the deltas from the point's lowest corner are small: uint16 unless the grid is huge).
# The pair's weight factorises, w_a[i, j_a] * w_b[i, j_b] with j = j_a * n_b + j_b, times
# (1 - f_last, f_last): per point the tables hold 2^(D-1) indices and n_a + n_b + 1 weights
# (for D = 5: 16 + 9) instead of 2^D of each, and memory traffic is what splat and slice cost.

@njit(inline="always")
def _corner_pair(pair_base, pair_delta, w_b, wa, fl, i, ja, jb, n_b):
    """Point i's corner pair j = ja * n_b + jb: ``(o, w0, w1)``, the lower corner's cell o (the
    upper one is o + 1) and their weights ``w0 = w - w1``, ``w1 = w f_last`` with
    ``w = wa * w_b[i, jb]`` (``wa`` is ``w_a[i, ja]``, times the value where a splat folds it in).
    ``n_b`` is the caller's own loop bound: with ``w_b.shape[1]`` here the compiler could no
    longer prove the index non-negative and would test its sign at every pair.
    """
    w = wa * w_b[i, jb]
    w1 = w * fl
    return pair_base[i] + pair_delta[i, ja * n_b + jb], w - w1, w1


# These kernels filter one float32 channel.

@njit(parallel=True, cache=True, nogil=True)
def _splat_kernel(values, pair_base, pair_delta, w_a, w_b, f_last, partial):
    """partial[p] = multilinear splat of the p-th chunk of points onto the occupied cells.

    values (N,) float32; partial (P, n_occupied + 1): one grid per chunk so that
    parallel chunks never write the same memory; :func:`_reduce_kernel` sums them.
    """
    n_chunks, n_cells = partial.shape
    n = values.shape[0]
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for p in prange(n_chunks):
        grid = partial[p]
        for o in range(n_cells):
            grid[o] = 0.0
        for i in range((n * p) // n_chunks, (n * (p + 1)) // n_chunks):
            v = values[i]
            fl = f_last[i]
            for ja in range(n_a):
                wa = w_a[i, ja] * v
                for jb in range(n_b):
                    o, w0, w1 = _corner_pair(pair_base, pair_delta, w_b, wa, fl, i, ja, jb, n_b)
                    grid[o] += w0
                    grid[o + 1] += w1


@njit(parallel=True, cache=True, nogil=True)
def _reduce_kernel(partial, out):
    """out[o] = sum_p partial[p, o]; partial (P, L), out (L,)."""
    n_chunks = partial.shape[0]
    for o in prange(partial.shape[1]):
        out[o] = partial[0, o]
        for p in range(1, n_chunks):
            out[o] += partial[p, o]


@njit(parallel=True, cache=True, nogil=True)
def _blur_pass_kernel(src, neighbours, taps, dst):
    """dst[k] = sum_t taps[t] src[neighbours[k, t]]; 1-D float32 arrays.

    Empty cells point at src[-1], which is kept at zero, so the loop has no branch; dst[-1] is
    set to zero for the next pass.
    """
    n_cells, n_taps = neighbours.shape
    for k in prange(n_cells):
        s = np.float32(0.0)
        for t in range(n_taps):
            s += taps[t] * src[neighbours[k, t]]
        dst[k] = s
    dst[n_cells] = 0.0


@njit(parallel=True, cache=True, nogil=True)
def _slice_kernel(grid, pair_base, pair_delta, w_a, w_b, f_last, out):
    """out[i] = sum over i's corners of weight * grid[corner] (multilinear read-back); 1-D arrays."""
    n = out.shape[0]
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for i in prange(n):
        fl = f_last[i]
        s = np.float32(0.0)
        for ja in range(n_a):
            wa = w_a[i, ja]
            for jb in range(n_b):
                o = pair_base[i] + pair_delta[i, ja * n_b + jb]
                lo = grid[o]
                s += wa * w_b[i, jb] * (lo + fl * (grid[o + 1] - lo))
        out[i] = s


# Many channels (e.g. 21 labels): the same three steps on channels-last grids (cells + 1, M), so
# each table entry is read once for all M channels and the channel loops vectorise.

@njit(inline="always")
def _point_rows(grid, x, i, pair_base, pair_delta, w_a, w_b, f_last, splat):
    """Point i's 2^D corners on a channels-last grid (cells + 1, M), x (M,): with ``splat``,
    ``grid[corner] += weight * x`` (multilinear splat); else ``x += weight * grid[corner]`` summed
    over the corners (slice, the transpose: same corners, same weights, the copy reversed).
    ``splat`` is a constant at each call, so each kernel compiles one branch.
    """
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    m = x.shape[0]
    fl = f_last[i]
    for ja in range(n_a):
        wa = w_a[i, ja]
        for jb in range(n_b):
            o, w0, w1 = _corner_pair(pair_base, pair_delta, w_b, wa, fl, i, ja, jb, n_b)
            lower = grid[o]
            upper = grid[o + 1]
            if splat:
                for c in range(m):
                    lower[c] += w0 * x[c]
                    upper[c] += w1 * x[c]
            else:
                for c in range(m):
                    x[c] += w0 * lower[c] + w1 * upper[c]


@njit(parallel=True, cache=True, nogil=True)
def _splat_rows_kernel(values, pair_base, pair_delta, w_a, w_b, f_last, partial):
    """:func:`_splat_kernel` for values (N, M): partial (P, n_occupied + 1, M)."""
    n_chunks = partial.shape[0]
    n = values.shape[0]
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:, :] = 0.0
        for i in range((n * p) // n_chunks, (n * (p + 1)) // n_chunks):
            _point_rows(grid, values[i], i, pair_base, pair_delta, w_a, w_b, f_last, True)


@njit(parallel=True, cache=True, nogil=True)
def _blur_pass_rows_kernel(src, neighbours, taps, dst):
    """:func:`_blur_pass_kernel` for (cells + 1, M) grids, any number of taps: tap after tap."""
    n_cells, n_taps = neighbours.shape
    m = src.shape[1]
    for k in prange(n_cells):
        out = dst[k]
        out[:] = 0.0
        for t in range(n_taps):
            wt = taps[t]
            row = src[neighbours[k, t]]
            for c in range(m):
                out[c] += wt * row[c]
    dst[n_cells, :] = 0.0


@njit(parallel=True, cache=True, nogil=True)
def _blur_pass_rows_unrolled_kernel(src, neighbours, taps, dst):
    """:func:`_blur_pass_rows_kernel` for 3, 5 or 7 taps (the radii of the cells auto_filter uses).

    The same sums in the same order, written as one expression per channel: the general kernel
    adds tap after tap into ``dst``'s row, and as the compiler cannot prove that row apart from
    ``src``'s it stores and reloads it at every tap; here each output is stored once (2-3x
    faster with 20 channels).
    """
    n_cells, n_taps = neighbours.shape
    m = src.shape[1]
    w = np.zeros(7, dtype=np.float32)
    w[:n_taps] = taps
    w0, w1, w2, w3, w4, w5, w6 = w[0], w[1], w[2], w[3], w[4], w[5], w[6]   # in registers
    if n_taps == 3:                            # one loop per case: no branch inside the loops
        for k in prange(n_cells):
            nb, out = neighbours[k], dst[k]
            r0, r1, r2 = src[nb[0]], src[nb[1]], src[nb[2]]
            for c in range(m):
                out[c] = w0 * r0[c] + w1 * r1[c] + w2 * r2[c]
    elif n_taps == 5:
        for k in prange(n_cells):
            nb, out = neighbours[k], dst[k]
            r0, r1, r2, r3, r4 = src[nb[0]], src[nb[1]], src[nb[2]], src[nb[3]], src[nb[4]]
            for c in range(m):
                out[c] = w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c] + w4 * r4[c]
    else:
        for k in prange(n_cells):
            nb, out = neighbours[k], dst[k]
            r0, r1, r2, r3 = src[nb[0]], src[nb[1]], src[nb[2]], src[nb[3]]
            r4, r5, r6 = src[nb[4]], src[nb[5]], src[nb[6]]
            for c in range(m):
                out[c] = (w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
                          + w4 * r4[c] + w5 * r5[c] + w6 * r6[c])
    dst[n_cells, :] = 0.0


def blur_pass_rows(src, neighbours, taps, dst) -> None:
    """One blur pass of a (cells + 1, M) grid: the unrolled kernel for 3, 5 or 7 taps."""
    if neighbours.shape[1] in (3, 5, 7):
        _blur_pass_rows_unrolled_kernel(src, neighbours, taps, dst)
    else:
        _blur_pass_rows_kernel(src, neighbours, taps, dst)


@njit(parallel=True, cache=True, nogil=True)
def _slice_rows_kernel(grid, pair_base, pair_delta, w_a, w_b, f_last, out):
    """:func:`_slice_kernel` for a (cells + 1, M) grid: out (N, M)."""
    for i in prange(out.shape[0]):
        acc = out[i]
        acc[:] = 0.0
        _point_rows(grid, acc, i, pair_base, pair_delta, w_a, w_b, f_last, False)


@njit(parallel=True, cache=True, nogil=True)
def _invert_neighbours_kernel(neighbours, n_src, inverse):
    """The gather table of a blur pass's transpose.

    neighbours (n_out, T): pass p's table, entries < n_src index the previous cells, n_src is
    "empty". inverse (n_src, T), pre-filled with n_out ("empty"): inverse[j, T-1-t] = k wherever
    neighbours[k, t] = j. Cell j's tap T-1-t is the cell k one offset the other way along the
    axis, which is unique, so parallel writes never collide.
    """
    n_out, n_taps = neighbours.shape
    for k in prange(n_out):
        for t in range(n_taps):
            j = neighbours[k, t]
            if j != n_src:
                inverse[j, n_taps - 1 - t] = k


def invert_neighbours(neighbours: np.ndarray, n_src: int) -> np.ndarray:
    """(n_src, T) int32 table of the transposed pass (see :func:`_invert_neighbours_kernel`)."""
    inverse = np.full((n_src, neighbours.shape[1]), neighbours.shape[0], dtype=np.int32)
    _invert_neighbours_kernel(neighbours, n_src, inverse)
    return inverse
