"""Turning feature axes onto their principal axes: same distances, hence same Gaussian kernel."""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rotate_to_principal_axes", "blur_order"]


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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

    An orthogonal change of basis leaves every distance ``|f_i - f_j|``, hence the Gaussian kernel,
    unchanged. Natural images' colours lie near the grey diagonal; turned onto their principal
    axes they fill a flat box instead of a diagonal one, and the grid's bounding box and the
    cells its blur has to compute shrink (set-up ~2x faster on the post's cat).
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


def blur_order(n_dims: int, rotated=()) -> tuple:
    """The grid's blur order: the axes left as they are, then the turned ones narrowest first.

    The turned axes come widest first (:func:`rotate_to_principal_axes`); blurring the narrow
    ones early keeps the set of cells each pass must compute small. On the benchmark's images
    and bandwidths (chelsea 375×500, astronaut 512×512; sxy 50-80, srgb 3-20) this computes
    4-15% fewer cells than the plain order 0..D-1 and is within 6% of the best of all 120
    orders (the result is the same in any order).
    """
    turned = [int(a) for a in rotated] if len(rotated) > 1 else []
    return tuple([a for a in range(n_dims) if a not in turned] + turned[::-1])
