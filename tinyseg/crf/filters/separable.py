"""The spatial Gaussian on a pixel grid, exactly, as two 1-D convolutions (it factorises)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._base import FAST_FLOATS, Filter, check_values

__all__ = ["SeparableGaussianFilter", "separable_gaussian_reference", "gaussian_taps"]


def gaussian_taps(sigma: float, truncate: float, limit: int) -> np.ndarray:
    """1-D taps ``exp(-t^2 / (2 sigma^2))`` for ``|t| <= min(ceil(truncate*sigma), limit)``, float32."""
    radius = int(min(math.ceil(truncate * sigma), max(limit, 0)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (t / sigma) ** 2).astype(np.float32)


def separable_gaussian_reference(shape, sdims, values, truncate: float = 4.0) -> np.ndarray:
    """The separable filter as two dense banded matrices, float64 NumPy.

    shape (H, W), sdims (s_row, s_col) in pixels, values (H*W, M) -> (H*W, M):
    ``out = K_rows @ V @ K_cols`` per channel with ``K_axis[a, b] = exp(-(a-b)^2 / (2 s^2))`` for
    ``|a - b| <= ceil(truncate * s)`` and 0 beyond.
    """
    h, w = shape
    v = np.asarray(values, dtype=np.float64).reshape(h, w, -1)      # (N, M) -> (H, W, M)

    def banded(n, s):
        d = np.subtract.outer(np.arange(n), np.arange(n)).astype(np.float64)
        k = np.exp(-0.5 * (d / s) ** 2)
        k[np.abs(d) > math.ceil(truncate * s)] = 0.0
        return k

    out = np.einsum("ab,bwm->awm", banded(h, sdims[0]), v)           # along rows
    out = np.einsum("cd,adm->acm", banded(w, sdims[1]), out)         # along columns
    return out.reshape(h * w, -1)


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _convolve_rows_kernel(src, taps, dst):
    """dst[y, :] = sum_t taps[t + r] src[y + t, :] over rows in range; src, dst (H, L)."""
    h, length = src.shape
    r = (taps.shape[0] - 1) // 2
    for yy in prange(h):
        y = np.int64(yy)  # prange indices may be unsigned: negate only signed integers
        for j in range(length):
            dst[y, j] = 0.0
        t0 = max(-r, -y)
        t1 = min(r, h - 1 - y)
        for t in range(t0, t1 + 1):
            wt = taps[t + r]
            for j in range(length):
                dst[y, j] += wt * src[y + t, j]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _convolve_cols_kernel(src, taps, m, dst):
    """Along columns of (H, W*M) rows: dst[y, x*M+c] = sum_t taps[t + r] src[y, (x+t)*M+c]."""
    h, length = src.shape
    r = (taps.shape[0] - 1) // 2
    for y in prange(h):
        d = dst[y]
        s = src[y]
        for j in range(length):
            d[j] = 0.0
        for t in range(-r, r + 1):
            wt = taps[t + r]
            if t < 0:
                # d[j] += wt * s[j - |t| m] for j >= |t| m; both views start at index 0
                a = d[-t * m:]
                b = s[:length + t * m]
            else:
                a = d[:length - t * m]
                b = s[t * m:]
            for j in range(a.shape[0]):
                a[j] += wt * b[j]


class SeparableGaussianFilter(Filter):
    """Exact spatial Gaussian on an H×W pixel grid, as two 1-D convolutions.

    ``K[i, j] = exp(-(dr/s_row)^2/2 - (dc/s_col)^2/2)`` for pixels ``i``, ``j`` at row/column
    offsets ``dr``, ``dc``; the 1-D Gaussians are cut at ``truncate`` standard deviations (that cut
    is the only difference from :class:`ExactFilter` on :func:`~tinyseg.crf.features.spatial_features`).
    Cost ``2 (2r+1) N M`` multiply-adds, parallel over rows.

    Parameters
    ----------
    shape : (H, W)
    sdims : (s_row, s_col) in pixels.
    truncate : radius of the 1-D taps in standard deviations.
    """

    name = "separable"

    def __init__(self, shape, sdims, *, truncate: float = 4.0):
        self.shape = (int(shape[0]), int(shape[1]))
        self.sdims = (float(sdims[0]), float(sdims[1]))
        self.truncate = float(truncate)
        self.n_points = self.shape[0] * self.shape[1]
        self.taps_rows = gaussian_taps(self.sdims[0], truncate, self.shape[0] - 1)
        self.taps_cols = gaussian_taps(self.sdims[1], truncate, self.shape[1] - 1)

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``K @ values``: values (N, M) -> (N, M) float32 (into ``out`` if given)."""
        values = check_values(values, self.n_points)
        h, w = self.shape
        m = values.shape[1]
        src = values.reshape(h, w * m)                      # (N, M) -> (H, W*M)
        tmp = np.empty_like(src)
        if out is None:
            out = np.empty((self.n_points, m), dtype=np.float32)
        _convolve_rows_kernel(src, self.taps_rows, tmp)
        _convolve_cols_kernel(tmp, self.taps_cols, m, out.reshape(h, w * m))
        return out
