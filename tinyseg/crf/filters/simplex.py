"""The bilateral grid with simplex interpolation: D + 1 corners per point instead of 2^D.

:class:`~.grid.GridFilter` splats every point onto the ``2^D`` corners of its grid cell
(multilinear weights): 32 corners for the 5-D bilateral features. Any interpolation whose weights
reproduce the point's position works as splat and slice, and the cheapest one on a Cartesian grid
is *simplex* (Kuhn, or "tetrahedral") interpolation: split the unit cube into the ``D!`` simplices
``{x : x_{pi(1)} >= x_{pi(2)} >= ... >= x_{pi(D)}}`` and use the barycentric weights of the simplex
that holds the point. With the fractions of the point in its cell sorted, ``f_{pi(1)} >= ... >=
f_{pi(D)}``, its ``D + 1`` corners and weights are ::

    v_0 = base,  v_k = v_{k-1} + e_{pi(k)}                  (walk up one axis at a time)
    w_0 = 1 - f_{pi(1)},  w_k = f_{pi(k)} - f_{pi(k+1)},  w_D = f_{pi(D)}

(non-negative, summing to 1, ``sum_k w_k v_k = base + f``). The grid, its pruned blur passes and
their Gaussian taps are :class:`~.grid.GridFilter`'s; only splat and slice change, and fewer cells
are occupied (a point marks ``D + 1`` corners, not ``2^D``), so the blur shrinks too. This is not
the permutohedral lattice: the grid is the ordinary Cartesian one, blurred axis by axis.

**The covariance correction.** Along each axis the weights reduce to linear interpolation (the
corners one cell up along ``a`` carry ``f_a`` in all), so the variance that splat and slice add
per axis is the multilinear grid's, and :func:`~.grid_layout.grid_blur_taps` corrects it the same
way. Unlike multilinear weights, the simplex ones also correlate the axes: averaged over the
cell, one interpolation adds the covariance ``(c^2 / 12) (I + 1 1^T)`` (cell width ``c``), so
splat and slice together give the kernel the extra off-diagonal covariance ``(c^2 / 6)`` between
every two axes -- a Gaussian stretched along the cell diagonal. The blur cannot remove
covariance, but the features can absorb it: filtering the sheared features ``f' = f S`` with
``S S^T = Sigma = (1 - c^2 / 6) I + (c^2 / 6) 1 1^T`` (:func:`kuhn_shear`) makes the grid's
kernel ``exp(-d'^T Sigma^-1 d' / 2) = exp(-|d|^2 / 2)`` on average, the Gaussian asked for.
Measured against the exact CRF on small crops (``benchmarks/bench_crf_accuracy.py``), the
corrected simplex grid differs from it on fewer labels than the multilinear grid does.

:func:`simplex_filter_reference` is the dense NumPy twin of the whole chain.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._base import FAST_FLOATS, check_features, check_values
from .grid import GridFilter
from .grid_kernels import _blur_pass_kernel, _grid_geometry, blur_pass_rows
from .grid_layout import GridLayout, grid_blur_taps
from .grid_setup import _grid_coords_kernel
from .rotation import blur_order, rotate_to_principal_axes

__all__ = ["SimplexGridFilter", "simplex_filter_reference", "kuhn_shear", "kuhn_peak",
           "simplex_corners", "simplex_corners_reference"]

#: Points per task of the set-up kernel (each task sorts its points' fractions in one buffer).
_SETUP_BLOCK = 4096


def kuhn_peak(cell: float, n_dims: int) -> float:
    """``sqrt(det Sigma)`` of :func:`kuhn_shear`'s ``Sigma``: the grid's Gaussian over the sheared
    features has covariance ``Sigma`` there, so its peak is ``1 / sqrt(det Sigma)`` of the unit
    one; the filter multiplies by this (spread over the blur passes) to keep ``K[i, i] ≈ 1``."""
    c2 = float(cell) ** 2 / 6.0
    return float(np.sqrt((1.0 - c2) ** (n_dims - 1) * (1.0 + (n_dims - 1) * c2)))


def kuhn_shear(cell: float, n_dims: int) -> np.ndarray:
    """``S`` (D, D) float32, symmetric, with ``S S^T = (1 - c^2/6) I + (c^2/6) 1 1^T``: the shear
    of the features that cancels the simplex interpolation's covariance (see the module)."""
    c2 = float(cell) ** 2 / 6.0
    sigma = (1.0 - c2) * np.eye(n_dims) + c2 * np.ones((n_dims, n_dims))
    eigenvalues, vectors = np.linalg.eigh(sigma)
    return ((vectors * np.sqrt(eigenvalues)) @ vectors.T).astype(np.float32)


@njit(parallel=True, cache=True, nogil=True)
def _times_matrix_kernel(features, matrix, out):
    """out = features @ matrix; (N, D) @ (D, D) float32, one point per task (no BLAS call: its
    set-up dominates for D = 5)."""
    n, d = features.shape
    for i in prange(n):
        for b in range(d):
            s = np.float32(0.0)
            for a in range(d):
                s += features[i, a] * matrix[a, b]
            out[i, b] = s


@njit(parallel=True, cache=True, nogil=True)
def simplex_corners(base_index, frac, strides, corners, weights, occupied):
    """The Kuhn simplex of every point (see the module) and the cells it occupies.

    base_index (N,) flat index of the cell's lower corner; frac (N, D) the point's fractions in
    it; strides (D,) of the flat grid. Writes corners (N, D + 1) flat indices, weights
    (N, D + 1) float32 and ``occupied[corner] = 1`` (uint8; threads may store the same 1, harmless).
    """
    n, d = frac.shape
    for block in prange((n + _SETUP_BLOCK - 1) // _SETUP_BLOCK):
        order = np.empty(d, np.int64)
        for i in range(block * _SETUP_BLOCK, min(n, (block + 1) * _SETUP_BLOCK)):
            for k in range(d):
                order[k] = k
            for a in range(1, d):                    # insertion sort, fractions falling
                j = a
                while j > 0 and frac[i, order[j]] > frac[i, order[j - 1]]:
                    order[j], order[j - 1] = order[j - 1], order[j]
                    j -= 1
            corner = base_index[i]
            corners[i, 0] = corner
            occupied[corner] = 1
            above = np.float32(1.0)
            for k in range(d):
                f = frac[i, order[k]]
                weights[i, k] = above - f
                above = f
                corner += strides[order[k]]
                corners[i, k + 1] = corner
                occupied[corner] = 1
            weights[i, d] = above


def simplex_corners_reference(base: np.ndarray, frac: np.ndarray):
    """NumPy twin of :func:`simplex_corners` on grid coordinates: base (N, D) int cells, frac
    (N, D) -> corners (N, D + 1, D) int cell coordinates, weights (N, D + 1)."""
    n, d = frac.shape
    order = np.argsort(-frac, axis=1, kind="stable")               # axes by falling fraction
    falling = np.take_along_axis(frac, order, axis=1)              # f_pi(1) >= ... >= f_pi(D)
    weights = np.concatenate([1.0 - falling[:, :1], falling[:, :-1] - falling[:, 1:],
                              falling[:, -1:]], axis=1)            # (N, D + 1)
    steps = np.zeros((n, d + 1, d), dtype=np.int64)
    steps[np.arange(n)[:, None], np.arange(1, d + 1)[None, :], order] = 1   # e_pi(k) at step k
    return base[:, None, :] + np.cumsum(steps, axis=1), weights


@njit(parallel=True, cache=True, nogil=True)
def _compact_kernel(corners, cell_map, out):
    """out[i, k] = cell_map[corners[i, k]]: flat grid indices to the occupied cells' numbers."""
    n, k_max = corners.shape
    for i in prange(n):
        for k in range(k_max):
            out[i, k] = cell_map[corners[i, k]]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _splat_kernel(values, corners, weights, partial):
    """partial[p] (P, cells + 1, M) = the splat of the p-th block of points:
    ``grid[corners[i, k]] += weights[i, k] values[i]``."""
    n_chunks, _, m = partial.shape
    n, n_corners = corners.shape
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:, :] = 0.0
        lo, hi = (n * p) // n_chunks, (n * (p + 1)) // n_chunks
        if m == 1:                                  # one channel: a scalar loop, no inner one
            for i in range(lo, hi):
                v = values[i, 0]
                for k in range(n_corners):
                    grid[corners[i, k], 0] += weights[i, k] * v
            continue
        for i in range(lo, hi):
            v = values[i]
            for k in range(n_corners):
                w = weights[i, k]
                row = grid[corners[i, k]]
                for c in range(m):
                    row[c] += w * v[c]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _slice_kernel(grid, corners, weights, out):
    """out[i] = sum_k weights[i, k] grid[corners[i, k]]; grid (cells + 1, M), out (N, M)."""
    n, n_corners = corners.shape
    m = grid.shape[1]
    if m == 1:                                      # one channel: a scalar loop, no inner one
        for i in prange(n):
            acc = np.float32(0.0)
            for k in range(n_corners):
                acc += weights[i, k] * grid[corners[i, k], 0]
            out[i, 0] = acc
        return
    for i in prange(n):                             # (D = 5 has its own kernel, below)
        cs, ws = corners[i], weights[i]
        for c in range(m):
            total = np.float32(0.0)
            for k in range(n_corners):
                total += ws[k] * grid[cs[k], c]
            out[i, c] = total


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _splat6_kernel(values, corners, weights, partial):
    """:func:`_splat_kernel` for six corners (D = 5, the bilateral kernel), many channels.

    The same sums in the same order with the six rows in registers: the general loop stores and
    reloads a grid row at every corner, as the compiler cannot prove the rows apart (about half
    the time here).
    """
    n_chunks, _, m = partial.shape
    n = corners.shape[0]
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:, :] = 0.0
        for i in range((n * p) // n_chunks, (n * (p + 1)) // n_chunks):
            v, c, w = values[i], corners[i], weights[i]
            w0, w1, w2, w3, w4, w5 = w[0], w[1], w[2], w[3], w[4], w[5]
            r0, r1, r2 = grid[c[0]], grid[c[1]], grid[c[2]]
            r3, r4, r5 = grid[c[3]], grid[c[4]], grid[c[5]]
            for k in range(m):
                x = v[k]
                r0[k] += w0 * x
                r1[k] += w1 * x
                r2[k] += w2 * x
                r3[k] += w3 * x
                r4[k] += w4 * x
                r5[k] += w5 * x


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _slice6_kernel(grid, corners, weights, out):
    """:func:`_slice_kernel` for six corners (D = 5), many channels: one expression per channel,
    each output stored once (about twice as fast as the general loop)."""
    n, m = out.shape
    for i in prange(n):
        acc, c, w = out[i], corners[i], weights[i]
        w0, w1, w2, w3, w4, w5 = w[0], w[1], w[2], w[3], w[4], w[5]
        r0, r1, r2 = grid[c[0]], grid[c[1]], grid[c[2]]
        r3, r4, r5 = grid[c[3]], grid[c[4]], grid[c[5]]
        for k in range(m):
            acc[k] = w0 * r0[k] + w1 * r1[k] + w2 * r2[k] + w3 * r3[k] + w4 * r4[k] + w5 * r5[k]


def _blur_pass(src, neighbours, taps, dst) -> None:
    """One blur pass of a (cells + 1, M) grid; one channel through the one-channel kernel."""
    if src.shape[1] == 1:
        _blur_pass_kernel(src.reshape(-1), neighbours, taps, dst.reshape(-1))
    else:
        blur_pass_rows(src, neighbours, taps, dst)


class SimplexGridFilter(GridFilter):
    """The sparse bilateral grid of :class:`~.grid.GridFilter` with simplex splat and slice.

    ``K ≈ S^T B S`` on the features sheared by :func:`kuhn_shear` (see the module): each point
    splats onto the ``D + 1`` corners of its Kuhn simplex; the grid, the pruned blur passes and
    the cell choice (``cell``, ``truncate``, ``order``, ``rotate``, ``max_cells``,
    ``max_occupied``) are :class:`~.grid.GridFilter`'s. The default cell, 0.9 standard
    deviations, is wider than the multilinear grid's 0.75: its blur needs 5 taps instead of 7
    and about half the cells (10-25 % less time per filtering on the benchmark's photos), and
    on small crops of eight photos (``bench_crf_accuracy``'s kind) the CRF's labels still
    differ from the exact CRF's less often than pydensecrf's do, on average. ``shear=False``
    leaves the simplex interpolation's covariance uncorrected (for study: the kernel then leans
    along the cell diagonal). ``image_shape`` is accepted and ignored (no row factorisation is
    needed here).
    """

    name = "simplex-grid"

    def __init__(self, features: np.ndarray, *, cell: float = 0.9, truncate: float = 2.0,
                 order=None, rotate=None, max_cells: int = 1 << 25,
                 max_occupied: float | None = None, image_shape=None, shear: bool = True):
        features = np.ascontiguousarray(check_features(features), dtype=np.float32)
        if rotate is not None and len(rotate) > 1:
            features = rotate_to_principal_axes(features, rotate)
        self.shear = bool(shear)
        if order is None:
            order = blur_order(features.shape[1], rotate or ())
        options = dict(truncate=truncate, order=order, max_cells=max_cells)
        super().__init__(self._sheared(features, cell), cell=cell, max_occupied=max_occupied,
                         **options)
        if self.shear and self.cell != cell:          # coarsened: the shear belongs to the cell
            sheared = self._sheared(features, self.cell)
            span = sheared.max(axis=0).astype(np.float64) - sheared.min(axis=0)
            box = float(np.prod(np.floor(span / self.cell) + 2))   # this cell was accepted
            options["max_cells"] = max(max_cells, int(box))
            super().__init__(sheared, cell=self.cell, **options)
        if self.shear:                                # the peak back at 1 (see kuhn_shear)
            d = self.n_dims
            self.taps = self.taps * np.float32(kuhn_peak(self.cell, d) ** (1 / d))

    def _sheared(self, features, cell):
        """``features @ kuhn_shear(cell)`` (a copy either way), or the features without shear."""
        if not self.shear:
            return features
        out = np.empty_like(features)
        _times_matrix_kernel(features, kuhn_shear(cell, features.shape[1]), out)
        return out

    def _cells(self, features, lo, sizes, cell):
        """Strides, each point's simplex (kept for :meth:`_point_tables`) and occupied corners."""
        d = self.n_dims
        strides = np.ones(d, dtype=np.int64)
        for k in range(d - 2, -1, -1):
            strides[k] = strides[k + 1] * sizes[k + 1]
        base_index = np.empty(self.n_points, dtype=np.int64)
        frac = np.empty((self.n_points, d), dtype=np.float32)
        _grid_coords_kernel(features, lo, 1.0 / cell, strides, base_index, frac)
        occupied = np.zeros(int(np.prod(sizes.astype(np.float64))), dtype=np.bool_)
        self._flat_corners = np.empty((self.n_points, d + 1), np.int64)
        self.weights = np.empty((self.n_points, d + 1), np.float32)
        simplex_corners(base_index, frac, strides, self._flat_corners, self.weights,
                        occupied.view(np.uint8))
        return strides, None, base_index, frac, occupied

    def _point_tables(self, geometry) -> np.ndarray:
        """The corners as numbers of the occupied cells (``corners`` (N, D + 1) int32)."""
        cells = np.flatnonzero(geometry["occupied"])
        cell_map = np.full(geometry["total"], -1, dtype=np.int32)
        cell_map[cells] = np.arange(cells.shape[0], dtype=np.int32)
        self.n_occupied = int(cells.shape[0])
        self.corners = np.empty(self._flat_corners.shape, np.int32)
        _compact_kernel(self._flat_corners, cell_map, self.corners)
        del self._flat_corners
        return cell_map

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``S^T B S @ values``: values (N, M) -> (N, M) float32 (into ``out`` if given; ``out``
        may be ``values``, which only the splat reads)."""
        return self._filter(check_values(values, self.n_points), self.neighbours, out)

    def _filter(self, values: np.ndarray, passes, out=None) -> np.ndarray:
        """Splat, the given blur passes (:meth:`apply_transpose` gives the transposed ones),
        slice."""
        six = self.corners.shape[1] == 6 and values.shape[1] > 1
        splat, slice_ = (_splat6_kernel, _slice6_kernel) if six else (_splat_kernel, _slice_kernel)
        grid = self._splat_and_blur(
            lambda partial: splat(values, self.corners, self.weights, partial),
            values.shape[1:], passes, _blur_pass)
        if out is None:
            out = np.empty(values.shape, dtype=np.float32)
        slice_(grid, self.corners, self.weights, out)
        return out

    def describe(self) -> GridLayout:
        """This grid as a :class:`~.grid_layout.GridLayout` (what the CUDA twin uploads): each
        simplex corner is a "pair" whose second corner has weight 0 (``frac_last = 0``), so the
        layout's splat and slice are exactly this filter's."""
        return GridLayout(
            n_points=self.n_points, n_dims=self.n_dims, n_cells=self.n_occupied, cell=self.cell,
            taps=self.taps.copy(), corner_pairs=self.corners.copy(),
            pair_weights=self.weights.copy(), frac_last=np.zeros(self.n_points, np.float32),
            passes=tuple(np.ascontiguousarray(nb, dtype=np.int32) for nb in self.neighbours))


def simplex_filter_reference(features: np.ndarray, values: np.ndarray, *, cell: float = 0.9,
                             truncate: float = 2.0, shear: bool = True) -> np.ndarray:
    """:class:`SimplexGridFilter` on a dense grid, float64 NumPy.

    1. shear the features (:func:`kuhn_shear`, unless ``shear=False``; the taps then carry
       :func:`kuhn_peak`);
    2. splat: every point adds ``w_k`` times its values to corner ``v_k`` of its Kuhn simplex;
    3. blur: convolve the grid along each axis with :func:`grid_blur_taps` (zeros outside);
    4. slice: read every point back with the same weights.

    features (N, D), values (N, M) -> (N, M).
    """
    from scipy.ndimage import correlate1d

    f = np.asarray(features, dtype=np.float64)
    if shear:
        f = f @ kuhn_shear(cell, f.shape[1]).astype(np.float64)
    base, frac, sizes = _grid_geometry(f, cell)
    v = np.asarray(values, dtype=np.float64).reshape(f.shape[0], -1)
    corners, weights = simplex_corners_reference(base, frac)
    grid = np.zeros((*sizes, v.shape[1]))                              # (*sizes, M)
    for k in range(corners.shape[1]):
        np.add.at(grid, tuple(corners[:, k].T), weights[:, k, None] * v)
    taps = grid_blur_taps(cell, truncate).astype(np.float64)
    if shear:
        taps = taps * kuhn_peak(cell, f.shape[1]) ** (1 / f.shape[1])
    for axis in range(f.shape[1]):
        grid = correlate1d(grid, taps, axis=axis, mode="constant", cval=0.0)
    out = np.zeros_like(v)
    for k in range(corners.shape[1]):
        out += weights[:, k, None] * grid[tuple(corners[:, k].T)]
    return out
