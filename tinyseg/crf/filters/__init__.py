"""Gaussian filters of the dense CRF: ``out = K @ values`` with ``K[i, j] = exp(-|f_i - f_j|^2 / 2)``.

Every filter object has the same small interface (:class:`~._base.Filter`), so mean-field
inference, its backward pass and the GPU backend swap them freely::

    filt.n_points                      # N
    filt.apply(values) -> out          # values (N, M) float32 -> (N, M) float32, out = K @ values
    filt.apply_transpose(values)       # K^T @ values (the adjoint, for backpropagation)
    filt.symmetric                     # whether K == K^T

``K`` includes the pixel itself (``K[i, i] = 1``); normalisation (``D = K @ 1``) is not a filter's
business, inference does it. One module per filter family, each with its Numba kernels and its
readable NumPy twin (``*_reference``) side by side; none of them is the permutohedral lattice:

* :mod:`.exact` -- :class:`ExactFilter`, brute force, O(N^2 D M), exact: the oracle for small
  images.
* :mod:`.separable` -- :class:`SeparableGaussianFilter`, the spatial kernel on the pixel grid
  factorises, ``K = K_rows ⊗ K_cols``, so two 1-D convolutions are exact up to the truncation of
  the 1-D Gaussian at ``truncate`` standard deviations (default 4: tail mass < 7e-5 per axis).
* :mod:`.grid` -- :class:`GridFilter`, a sparse D-dimensional bilateral grid (splat, blur,
  slice) for any features, used for the 5-D bilateral kernel; approximate, with its error
  measured in the tests and the benchmark. :class:`GridLayout` describes a built grid publicly
  (the CUDA twin uses it). Set-up in :mod:`.grid_setup`, per-iteration kernels in
  :mod:`.grid_kernels`.
* :mod:`.simplex` -- :class:`SimplexGridFilter`, the same grid with simplex (Kuhn) splat and
  slice: ``D + 1`` corners per point instead of ``2^D``, its covariance corrected by a shear of
  the features; what ``method="fast"`` uses for the bilateral kernel.
* :mod:`.spatial_grid` -- :class:`SpatialGridFilter`, the spatial Gaussian on a 2-D grid (splat,
  blur, slice factorised over the image axes): a few multiply-adds per value (error ~1%).
* :mod:`.recursive` -- :class:`RecursiveGaussianFilter`, the spatial Gaussian by Deriche's
  recursive filter: constant cost per pixel whatever ``sdims`` (error 5e-4).
* :mod:`.cluster` -- :class:`ClusterFilter`, points grouped into small cells and a Gaussian
  between the cells' clouds: for features that are sparse at their bandwidth (small ``srgb``) and
  any number of dimensions. Set-up in :mod:`.cluster_setup` and :mod:`.kdtree`.
* :mod:`.rotation` -- turning feature axes onto their principal axes (same kernel, smaller grid).
* :mod:`.auto` -- which of them ``method="fast"`` picks.
"""
from ._base import Filter, check_features, check_values
from .auto import auto_filter, spatial_gaussian
from .cluster import ClusterFilter, cluster_filter_reference
from .exact import MAX_EXACT_POINTS, ExactFilter, exact_filter_reference
from .grid import (GridFilter, GridLayout, grid_blur_taps, grid_filter_reference,
                   layout_filter_reference)
from .grid_setup import dilate, dilate_reference
from .recursive import RecursiveGaussianFilter, recursive_gaussian_reference
from .rotation import rotate_to_principal_axes
from .separable import SeparableGaussianFilter, gaussian_taps, separable_gaussian_reference
from .simplex import SimplexGridFilter, kuhn_shear, simplex_filter_reference
from .spatial_grid import SpatialGridFilter, spatial_grid_reference

__all__ = [
    "Filter",
    "ExactFilter",
    "SeparableGaussianFilter",
    "GridFilter",
    "GridLayout",
    "SimplexGridFilter",
    "simplex_filter_reference",
    "kuhn_shear",
    "RecursiveGaussianFilter",
    "SpatialGridFilter",
    "spatial_grid_reference",
    "ClusterFilter",
    "auto_filter",
    "spatial_gaussian",
    "MAX_EXACT_POINTS",
    "recursive_gaussian_reference",
    "cluster_filter_reference",
    "exact_filter_reference",
    "separable_gaussian_reference",
    "grid_filter_reference",
    "layout_filter_reference",
    "gaussian_taps",
    "grid_blur_taps",
    "rotate_to_principal_axes",
    "check_values",
    "check_features",
    "dilate",
    "dilate_reference",
]
