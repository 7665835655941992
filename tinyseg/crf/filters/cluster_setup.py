"""Set-up of the cluster filter: group the points into cells, and find the pairs of close cells.

Kernels write into preallocated outputs; the NumPy twins are the ``*_reference`` functions.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["cell_statistics", "close_pairs", "close_pairs_reference", "pair_weight_reference"]


@njit(cache=True, nogil=True)
def _cell_sums_kernel(features, cell_of, counts, mean, var):
    """Per cell: count, mean and (biased) variance of each feature axis, two passes (float64)."""
    n, d = features.shape
    for i in range(n):
        a = cell_of[i]
        counts[a] += 1
        for k in range(d):
            mean[a, k] += features[i, k]
    for a in range(mean.shape[0]):
        for k in range(d):
            mean[a, k] /= counts[a]
    for i in range(n):
        a = cell_of[i]
        for k in range(d):
            t = features[i, k] - mean[a, k]
            var[a, k] += t * t
    for a in range(mean.shape[0]):
        for k in range(d):
            var[a, k] /= counts[a]


def cell_statistics(features: np.ndarray, cell_of: np.ndarray, n_cells: int):
    """(counts (K,), mean (K, D), var (K, D)) of the points of each of the K cells, float64."""
    counts = np.zeros(n_cells, dtype=np.int64)
    mean = np.zeros((n_cells, features.shape[1]))
    var = np.zeros((n_cells, features.shape[1]))
    _cell_sums_kernel(np.ascontiguousarray(features, dtype=np.float64), cell_of, counts, mean, var)
    return counts, mean, var


@njit(inline="always")
def _pair_exponent(mean, var, a, b, cutoff2):
    """(sum_k (m_a - m_b)_k^2 / s_k, prod_k s_k) with s_k = 1 + var_a,k + var_b,k; the sum stops
    (and is returned as is) as soon as it exceeds cutoff2: most candidate pairs end early."""
    e = 0.0
    prod = 1.0
    for k in range(mean.shape[1]):
        s = 1.0 + var[a, k] + var[b, k]
        t = mean[a, k] - mean[b, k]
        e += t * t / s
        if e > cutoff2:
            return e, prod
        prod *= s
    return e, prod


@njit(parallel=True, cache=True, nogil=True)
def _pair_weights_kernel(mean, var, row_ptr, cols, cutoff2, keep_ptr, out_cols, out_weights,
                         count_only):
    """Keep the candidate pairs (CSR row_ptr, cols) whose exponent is at most cutoff2.

    count_only: keep_ptr[a + 1] = how many of row a are kept; else write them (cols and weights
    ``exp(-e / 2) / sqrt(prod s)``) from keep_ptr[a] on.
    """
    for a in prange(row_ptr.shape[0] - 1):
        j = 0 if count_only else keep_ptr[a]
        kept = 0
        for t in range(row_ptr[a], row_ptr[a + 1]):
            b = cols[t]
            e, prod = _pair_exponent(mean, var, a, b, cutoff2)
            if e <= cutoff2:
                if not count_only:
                    out_cols[j + kept] = b
                    out_weights[j + kept] = math.exp(-0.5 * e) / math.sqrt(prod)
                kept += 1
        if count_only:
            keep_ptr[a + 1] = kept


def close_pairs(mean: np.ndarray, var: np.ndarray, cutoff: float):
    """The sparse symmetric matrix ``W[a, b]`` of close cells, as (order, row_ptr, cols, weights).

    ``W[a, b] = prod_k s_k^(-1/2) exp(-sum_k (m_a - m_b)_k^2 / (2 s_k))``, ``s_k = 1 + v_a,k + v_b,k``
    (the mean of the Gaussian kernel between two clouds of variances v_a, v_b), kept where the
    exponent is at most ``cutoff^2``; ``W[a, a]`` included. mean, var (K, D) float64.

    The cells are renumbered in the k-d tree's leaf order (close cells get close numbers):
    ``order[new] = old``, and the CSR matrix (int32 columns, float32 weights) uses the new
    numbers. Candidates come from :class:`~.kdtree.KDTree` within each cell's largest possible
    radius, ``cutoff * sqrt(1 + max_k v_a,k + max v)``.
    """
    from .kdtree import KDTree

    tree = KDTree(mean)
    order = tree.renumber()
    m = tree.points
    v = np.ascontiguousarray(var[order])
    radius = cutoff * np.sqrt(1.0 + v.max(axis=1) + v.max(initial=0.0))
    row_ptr, cols = tree.neighbours(radius)
    keep_ptr = np.zeros(len(m) + 1, dtype=np.int64)
    args = (m, v, row_ptr, cols, cutoff * cutoff)
    _pair_weights_kernel(*args, keep_ptr, np.empty(0, np.int32), np.empty(0, np.float32), True)
    np.cumsum(keep_ptr, out=keep_ptr)
    out_cols = np.empty(keep_ptr[-1], dtype=np.int32)
    out_weights = np.empty(keep_ptr[-1], dtype=np.float32)
    _pair_weights_kernel(*args, keep_ptr, out_cols, out_weights, False)
    return order, keep_ptr, out_cols, out_weights


def pair_weight_reference(mean_a, var_a, mean_b, var_b) -> float:
    """NumPy twin of one entry of :func:`close_pairs`' matrix (no cut-off)."""
    s = 1.0 + np.asarray(var_a) + np.asarray(var_b)
    return float(np.prod(s) ** -0.5 * np.exp(-0.5 * np.sum((np.asarray(mean_a) - mean_b) ** 2 / s)))


def close_pairs_reference(mean, var, cutoff):
    """Dense NumPy twin of :func:`close_pairs` (tiny K): the (K, K) matrix W, zero beyond the cut."""
    s = 1.0 + var[:, None, :] + var[None, :, :]                             # (K, K, D)
    e = np.sum((mean[:, None, :] - mean[None, :, :]) ** 2 / s, axis=-1)
    return np.where(e <= cutoff * cutoff, np.exp(-0.5 * e) / np.sqrt(np.prod(s, axis=-1)), 0.0)
