"""The public description of a built sparse grid (:class:`GridLayout`) and its blur taps.

:class:`~.grid.GridFilter` builds the grid; a backend (the CUDA twin) needs only this
description to run the same filter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GridLayout", "grid_blur_taps"]


def grid_blur_taps(cell: float, truncate: float) -> np.ndarray:
    """1-D blur taps of the grid, in cells, float32.

    Multilinear splatting and slicing each add a tent of width ``cell`` (variance ``cell^2/6``), so
    the blur gets the rest of the unit variance: ``sigma_b^2 = (1 - cell^2/3) / cell^2`` cells^2.
    Taps reach ``ceil(truncate * sigma_b)`` cells and are scaled so that splat-blur-slice keeps the
    mass of the continuous Gaussian (``sqrt(2 pi)`` per unit of feature), hence ``K[i, i] ~ 1``.
    """
    var = 1.0 - cell * cell / 3.0
    if var <= 0:
        raise ValueError(f"`cell` must be below sqrt(3) standard deviations, got {cell}")
    sigma_b = math.sqrt(var) / cell
    radius = max(1, int(math.ceil(truncate * sigma_b)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / sigma_b) ** 2)
    taps *= math.sqrt(2.0 * math.pi) / (cell * taps.sum())
    return taps.astype(np.float32)


@dataclass(frozen=True)
class GridLayout:
    """Public description of a built sparse grid: ``K @ v = slice(blur_{D-1}(... blur_0(splat(v))))``.

    * splat: point ``i`` adds ``pair_weights[i, j] * (1 - frac_last[i]) * v[i]`` to grid row
      ``corner_pairs[i, j]`` and ``pair_weights[i, j] * frac_last[i] * v[i]`` to the row after it
      (the two corners of pair ``j`` are one cell apart along the last axis), for every pair ``j``;
      the grid has ``n_cells`` rows (the occupied cells).
    * blur pass ``p`` (along one feature axis): ``out[k] = sum_t taps[t] * src[passes[p][k, t]]``,
      where ``src`` is the previous grid with one extra row of zeros at index ``len(src)``
      (entries equal to ``len(src)`` mean "no cell there"). The last pass's output rows are the
      occupied cells again, in the same order.
    * slice: ``out[i] = sum_j pair_weights[i, j] ((1 - frac_last[i]) g[corner_pairs[i, j]] +
      frac_last[i] g[corner_pairs[i, j] + 1])``, the transpose of splat.

    Attributes
    ----------
    n_points, n_dims, n_cells : N, D and the number of occupied cells.
    cell : cell width in standard deviations.
    taps : (2r+1,) float32 blur taps (symmetric).
    corner_pairs : (N, 2^(D-1)) int32 grid rows of the lower corner of each pair (a simplex
        grid: (N, D + 1), its corners, with ``frac_last = 0``).
    pair_weights : (N, 2^(D-1)) float32 multilinear weights over the first D-1 axes (a simplex
        grid: its barycentric weights).
    frac_last : (N,) float32 fractional position along the last axis.
    passes : D int32 gather tables, pass ``p`` of shape (cells after pass p, 2r+1).
    """

    n_points: int
    n_dims: int
    n_cells: int
    cell: float
    taps: np.ndarray
    corner_pairs: np.ndarray
    pair_weights: np.ndarray
    frac_last: np.ndarray
    passes: tuple
