"""The exact brute-force Gaussian filter, O(N^2 D M): the oracle the other filters are tested against."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._base import Filter, check_features, check_values

__all__ = ["ExactFilter", "exact_filter_reference", "MAX_EXACT_POINTS"]


def exact_filter_reference(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``K @ values`` with the dense ``K[i, j] = exp(-|f_i - f_j|^2 / 2)``, in float64 NumPy.

    features (N, D), values (N, M) -> (N, M) float64. Builds the N×N matrix: tiny inputs only.
    """
    f = np.asarray(features, dtype=np.float64)
    diff = f[:, None, :] - f[None, :, :]                 # (N, N, D)
    kernel = np.exp(-0.5 * np.sum(diff * diff, axis=-1))  # (N, N)
    return kernel @ np.asarray(values, dtype=np.float64).reshape(len(f), -1)


@njit(parallel=True, cache=True, nogil=True)
def _exact_filter_kernel(features, values, start, out):
    """out[r, :] = sum_j exp(-|f_i - f_j|^2 / 2) values[j, :] for i = start + r; out float64 (R, M).

    One block of rows per call, so that Python can answer Ctrl-C (and draw progress) between
    blocks of a long filtering.
    """
    n, d = features.shape
    m = values.shape[1]
    for r in prange(out.shape[0]):
        i = start + r
        for c in range(m):
            out[r, c] = 0.0
        for j in range(n):
            s = 0.0
            for k in range(d):
                t = np.float64(features[i, k]) - np.float64(features[j, k])
                s += t * t
            w = math.exp(-0.5 * s)
            for c in range(m):
                out[r, c] += w * values[j, c]


#: Largest number of points the exact filter takes unless forced: N^2 = 1.6e9 kernel entries per
#: filtering, about a second per label channel on two cores.
MAX_EXACT_POINTS = 40_000


class ExactFilter(Filter):
    """Brute-force Gaussian filter, exact (float64 accumulation), O(N^2) time, O(N M) memory.

    Parameters
    ----------
    features : (N, D) array, one feature vector per point (already divided by the bandwidths).
    force : take more than :data:`MAX_EXACT_POINTS` points (hours of work on a photo).
    progress : None, or a callable ``progress(done, total)`` told after each block of rows.
    """

    name = "exact"

    def __init__(self, features: np.ndarray, *, force: bool = False, progress=None):
        self.features = np.ascontiguousarray(check_features(features), dtype=np.float64)
        self.n_points = self.features.shape[0]
        if self.n_points > MAX_EXACT_POINTS and not force:
            raise ValueError(
                f"the exact CRF filter costs N^2 = {float(self.n_points) ** 2:.1e} kernel entries "
                f"per filtering for N = {self.n_points} points (more than {MAX_EXACT_POINTS}); use "
                "the fast method, a smaller image, or force it (force=True, --force)")
        self.progress = progress

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``K @ values``: values (N, M) -> (N, M) float32 (into ``out`` if given), in blocks of
        rows of about 10^8 kernel entries."""
        values = check_values(values, self.n_points)
        n, m = values.shape
        if out is None:
            out = np.empty((n, m), dtype=np.float32)
        elif np.shares_memory(out, values):
            values = values.copy()                      # every block reads all the values
        rows = max(1, int(1e8 // (n * (self.features.shape[1] + m))))
        block = np.empty((min(rows, n), m), dtype=np.float64)
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            _exact_filter_kernel(self.features, values, start, block[:stop - start])
            out[start:stop] = block[:stop - start]
            if self.progress is not None:
                self.progress(stop, n)
        return out
