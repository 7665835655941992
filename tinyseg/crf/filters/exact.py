"""The exact brute-force Gaussian filter, O(N^2 D M): the oracle the other filters are tested against."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._base import Filter, check_features, check_values

__all__ = ["ExactFilter", "exact_filter_reference"]


def exact_filter_reference(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``K @ values`` with the dense ``K[i, j] = exp(-|f_i - f_j|^2 / 2)``, in float64 NumPy.

    features (N, D), values (N, M) -> (N, M) float64. Builds the N×N matrix: tiny inputs only.
    """
    f = np.asarray(features, dtype=np.float64)
    diff = f[:, None, :] - f[None, :, :]                 # (N, N, D)
    kernel = np.exp(-0.5 * np.sum(diff * diff, axis=-1))  # (N, N)
    return kernel @ np.asarray(values, dtype=np.float64).reshape(len(f), -1)


@njit(parallel=True, cache=True)
def _exact_filter_kernel(features, values, out):
    """out[i, :] = sum_j exp(-|f_i - f_j|^2 / 2) values[j, :]; out is float64 (N, M)."""
    n, d = features.shape
    m = values.shape[1]
    for i in prange(n):
        for c in range(m):
            out[i, c] = 0.0
        for j in range(n):
            s = 0.0
            for k in range(d):
                t = np.float64(features[i, k]) - np.float64(features[j, k])
                s += t * t
            w = math.exp(-0.5 * s)
            for c in range(m):
                out[i, c] += w * values[j, c]


class ExactFilter(Filter):
    """Brute-force Gaussian filter, exact (float64 accumulation), O(N^2) time, O(N M) memory.

    Parameters
    ----------
    features : (N, D) array, one feature vector per point (already divided by the bandwidths).
    """

    name = "exact"

    def __init__(self, features: np.ndarray):
        self.features = np.ascontiguousarray(check_features(features), dtype=np.float64)
        self.n_points = self.features.shape[0]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``K @ values``: values (N, M) -> (N, M) float32."""
        values = check_values(values, self.n_points)
        out = np.empty(values.shape, dtype=np.float64)
        _exact_filter_kernel(self.features, values, out)
        return out.astype(np.float32)

