"""CUDA twins of the recursive spatial Gaussian and the cluster filter (:mod:`tinyseg.crf.filters`).

Same interface as the other CUDA CRF filters (:mod:`.crf`): ``apply(values)`` on host arrays
returns host arrays, on device arrays device arrays; ``apply_transpose`` equals ``apply`` (both
kernels are symmetric).

* :class:`CudaRecursiveGaussianFilter` -- Deriche's two 2nd-order sections per axis, causal and
  anti-causal: one thread per column for the pass along rows, one per (row, channel) for the
  pass along columns, each running its recursion sequentially (the CPU kernels' loops).
* :class:`CudaClusterFilter` -- ``S^T W S``: a thread per (cell, channel) sums the cell's points,
  a thread per (cell, channel) runs its row of the sparse ``W``, a thread per (point, channel)
  reads its cell back. The structure (cells, close pairs) comes from the CPU filter.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...backend.cuda._index import thread_cell
from ...backend.cuda._launch import launch_1d
from ._device import _check_n, _on_device, _result

__all__ = ["CudaRecursiveGaussianFilter", "CudaClusterFilter"]


# ----------------------------------------------------------------------------- recursive
@cuda.jit
def _recursive_kernel(src, sec, dst):
    """Lane (y, k) of src (B, L, M) along axis 1: both sections, causal then anti-causal, into dst.

    Along the rows of an (H, W·M) image the lanes are its columns: src viewed as (1, H, W·M).
    """
    e = cuda.grid(1)
    h, w, m = src.shape
    if e < h * m:
        y = e // m
        k = e % m
        ya1 = ya2 = yb1 = yb2 = x1 = np.float32(0.0)
        for n in range(w):
            x = src[y, n, k]
            a = sec[0, 0] * x + sec[0, 1] * x1 - sec[0, 2] * ya1 - sec[0, 3] * ya2
            b = sec[1, 0] * x + sec[1, 1] * x1 - sec[1, 2] * yb1 - sec[1, 3] * yb2
            ya2, ya1, yb2, yb1, x1 = ya1, a, yb1, b, x
            dst[y, n, k] = a + b
        ya1 = ya2 = yb1 = yb2 = x1 = np.float32(0.0)
        x2 = np.float32(0.0)
        for n in range(w - 1, -1, -1):
            a = sec[0, 4] * x1 + sec[0, 5] * x2 - sec[0, 2] * ya1 - sec[0, 3] * ya2
            b = sec[1, 4] * x1 + sec[1, 5] * x2 - sec[1, 2] * yb1 - sec[1, 3] * yb2
            ya2, ya1, yb2, yb1 = ya1, a, yb1, b
            x2, x1 = x1, src[y, n, k]
            dst[y, n, k] += a + b


class CudaRecursiveGaussianFilter:
    """The recursive spatial Gaussian on the GPU; same parameters as the CPU filter."""

    name = "recursive-cuda"
    symmetric = True

    def __init__(self, shape, sdims):
        from tinyseg.crf.filters.recursive import deriche_sections

        self.shape = (int(shape[0]), int(shape[1]))
        self.n_points = self.shape[0] * self.shape[1]
        self.rows = cuda.to_device(deriche_sections(float(sdims[0])).astype(np.float32))
        self.cols = cuda.to_device(deriche_sections(float(sdims[1])).astype(np.float32))

    def apply(self, values):
        """``K @ values``: (N, M) float32, host or device -> the same kind."""
        v, was_host = _on_device(values)
        _check_n(v, self.n_points)
        h, w = self.shape
        m = v.shape[1]
        tmp = cuda.device_array((1, h, w * m), np.float32)
        launch_1d(_recursive_kernel, w * m, v.reshape(1, h, w * m), self.rows, tmp)        # down
        out = cuda.device_array((h, w, m), np.float32)
        launch_1d(_recursive_kernel, h * m, tmp.reshape(h, w, m), self.cols, out)          # across
        return _result(out.reshape(h * w, m), was_host)

    def apply_transpose(self, values):
        """``K^T @ values = K @ values``."""
        return self.apply(values)


# ----------------------------------------------------------------------------- cluster
@cuda.jit
def _cluster_splat_kernel(values, point_start, points, grid):
    """grid[a, c] = sum of values[points[j], c] over the points of cell a."""
    inside, a, c = thread_cell(grid)
    if inside:
        acc = np.float32(0.0)
        for j in range(point_start[a], point_start[a + 1]):
            acc += values[points[j], c]
        grid[a, c] = acc


@cuda.jit
def _cluster_blur_kernel(grid, row_ptr, cols, weights, out):
    """out[a, c] = sum_j weights[j] grid[cols[j], c] over row a of the CSR matrix."""
    inside, a, c = thread_cell(out)
    if inside:
        acc = np.float32(0.0)
        for j in range(row_ptr[a], row_ptr[a + 1]):
            acc += weights[j] * grid[cols[j], c]
        out[a, c] = acc


@cuda.jit
def _cluster_slice_kernel(grid, cell_of, out):
    """out[i, c] = grid[cell_of[i], c]."""
    e = cuda.grid(1)
    n, m = out.shape
    if e < n * m:
        out[e // m, e % m] = grid[cell_of[e // m], e % m]


class CudaClusterFilter:
    """The cluster filter on the GPU, from a built :class:`tinyseg.crf.filters.ClusterFilter`."""

    name = "cluster-cuda"
    symmetric = True

    def __init__(self, cpu_filter):
        f = cpu_filter
        self.n_points, self.n_cells = f.n_points, f.n_cells
        self.point_start = cuda.to_device(f.point_start)
        self.points = cuda.to_device(f.points)
        self.row_ptr = cuda.to_device(f.row_ptr)
        self.cols = cuda.to_device(f.cols)
        self.weights = cuda.to_device(f.weights)
        self.cell_of = cuda.to_device(f.cell_of)

    def apply(self, values):
        """``S^T W S @ values``: (N, M) float32, host or device -> the same kind."""
        v, was_host = _on_device(values)
        _check_n(v, self.n_points)
        m = v.shape[1]
        grid = cuda.device_array((self.n_cells, m), np.float32)
        launch_1d(_cluster_splat_kernel, self.n_cells * m, v, self.point_start, self.points, grid)
        blurred = cuda.device_array((self.n_cells, m), np.float32)
        launch_1d(_cluster_blur_kernel, self.n_cells * m, grid, self.row_ptr, self.cols,
                  self.weights, blurred)
        out = cuda.device_array((self.n_points, m), np.float32)
        launch_1d(_cluster_slice_kernel, self.n_points * m, blurred, self.cell_of, out)
        return _result(out, was_host)

    def apply_transpose(self, values):
        """``K^T @ values = K @ values`` (W is symmetric)."""
        return self.apply(values)
