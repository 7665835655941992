"""pydensecrf's ``utils`` helpers: unaries from probabilities or labels, and pairwise features.

Drop-in names for ``from pydensecrf.utils import ...``: :func:`unary_from_softmax`,
:func:`unary_from_labels`, :func:`create_pairwise_gaussian`, :func:`create_pairwise_bilateral`,
and the older :func:`softmax_to_unary` and :func:`compute_unary` that the post uses. Layouts are
pydensecrf's: classes first (``C × ...``), features ``D × N``.
"""
from __future__ import annotations

from numbers import Number

import numpy as np

__all__ = [
    "unary_from_softmax",
    "unary_from_labels",
    "softmax_to_unary",
    "compute_unary",
    "create_pairwise_gaussian",
    "create_pairwise_bilateral",
]


def unary_from_softmax(sm, scale=None, clip=1e-5) -> np.ndarray:
    """Unary energies ``-log p`` from class probabilities.

    Parameters
    ----------
    sm : (C, ...) probabilities, classes first (e.g. (C, H, W)).
    scale : None or a value in (0, 1]: mix with the uniform distribution,
        ``p = scale * sm + (1 - scale) / C`` (how much the probabilities are trusted).
    clip : None or the smallest probability kept (``p = clip(p, clip, 1)``); None keeps zeros,
        which become ``+inf`` (``DenseCRF.setUnaryEnergy`` then clips them, see there).

    Returns
    -------
    (C, N) float32, C-contiguous, ready for ``setUnaryEnergy``.
    """
    sm = np.asarray(sm, dtype=np.float64)
    if sm.ndim < 1:
        raise ValueError("`sm` must have the classes on its first axis, got a scalar")
    n_labels = sm.shape[0]
    if scale is not None:
        if not 0 < scale <= 1:
            raise ValueError(f"`scale` must be in (0, 1], got {scale}")
        sm = scale * sm + (1.0 - scale) / n_labels
    if clip is not None:
        sm = np.clip(sm, clip, 1.0)
    with np.errstate(divide="ignore"):
        unary = -np.log(sm)
    return np.ascontiguousarray(unary.reshape(n_labels, -1), dtype=np.float32)


def unary_from_labels(labels, n_labels: int, gt_prob: float, zero_unsure: bool = True) -> np.ndarray:
    """Unary energies from a (possibly partial) labelling, trusted with probability ``gt_prob``.

    A labelled pixel gets ``-log gt_prob`` for its label and ``-log((1 - gt_prob)/(C - 1))`` for the
    others. With ``zero_unsure`` (pydensecrf's default) label 0 means "unknown": such pixels get the
    uniform ``-log(1/C)`` and label ``l > 0`` means class ``l - 1``.

    Parameters
    ----------
    labels : integer array of any shape (flattened in C order).
    n_labels : number of classes C (>= 2).
    gt_prob : in (0, 1).

    Returns
    -------
    (C, N) float32.
    """
    if not 0 < gt_prob < 1:
        raise ValueError(f"`gt_prob` must be in (0, 1), got {gt_prob}")
    if n_labels < 2:
        raise ValueError(f"`n_labels` must be at least 2, got {n_labels}")
    labels = np.asarray(labels).ravel()
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be integers, got dtype {labels.dtype}")
    cls = labels - 1 if zero_unsure else labels
    known = cls >= 0 if zero_unsure else np.ones(labels.shape, dtype=bool)
    if np.any(cls[known] >= n_labels) or np.any(cls[known] < 0):
        raise ValueError(f"`labels` has values outside the {n_labels} classes"
                         + (" (0 = unsure, 1..C = classes)" if zero_unsure else ""))
    unary = np.full((n_labels, labels.size), -np.log((1.0 - gt_prob) / (n_labels - 1)),
                    dtype=np.float32)
    idx = np.flatnonzero(known)
    unary[cls[idx], idx] = -np.log(gt_prob)
    if zero_unsure:
        unary[:, ~known] = -np.log(1.0 / n_labels)
    return unary


def softmax_to_unary(sm, GT_PROB=1) -> np.ndarray:  # noqa: N803 (pydensecrf's name)
    """Older name: ``unary_from_softmax(sm, scale=GT_PROB if < 1, clip=None)`` (zeros stay ``inf``)."""
    return unary_from_softmax(sm, scale=None if GT_PROB == 1 else GT_PROB, clip=None)


def compute_unary(labels, M, GT_PROB=0.5) -> np.ndarray:  # noqa: N803 (pydensecrf's names)
    """Older name: ``unary_from_labels(labels, M, GT_PROB)``."""
    return unary_from_labels(labels, M, GT_PROB)


def _positions(shape, sdims) -> np.ndarray:
    """(len(shape), prod(shape)) float32: the index along each axis divided by ``sdims``."""
    shape = tuple(int(s) for s in shape)
    sdims = np.broadcast_to(np.asarray(sdims, dtype=np.float64), (len(shape),))
    if np.any(sdims <= 0):
        raise ValueError(f"`sdims` must be positive, got {tuple(sdims)}")
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    feats = np.stack(grids).reshape(len(shape), -1)                   # (D, N), C order
    return (feats / sdims[:, None].astype(np.float32)).astype(np.float32)


def create_pairwise_gaussian(sdims, shape) -> np.ndarray:
    """Features of a spatial Gaussian: ``index_d / sdims[d]`` for each axis of ``shape``.

    Returns (len(shape), prod(shape)) float32, for ``addPairwiseEnergy``.
    """
    if len(sdims) != len(shape):
        raise ValueError(f"`sdims` has {len(sdims)} entries but `shape` has {len(shape)} axes")
    return _positions(shape, sdims)


def create_pairwise_bilateral(sdims, schan, img, chdim=-1) -> np.ndarray:
    """Features of a bilateral kernel: positions over ``sdims`` and channels over ``schan``.

    Parameters
    ----------
    sdims : one standard deviation per spatial axis of ``img``.
    schan : a number (all channels) or one per channel.
    img : image; with ``chdim = -1`` it has no channel axis (one channel), otherwise ``chdim`` is
        its channel axis (``2`` for H×W×3).

    Returns
    -------
    (n_spatial + n_channels, N) float32.
    """
    img = np.asarray(img)
    if chdim == -1:
        chans = img[np.newaxis].astype(np.float32)                      # (1, *spatial)
    else:
        chans = np.moveaxis(img, chdim, 0).astype(np.float32)           # (C, *spatial)
    spatial = chans.shape[1:]
    if len(sdims) != len(spatial):
        raise ValueError(f"`sdims` has {len(sdims)} entries but `img` has {len(spatial)} spatial axes")
    if isinstance(schan, Number):
        schan = (schan,) * chans.shape[0]
    if len(schan) != chans.shape[0]:
        raise ValueError(f"`schan` has {len(schan)} entries but `img` has {chans.shape[0]} channels")
    scale = np.asarray(schan, dtype=np.float32).reshape(-1, *([1] * len(spatial)))
    if np.any(scale <= 0):
        raise ValueError(f"`schan` must be positive, got {tuple(schan)}")
    colour = (chans / scale).reshape(chans.shape[0], -1)
    return np.ascontiguousarray(np.concatenate([_positions(spatial, sdims), colour]),
                                dtype=np.float32)
