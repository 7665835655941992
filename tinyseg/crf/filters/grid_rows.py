"""Splat and slice of the bilateral grid for the pixels of an image, factorised by image rows.

When the points are the pixels of an H×W image in raster order and the first two feature axes
are ``row / s_row`` and ``col / s_col`` (the bilateral kernel's), all the pixels of an image row
share their cell and weight along axis 0. The multilinear weight of a pixel's corner pair
``(cy, cx, jb)`` is ``t_y(cy) t_x(cx) w_b(jb)``, so the slice ::

    out_i = sum_{cy, cx, jb} t_y t_x w_b [(1 - f) G[o] + f G[o + 1]]

is computed in two steps: per image row, the distinct ``(cx, jb)`` corner pairs of its pixels are
blended along axis 0 once, ``R_k = (1 - f_y) G[o_k^low] + f_y G[o_k^high]`` (both pair rows);
then each pixel reads 8 blended pairs instead of 16 grid pairs. Splat is the transpose: pixels
add into their row's ``S_k``, which is then spread to the two y-cells. Same result as the plain
kernels of :mod:`.grid_kernels` (the tests compare them), about half the per-pixel work.

Tables (built once, :func:`row_tables`): per row ``row_start`` into ``low``/``high`` (the
compact grid rows of the pair at ``cy0`` and ``cy0 + 1``); per pixel ``local`` (N, 8), the row's
pair number of its ``(cx, jb)``, ``k = cx * 4 + jb``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from ._base import FAST_FLOATS

__all__ = ["row_tables", "check_image_features"]


def check_image_features(features: np.ndarray, shape) -> None:
    """That ``features`` (N, D>=3) are an H×W image's pixels in raster order with axis 0 constant
    along each image row and axis 1 along each column (as :func:`bilateral_features` makes)."""
    h, w = shape
    if features.shape[0] != h * w or features.shape[1] < 3:
        raise ValueError(f"`image_shape` {shape} does not match features of shape {features.shape}")
    rows = features[:, 0].reshape(h, w)                                 # (N,) -> (H, W)
    cols = features[:, 1].reshape(h, w)
    if np.any(rows != rows[:, :1]) or np.any(cols != cols[:1, :]):
        raise ValueError("with `image_shape`, feature 0 must be constant along each image row and "
                         "feature 1 along each column (row-major pixels, as bilateral_features)")


@njit(cache=True, nogil=True)
def _row_tables_kernel(h, w, pair_base, pair_delta, stamp, local_of, row_start, low, high, local):
    """Fill the tables (see the module); returns the number of (row, pair) entries.

    Pair p of a pixel is ``p = (cy * 2 + cx) * 4 + jb`` (pair_delta's column order for D = 5).
    ``stamp``/``local_of`` (n_cells) remember, per grid row, the image row that last listed it.
    """
    count = 0
    for y in range(h):
        row_start[y] = count
        for x in range(w):
            i = y * w + x
            b = pair_base[i]
            for cx in range(2):
                for jb in range(4):
                    o0 = b + pair_delta[i, cx * 4 + jb]                # cy = 0
                    if stamp[o0] != y:
                        stamp[o0] = y
                        local_of[o0] = count - row_start[y]
                        low[count] = o0
                        high[count] = b + pair_delta[i, 8 + cx * 4 + jb]   # cy = 1
                        count += 1
                    local[i, cx * 4 + jb] = local_of[o0]
    row_start[h] = count
    return count


def row_tables(shape, pair_base, pair_delta, n_cells):
    """(row_start (H+1,), low, high (entries,) int32, local (N, 8) uint16 or int32)."""
    h, w = shape
    n = h * w
    stamp = np.full(n_cells + 1, -1, dtype=np.int64)
    local_of = np.zeros(n_cells + 1, dtype=np.int64)
    row_start = np.empty(h + 1, dtype=np.int64)
    low = np.empty(8 * n, dtype=np.int32)
    high = np.empty(8 * n, dtype=np.int32)
    local = np.empty((n, 8), dtype=np.uint16 if 8 * w < (1 << 16) else np.int32)
    count = _row_tables_kernel(h, w, pair_base, pair_delta, stamp, local_of, row_start, low, high,
                               local)
    return row_start, low[:count].copy(), high[:count].copy(), local


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _slice_rows_kernel(grid, w, fy, row_start, low, high, local, fx, w_b, f_last, out):
    """out (N, M) from grid (cells + 1, M); see the module."""
    h = fy.shape[0]
    m = grid.shape[1]
    one = np.float32(1.0)
    for y in prange(h):
        f = fy[y]
        s, e = row_start[y], row_start[y + 1]
        blend = np.empty((2 * (e - s), m), dtype=np.float32)          # the row's R_k, both rows
        for k in range(e - s):
            g0, g1 = grid[low[s + k]], grid[high[s + k]]
            u0, u1 = grid[low[s + k] + 1], grid[high[s + k] + 1]
            r0, r1 = blend[2 * k], blend[2 * k + 1]
            for c in range(m):
                r0[c] = g0[c] + f * (g1[c] - g0[c])
                r1[c] = u0[c] + f * (u1[c] - u0[c])
        for x in range(w):
            i = y * w + x
            acc = out[i]
            fl = f_last[i]
            for cx in range(2):              # the four pairs of one cx in one expression: acc
                tx = fx[i] if cx else one - fx[i]   # is stored twice per pixel, not eight times
                h0, h1 = tx * w_b[i, 0] * fl, tx * w_b[i, 1] * fl
                h2, h3 = tx * w_b[i, 2] * fl, tx * w_b[i, 3] * fl
                l0, l1 = tx * w_b[i, 0] - h0, tx * w_b[i, 1] - h1
                l2, l3 = tx * w_b[i, 2] - h2, tx * w_b[i, 3] - h3
                k0, k1 = 2 * local[i, cx * 4], 2 * local[i, cx * 4 + 1]
                k2, k3 = 2 * local[i, cx * 4 + 2], 2 * local[i, cx * 4 + 3]
                a0, b0, a1, b1 = blend[k0], blend[k0 + 1], blend[k1], blend[k1 + 1]
                a2, b2, a3, b3 = blend[k2], blend[k2 + 1], blend[k3], blend[k3 + 1]
                if cx == 0:
                    for c in range(m):
                        acc[c] = (l0 * a0[c] + h0 * b0[c] + l1 * a1[c] + h1 * b1[c]
                                  + l2 * a2[c] + h2 * b2[c] + l3 * a3[c] + h3 * b3[c])
                else:
                    for c in range(m):
                        acc[c] += (l0 * a0[c] + h0 * b0[c] + l1 * a1[c] + h1 * b1[c]
                                   + l2 * a2[c] + h2 * b2[c] + l3 * a3[c] + h3 * b3[c])


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _splat_rows_kernel(values, w, fy, row_start, low, high, local, fx, w_b, f_last, partial):
    """partial[p] (P, cells + 1, M) = the splat of the p-th band of image rows; see the module."""
    h = fy.shape[0]
    n_chunks, _, m = partial.shape
    one = np.float32(1.0)
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:, :] = 0.0
        for y in range((h * p) // n_chunks, (h * (p + 1)) // n_chunks):
            f = fy[y]
            s, e = row_start[y], row_start[y + 1]
            acc = np.zeros((2 * (e - s), m), dtype=np.float32)       # the row's S_k
            for x in range(w):
                i = y * w + x
                v = values[i]
                fl = f_last[i]
                for cx in range(2):
                    tx = fx[i] if cx else one - fx[i]
                    for jb in range(4):
                        wt = tx * w_b[i, jb]
                        w1 = wt * fl
                        w0 = wt - w1
                        k = local[i, cx * 4 + jb]
                        a0, a1 = acc[2 * k], acc[2 * k + 1]
                        for c in range(m):
                            a0[c] += w0 * v[c]
                            a1[c] += w1 * v[c]
            for k in range(e - s):
                a0, a1 = acc[2 * k], acc[2 * k + 1]
                g0, g1 = grid[low[s + k]], grid[high[s + k]]
                u0, u1 = grid[low[s + k] + 1], grid[high[s + k] + 1]
                for c in range(m):
                    g0[c] += (one - f) * a0[c]
                    g1[c] += f * a0[c]
                    u0[c] += (one - f) * a1[c]
                    u1[c] += f * a1[c]


@njit(cache=True, nogil=True)
def _plain_from_rows(w, fy, row_start, low, high, local, fx, pair_base, pair_delta, w_a):
    """The plain kernels' tables (pair_base (N,), pair_delta (N, 16) int64, w_a (N, 4)) from the
    row tables: pair ``(cy, cx, jb)`` is row ``low`` (cy = 0) or ``high`` (cy = 1) of the pixel's
    local pair ``cx * 4 + jb``; ``w_a[:, cy * 2 + cx] = t_y(cy) t_x(cx)``."""
    one = np.float32(1.0)
    for y in range(fy.shape[0]):
        s = row_start[y]
        for x in range(w):
            i = y * w + x
            b = low[s + local[i, 0]]
            pair_base[i] = b
            for cx in range(2):
                for jb in range(4):
                    k = s + local[i, cx * 4 + jb]
                    pair_delta[i, cx * 4 + jb] = low[k] - b
                    pair_delta[i, 8 + cx * 4 + jb] = high[k] - b
            for cy in range(2):
                ty = fy[y] if cy else one - fy[y]
                for cx in range(2):
                    w_a[i, cy * 2 + cx] = ty * (fx[i] if cx else one - fx[i])
