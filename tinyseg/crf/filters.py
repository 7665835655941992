"""Gaussian filters of the dense CRF: ``out = K @ values`` with ``K[i, j] = exp(-|f_i - f_j|^2 / 2)``.

Every filter object has the same small interface, so mean-field inference (and a later GPU
backend) can swap them freely::

    filt.n_points                      # N
    filt.apply(values) -> out          # values (N, M) float32 -> (N, M) float32, out = K @ values

``K`` includes the pixel itself (``K[i, i] = 1``); normalisation (``D = K @ 1``) is not a filter's
business, inference does it. Three filters, none of them the permutohedral lattice:

* :class:`ExactFilter` -- brute force, O(N^2 D M), exact: the oracle for small images.
* :class:`SeparableGaussianFilter` -- the spatial kernel on the pixel grid factorises,
  ``K = K_rows ⊗ K_cols``, so two 1-D convolutions are exact up to the truncation of the 1-D
  Gaussian at ``truncate`` standard deviations (default 4: relative tail mass < 7e-5 per axis).
* :class:`GridFilter` -- a sparse D-dimensional bilateral grid (splat, blur, slice) for any
  features, used for the 5-D bilateral kernel; approximate, with its error measured in the tests
  and the benchmark.

Each fast filter has a readable NumPy twin (``*_reference``) that the tests compare it with.
"""
from __future__ import annotations

import math
import warnings

import numba
import numpy as np
from numba import njit, prange

__all__ = [
    "ExactFilter",
    "SeparableGaussianFilter",
    "GridFilter",
    "exact_filter_reference",
    "separable_gaussian_reference",
    "grid_filter_reference",
    "gaussian_taps",
    "grid_blur_taps",
    "rotate_to_principal_axes",
]


def _check_values(values: np.ndarray, n_points: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != n_points:
        raise ValueError(f"`values` must be (N, M) with N = {n_points}, got shape {values.shape}")
    return np.ascontiguousarray(values, dtype=np.float32)


def _check_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"`features` must be (N, D) with N, D >= 1, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("`features` contains NaN or infinite values")
    return features


# --------------------------------------------------------------------------------------------
# Exact brute force
# --------------------------------------------------------------------------------------------

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


class ExactFilter:
    """Brute-force Gaussian filter, exact (float64 accumulation), O(N^2) time, O(N M) memory.

    Parameters
    ----------
    features : (N, D) array, one feature vector per point (already divided by the bandwidths).
    """

    name = "exact"

    def __init__(self, features: np.ndarray):
        self.features = np.ascontiguousarray(_check_features(features), dtype=np.float64)
        self.n_points = self.features.shape[0]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``K @ values``: values (N, M) -> (N, M) float32."""
        values = _check_values(values, self.n_points)
        out = np.empty(values.shape, dtype=np.float64)
        _exact_filter_kernel(self.features, values, out)
        return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Exact separable spatial Gaussian
# --------------------------------------------------------------------------------------------

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


@njit(parallel=True, cache=True)
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


@njit(parallel=True, cache=True)
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


class SeparableGaussianFilter:
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

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``K @ values``: values (N, M) -> (N, M) float32."""
        values = _check_values(values, self.n_points)
        h, w = self.shape
        m = values.shape[1]
        src = values.reshape(h, w * m)                      # (N, M) -> (H, W*M)
        tmp = np.empty_like(src)
        out = np.empty_like(src)
        _convolve_rows_kernel(src, self.taps_rows, tmp)
        _convolve_cols_kernel(tmp, self.taps_cols, m, out)
        return out.reshape(h * w, m)


# --------------------------------------------------------------------------------------------
# Sparse bilateral grid
# --------------------------------------------------------------------------------------------

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


def _grid_geometry(features: np.ndarray, cell: float):
    """Cell coordinates of every point: lower corner (N, D) int64, fractions (N, D), grid sizes."""
    f = np.asarray(features, dtype=np.float64)
    g = (f - f.min(axis=0)) / cell                       # (N, D), >= 0, in cells
    base = np.floor(g).astype(np.int64)
    frac = g - base
    sizes = base.max(axis=0) + 2                         # corners base and base + 1 always exist
    return base, frac, sizes


def grid_filter_reference(features: np.ndarray, values: np.ndarray, *, cell: float = 0.75,
                          truncate: float = 2.0) -> np.ndarray:
    """The bilateral-grid filter on a dense grid, float64 NumPy (what :class:`GridFilter` prunes).

    1. splat: every point adds ``prod_d (1 - |g_d - corner_d|)`` times its values to the ``2^D``
       corners of its cell (multilinear), ``g = (f - min f) / cell``;
    2. blur: convolve the grid along each axis with :func:`grid_blur_taps` (zeros outside);
    3. slice: read every point back with the same multilinear weights.
    features (N, D), values (N, M) -> (N, M).
    """
    from scipy.ndimage import correlate1d

    base, frac, sizes = _grid_geometry(features, cell)
    n, d = base.shape
    v = np.asarray(values, dtype=np.float64).reshape(n, -1)
    grid = np.zeros((*sizes, v.shape[1]))                # (*sizes, M)
    corners = []
    for corner in range(2 ** d):
        bits = np.array([(corner >> k) & 1 for k in range(d)])
        weight = np.prod(np.where(bits, frac, 1.0 - frac), axis=1)   # (N,)
        index = tuple((base + bits).T)
        corners.append((index, weight))
        np.add.at(grid, index, weight[:, None] * v)
    taps = grid_blur_taps(cell, truncate).astype(np.float64)
    for axis in range(d):
        grid = correlate1d(grid, taps, axis=axis, mode="constant", cval=0.0)
    out = np.zeros_like(v)
    for index, weight in corners:
        out += weight[:, None] * grid[index]
    return out


@njit(cache=True)
def _min_max_kernel(features, lo, hi):
    """lo[d], hi[d] = min and max of features[:, d]."""
    n, d = features.shape
    for k in range(d):
        lo[k] = features[0, k]
        hi[k] = features[0, k]
    for i in range(n):
        for k in range(d):
            v = features[i, k]
            if v < lo[k]:
                lo[k] = v
            if v > hi[k]:
                hi[k] = v


@njit(cache=True)
def _grid_coords_kernel(features, lo, inv_cell, strides, base_index, frac):
    """Cell of every point: flat index of its lower corner and its fractional position in it.

    g = (f - lo) * inv_cell; base_index[n] = sum_d floor(g[n, d]) strides[d]; frac = g - floor(g).
    """
    n, d = features.shape
    for i in range(n):
        b = 0
        for k in range(d):
            g = (np.float64(features[i, k]) - lo[k]) * inv_cell
            fl = math.floor(g)
            b += np.int64(fl) * strides[k]
            frac[i, k] = g - fl
        base_index[i] = b


@njit(parallel=True, cache=True)
def _group_weights_kernel(frac, axes, out):
    """out[i, j] = prod_q (frac[i, axes[q]] if bit (len(axes)-1-q) of j else 1 - frac[i, axes[q]])."""
    g = axes.shape[0]
    for i in prange(frac.shape[0]):
        for j in range(out.shape[1]):
            w = np.float32(1.0)
            for q in range(g):
                f = frac[i, axes[q]]
                w *= f if (j >> (g - 1 - q)) & 1 else np.float32(1.0) - f
            out[i, j] = w


def _group_weights(frac: np.ndarray, axes: list[int]) -> np.ndarray:
    """Multilinear weights over a group of axes: (N, 2^len(axes)) float32.

    Column ``j`` is the corner whose bit ``(len(axes) - 1 - q)`` says "one cell up along
    ``axes[q]``": ``prod_q (frac[:, axes[q]] if that bit else 1 - frac[:, axes[q]])``.
    """
    out = np.empty((frac.shape[0], 2 ** len(axes)), dtype=np.float32)
    _group_weights_kernel(frac, np.asarray(axes, dtype=np.int64), out)
    return out


@njit(parallel=True, cache=True)
def _mark_corners_kernel(base_index, offsets, mask):
    """mask[base_index[n] + offsets[k]] = 1 for every point n and corner k (mask uint8).

    Threads may store the same 1 into the same byte, which is harmless: the result does not
    depend on their order.
    """
    for i in prange(base_index.shape[0]):
        for k in range(offsets.shape[0]):
            mask[base_index[i] + offsets[k]] = 1


@njit(parallel=True, cache=True)
def _dilate_lines_kernel(src, size, radius, dst):
    """Dilate each contiguous line of ``size`` cells of a flat 0/1 uint8 grid by ``radius``.

    One forward and one backward sweep per line, tracking the nearest set cell.
    """
    far = 1 << 40
    for o in prange(src.shape[0] // size):
        base = np.int64(o) * size           # prange indices may be unsigned
        last = -far
        for c in range(size):
            if src[base + c]:
                last = c
            dst[base + c] = 1 if c - last <= radius else 0
        last = far
        for c in range(size - 1, -1, -1):
            if src[base + c]:
                last = c
            if last - c <= radius:
                dst[base + c] = 1


def _dilate(src: np.ndarray, stride: int, size: int, radius: int, dst: np.ndarray) -> None:
    """dst = src (flat bool grid) dilated by ``radius`` cells along the axis of ``stride``.

    The contiguous axis is swept line by line (Numba); the others OR whole shifted blocks of
    rows (NumPy, which vectorises these long runs best).
    """
    if stride == 1:
        _dilate_lines_kernel(src.view(np.uint8), size, radius, dst.view(np.uint8))
        return
    a = src.reshape(-1, size * stride)             # (cells before, axis * cells after)
    b = dst.reshape(-1, size * stride)
    b[...] = a
    for t in range(1, min(radius, size - 1) + 1):
        b[:, t * stride:] |= a[:, :-t * stride]
        b[:, :-t * stride] |= a[:, t * stride:]


def _dilate_reference(src: np.ndarray, stride: int, size: int, radius: int) -> np.ndarray:
    """NumPy twin of :func:`_dilate`: OR of the shifted copies along the axis."""
    a = src.reshape(-1, size, stride)              # (cells before, axis, cells after)
    b = a.copy()
    for t in range(1, min(radius, size - 1) + 1):
        b[:, t:, :] |= a[:, :-t, :]
        b[:, :-t, :] |= a[:, t:, :]
    return b.reshape(-1)


@njit(cache=True)
def _corner_index_kernel(base_index, offsets, cell_map, pair_base, pair_delta):
    """Compact numbers of every point's corners, as a base and deltas from it.

    pair_base[n] = cell_map[base_index[n] + offsets[0]] (the lowest corner, whose compact number
    is the smallest: the numbering keeps the grid's order); pair_delta[n, k] = cell_map[
    base_index[n] + offsets[k]] - pair_base[n], stored in pair_delta's dtype. Returns the largest
    delta, so that the caller can tell whether a uint16 pair_delta held them.
    """
    largest = 0
    for i in range(base_index.shape[0]):
        b = cell_map[base_index[i] + offsets[0]]
        pair_base[i] = b
        for k in range(offsets.shape[0]):
            delta = cell_map[base_index[i] + offsets[k]] - b
            pair_delta[i, k] = delta
            largest = max(largest, delta)
    return largest


@njit(parallel=True, cache=True)
def _neighbour_kernel(cells, coords, stride, size, radius, src_map, empty, neighbours):
    """neighbours[k, t + r] = src_map[cells[k] + t*stride] along the axis; ``empty`` for a cell
    outside the grid or not stored (src_map -1).

    coords[k] = (cells[k] // stride) % size, the cell's coordinate along the axis (computed by
    NumPy, whose division by a scalar is much faster than a per-cell integer division here).
    """
    for k in prange(cells.shape[0]):
        cell = cells[k]
        coord = coords[k]
        for t in range(-radius, radius + 1):
            c = coord + t
            j = -1
            if c >= 0 and c < size:
                j = src_map[cell + t * stride]
            neighbours[k, t + radius] = empty if j < 0 else j


@njit(cache=True)
def _moments_kernel(sub, mean, scatter):
    """mean[a] and scatter[a, b] = sum_n (sub[n, a] - mean[a]) (sub[n, b] - mean[b]); sub (N, k)."""
    n, k = sub.shape
    for a in range(k):
        mean[a] = 0.0
        for b in range(k):
            scatter[a, b] = 0.0
    for i in range(n):
        for a in range(k):
            mean[a] += sub[i, a]
    for a in range(k):
        mean[a] /= n
    for i in range(n):
        for a in range(k):
            da = sub[i, a] - mean[a]
            for b in range(a, k):
                scatter[a, b] += da * (sub[i, b] - mean[b])
    for a in range(k):
        for b in range(a):
            scatter[a, b] = scatter[b, a]


@njit(cache=True)
def _rotate_kernel(features, axes, basis, out):
    """out = features, with out[:, axes] = features[:, axes] @ basis."""
    n, d = features.shape
    k = axes.shape[0]
    for i in range(n):
        for j in range(d):
            out[i, j] = features[i, j]
        for b in range(k):
            s = 0.0
            for a in range(k):
                s += features[i, axes[a]] * basis[a, b]
            out[i, axes[b]] = s


def rotate_to_principal_axes(features: np.ndarray, axes) -> np.ndarray:
    """Turn the given feature axes onto the principal axes of the points, (N, D) -> (N, D) float32.

    An orthogonal change of basis leaves every distance |f_i - f_j|, hence the Gaussian kernel,
    unchanged. Natural images' colours lie near the grey diagonal; turned onto their principal
    axes they fill a flat box instead of a diagonal one, and the grid's bounding box and the
    cells its blur has to compute shrink (set-up ~2x faster on the seed's cat).
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    axes = np.asarray(axes, dtype=np.int64)
    mean = np.empty(len(axes))
    scatter = np.empty((len(axes), len(axes)))
    _moments_kernel(np.ascontiguousarray(features[:, axes]), mean, scatter)
    _, vectors = np.linalg.eigh(scatter)                               # ascending variances
    out = np.empty_like(features)
    _rotate_kernel(features, axes, np.ascontiguousarray(vectors[:, ::-1]), out)   # widest first
    return out


# Splat and slice. A point's 2^D corners come in 2^(D-1) pairs one cell apart along the last axis,
# hence consecutive in the compact numbering: pair_base[i] + pair_delta[i, j] is the lower one, +1
# the upper (the deltas from the point's lowest corner are small: uint16 unless the grid is huge).
# The pair's weight factorises, w_a[i, j_a] * w_b[i, j_b] with j = j_a * n_b + j_b, times
# (1 - f_last, f_last): per point the tables hold 2^(D-1) indices and n_a + n_b + 1 weights
# (for D = 5: 16 + 9) instead of 2^D of each, and memory traffic is what splat and slice cost.
# These kernels filter one float32 channel.

@njit(parallel=True, cache=True)
def _splat_kernel(values, pair_base, pair_delta, w_a, w_b, f_last, partial):
    """partial[p] = multilinear splat of the p-th chunk of points onto the occupied cells.

    values (N,) float32; partial (P, n_occupied + 1): one grid per chunk so that
    parallel chunks never write the same memory; :func:`_reduce_kernel` sums them.
    """
    n_chunks, n_cells = partial.shape
    n = values.shape[0]
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for p in prange(n_chunks):
        grid = partial[p]
        for o in range(n_cells):
            grid[o] = 0.0
        for i in range((n * p) // n_chunks, (n * (p + 1)) // n_chunks):
            v = values[i]
            fl = f_last[i]
            for ja in range(n_a):
                wa = w_a[i, ja] * v
                for jb in range(n_b):
                    w = wa * w_b[i, jb]
                    w1 = w * fl
                    o = pair_base[i] + pair_delta[i, ja * n_b + jb]
                    grid[o] += w - w1
                    grid[o + 1] += w1


@njit(parallel=True, cache=True)
def _reduce_kernel(partial, out):
    """out[o] = sum_p partial[p, o]; partial (P, L), out (L,)."""
    n_chunks = partial.shape[0]
    for o in prange(partial.shape[1]):
        out[o] = partial[0, o]
        for p in range(1, n_chunks):
            out[o] += partial[p, o]


@njit(parallel=True, cache=True)
def _blur_pass_kernel(src, neighbours, taps, dst):
    """dst[k] = sum_t taps[t] src[neighbours[k, t]]; 1-D float32 arrays.

    Empty cells point at src[-1], which is kept at zero, so the loop has no branch; dst[-1] is
    set to zero for the next pass.
    """
    n_cells, n_taps = neighbours.shape
    for k in prange(n_cells):
        s = np.float32(0.0)
        for t in range(n_taps):
            s += taps[t] * src[neighbours[k, t]]
        dst[k] = s
    dst[n_cells] = 0.0


@njit(parallel=True, cache=True)
def _slice_kernel(grid, pair_base, pair_delta, w_a, w_b, f_last, out):
    """out[i] = sum over i's corners of weight * grid[corner] (multilinear read-back); 1-D arrays."""
    n = out.shape[0]
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for i in prange(n):
        fl = f_last[i]
        s = np.float32(0.0)
        for ja in range(n_a):
            wa = w_a[i, ja]
            for jb in range(n_b):
                o = pair_base[i] + pair_delta[i, ja * n_b + jb]
                lo = grid[o]
                s += wa * w_b[i, jb] * (lo + fl * (grid[o + 1] - lo))
        out[i] = s


# Many channels (e.g. 21 labels): the same three steps on channels-last grids (cells + 1, M), so
# each table entry is read once for all M channels and the channel loops vectorise.

@njit(parallel=True, cache=True)
def _splat_rows_kernel(values, pair_base, pair_delta, w_a, w_b, f_last, partial):
    """:func:`_splat_kernel` for values (N, M): partial (P, n_occupied + 1, M)."""
    n_chunks, n_cells, m = partial.shape
    n = values.shape[0]
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for p in prange(n_chunks):
        grid = partial[p]
        grid[:, :] = 0.0
        for i in range((n * p) // n_chunks, (n * (p + 1)) // n_chunks):
            v = values[i]
            fl = f_last[i]
            for ja in range(n_a):
                wa = w_a[i, ja]
                for jb in range(n_b):
                    w = wa * w_b[i, jb]
                    w1 = w * fl
                    w0 = w - w1
                    o = pair_base[i] + pair_delta[i, ja * n_b + jb]
                    lower = grid[o]
                    upper = grid[o + 1]
                    for c in range(m):
                        lower[c] += w0 * v[c]
                        upper[c] += w1 * v[c]


@njit(parallel=True, cache=True)
def _blur_pass_rows_kernel(src, neighbours, taps, dst):
    """:func:`_blur_pass_kernel` for (cells + 1, M) grids."""
    n_cells, n_taps = neighbours.shape
    m = src.shape[1]
    for k in prange(n_cells):
        out = dst[k]
        out[:] = 0.0
        for t in range(n_taps):
            wt = taps[t]
            row = src[neighbours[k, t]]
            for c in range(m):
                out[c] += wt * row[c]
    dst[n_cells, :] = 0.0


@njit(parallel=True, cache=True)
def _slice_rows_kernel(grid, pair_base, pair_delta, w_a, w_b, f_last, out):
    """:func:`_slice_kernel` for a (cells + 1, M) grid: out (N, M)."""
    n, m = out.shape
    n_a = w_a.shape[1]
    n_b = w_b.shape[1]
    for i in prange(n):
        acc = out[i]
        acc[:] = 0.0
        fl = f_last[i]
        for ja in range(n_a):
            wa = w_a[i, ja]
            for jb in range(n_b):
                w = wa * w_b[i, jb]
                w1 = w * fl
                w0 = w - w1
                o = pair_base[i] + pair_delta[i, ja * n_b + jb]
                lower = grid[o]
                upper = grid[o + 1]
                for c in range(m):
                    acc[c] += w0 * lower[c] + w1 * upper[c]


class GridFilter:
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
    order : the axes in blur order (default 0, 1, ..., D-1; any order gives the same result,
        and on natural images this one is within 2% of the best for the work).
    rotate : feature axes to turn onto their principal axes first (e.g. the colour axes 2, 3, 4
        of bilateral features), see :func:`rotate_to_principal_axes`; None keeps the features.
    max_cells : bound on the cells of the bounding box (set-up memory, about ``11 × cells``
        bytes while building). Beyond it the cells are coarsened, with a RuntimeWarning, up to
        1.5 standard deviations; beyond that a ValueError.
    """

    name = "grid"
    _uint16_cells = 1 << 16      # indices (and deltas) below this are stored as uint16
    rows_from = 6                # from this many channels on, the channels-last kernels are used

    def __init__(self, features: np.ndarray, *, cell: float = 0.75, truncate: float = 2.0,
                 order=None, rotate=None, max_cells: int = 1 << 25):
        features = np.ascontiguousarray(_check_features(features), dtype=np.float32)
        if rotate is not None and len(rotate) > 1:
            features = rotate_to_principal_axes(features, rotate)
        if not 0 < cell < math.sqrt(3.0):
            raise ValueError(f"`cell` must be in (0, sqrt(3)), got {cell}")
        self.n_points, self.n_dims = features.shape
        d = self.n_dims
        if d > 12:
            raise ValueError(f"`features` has {d} dimensions; the grid filter supports at most 12")

        lo = np.empty(d, dtype=np.float64)
        hi = np.empty(d, dtype=np.float64)
        _min_max_kernel(features, lo, hi)

        def grid_sizes(c):
            sizes = np.floor((hi - lo) / c).astype(np.int64) + 2
            return sizes, int(np.prod(sizes.astype(np.float64)))

        sizes, total = grid_sizes(cell)
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
                "less accurate", RuntimeWarning, stacklevel=2)
            cell = coarse
        self.cell = float(cell)
        self.truncate = float(truncate)
        self.taps = grid_blur_taps(self.cell, self.truncate)
        radius = (self.taps.shape[0] - 1) // 2
        self.sizes = tuple(int(s) for s in sizes)
        self.n_cells = total
        strides = np.ones(d, dtype=np.int64)
        for k in range(d - 2, -1, -1):
            strides[k] = strides[k + 1] * sizes[k + 1]
        # Corner k of a cell: bit (D-1-a) of k says whether it is one cell up along axis a.
        bits = (np.arange(2 ** d)[:, None] >> np.arange(d - 1, -1, -1)[None, :]) & 1   # (2^D, D)
        offsets = np.ascontiguousarray(bits @ strides, dtype=np.int64)                 # (2^D,)
        base_index = np.empty(self.n_points, dtype=np.int64)
        frac = np.empty((self.n_points, d), dtype=np.float32)
        _grid_coords_kernel(features, lo, 1.0 / self.cell, strides, base_index, frac)
        # Factorised weights: axes 0..g-1 (w_a), g..D-2 (w_b), D-1 (f_last).
        g = (d - 1) // 2
        self.w_a = _group_weights(frac, list(range(g)))
        self.w_b = _group_weights(frac, list(range(g, d - 1)))
        self.f_last = np.ascontiguousarray(frac[:, d - 1])

        occupied = np.zeros(total, dtype=np.bool_)
        _mark_corners_kernel(base_index, offsets, occupied.view(np.uint8))
        self.order = tuple(int(a) for a in (range(d) if order is None else order))
        if sorted(self.order) != list(range(d)):
            raise ValueError(f"`order` must be a permutation of range({d}), got {order}")
        # needed[p]: cells whose value after pass p reaches an occupied cell through passes > p.
        needed = [None] * (d + 1)
        needed[d] = occupied
        for p in range(d, 0, -1):
            axis = self.order[p - 1]
            needed[p - 1] = np.empty_like(occupied)
            _dilate(needed[p], strides[axis], sizes[axis], radius, needed[p - 1])
        # reach: cells that can be non-zero after pass p; pass p computes reach & needed.
        cells_prev = np.flatnonzero(occupied)
        cell_map = np.full(total, -1, dtype=np.int32)
        cell_map[cells_prev] = np.arange(cells_prev.shape[0], dtype=np.int32)
        # The corner pairs' compact numbers, as the point's lowest corner + deltas: uint16 deltas
        # (enough unless the grid is huge) cut the memory traffic of splat and slice.
        pair_offsets = np.ascontiguousarray(offsets[::2])
        self.pair_base = np.empty(self.n_points, dtype=np.int32)
        self.pair_delta = np.empty((self.n_points, 2 ** (d - 1)), dtype=np.uint16)
        largest = _corner_index_kernel(base_index, pair_offsets, cell_map, self.pair_base,
                                       self.pair_delta)
        if largest >= self._uint16_cells:                 # did not fit: redo in int32
            self.pair_delta = np.empty((self.n_points, 2 ** (d - 1)), dtype=np.int32)
            _corner_index_kernel(base_index, pair_offsets, cell_map, self.pair_base,
                                 self.pair_delta)
        self.n_occupied = int(cells_prev.shape[0])
        self.neighbours = []
        reach = occupied
        for p in range(1, d + 1):
            axis = self.order[p - 1]
            new_reach = needed[p - 1]                      # reuse: needed[p - 1] is done with
            _dilate(reach, strides[axis], sizes[axis], radius, new_reach)
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
        self.n_chunks = max(1, min(numba.get_num_threads(), self.n_points // 16384))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``S^T B S @ values``: values (N, M) -> (N, M) float32.

        Up to ``rows_from - 1`` channels are filtered one by one with the one-channel kernels
        (tight scalar loops); from ``rows_from`` channels on, channels-last kernels read the tables
        once for all of them.
        """
        values = _check_values(values, self.n_points)
        n, m = values.shape
        if m >= self.rows_from:
            return self._apply(values, _splat_rows_kernel, _blur_pass_rows_kernel,
                               _slice_rows_kernel)
        out = np.empty((m, n), dtype=np.float32)                          # channel-major
        for c in range(m):
            out[c] = self._apply(np.ascontiguousarray(values[:, c]))
        return np.ascontiguousarray(out.T)                                 # (M, N) -> (N, M)

    def _apply(self, values: np.ndarray, splat=_splat_kernel, blur=_blur_pass_kernel,
               slice_=_slice_kernel) -> np.ndarray:
        """Splat, blur and slice: values (N,) float32, or (N, M) with the rows kernels."""
        tables = (self.pair_base, self.pair_delta, self.w_a, self.w_b, self.f_last)
        tail = values.shape[1:]
        # grids carry one extra cell, kept at zero: the "empty" neighbour of the blur passes
        partial = np.empty((self.n_chunks, self.n_occupied + 1) + tail, dtype=values.dtype)
        splat(values, *tables, partial)
        if self.n_chunks == 1:
            grid = partial[0]
        else:
            grid = np.empty((self.n_occupied + 1,) + tail, dtype=values.dtype)
            _reduce_kernel(partial.reshape(self.n_chunks, -1), grid.reshape(-1))
        for nb in self.neighbours:
            blurred = np.empty((nb.shape[0] + 1,) + tail, dtype=values.dtype)
            blur(grid, nb, self.taps, blurred)
            grid = blurred
        out = np.empty((self.n_points,) + tail, dtype=values.dtype)
        slice_(grid, *tables, out)
        return out
