"""One call to refine a segmentation: ``labels, Q = dense_crf(image, probabilities)``."""
from __future__ import annotations

import numpy as np

from ..backend import get_backend

from .features import as_pair, as_triple, bilateral_features, spatial_features
from .filters import ExactFilter, GridFilter, SeparableGaussianFilter
from .inference import PairwiseTerm

__all__ = ["dense_crf", "unary_from_probabilities", "spatial_filter", "bilateral_filter",
           "METHODS", "PROBABILITY_CLIP"]

#: Filtering methods: "fast" -- exact separable spatial Gaussian + sparse bilateral grid;
#: "exact" -- brute force O(N^2) for both kernels (small images only: the oracle).
METHODS = ("fast", "exact")

#: Probabilities are clipped from below to this before ``-log``: a zero becomes a finite
#: unary of ``-log(1e-8) ≈ 18.4`` instead of ``inf``.
PROBABILITY_CLIP = 1e-8


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    return method


def spatial_filter(shape, sdims, method: str = "fast"):
    """The filter of the spatial Gaussian kernel on an H×W image (pydensecrf's ``sdims``)."""
    sdims = as_pair(sdims, "sdims")
    if _check_method(method) == "exact":
        return ExactFilter(spatial_features(shape, sdims))
    return SeparableGaussianFilter(shape, sdims)


def bilateral_filter(image: np.ndarray, sdims, schan, method: str = "fast", **grid_options):
    """The filter of the bilateral kernel of an H×W×3 image (pydensecrf's ``sdims``, ``schan``)."""
    feats = bilateral_features(image, as_pair(sdims, "sdims"), as_triple(schan, "schan"))
    if _check_method(method) == "exact":
        return ExactFilter(feats)
    grid_options.setdefault("rotate", (2, 3, 4))         # colours onto their principal axes
    return GridFilter(feats, **grid_options)


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"`image` must be an H×W×3 RGB array, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"`image` must be uint8 (0-255), got dtype {image.dtype}; convert it, "
                         "e.g. with skimage.img_as_ubyte")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"`image` is empty: shape {image.shape}")
    return image


def unary_from_probabilities(probabilities: np.ndarray, clip: float = PROBABILITY_CLIP) -> np.ndarray:
    """``U = -log(max(p, clip))`` as float32, any shape; rejects NaN and negative probabilities."""
    p = np.asarray(probabilities)
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"`probabilities` must be floating point, got dtype {p.dtype}")
    if not np.all(np.isfinite(p)):
        raise ValueError("`probabilities` contains NaN or infinite values")
    if p.size and p.min() < 0:
        raise ValueError(f"`probabilities` must be non-negative, its minimum is {p.min()}")
    return (-np.log(np.maximum(p.astype(np.float32), np.float32(clip)))).astype(np.float32)


def dense_crf(image: np.ndarray, probabilities: np.ndarray, *, sdims=(50, 50), schan=(20, 20, 20),
              compat: float = 10.0, gaussian_sdims=(10, 10), gaussian_compat: float = 3.0,
              iterations: int = 5, method: str = "fast",
              clip: float = PROBABILITY_CLIP, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Refine per-pixel class probabilities with a fully connected CRF (mean field).

    The model is the seed's: unary ``-log p``; a spatial Gaussian kernel
    ``exp(-(dr²/gs_r² + dc²/gs_c²)/2)`` with Potts weight ``gaussian_compat``; a bilateral kernel
    ``exp(-(dr²/s_r² + dc²/s_c²)/2 - |ΔRGB / schan|²/2)`` with Potts weight ``compat``; both
    symmetrically normalised. Defaults are the seed's (pydensecrf's names and meaning).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    probabilities : (H, W, C) float, e.g. the network's softmax. Zeros are clipped to ``clip``
        (so ``-log 0`` becomes ``-log clip``, finite); NaN or negative values are rejected.
    sdims, schan, compat : bilateral kernel: spatial and colour standard deviations, Potts weight.
    gaussian_sdims, gaussian_compat : spatial kernel: standard deviations, Potts weight
        (``gaussian_compat=0`` drops the term; likewise ``compat=0``).
    iterations : mean-field iterations.
    method : "fast" (separable Gaussian + bilateral grid) or "exact" (brute force, small images).
    device : "cpu" or "cuda": the backend that runs the mean field (the grid's tables are built on
        the CPU either way).

    Returns
    -------
    labels : (H, W) int32, ``argmax`` of Q.
    Q : (H, W, C) float32, the refined marginals.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((8, 8, 3), np.uint8); image[:, 4:] = 255
    >>> p = np.full((8, 8, 2), 0.5, np.float32); p[:, :3, 0] = 0.9; p[:, :3, 1] = 0.1
    >>> labels, q = dense_crf(image, p, sdims=3, gaussian_sdims=1)
    >>> labels.shape, q.shape
    ((8, 8), (8, 8, 2))
    """
    image = _check_image(image)
    p = np.asarray(probabilities)
    h, w = image.shape[:2]
    if p.ndim != 3 or p.shape[:2] != (h, w):
        raise ValueError(f"`probabilities` has shape {p.shape} but `image` is {h}×{w}: "
                         "they must share H and W (probabilities are H×W×C)")
    if p.shape[2] < 1:
        raise ValueError("`probabilities` has no classes (C = 0)")
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"`iterations` must be a non-negative integer, got {iterations}")
    unary = unary_from_probabilities(p, clip).reshape(h * w, -1)           # (H, W, C) -> (N, C)
    terms = []
    if gaussian_compat != 0:
        terms.append(PairwiseTerm(spatial_filter((h, w), gaussian_sdims, method), gaussian_compat))
    if compat != 0:
        terms.append(PairwiseTerm(bilateral_filter(image, sdims, schan, method), compat))
    q = get_backend(device).crf_mean_field(unary, terms, int(iterations))   # (N, C)
    q = q.reshape(h, w, -1)
    return np.argmax(q, axis=2).astype(np.int32), q
