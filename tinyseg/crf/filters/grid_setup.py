"""Set-up of the sparse bilateral grid: cells of the points, which cells each blur pass needs.

Everything here depends on the features only and runs once per filter (the per-iteration splat,
blur and slice are in :mod:`.grid_kernels`). Kernels write into preallocated outputs.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["group_weights", "dilate", "dilate_reference"]


@njit(cache=True, nogil=True)
def _min_max_kernel(features, lo, hi):
    """lo[d], hi[d] = min and max of features[:, d]."""
    n, d = features.shape
    for k in range(d):
        lo[k] = features[0, k]
        hi[k] = features[0, k]
    for i in range(n):
        for k in range(d):
            v = features[i, k]
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v


@njit(cache=True, nogil=True)
def _grid_coords_kernel(features, lo, inv_cell, strides, base_index, frac):
    """Cell of every point: flat index of its lower corner and its fractional position in it.

    g = (f - lo) * inv_cell; base_index[n] = sum_d floor(g[n, d]) strides[d]; frac = g - floor(g).
    """
    n, d = features.shape
    for i in range(n):
        b = 0
        for k in range(d):
            g = (np.float64(features[i, k]) - lo[k]) * inv_cell
            fl = math.floor(g)
            b += np.int64(fl) * strides[k]
            frac[i, k] = g - fl
        base_index[i] = b


@njit(parallel=True, cache=True, nogil=True)
def _group_weights_kernel(frac, axes, out):
    """out[i, j] = prod_q (frac[i, axes[q]] if bit (len(axes)-1-q) of j else 1 - frac[i, axes[q]])."""
    g = axes.shape[0]
    for i in prange(frac.shape[0]):
        for j in range(out.shape[1]):
            w = np.float32(1.0)
            for q in range(g):
                f = frac[i, axes[q]]
                w *= f if (j >> (g - 1 - q)) & 1 else np.float32(1.0) - f
            out[i, j] = w


def group_weights(frac: np.ndarray, axes: list[int]) -> np.ndarray:
    """Multilinear weights over a group of axes: (N, 2^len(axes)) float32.

    Column ``j`` is the corner whose bit ``(len(axes) - 1 - q)`` says "one cell up along
    ``axes[q]``": ``prod_q (frac[:, axes[q]] if that bit else 1 - frac[:, axes[q]])``.
    """
    out = np.empty((frac.shape[0], 2 ** len(axes)), dtype=np.float32)
    _group_weights_kernel(frac, np.asarray(axes, dtype=np.int64), out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _mark_corners_kernel(base_index, offsets, mask):
    """mask[base_index[n] + offsets[k]] = 1 for every point n and corner k (mask uint8).

    Threads may store the same 1 into the same byte, which is harmless: the result does not
    depend on their order.
    """
    for i in prange(base_index.shape[0]):
        for k in range(offsets.shape[0]):
            mask[base_index[i] + offsets[k]] = 1


@njit(parallel=True, cache=True, nogil=True)
def _dilate_lines_kernel(src, size, radius, dst):
    """Dilate each contiguous line of ``size`` cells of a flat 0/1 uint8 grid by ``radius``.

    One forward and one backward sweep per line, tracking the nearest set cell.
    """
    far = 1 << 40
    for o in prange(src.shape[0] // size):
        base = np.int64(o) * size           # prange indices may be unsigned
        last = -far
        for c in range(size):
            if src[base + c]:
                last = c
            dst[base + c] = 1 if c - last <= radius else 0
        last = far
        for c in range(size - 1, -1, -1):
            if src[base + c]:
                last = c
            if last - c <= radius:
                dst[base + c] = 1


def dilate(src: np.ndarray, stride: int, size: int, radius: int, dst: np.ndarray) -> None:
    """dst = src (flat bool grid) dilated by ``radius`` cells along the axis of ``stride``.

    The contiguous axis is swept line by line (Numba); the others OR whole shifted blocks of
    rows (NumPy, which vectorises these long runs best).
    """
    if stride == 1:
        _dilate_lines_kernel(src.view(np.uint8), size, radius, dst.view(np.uint8))
        return
    a = src.reshape(-1, size * stride)             # (cells before, axis * cells after)
    b = dst.reshape(-1, size * stride)
    b[...] = a
    for t in range(1, min(radius, size - 1) + 1):
        b[:, t * stride:] |= a[:, :-t * stride]
        b[:, :-t * stride] |= a[:, t * stride:]


def dilate_reference(src: np.ndarray, stride: int, size: int, radius: int) -> np.ndarray:
    """NumPy twin of :func:`dilate`: OR of the shifted copies along the axis."""
    a = src.reshape(-1, size, stride)              # (cells before, axis, cells after)
    b = a.copy()
    for t in range(1, min(radius, size - 1) + 1):
        b[:, t:, :] |= a[:, :-t, :]
        b[:, :-t, :] |= a[:, t:, :]
    return b.reshape(-1)


@njit(cache=True, nogil=True)
def _corner_index_kernel(base_index, offsets, cell_map, pair_base, pair_delta):
    """Compact numbers of every point's corners, as a base and deltas from it.

    pair_base[n] = cell_map[base_index[n] + offsets[0]] (the lowest corner, whose compact number
    is the smallest: the numbering keeps the grid's order); pair_delta[n, k] = cell_map[
    base_index[n] + offsets[k]] - pair_base[n], stored in pair_delta's dtype. Returns the largest
    delta, so that the caller can tell whether a uint16 pair_delta held them.
    """
    largest = 0
    for i in range(base_index.shape[0]):
        b = cell_map[base_index[i] + offsets[0]]
        pair_base[i] = b
        for k in range(offsets.shape[0]):
            delta = cell_map[base_index[i] + offsets[k]] - b
            pair_delta[i, k] = delta
            largest = max(largest, delta)
    return largest


@njit(parallel=True, cache=True, nogil=True)
def _neighbour_kernel(cells, coords, stride, size, radius, src_map, empty, neighbours):
    """neighbours[k, t + r] = src_map[cells[k] + t*stride] along the axis; ``empty`` for a cell
    outside the grid or not stored (src_map -1).

    coords[k] = (cells[k] // stride) % size, the cell's coordinate along the axis (computed by
    NumPy, whose division by a scalar is much faster than a per-cell integer division here).
    """
    for k in prange(cells.shape[0]):
        cell = cells[k]
        coord = coords[k]
        for t in range(-radius, radius + 1):
            c = coord + t
            j = -1
            if c >= 0 and c < size:
                j = src_map[cell + t * stride]
            neighbours[k, t + radius] = empty if j < 0 else j

