"""One call to refine a segmentation: ``labels, Q = dense_crf(image, probabilities)``."""
from __future__ import annotations

import numpy as np


from .features import as_pair, as_triple, bilateral_features, spatial_features
from .filters import ExactFilter, auto_filter, spatial_gaussian
from .inference import PairwiseTerm
from .kernels import mean_field as mean_field_on
from .mean_field_kernels import probability_check

__all__ = ["dense_crf", "unary_from_probabilities", "spatial_filter", "bilateral_filter",
           "METHODS", "PROBABILITY_CLIP", "POST_CRF"]

#: The post's CRF, in pydensecrf's parameter names: a spatial Gaussian (``gaussian_sdims`` 10
#: pixels, weight ``gaussian_compat`` 3) and a bilateral kernel (``sdims`` 50 pixels, ``schan`` 20
#: colour levels, weight ``compat`` 10), 5 mean-field iterations. Every default in tinyseg that
#: means "the post's CRF" reads this dict.
POST_CRF = dict(sdims=(50.0, 50.0), schan=(20.0, 20.0, 20.0), compat=10.0,
                gaussian_sdims=(10.0, 10.0), gaussian_compat=3.0, iterations=5)

#: Filtering methods: "fast" -- the spatial Gaussian separable (or recursive, for large sdims),
#: the bilateral kernel on the sparse grid (or, for small bandwidths, the cluster filter; see
#: :mod:`tinyseg.crf.filters.auto`); "exact" -- brute force O(N^2) for both kernels (small images
#: only: the oracle; larger ones need ``force=True``).
METHODS = ("fast", "exact")

#: The ``clip`` that the pydensecrf-style helpers offer (``unary_from_softmax(clip=1e-5)``
#: softens zeros the same way); ``dense_crf`` itself keeps zeros as hard constraints unless
#: given a ``clip``.
PROBABILITY_CLIP = 1e-8


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    return method


def spatial_filter(shape, sdims, method: str = "fast", *, force: bool = False, progress=None,
                   channels: int | None = None):
    """The filter of the spatial Gaussian kernel on an H×W image (pydensecrf's ``sdims``);
    ``channels``: how many it will filter at a time, if known (see :func:`spatial_gaussian`)."""
    sdims = as_pair(sdims, "sdims")
    if _check_method(method) == "exact":
        return ExactFilter(spatial_features(shape, sdims), force=force, progress=progress)
    return spatial_gaussian(shape, sdims, channels)


def bilateral_filter(image: np.ndarray, sdims, schan, method: str = "fast", *, force: bool = False,
                     progress=None, **options):
    """The filter of the bilateral kernel of an H×W×3 image (pydensecrf's ``sdims``, ``schan``)."""
    feats = bilateral_features(image, as_pair(sdims, "sdims"), as_triple(schan, "schan"))
    if _check_method(method) == "exact":
        return ExactFilter(feats, force=force, progress=progress)
    options.setdefault("rotate", (2, 3, 4))              # colours onto their principal axes
    options.setdefault("image_shape", np.asarray(image).shape[:2])
    return auto_filter(feats, **options)


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


def unary_from_probabilities(probabilities: np.ndarray, clip: float | None = None) -> np.ndarray:
    """``U = -log p`` as float32, any shape; rejects NaN and negative probabilities.

    A probability of exactly 0 gives ``U = +inf``: a hard constraint, that label stays out of
    that pixel (as in pydensecrf). ``clip`` (e.g. :data:`PROBABILITY_CLIP`) raises probabilities
    below it to it first, which softens zeros into large finite energies.
    """
    p = np.asarray(probabilities)
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"`probabilities` must be floating point, got dtype {p.dtype}")
    bad, smallest, empty = probability_check(p)                   # one pass
    if bad:
        raise ValueError("`probabilities` contains NaN or infinite values")
    if p.size and smallest < 0:
        raise ValueError(f"`probabilities` must be non-negative, its minimum is {smallest}")
    if clip is not None:
        if not 0 < clip < 1:
            raise ValueError(f"`clip` must be in (0, 1), got {clip}")
        p = np.maximum(p, clip)
        empty = False                                             # every value is >= clip now
    if p.ndim and p.size and empty:
        raise ValueError("`probabilities` is 0 for every class at some pixel: each pixel needs a "
                         "class with a non-zero probability")
    unary = np.array(p, dtype=np.float32)                         # a copy, made -log p in place
    with np.errstate(divide="ignore"):
        np.log(unary, out=unary)
    return np.negative(unary, out=unary)


def dense_crf(image: np.ndarray, probabilities: np.ndarray, *, sdims=POST_CRF["sdims"],
              schan=POST_CRF["schan"], compat: float = POST_CRF["compat"],
              gaussian_sdims=POST_CRF["gaussian_sdims"],
              gaussian_compat: float = POST_CRF["gaussian_compat"],
              iterations: int = POST_CRF["iterations"], method: str = "fast", clip: float | None = None,
              device: str = "cpu", force: bool = False,
              progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Refine per-pixel class probabilities with a fully connected CRF (mean field).

    The model is the post's: unary ``-log p``; a spatial Gaussian kernel
    ``exp(-(dr²/gs_r² + dc²/gs_c²)/2)`` with Potts weight ``gaussian_compat``; a bilateral kernel
    ``exp(-(dr²/s_r² + dc²/s_c²)/2 - |ΔRGB / schan|²/2)`` with Potts weight ``compat``; both
    symmetrically normalised. Defaults are the post's (pydensecrf's names and meaning).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    probabilities : (H, W, C) float, e.g. the network's softmax. A probability of exactly 0 is a
        hard constraint (that class never appears at that pixel), unless ``clip`` is given, which
        raises smaller probabilities to it. NaN or negative values are rejected.
    sdims, schan, compat : bilateral kernel: spatial and colour standard deviations, Potts weight.
    gaussian_sdims, gaussian_compat : spatial kernel: standard deviations, Potts weight
        (``gaussian_compat=0`` drops the term; likewise ``compat=0``).
    iterations : mean-field iterations.
    method : "fast" (see :data:`METHODS`) or "exact" (brute force: small images, or ``force``).
    clip : None, or the smallest probability kept (e.g. :data:`PROBABILITY_CLIP`).
    device : "cpu" or "cuda": the backend that runs the mean field (the filters' tables are built
        on the CPU either way).
    force : let ``method="exact"`` take an image of more than
        :data:`tinyseg.crf.filters.MAX_EXACT_POINTS` pixels (N^2 work: hours on a photo).
    progress : None, or a callable ``progress(stage, done, total)``: ``("iteration", i, n)``
        after each mean-field iteration (and ``("filter", rows, N)`` within exact filterings).

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
    rows = None if progress is None else (lambda done, total: progress("filter", done, total))
    terms = []
    if gaussian_compat != 0:
        terms.append(PairwiseTerm(spatial_filter((h, w), gaussian_sdims, method, force=force,
                                                 progress=rows, channels=p.shape[2] - 1),
                                  gaussian_compat))
    if compat != 0:
        terms.append(PairwiseTerm(bilateral_filter(image, sdims, schan, method, force=force,
                                                   progress=rows), compat))
    n_it = int(iterations)
    step = None if progress is None else (lambda it: progress("iteration", it + 1, n_it))
    q = mean_field_on(device, unary, terms, n_it, callback=step)   # (N, C)
    q = q.reshape(h, w, -1)
    return np.argmax(q, axis=2).astype(np.int32), q
