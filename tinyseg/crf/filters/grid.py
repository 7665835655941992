"""The sparse bilateral grid: an approximate Gaussian filter for any features (not permutohedral).

``K ≈ S^T B S``: splat ``S`` (multilinear, onto the ``2^D`` corners of each point's cell), blur
``B`` (a separable Gaussian over the cells, its variance corrected for what splat and slice
add), slice ``S^T`` (the same multilinear weights, read back). :class:`GridFilter` computes only
the cells that matter; :func:`grid_filter_reference` is its dense NumPy twin;
:class:`GridLayout` is the public description of a built grid (what the CUDA twin uploads).
"""
from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from ._base import Filter, check_features, check_values
from .grid_kernels import (_blur_pass_kernel, _reduce_kernel, blur_pass_rows,
                           _slice_kernel, _slice_rows_kernel, _splat_kernel, _splat_rows_kernel,
                           grid_filter_reference, invert_neighbours, layout_filter_reference)
from .grid_rows import _slice_rows_kernel as _slice_image_rows
from .grid_rows import _splat_rows_kernel as _splat_image_rows
from .grid_rows import _plain_from_rows, check_image_features, row_tables
from .grid_layout import GridLayout, grid_blur_taps
from .grid_setup import (_corner_index_kernel, _grid_coords_kernel, _mark_corners_kernel,
                         _min_max_kernel, _neighbour_kernel, dilate, group_weights)
from .rotation import blur_order, rotate_to_principal_axes

__all__ = ["GridFilter", "GridLayout", "grid_filter_reference", "layout_filter_reference",
           "grid_blur_taps"]


#: The coarser cells (standard deviations) that ``max_occupied`` tries, in order.
_COARSER_CELLS = (1.0, 1.25, 1.5, 1.7)
#: Up to this many occupied cells ``max_occupied`` never coarsens: small images keep 0.75 sigma.
_FEW_CELLS = 50_000


class GridFilter(Filter):
    """Approximate Gaussian filter on a sparse D-dimensional bilateral grid (not permutohedral).

    ``K ≈ S^T B S``: ``S`` splats each point onto the ``2^D`` corners of its grid cell with
    multilinear weights (cells ``cell`` standard deviations wide), ``B`` blurs the grid with a
    separable 1-D Gaussian whose variance is corrected for what splat and slice add
    (:func:`grid_blur_taps`), ``S^T`` slices back.

    The grid spans only the bounding box of the features, and only the cells that matter are
    stored: blur pass ``p`` (along one axis) computes a cell only if it can be non-zero (reached
    from an occupied cell by the passes so far) *and* is needed (reaches an occupied cell through
    the passes still to come). Both sets depend on the features alone, so they are found here,
    once, with each pass's cells numbered compactly and its neighbour table built; the result
    equals the dense grid's (:func:`grid_filter_reference`) up to float32 rounding.

    Parameters
    ----------
    features : (N, D) array, already divided by the bandwidths.
    cell : cell size in standard deviations (< sqrt(3)). 0.75 is a measured choice: on the
        benchmark's small images 0.65 halves the labels that differ from the exact CRF, 0.85
        adds a third, 1.0 triples them (pydensecrf's lattice: about 5x more than 0.75).
    truncate : blur taps reach ``truncate`` blur standard deviations; 2 (radius 3 cells at
        cell 0.75) computes ~30% fewer cells than 3 for ~10% more differing labels.
    order : the axes in blur order (any order gives the same result; default
        :func:`~.rotation.blur_order`: 0, 1, ..., D-1 with the turned axes last, narrowest first).
    rotate : feature axes to turn onto their principal axes first (e.g. the colour axes 2, 3, 4
        of bilateral features), see :func:`rotate_to_principal_axes`; None keeps the features.
    max_cells : bound on the cells of the bounding box (set-up memory, about ``11 × cells``
        bytes while building). Beyond it the cells are coarsened, with a RuntimeWarning, up to
        1.5 standard deviations; beyond that a ValueError.
    image_shape : None, or (H, W) when the points are an image's pixels in raster order and the
        first two axes its rows and columns over their bandwidths (5-D bilateral features):
        splat and slice then factorise by image rows (:mod:`.grid_rows`), half the work.
    max_occupied : None, or a bound on the occupied cells per point: small colour bandwidths put
        each point's corners into cells of their own, and the grid's work would then grow far
        beyond the points'. Above it the cells are coarsened (1, 1.25, 1.5, 1.7 standard
        deviations) until it holds: less accurate, measured in the benchmark. Grids of at most
        50 000 occupied cells are never coarsened (small images: cheap anyway).
    """

    name = "grid"
    symmetric = True             # S^T B S with B symmetric (see apply_transpose)
    _uint16_cells = 1 << 16      # indices (and deltas) below this are stored as uint16
    rows_from = 6                # from this many channels on, the channels-last kernels are used
    image_rows_from = 2          # ... and the image-row factorised ones (image_shape given)

    def __init__(self, features: np.ndarray, *, cell: float = 0.75, truncate: float = 2.0,
                 order=None, rotate=None, max_cells: int = 1 << 25,
                 max_occupied: float | None = None, image_shape=None):
        """The build, step by step: the cells (:meth:`_choose_cells`), the points' weights and
        corner numbers (:meth:`_point_tables`), the image-row tables (:meth:`_row_tables`), the
        pruned blur passes (:meth:`_blur_passes`)."""
        features = np.ascontiguousarray(check_features(features), dtype=np.float32)
        if rotate is not None and len(rotate) > 1:
            features = rotate_to_principal_axes(features, rotate)
        if not 0 < cell < math.sqrt(3.0):
            raise ValueError(f"`cell` must be in (0, sqrt(3)), got {cell}")
        self.n_points, self.n_dims = features.shape
        d = self.n_dims
        if d > 12:
            raise ValueError(f"`features` has {d} dimensions; the grid filter supports at most 12")
        if order is None:
            order = blur_order(d, rotate if rotate is not None else ())
        self.order = tuple(int(a) for a in order)
        if sorted(self.order) != list(range(d)):
            raise ValueError(f"`order` must be a permutation of range({d}), got {order}")
        geometry = self._choose_cells(features, cell, max_cells, max_occupied)
        self.cell = float(geometry["cell"])
        self.truncate = float(truncate)
        self.taps = grid_blur_taps(self.cell, self.truncate)
        self.sizes = tuple(int(s) for s in geometry["sizes"])
        self.n_cells = geometry["total"]
        cell_map = self._point_tables(geometry)
        self._rows = None
        if image_shape is not None and d == 5:
            self._row_tables(features, image_shape, geometry["frac"])
        self._blur_passes(geometry, cell_map)
        self.n_chunks = max(1, min(numba.get_num_threads(), self.n_points // 16384))
        self._transposed = None          # the transposed passes' tables, built when first needed

    # -- build steps ------------------------------------------------------------------------------
    def _choose_cells(self, features, cell, max_cells, max_occupied) -> dict:
        """Step 1: the cell width and the points' cells (see the class's ``max_cells`` and
        ``max_occupied``): a dict with cell, sizes, total, strides, offsets, base_index, frac,
        occupied (:meth:`_cells`)."""
        d = self.n_dims
        lo = np.empty(d, dtype=np.float64)
        hi = np.empty(d, dtype=np.float64)
        _min_max_kernel(features, lo, hi)

        def grid_sizes(c):
            sizes = np.floor((hi - lo) / c).astype(np.int64) + 2
            return sizes, int(np.prod(sizes.astype(np.float64)))

        sizes, total = grid_sizes(cell)
        if total > max_cells and max_occupied is not None:
            # the occupancy bound allows coarser cells anyway: take the first whose box fits
            for c in _COARSER_CELLS:
                if c > cell and grid_sizes(c)[1] <= max_cells:
                    cell = c
                    sizes, total = grid_sizes(c)
                    break
        if total > max_cells:
            # Small bandwidths (e.g. schan=3) make the bounding box huge: coarsen the cells until
            # it fits, up to 1.5 standard deviations (accuracy drops; the error is then larger
            # than the measured one at 0.75).
            coarse = cell
            while total > max_cells and coarse < 1.5:
                coarse = min(1.5, coarse * 1.05)
                sizes, total = grid_sizes(coarse)
            if total > max_cells:
                raise ValueError(
                    f"the bilateral grid would span {total} cells (sizes "
                    f"{tuple(int(s) for s in sizes)}) even with cells of {coarse:.2f} standard "
                    f"deviations, more than max_cells={max_cells}: the features vary too much for "
                    "their bandwidths; use larger sdims/schan or the exact filter")
            warnings.warn(
                f"bilateral grid: cells of {cell} standard deviations would need "
                f"{grid_sizes(cell)[1]} cells (max_cells={max_cells}); using {coarse:.2f}, which is "
                "less accurate", RuntimeWarning, stacklevel=3)
            cell = coarse
        while True:
            strides, offsets, base_index, frac, occupied = self._cells(features, lo, sizes, cell)
            n_occupied = int(np.count_nonzero(occupied))
            coarser = [c for c in _COARSER_CELLS if c > cell + 1e-9]
            small = n_occupied <= max(max_occupied or 0.0, 0.0) * self.n_points or \
                n_occupied <= _FEW_CELLS                   # a small grid is cheap whatever N
            if max_occupied is None or small or not coarser:
                break
            for c in coarser:               # too many cells for the points: coarser ones, if they fit
                sizes, total = grid_sizes(c)
                if total <= max_cells:
                    cell = c
                    break
            else:
                break
        return dict(cell=cell, sizes=sizes, total=total, strides=strides, offsets=offsets,
                    base_index=base_index, frac=frac, occupied=occupied)

    def _point_tables(self, geometry) -> np.ndarray:
        """Step 2: per point the factorised weights (``w_a``, ``w_b``, ``f_last``: axes
        0..g-1, g..D-2 and D-1) and its corner pairs' compact numbers (``pair_base`` +
        ``pair_delta``); returns ``cell_map`` (cell -> compact number of the occupied cells)."""
        d, frac, occupied = self.n_dims, geometry["frac"], geometry["occupied"]
        g = (d - 1) // 2
        self.w_a = group_weights(frac, list(range(g)))
        self.w_b = group_weights(frac, list(range(g, d - 1)))
        self.f_last = np.ascontiguousarray(frac[:, d - 1])
        cells = np.flatnonzero(occupied)
        cell_map = np.full(geometry["total"], -1, dtype=np.int32)
        cell_map[cells] = np.arange(cells.shape[0], dtype=np.int32)
        self.n_occupied = int(cells.shape[0])
        # The corner pairs' compact numbers, as the point's lowest corner + deltas: uint16 deltas
        # (enough unless the grid is huge) cut the memory traffic of splat and slice.
        pair_offsets = np.ascontiguousarray(geometry["offsets"][::2])
        self.pair_base = np.empty(self.n_points, dtype=np.int32)
        self.pair_delta = np.empty((self.n_points, 2 ** (d - 1)), dtype=np.uint16)
        largest = _corner_index_kernel(geometry["base_index"], pair_offsets, cell_map,
                                       self.pair_base, self.pair_delta)
        if largest >= self._uint16_cells:                 # did not fit: redo in int32
            self.pair_delta = np.empty((self.n_points, 2 ** (d - 1)), dtype=np.int32)
            _corner_index_kernel(geometry["base_index"], pair_offsets, cell_map, self.pair_base,
                                 self.pair_delta)
        return cell_map

    def _row_tables(self, features, image_shape, frac) -> None:
        """Step 3 (image pixels only): the image-row tables of :mod:`.grid_rows`. The plain
        tables follow from them: dropped (memory), rebuilt by :meth:`_plain_tables` on demand."""
        check_image_features(features, image_shape)
        h, w = int(image_shape[0]), int(image_shape[1])
        tables = row_tables((h, w), self.pair_base, self.pair_delta, self.n_occupied)
        self._rows = (w, np.ascontiguousarray(frac[::w, 0]), *tables,
                      np.ascontiguousarray(frac[:, 1]), self.w_b, self.f_last)
        del self.pair_base, self.pair_delta, self.w_a

    def _blur_passes(self, geometry, cell_map) -> None:
        """Step 4: the cells each blur pass computes and its gather table (``neighbours``).

        ``needed[p]``: cells whose value after pass p reaches an occupied cell through the passes
        after p; ``reach``: cells that can be non-zero after pass p. Pass p computes
        ``reach & needed``, numbered compactly in sorted order.
        """
        d, occupied = self.n_dims, geometry["occupied"]
        strides, sizes = geometry["strides"], geometry["sizes"]
        radius = (self.taps.shape[0] - 1) // 2
        needed = [None] * (d + 1)
        needed[d] = occupied
        for p in range(d, 0, -1):
            axis = self.order[p - 1]
            needed[p - 1] = np.empty_like(occupied)
            dilate(needed[p], strides[axis], sizes[axis], radius, needed[p - 1])
        cells_prev = np.flatnonzero(occupied)
        self.neighbours = []
        reach = occupied
        for p in range(1, d + 1):
            axis = self.order[p - 1]
            new_reach = needed[p - 1]                      # reuse: needed[p - 1] is done with
            dilate(reach, strides[axis], sizes[axis], radius, new_reach)
            reach = new_reach
            cells = np.flatnonzero(reach & needed[p])
            # the previous pass's cells, plus one zero at the end for the empty neighbours
            n_src = cells_prev.shape[0]
            nb = np.empty((cells.shape[0], 2 * radius + 1),
                          dtype=np.uint16 if n_src <= self._uint16_cells - 1 else np.int32)
            coords = (cells // strides[axis]) % sizes[axis]
            _neighbour_kernel(cells, coords, strides[axis], sizes[axis], radius, cell_map, n_src, nb)
            self.neighbours.append(nb)
            cell_map[cells_prev] = -1
            cell_map[cells] = np.arange(cells.shape[0], dtype=np.int32)
            cells_prev = cells
        self.active_counts = [self.n_occupied] + [nb.shape[0] for nb in self.neighbours]
        # The last pass computes exactly the occupied cells, in the same (sorted) order.
        assert self.active_counts[-1] == self.n_occupied

    def _plain_tables(self) -> None:
        """``pair_base``, ``pair_delta`` and ``w_a`` rebuilt from the row tables (:meth:`_row_tables`
        dropped them): the one-channel kernels and :meth:`describe` need them."""
        n = self.n_points
        self.pair_base = np.empty(n, dtype=np.int32)
        self.pair_delta = np.empty((n, 16), dtype=np.int64)
        self.w_a = np.empty((n, 4), dtype=np.float32)
        _plain_from_rows(*self._rows[:7], self.pair_base, self.pair_delta, self.w_a)
        small = self.pair_delta.max(initial=0) < self._uint16_cells
        self.pair_delta = self.pair_delta.astype(np.uint16 if small else np.int32)

    def __getattr__(self, name):
        """Only ``pair_base``, ``pair_delta`` and ``w_a`` may be missing (dropped by
        :meth:`_row_tables`): :meth:`_plain_tables` rebuilds them on first use."""
        if name in ("pair_base", "pair_delta", "w_a") and self.__dict__.get("_rows") is not None:
            self._plain_tables()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _cells(self, features, lo, sizes, cell):
        """Strides, corner offsets, each point's lower corner and fractions, occupied corners."""
        d = self.n_dims
        total = int(np.prod(sizes.astype(np.float64)))
        strides = np.ones(d, dtype=np.int64)
        for k in range(d - 2, -1, -1):
            strides[k] = strides[k + 1] * sizes[k + 1]
        # Corner k of a cell: bit (D-1-a) of k says whether it is one cell up along axis a.
        bits = (np.arange(2 ** d)[:, None] >> np.arange(d - 1, -1, -1)[None, :]) & 1   # (2^D, D)
        offsets = np.ascontiguousarray(bits @ strides, dtype=np.int64)                 # (2^D,)
        base_index = np.empty(self.n_points, dtype=np.int64)
        frac = np.empty((self.n_points, d), dtype=np.float32)
        _grid_coords_kernel(features, lo, 1.0 / cell, strides, base_index, frac)
        occupied = np.zeros(total, dtype=np.bool_)
        _mark_corners_kernel(base_index, offsets, occupied.view(np.uint8))
        return strides, offsets, base_index, frac, occupied

    def apply(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``S^T B S @ values``: values (N, M) -> (N, M) float32 (into ``out`` if given).

        Up to ``rows_from - 1`` channels are filtered one by one with the one-channel kernels
        (tight scalar loops); from ``rows_from`` channels on, channels-last kernels read the tables
        once for all of them.
        """
        values = check_values(values, self.n_points)
        if self._rows is not None and values.shape[1] >= self.image_rows_from:
            return self._apply_image_rows(values, self.neighbours, out)
        result = self._filter(values, self.neighbours)
        if out is None:
            return result
        out[...] = result
        return out

    def apply_transpose(self, values: np.ndarray) -> np.ndarray:
        """``(S^T B S)^T @ values = S^T B^T S @ values``, built literally as the adjoint chain.

        Slice transposed (= splat), the blur passes transposed in reverse order (each pass's
        gather table inverted, :func:`~.grid_kernels.invert_neighbours`), splat transposed
        (= slice). ``B`` is symmetric on the dense grid and the pruned passes compute the dense
        result exactly, so this equals :meth:`apply` up to float32 rounding; it is the operation
        that backpropagation through the filter uses, tested as an exact adjoint.
        """
        if self._transposed is None:
            sizes = self.active_counts
            self._transposed = [invert_neighbours(nb.astype(np.int32), sizes[p])
                                for p, nb in reversed(list(enumerate(self.neighbours)))]
        return self._filter(check_values(values, self.n_points), self._transposed)

    def describe(self) -> GridLayout:
        """The public description of this grid (:class:`GridLayout`), e.g. for the CUDA twin."""
        # (N, n_a, n_b) -> (N, n_a * n_b): pair j = j_a * n_b + j_b
        weights = (self.w_a[:, :, None] * self.w_b[:, None, :]).reshape(self.n_points, -1)
        pairs = self.pair_base.astype(np.int64)[:, None] + self.pair_delta.astype(np.int64)
        return GridLayout(
            n_points=self.n_points, n_dims=self.n_dims, n_cells=self.n_occupied, cell=self.cell,
            taps=self.taps.copy(), corner_pairs=np.ascontiguousarray(pairs, dtype=np.int32),
            pair_weights=np.ascontiguousarray(weights, dtype=np.float32),
            frac_last=self.f_last.copy(),
            passes=tuple(np.ascontiguousarray(nb, dtype=np.int32) for nb in self.neighbours))

    def _filter(self, values: np.ndarray, passes) -> np.ndarray:
        """Splat, the given blur passes, slice; values (N, M) float32."""
        n, m = values.shape
        if self._rows is not None and m >= self.image_rows_from:   # for one channel the plain
            return self._apply_image_rows(values, passes)             # kernels are faster
        if m >= self.rows_from:
            return self._apply(values, passes, _splat_rows_kernel, blur_pass_rows,
                               _slice_rows_kernel)
        out = np.empty((m, n), dtype=np.float32)                          # channel-major
        for c in range(m):
            out[c] = self._apply(np.ascontiguousarray(values[:, c]), passes)
        return np.ascontiguousarray(out.T)                                 # (M, N) -> (N, M)

    def _apply(self, values: np.ndarray, passes, splat=_splat_kernel, blur=_blur_pass_kernel,
               slice_=_slice_kernel) -> np.ndarray:
        """Splat, blur and slice: values (N,) float32, or (N, M) with the rows kernels."""
        tables = (self.pair_base, self.pair_delta, self.w_a, self.w_b, self.f_last)
        grid = self._splat_and_blur(lambda partial: splat(values, *tables, partial),
                                    values.shape[1:], passes, blur)
        out = np.empty((self.n_points,) + values.shape[1:], dtype=np.float32)
        slice_(grid, *tables, out)
        return out

    def _apply_image_rows(self, values: np.ndarray, passes, out=None) -> np.ndarray:
        """:meth:`_apply` with the image-row factorised splat and slice; values (N, M); ``out``
        may be ``values`` (read by the splat only)."""
        grid = self._splat_and_blur(lambda partial: _splat_image_rows(values, *self._rows, partial),
                                    values.shape[1:], passes, blur_pass_rows)
        if out is None:
            out = np.empty(values.shape, dtype=np.float32)
        _slice_image_rows(grid, *self._rows, out)
        return out

    def _splat_and_blur(self, splat, tail, passes, blur) -> np.ndarray:
        """The blurred grid (cells + 1, *tail) float32: ``splat(partial)`` fills one grid per
        chunk of points (P, cells + 1, *tail), which are summed, then the blur passes run
        (``blur(src, neighbours, taps, dst)``). The chunks' grids are freed before the blur."""
        partial = np.empty((self.n_chunks, self.n_occupied + 1) + tuple(tail), dtype=np.float32)
        splat(partial)
        if self.n_chunks == 1:
            grid = partial[0]
        else:
            grid = np.empty(partial.shape[1:], dtype=np.float32)
            _reduce_kernel(partial.reshape(self.n_chunks, -1), grid.reshape(-1))
        del partial                                       # freed before the blur (peak memory)
        for nb in passes:
            blurred = np.empty((nb.shape[0] + 1,) + tuple(tail), dtype=np.float32)
            blur(grid, nb, self.taps, blurred)
            grid = blurred
        return grid
