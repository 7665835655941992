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

__all__ = ["as_pair", "as_triple", "spatial_features", "bilateral_features"]


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
    feats = np.empty((h * w, 2 + c), dtype=np.float32)
    feats[:, :2] = spatial_features((h, w), sdims)
    flat = image.reshape(h * w, c).astype(np.float32)           # (H, W, C) -> (N, C)
    feats[:, 2:] = flat / np.asarray(chans, dtype=np.float32)
    return feats
