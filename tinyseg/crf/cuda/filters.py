"""The dense CRF's filters on the GPU: CUDA twins of :mod:`tinyseg.crf.filters`.

Filters keep the CPU interface (``n_points``, ``apply(values (N, M)) -> K @ values``,
``apply_transpose``, ``symmetric``,
``K[i, j] = exp(-|f_i - f_j|² / 2)``) and accept either a host array (returning a host array: a
drop-in for :class:`tinyseg.crf.inference.MeanField`) or a device array (returning a device array:
what :class:`CudaMeanField` uses, so ``Q`` never leaves the GPU between iterations).

* :class:`CudaExactFilter` — brute force, one thread per output element, O(N² D M).
* :class:`CudaSeparableGaussianFilter` — the spatial Gaussian as two 1-D convolutions (rows,
  then columns), one thread per element, the CPU filter's taps.
* :class:`CudaGridFilter` — the sparse bilateral grid (the recursive Gaussian and the cluster
  filter are in :mod:`.sparse`). The grid's structure (occupied cells,
  per-pass neighbour tables, multilinear weights) depends on the features only and is built once
  on the CPU by :class:`tinyseg.crf.filters.GridFilter`; its public description
  (:class:`tinyseg.crf.filters.GridLayout`) is copied to the device and
  the per-iteration work runs there: splat (one thread per point and channel, ``atomic.add``
  into the cells: the summation order varies run to run, at float32 rounding level), one blur
  pass per axis (a gather over each cell's neighbour table), slice (a gather per point).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ...backend.cuda._index import thread_cell
from ...backend.cuda._launch import launch_1d
from ...backend.cuda.conv import fill
from ._device import _check_n, _on_device, _result

__all__ = ["CudaExactFilter", "CudaSeparableGaussianFilter", "CudaGridFilter"]


# ----------------------------------------------------------------------------- exact
@cuda.jit
def _exact_kernel(features, values, out):
    """out[i, c] = Σ_j exp(−|f_i − f_j|²/2) values[j, c]; one thread per (i, c)."""
    inside, i, c = thread_cell(out)
    n, d = features.shape
    if inside:
        acc = 0.0                                   # float64 accumulation, as on the CPU
        for j in range(n):
            s = 0.0
            for k in range(d):
                t = features[i, k] - features[j, k]
                s += t * t
            acc += math.exp(-0.5 * s) * values[j, c]
        out[i, c] = acc


class CudaExactFilter:
    """Brute-force Gaussian filter on the GPU: features (N, D) already divided by the bandwidths."""

    name = "exact-cuda"
    symmetric = True

    def apply_transpose(self, values):
        """``K^T @ values = K @ values`` (the kernel is symmetric)."""
        return self.apply(values)

    def __init__(self, features):
        f = np.ascontiguousarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[0] < 1 or f.shape[1] < 1:
            raise ValueError(f"`features` must be (N, D) with N, D >= 1, got shape {f.shape}")
        self.n_points = f.shape[0]
        self.features = cuda.to_device(f)

    def apply(self, values):
        """``K @ values``: (N, M) float32, host or device -> the same kind."""
        v, was_host = _on_device(values)
        _check_n(v, self.n_points)
        out = cuda.device_array(v.shape, np.float32)
        launch_1d(_exact_kernel, v.shape[0] * v.shape[1], self.features, v, out)
        return _result(out, was_host)


# ----------------------------------------------------------------------------- separable
@cuda.jit
def _rows_kernel(src, taps, dst):
    """dst[y, j] = Σ_t taps[t + r] src[y + t, j] over rows in range; src, dst (H, L)."""
    inside, y, j = thread_cell(src)
    h = src.shape[0]
    if inside:
        r = (taps.shape[0] - 1) // 2
        acc = np.float32(0.0)
        t0 = -r if -r > -y else -y                  # max(-r, -y), min(r, h-1-y) without the
        t1 = r if r < h - 1 - y else h - 1 - y      # builtins (numba 0.68's CUDA target fails them)
        for t in range(t0, t1 + 1):
            acc += taps[t + r] * src[y + t, j]
        dst[y, j] = acc


@cuda.jit
def _cols_kernel(src, taps, m, dst):
    """dst[y, x·M + c] = Σ_t taps[t + r] src[y, (x + t)·M + c] over columns in range."""
    inside, y, j = thread_cell(src)
    length = src.shape[1]
    if inside:
        x = j // m
        w = length // m
        r = (taps.shape[0] - 1) // 2
        acc = np.float32(0.0)
        t0 = -r if -r > -x else -x
        t1 = r if r < w - 1 - x else w - 1 - x
        for t in range(t0, t1 + 1):
            acc += taps[t + r] * src[y, j + t * m]
        dst[y, j] = acc


class CudaSeparableGaussianFilter:
    """The exact spatial Gaussian on an H×W grid (two 1-D convolutions) on the GPU.

    Same parameters and taps as :class:`tinyseg.crf.filters.SeparableGaussianFilter`.
    """

    name = "separable-cuda"
    symmetric = True

    def apply_transpose(self, values):
        """``K^T @ values = K @ values`` (the kernel is symmetric)."""
        return self.apply(values)

    def __init__(self, shape, sdims, *, truncate: float = 4.0):
        from tinyseg.crf.filters import gaussian_taps

        self.shape = (int(shape[0]), int(shape[1]))
        self.n_points = self.shape[0] * self.shape[1]
        self.taps_rows = cuda.to_device(gaussian_taps(float(sdims[0]), truncate, self.shape[0] - 1))
        self.taps_cols = cuda.to_device(gaussian_taps(float(sdims[1]), truncate, self.shape[1] - 1))

    def apply(self, values):
        """``K @ values``: (N, M) float32, host or device -> the same kind."""
        v, was_host = _on_device(values)
        _check_n(v, self.n_points)
        h, w = self.shape
        m = v.shape[1]
        src = v.reshape(h, w * m)                          # (N, M) -> (H, W·M)
        tmp = cuda.device_array((h, w * m), np.float32)
        out = cuda.device_array((h, w * m), np.float32)
        launch_1d(_rows_kernel, h * w * m, src, self.taps_rows, tmp)
        launch_1d(_cols_kernel, h * w * m, tmp, self.taps_cols, m, out)
        return _result(out.reshape(h * w, m), was_host)


# ----------------------------------------------------------------------------- bilateral grid
@cuda.jit
def _splat_kernel(values, corner_pairs, pair_weights, frac_last, grid):
    """grid[o, c] += multilinear weight · values[i, c] for each corner o of point i's cell."""
    inside, i, c = thread_cell(values)
    if inside:
        v = values[i, c]
        fl = frac_last[i]
        for j in range(corner_pairs.shape[1]):
            w = pair_weights[i, j] * v
            w1 = w * fl
            o = corner_pairs[i, j]
            cuda.atomic.add(grid, (o, c), w - w1)
            cuda.atomic.add(grid, (o + 1, c), w1)


@cuda.jit
def _blur_kernel(src, neighbours, taps, dst):
    """dst[k, c] = Σ_t taps[t] src[neighbours[k, t], c]; the extra last row of dst is set to 0."""
    e = cuda.grid(1)
    n_cells, n_taps = neighbours.shape
    m = dst.shape[1]
    if e < (n_cells + 1) * m:
        k = e // m
        c = e % m
        acc = np.float32(0.0)
        if k < n_cells:
            for t in range(n_taps):
                acc += taps[t] * src[neighbours[k, t], c]
        dst[k, c] = acc


@cuda.jit
def _slice_kernel(grid, corner_pairs, pair_weights, frac_last, out):
    """out[i, c] = Σ over i's corners of weight · grid[corner, c] (multilinear read-back)."""
    inside, i, c = thread_cell(out)
    if inside:
        fl = frac_last[i]
        acc = np.float32(0.0)
        for j in range(corner_pairs.shape[1]):
            o = corner_pairs[i, j]
            lo = grid[o, c]
            acc += pair_weights[i, j] * (lo + fl * (grid[o + 1, c] - lo))
        out[i, c] = acc


class CudaGridFilter:
    """The sparse bilateral grid filter with splat, blur and slice on the GPU.

    The grid's structure is built on the CPU (:class:`tinyseg.crf.filters.GridFilter`) and
    uploaded from its public description (:class:`tinyseg.crf.filters.GridLayout`).

    Parameters
    ----------
    features_or_grid : (N, D) features (a ``GridFilter`` is built from them with ``**options``),
        an already built ``GridFilter``, or a ``GridLayout``.
    """

    name = "grid-cuda"
    symmetric = True

    def __init__(self, features_or_grid, **options):
        from tinyseg.crf.filters import GridFilter, GridLayout

        if isinstance(features_or_grid, GridLayout):
            layout = features_or_grid
        elif isinstance(features_or_grid, GridFilter):
            layout = features_or_grid.describe()
        else:
            layout = GridFilter(features_or_grid, **options).describe()
        self.layout = layout
        self.n_points = layout.n_points
        self.n_cells = layout.n_cells
        self.corner_pairs = cuda.to_device(layout.corner_pairs)
        self.pair_weights = cuda.to_device(layout.pair_weights)
        self.frac_last = cuda.to_device(layout.frac_last)
        self.taps = cuda.to_device(layout.taps)
        self.passes = [cuda.to_device(nb) for nb in layout.passes]
        self._transposed = None

    def apply(self, values):
        """``S^T B S @ values``: (N, M) float32, host or device -> the same kind."""
        return self._filter(values, self.passes)

    def apply_transpose(self, values):
        """``S^T B^T S @ values``: the blur passes transposed, in reverse order (see the CPU's)."""
        if self._transposed is None:
            from tinyseg.crf.filters.grid_kernels import invert_neighbours

            sizes = [self.n_cells] + [nb.shape[0] for nb in self.layout.passes]
            self._transposed = [cuda.to_device(invert_neighbours(nb, sizes[p]))
                                for p, nb in reversed(list(enumerate(self.layout.passes)))]
        return self._filter(values, self._transposed)

    def _filter(self, values, passes):
        v, was_host = _on_device(values)
        _check_n(v, self.n_points)
        n, m = v.shape
        tables = (self.corner_pairs, self.pair_weights, self.frac_last)
        grid = cuda.device_array((self.n_cells + 1, m), np.float32)  # + the zero "empty" cell
        fill(grid, 0.0)
        launch_1d(_splat_kernel, n * m, v, *tables, grid)
        for nb in passes:
            blurred = cuda.device_array((nb.shape[0] + 1, m), np.float32)
            launch_1d(_blur_kernel, (nb.shape[0] + 1) * m, grid, nb, self.taps, blurred)
            grid = blurred
        out = cuda.device_array((n, m), np.float32)
        launch_1d(_slice_kernel, n * m, grid, *tables, out)
        return _result(out, was_host)
