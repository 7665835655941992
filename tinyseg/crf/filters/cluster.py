"""The cluster filter: points grouped into small cells, a Gaussian between the cells' clouds.

For features that are sparse at their bandwidth (small ``srgb``/``sxy``, many feature dimensions),
where a multilinear grid would need many more cells than there are points, and for features of
any dimension (not permutohedral)::

    K ≈ S^T W S

* ``S`` (K × N) sums the points of each cell (cells ``cell`` standard deviations wide, on a
  hashed lattice: only occupied cells exist);
* ``W`` (K × K, sparse, symmetric) is the Gaussian kernel *averaged over the two cells' clouds*:
  with cell means ``m`` and per-axis variances ``v``, ``W[a, b] = prod_k s_k^(-1/2)
  exp(-sum_k (m_a - m_b)_k^2 / (2 s_k))``, ``s_k = 1 + v_a,k + v_b,k`` -- exact for Gaussian
  clouds, and exactly ``K`` for cells of one point (or of identical points); cut where the
  exponent exceeds ``cutoff^2``;
* ``S^T`` hands each point its cell's value.

Per iteration that costs ``2 N M`` plus ``nnz(W) M`` multiply-adds; the set-up sorts the points
into cells and finds the close pairs (:mod:`.cluster_setup`: buckets as wide as the search radius
up to 6 dimensions, scipy's KD-tree beyond). Its error against the exact filter is measured in
the tests and the benchmark; it shrinks with ``cell``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._base import Filter, check_features, check_values
from .cluster_setup import cell_statistics, close_pairs

__all__ = ["ClusterFilter", "cluster_filter_reference"]


@njit(parallel=True, cache=True, nogil=True)
def _csr_kernel(src, row_ptr, cols, weights, out):
    """out[a] = Σ_j weights[j] src[cols[j]] for j in row_ptr[a]:row_ptr[a+1]; src, out (·, M).

    With ``weights`` None every weight is 1 and no product is formed: the splat, ``grid[a] =``
    sum of the values of the points of cell ``a`` (``row_ptr = point_start``, ``cols = points``).
    The blur is ``W @ grid`` for ``W`` in CSR form (row_ptr, cols, weights).
    """
    m = src.shape[1]
    for a in prange(out.shape[0]):
        row = out[a]
        for c in range(m):
            row[c] = 0.0
        for j in range(row_ptr[a], row_ptr[a + 1]):
            v = src[cols[j]]
            if weights is None:
                for c in range(m):
                    row[c] += v[c]
            else:
                w = weights[j]
                for c in range(m):
                    row[c] += w * v[c]


@njit(parallel=True, cache=True, nogil=True)
def _slice_kernel(grid, cell_of, out):
    """out[i] = grid[cell_of[i]]; out (N, M)."""
    m = grid.shape[1]
    for i in prange(out.shape[0]):
        src = grid[cell_of[i]]
        dst = out[i]
        for c in range(m):
            dst[c] = src[c]


def _cells_of(features: np.ndarray, cell: float):
    """(cell index of every point (N,) int64, number of cells): hashed lattice of width ``cell``."""
    q = np.floor((features - features.min(axis=0)) / cell).astype(np.int64)   # (N, D)
    sizes = q.max(axis=0) + 1
    if np.prod(sizes.astype(np.float64)) < 2.0 ** 62:
        strides = np.ones(q.shape[1], dtype=np.int64)
        for k in range(q.shape[1] - 2, -1, -1):
            strides[k] = strides[k + 1] * sizes[k + 1]
        _, cell_of = np.unique(q @ strides, return_inverse=True)
    else:                                           # too many dimensions for one int64 key
        _, cell_of = np.unique(q, axis=0, return_inverse=True)
    cell_of = cell_of.reshape(-1).astype(np.int64)
    return cell_of, int(cell_of.max()) + 1


def cluster_filter_reference(features: np.ndarray, values: np.ndarray, *, cell: float = 1.0,
                             cutoff: float = 3.5) -> np.ndarray:
    """NumPy twin of :class:`ClusterFilter`: dense ``S^T W S @ values`` in float64 (tiny N)."""
    from .cluster_setup import close_pairs_reference

    f = np.asarray(features, dtype=np.float64)
    cell_of, k = _cells_of(f, cell)
    s = np.zeros((k, f.shape[0]))
    s[cell_of, np.arange(f.shape[0])] = 1.0                               # (K, N)
    counts = s.sum(axis=1)
    mean = (s @ f) / counts[:, None]
    var = (s @ f ** 2) / counts[:, None] - mean ** 2
    w = close_pairs_reference(mean, np.maximum(var, 0.0), cutoff)
    return s.T @ (w @ (s @ np.asarray(values, dtype=np.float64).reshape(f.shape[0], -1)))


class ClusterFilter(Filter):
    """Approximate Gaussian filter over cells of points (see the module); symmetric.

    Parameters
    ----------
    features : (N, D) array, already divided by the bandwidths; any D.
    cell : cell width in standard deviations. 1 keeps the labels within 0.2% of the exact CRF on
        the benchmark's small colour bandwidths (``srgb <= 3``); smaller is more accurate and
        costs more close pairs.
    cutoff : pairs of cells whose (variance-corrected) distance exceeds ``cutoff`` standard
        deviations are dropped.
    """

    name = "cluster"
    symmetric = True

    def __init__(self, features: np.ndarray, *, cell: float = 1.0, cutoff: float = 3.5):
        features = np.ascontiguousarray(check_features(features), dtype=np.float64)
        if not (cell > 0 and math.isfinite(cell)):
            raise ValueError(f"`cell` must be positive, got {cell}")
        if not cutoff > 0:
            raise ValueError(f"`cutoff` must be positive, got {cutoff}")
        self.n_points, self.n_dims = features.shape
        self.cell, self.cutoff = float(cell), float(cutoff)
        cell_of, k = _cells_of(features, self.cell)
        counts, mean, var = cell_statistics(features, cell_of, k)
        order, self.row_ptr, self.cols, self.weights = close_pairs(mean, var, self.cutoff)
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)                                          # old cell -> new
        self.cell_of = rank[cell_of].astype(np.int32)                       # (N,)
        self.points = np.argsort(self.cell_of, kind="stable").astype(np.int32)
        self.point_start = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(counts[order], out=self.point_start[1:])
        self.n_cells = k
        self.n_pairs = int(self.row_ptr[-1])
        self._scratch = {}

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``S^T W S @ values``: (N, M) -> (N, M) float32 (into ``out`` if given)."""
        values = check_values(values, self.n_points)
        m = values.shape[1]
        if m not in self._scratch:
            self._scratch = {m: (np.empty((self.n_cells, m), np.float32),
                                 np.empty((self.n_cells, m), np.float32))}
        grid, blurred = self._scratch[m]
        if out is None:
            out = np.empty_like(values)
        _csr_kernel(values, self.point_start, self.points, None, grid)             # splat
        _csr_kernel(grid, self.row_ptr, self.cols, self.weights, blurred)          # blur
        _slice_kernel(blurred, self.cell_of, out)
        return out
