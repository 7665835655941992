"""The spatial Gaussian on an image by a 2-D bilateral grid: a few multiply-adds per value.

The kernel is the separable (:mod:`.separable`) one, ``K[i, j] = exp(-(dr/s_row)^2/2 -
(dc/s_col)^2/2)``, approximated as the sparse grid (:mod:`.grid`) approximates the bilateral
kernel, on the two spatial features ``(row / s_row, col / s_col)``: splat bilinearly onto cells
``cell`` standard deviations wide, blur the cells with :func:`~.grid.grid_blur_taps` (its
variance corrected for the two tents), slice back. On an image both the tents and the blur
factorise over the axes, so per image row::

    splat:  R[cx]   += (1 - fx) v,  R[cx + 1] += fx v       for the row's pixels   (W, M) -> (Wc, M)
            G[cy]   += (1 - fy) R,  G[cy + 1] += fy R       for the row's cell row (Hc, Wc, M)
    blur:   G along axis 0, then along axis 1 (dense, zero outside)
    slice:  B = (1 - fy) G[cy] + fy G[cy + 1];  out = (1 - fx) B[cx] + fx B[cx + 1]

Per value that is 4 multiply-adds plus the blur of a grid ``(cell s)^2`` times smaller than the
image, where the recursive filter (:mod:`.recursive`) takes 64. Its error is the grid's: at
``cell = 0.5`` and ``truncate = 3`` about 1% of the peak at worst, 0.2% on average (the
recursive filter: 5e-4). The NumPy twin is :func:`~.grid_kernels.grid_filter_reference` on the
spatial features, which computes the same dense grid (:func:`spatial_grid_reference`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._base import FAST_FLOATS, Filter, check_values
from .grid_layout import grid_blur_taps
from .grid_kernels import grid_filter_reference

__all__ = ["SpatialGridFilter", "spatial_grid_reference"]


def spatial_grid_reference(shape, sdims, values, cell: float = 0.5,
                           truncate: float = 3.0) -> np.ndarray:
    """The dense NumPy twin: :func:`~.grid_kernels.grid_filter_reference` on the features
    ``(row / s_row, col / s_col)``; shape (H, W), values (H*W, M) -> (H*W, M) float64."""
    h, w = shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    features = np.stack([rows.ravel() / sdims[0], cols.ravel() / sdims[1]], axis=1)
    return grid_filter_reference(features, values, cell=cell, truncate=truncate)


def _axis_cells(n: int, sigma: float, cell: float):
    """Lower cell (n,) int64 and fraction (n,) float32 of pixels 0..n-1, and the cell count:
    ``g = p / (sigma cell)`` (as the twin's float64 features), cells ``floor(g)`` and + 1."""
    g = (np.arange(n, dtype=np.float64) / sigma) / cell
    base = np.floor(g).astype(np.int64)
    return base, (g - base).astype(np.float32), int(base.max()) + 2


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _splat_kernel(values, cy, fy, cx, fx, partial):
    """partial[p] (P, Hc, Wc, M) = splat of the p-th band of image rows; values (H*W, M)."""
    n_chunks, _, wc, m = partial.shape
    h, w = cy.shape[0], cx.shape[0]
    one = np.float32(1.0)
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:] = 0.0
        row = np.empty((wc, m), dtype=np.float32)
        for y in range((h * p) // n_chunks, ((h * (p + 1)) // n_chunks)):
            row[:] = 0.0
            for x in range(w):
                v = values[y * w + x]
                f = fx[x]
                r0, r1 = row[cx[x]], row[cx[x] + 1]
                for k in range(m):
                    r0[k] += (one - f) * v[k]
                    r1[k] += f * v[k]
            a, b = one - fy[y], fy[y]
            g0, g1 = grid[cy[y]], grid[cy[y] + 1]
            for j in range(wc):
                r, u0, u1 = row[j], g0[j], g1[j]
                for k in range(m):
                    u0[k] += a * r[k]
                    u1[k] += b * r[k]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _reduce_kernel(partial, out):
    """out = sum_p partial[p]; partial (P, L), out (L,)."""
    for o in prange(out.shape[0]):
        s = partial[0, o]
        for p in range(1, partial.shape[0]):
            s += partial[p, o]
        out[o] = s


#: Values per task of :func:`_blur_kernel` (a block of ``dst`` stays in the L1 cache).
_BLUR_BLOCK = 4096


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _blur_kernel(src, taps, step, dst):
    """dst[b, k] = sum_t taps[t] src[b, k + (t - r) step], zeros outside; src, dst (A, n step).

    With ``step`` the length of one cell's values this blurs along the cells: each tap is a
    shift of the flat row, so the loops run over long contiguous spans (they vectorise).
    """
    a, length = src.shape
    r = (taps.shape[0] - 1) // 2
    n_blocks = (length + _BLUR_BLOCK - 1) // _BLUR_BLOCK
    for q in prange(a * n_blocks):
        b = q // n_blocks
        k0 = (q % n_blocks) * _BLUR_BLOCK
        k1 = min(length, k0 + _BLUR_BLOCK)
        out, row = dst[b], src[b]
        out[k0:k1] = 0.0
        for t in range(taps.shape[0]):
            shift = (t - r) * step
            wt = taps[t]
            lo, hi = max(k0, -shift), min(k1, length - shift)
            o, i = out[lo:hi], row[lo + shift:hi + shift]       # slices: no negative indices
            for k in range(hi - lo):
                o[k] += wt * i[k]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _slice_kernel(grid, cy, fy, cx, fx, out):
    """out (H*W, M) read back from the blurred grid (Hc, Wc, M); see the module."""
    _, wc, m = grid.shape
    h, w = cy.shape[0], cx.shape[0]
    one = np.float32(1.0)
    for y in prange(h):
        a, b = one - fy[y], fy[y]
        g0, g1 = grid[cy[y]], grid[cy[y] + 1]
        row = np.empty((wc, m), dtype=np.float32)
        for j in range(wc):
            r, u0, u1 = row[j], g0[j], g1[j]
            for k in range(m):
                r[k] = a * u0[k] + b * u1[k]
        for x in range(w):
            o = out[y * w + x]
            f = fx[x]
            r0, r1 = row[cx[x]], row[cx[x] + 1]
            for k in range(m):
                o[k] = (one - f) * r0[k] + f * r1[k]


class SpatialGridFilter(Filter):
    """The spatial Gaussian of an H×W image on a 2-D grid (see the module); symmetric.

    Parameters
    ----------
    shape : (H, W); sdims : (s_row, s_col) standard deviations in pixels.
    cell : cell width in standard deviations (< sqrt(3)); truncate : blur taps reach ``truncate``
        blur standard deviations.
    """

    name = "spatial-grid"
    symmetric = True

    def __init__(self, shape, sdims, cell: float = 0.5, truncate: float = 3.0):
        self.shape = (int(shape[0]), int(shape[1]))
        self.sdims = (float(sdims[0]), float(sdims[1]))
        if not all(s > 0 and math.isfinite(s) for s in self.sdims):
            raise ValueError(f"`sdims` must be positive, got {sdims}")
        self.n_points = self.shape[0] * self.shape[1]
        self.cell, self.truncate = float(cell), float(truncate)
        self.taps = grid_blur_taps(self.cell, self.truncate)
        self.cy, self.fy, self.hc = _axis_cells(self.shape[0], self.sdims[0], self.cell)
        self.cx, self.fx, self.wc = _axis_cells(self.shape[1], self.sdims[1], self.cell)
        import numba

        self.n_chunks = max(1, min(numba.get_num_threads(), self.shape[0] // 64))

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``K @ values``: (N, M) -> (N, M) float32 (into ``out``, which may be ``values``)."""
        values = check_values(values, self.n_points)
        m = values.shape[1]
        partial = np.empty((self.n_chunks, self.hc, self.wc, m), dtype=np.float32)
        _splat_kernel(values, self.cy, self.fy, self.cx, self.fx, partial)
        if self.n_chunks == 1:
            grid = partial[0]
        else:
            grid = np.empty((self.hc, self.wc, m), dtype=np.float32)
            _reduce_kernel(partial.reshape(self.n_chunks, -1), grid.reshape(-1))
        blurred = np.empty_like(grid)
        flat = (1, self.hc * self.wc * m)
        _blur_kernel(grid.reshape(flat), self.taps, self.wc * m, blurred.reshape(flat))   # rows
        _blur_kernel(blurred.reshape(self.hc, -1), self.taps, m, grid.reshape(self.hc, -1))  # cols
        if out is None:
            out = np.empty((self.n_points, m), dtype=np.float32)
        _slice_kernel(grid, self.cy, self.fy, self.cx, self.fx, out)
        return out

    def describe(self):
        """The same filter as a :class:`~.grid_layout.GridLayout` (a :class:`~.grid.GridFilter`
        on the spatial features, same cells and taps): what a backend without a spatial-grid
        kernel (CUDA) runs."""
        from .grid import GridFilter

        h, w = self.shape                  # the features (row / s_row, col / s_col), float32
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                                 indexing="ij")
        features = np.stack([rows.ravel() / np.float32(self.sdims[0]),
                             cols.ravel() / np.float32(self.sdims[1])], axis=1)
        return GridFilter(features, cell=self.cell, truncate=self.truncate).describe()

    def apply_transpose(self, values: np.ndarray) -> np.ndarray:
        """``K^T @ values = K @ values`` (slice is splat's transpose, the blur is symmetric)."""
        return self.apply(values)
