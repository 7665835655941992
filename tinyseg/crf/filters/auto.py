"""Which filter for which kernel: the choices behind ``method="fast"``.

* A spatial Gaussian on the pixel grid: :class:`~.separable.SeparableGaussianFilter` (exact up to
  its 4-sigma cut) while its taps are few, :class:`~.recursive.RecursiveGaussianFilter` (constant
  cost, 5e-4 error) beyond ``sigma = 2``, and from ``sigma = 2.5`` on, with many channels,
  :class:`~.spatial_grid.SpatialGridFilter` (a few multiply-adds per value, 1-2% error at worst).
* Any other features (the bilateral kernel, N-D features): the sparse bilateral grid with
  simplex interpolation (:class:`~.simplex.SimplexGridFilter`: ``D + 1`` corners per point, its
  covariance corrected by a shear of the features; ``interpolation="multilinear"`` takes
  :class:`~.grid.GridFilter`'s ``2^D`` corners instead, the CUDA twin's) while its
  bounding box stays within ``max_cells`` cells and ``box_per_point`` cells per point (at least
  2^18 cells: small images always get the grid; beyond, its set-up and its pruned blur grow
  with the box) and the features have at most ``grid_max_dims`` dimensions; its cells widen (up
  to 1.7 sigma) until there are at most ``max_occupied`` occupied cells per point (small colour
  bandwidths; the measured error grows);
* otherwise -- small bandwidths, where points are sparse at their own scale, or many
  dimensions -- the cluster filter (:class:`~.cluster.ClusterFilter`), whose cost grows with the
  points and their close pairs only.
"""
from __future__ import annotations

import math

import numpy as np

from ._base import check_features
from .cluster import ClusterFilter
from .grid import _COARSER_CELLS, GridFilter
from .grid_setup import _min_max_kernel
from .recursive import RecursiveGaussianFilter
from .rotation import blur_order, rotate_to_principal_axes
from .separable import SeparableGaussianFilter
from .simplex import SimplexGridFilter
from .spatial_grid import SpatialGridFilter

__all__ = ["spatial_gaussian", "auto_filter", "grid_box_cells", "RECURSIVE_FROM_SIGMA",
           "GRID_FROM_SIGMA", "FINE_GRID_FROM_SIGMA"]

#: From this spatial standard deviation (pixels) on, the recursive filter replaces the FIR one.
RECURSIVE_FROM_SIGMA = 2.0
#: From this spatial standard deviation (pixels, both axes) on, with more than two channels, the
#: 2-D grid replaces the recursive filter, at about half its time: cells of 0.65 sigma (taps to
#: 2.5 blur sigmas; 2% of the peak at worst, the bilateral grid's own error) below
#: :data:`FINE_GRID_FROM_SIGMA`, of 0.5 sigma (taps to 3; 1.2%) from it on, where the grid is
#: coarse enough in pixels to stay cheap.
GRID_FROM_SIGMA = 2.5
FINE_GRID_FROM_SIGMA = 5.0


def spatial_gaussian(shape, sdims, channels: int | None = None):
    """The spatial Gaussian filter of an H×W grid with standard deviations ``sdims`` (pixels).

    ``channels``: how many channels it will filter at a time (``C - 1`` for C labels). The
    recursive filter is taken only when that is known to be more than two (and sigma > 2): with
    one or two channels the exact FIR filter is cheaper up to sigma 16, and a caller that does not
    say (e.g. CRF-as-RNN, whose training proved sensitive to the recursive filter's 5e-4
    approximation) keeps the exact filter up to sigma 16 too. With more than two channels and
    both sigmas from :data:`GRID_FROM_SIGMA` on, the 2-D grid (:mod:`.spatial_grid`).
    """
    many = channels is not None and channels > 2
    if many and min(sdims) >= FINE_GRID_FROM_SIGMA:
        return SpatialGridFilter(shape, sdims, cell=0.5, truncate=3.0)
    if many and min(sdims) >= GRID_FROM_SIGMA:
        return SpatialGridFilter(shape, sdims, cell=0.65, truncate=2.5)
    fir_up_to = RECURSIVE_FROM_SIGMA if channels is not None and channels > 2 else 16.0
    if max(sdims) > fir_up_to:
        return RecursiveGaussianFilter(shape, sdims)
    return SeparableGaussianFilter(shape, sdims)


def grid_box_cells(features: np.ndarray, cell: float = 0.75) -> float:
    """Cells of the grid's bounding box at ``cell`` standard deviations (a float: it may be huge)."""
    lo = np.empty(features.shape[1], np.float64)
    hi = np.empty(features.shape[1], np.float64)
    _min_max_kernel(np.ascontiguousarray(features, dtype=np.float32), lo, hi)   # one pass
    span = hi - lo
    return float(np.prod(np.floor(span / cell) + 2))


def auto_filter(features: np.ndarray, *, rotate=None, image_shape=None, max_cells: int = 1 << 25,
                box_per_point: float = 128.0, max_occupied: float = 0.45, grid_max_dims: int = 6,
                cluster_cell: float = 1.0, interpolation: str = "simplex"):
    """The fast filter for Gaussian features (N, D) (see the module).

    ``rotate``: feature axes the grid may turn onto their principal axes (the colours);
    ``image_shape``: (H, W) when the points are an image's pixels (5-D bilateral features),
    which lets the multilinear grid factorise its splat and slice by image rows;
    ``interpolation``: the grid's splat and slice, "simplex" or "multilinear".
    """
    if interpolation not in ("simplex", "multilinear"):
        raise ValueError("`interpolation` must be 'simplex' or 'multilinear', got "
                         f"{interpolation!r}")
    features = np.ascontiguousarray(check_features(features), dtype=np.float32)
    d = features.shape[1]
    if d <= grid_max_dims:
        turned = rotate_to_principal_axes(features, rotate) if rotate and len(rotate) > 1 \
            else features
        budget = min(max_cells, max(box_per_point * features.shape[0], 1 << 18))
        if grid_box_cells(turned, _COARSER_CELLS[-1]) <= budget:      # it may widen its cells
            grid = SimplexGridFilter if interpolation == "simplex" else GridFilter
            return grid(turned, max_cells=max_cells, max_occupied=max_occupied,
                        image_shape=image_shape if d == 5 else None,
                        order=blur_order(d, rotate or ()))
    if not math.isfinite(cluster_cell) or cluster_cell <= 0:
        raise ValueError(f"`cluster_cell` must be positive, got {cluster_cell}")
    return ClusterFilter(features, cell=cluster_cell)
