"""Pairwise features of the dense CRF, with pydensecrf's parameter meaning.

Both kernels of Krähenbühl & Koltun (2011) are Gaussians of a feature distance,
``k(i, j) = exp(-|f_i - f_j|^2 / 2)``, so the bandwidths live in the features:

* spatial (``sdims``):           ``f_i = (row_i / sdims[0], col_i / sdims[1])``          -> ``(N, 2)``
* bilateral (``sdims``, ``schan``): ``f_i = (row / sdims[0], col / sdims[1], r / schan[0], g / schan[1], b / schan[2])`` -> ``(N, 5)``

Pixels are numbered in row-major order, ``i = row * W + col`` (as pydensecrf's ``DenseCRF2D``).
The engine keeps features as ``(N, D)`` float32 rows (one point per row); the pydensecrf-compatible
layer converts from pydensecrf's ``(D, N)`` layout.
"""
from __future__ import annotations

from numbers import Number

import numpy as np
from numba import njit

__all__ = ["as_pair", "as_triple", "spatial_features", "bilateral_features",
           "bilateral_features_reference"]


def _as_positive_tuple(value, n: int, name: str) -> tuple[float, ...]:
    if isinstance(value, Number):
        value = (value,) * n
    values = tuple(float(v) for v in np.asarray(value, dtype=np.float64).ravel())
    if len(values) != n:
        raise ValueError(f"`{name}` must be a number or {n} numbers, got {len(values)} numbers")
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"`{name}` must be positive and finite, got {values}")
    return values


def as_pair(value, name: str) -> tuple[float, float]:
    """``value`` as two positive floats (a number is repeated); the error names ``name``."""
    return _as_positive_tuple(value, 2, name)  # type: ignore[return-value]


def as_triple(value, name: str) -> tuple[float, float, float]:
    """``value`` as three positive floats (a number is repeated); the error names ``name``."""
    return _as_positive_tuple(value, 3, name)  # type: ignore[return-value]


def spatial_features(shape: tuple[int, int], sdims) -> np.ndarray:
    """Features of the spatial Gaussian kernel: ``(row / sdims[0], col / sdims[1])`` per pixel.

    Parameters
    ----------
    shape : (H, W)
    sdims : number or (s_row, s_col), the standard deviations in pixels.

    Returns
    -------
    features : (H*W, 2) float32, row-major pixel order.
    """
    sy, sx = as_pair(sdims, "sdims")
    h, w = (int(s) for s in shape)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                             indexing="ij")                      # (H, W) each
    feats = np.empty((h * w, 2), dtype=np.float32)
    feats[:, 0] = rows.ravel() / np.float32(sy)
    feats[:, 1] = cols.ravel() / np.float32(sx)
    return feats


@njit(cache=True, nogil=True)
def _bilateral_features_kernel(image, inv_sdims, inv_schan, out):
    """out[r*W + c] = (r * inv_sdims[0], c * inv_sdims[1], image[r, c, k] * inv_schan[k] ...)."""
    h, w, nc = image.shape
    for r in range(h):
        for c in range(w):
            i = r * w + c
            out[i, 0] = r * inv_sdims[0]
            out[i, 1] = c * inv_sdims[1]
            for k in range(nc):
                out[i, 2 + k] = image[r, c, k] * inv_schan[k]


def bilateral_features_reference(image: np.ndarray, sdims, schan) -> np.ndarray:
    """NumPy twin of :func:`bilateral_features` (float64): positions and colours, scaled."""
    h, w, c = image.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")   # (H, W) each
    pos = np.stack([rows.ravel() / sdims[0], cols.ravel() / sdims[1]], axis=1)
    return np.concatenate([pos, image.reshape(h * w, c) / np.asarray(schan, dtype=np.float64)], axis=1)


def bilateral_features(image: np.ndarray, sdims, schan) -> np.ndarray:
    """Features of the bilateral kernel: position over ``sdims`` and colour over ``schan``.

    Parameters
    ----------
    image : (H, W, C) array (uint8 RGB for the CRF; any channel count works here).
    sdims : number or (s_row, s_col), spatial standard deviations in pixels.
    schan : number or C numbers, colour standard deviations in intensity units.

    Returns
    -------
    features : (H*W, 2 + C) float32: ``row/s_row, col/s_col, ch_0/schan_0, ...``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"`image` must be H×W×C, got shape {image.shape}")
    h, w, c = image.shape
    chans = _as_positive_tuple(schan, c, "schan")
    sy, sx = as_pair(sdims, "sdims")
    feats = np.empty((h * w, 2 + c), dtype=np.float32)
    inv_sdims = np.array([1.0 / sy, 1.0 / sx], dtype=np.float32)
    inv_schan = (1.0 / np.asarray(chans, dtype=np.float64)).astype(np.float32)
    _bilateral_features_kernel(np.ascontiguousarray(image), inv_sdims, inv_schan, feats)
    return feats
