"""Segmentation metrics from a confusion matrix accumulated over a whole dataset.

The confusion matrix ``M`` (``n_classes x n_classes``, int64) counts pixels: ``M[i, j]`` is the
number of pixels whose ground truth is class ``i`` and whose prediction is class ``j``. Pixels
labelled ``ignore_index`` (255, PASCAL VOC's void) are left out, exactly as in the loss.

From ``M`` (``TP_c = M[c, c]``, ``FN_c = sum_j M[c, j] - TP_c``, ``FP_c = sum_i M[i, c] - TP_c``):

* pixel accuracy ``= sum_c TP_c / sum_ij M[i, j]``
* IoU of class ``c`` ``= TP_c / (TP_c + FP_c + FN_c)``; a class absent from both the ground truth
  and the predictions has ``0 / 0``: its IoU is **NaN** and it is left out of the mean
* mean IoU ``= mean of the non-NaN per-class IoUs``

Metrics of a dataset are computed from the matrix summed over all its images (as the FCN paper
and the VOC devkit do), **not** averaged per image: call :meth:`ConfusionMatrix.update` once per
image, then read the metrics.

**Boundary accuracy** (DeepLab's "trimap", Chen et al. 2015, Fig. 5): the same metrics counted
only over pixels within ±w pixels of a ground-truth label boundary (:func:`trimap_band`), for
several w (:class:`TrimapMeter`). Coarse FCN-32s maps lose most there; skips, atrous convolution
and the CRF are meant to win it back.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "ConfusionMatrix",
    "confusion_matrix",
    "confusion_matrix_naive",
    "pixel_accuracy",
    "per_class_iou",
    "mean_iou",
    "TRIMAP_WIDTHS",
    "trimap_band",
    "trimap_band_naive",
    "TrimapMeter",
]

#: Band half-widths (pixels) that ``tinyseg evaluate`` reports by default.
TRIMAP_WIDTHS = (1, 2, 4, 8, 12, 16, 20)


def _check_pair(pred, labels, n_classes, ignore_index):
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    if pred.shape != labels.shape:
        raise ValueError(
            f"The parameters `pred` and `labels` must have the same shape; got {pred.shape} and "
            f"{labels.shape}"
        )
    for name, a in (("pred", pred), ("labels", labels)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise TypeError(f"The parameter `{name}` must hold integer class indices; got {a.dtype}")
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ValueError(f"The parameter `n_classes` must be >= 1; got {n_classes}")
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
    lab = labels[valid].astype(np.int64)
    prd = pred[valid].astype(np.int64)
    bad = np.unique(lab[(lab < 0) | (lab >= n_classes)])
    if bad.size:
        raise ValueError(
            f"The parameter `labels` holds value(s) {bad.tolist()} outside 0..{n_classes - 1} "
            f"(and not the ignore label {ignore_index})"
        )
    bad = np.unique(prd[(prd < 0) | (prd >= n_classes)])
    if bad.size:
        raise ValueError(
            f"The parameter `pred` holds value(s) {bad.tolist()} outside 0..{n_classes - 1}"
        )
    return prd, lab, n_classes


def confusion_matrix(pred, labels, n_classes, *, ignore_index=255):
    """Confusion matrix of one prediction (fast path, ``np.bincount``).

    Parameters
    ----------
    pred : ndarray of int, any shape
        Predicted class indices in ``0 .. n_classes-1``.
    labels : ndarray of int, same shape as ``pred``
        Ground-truth class indices in ``0 .. n_classes-1``, or ``ignore_index``.
    n_classes : int
        Number of classes ``C``.
    ignore_index : int or None, optional
        Label value left out of the counts (255, as in the loss); ``None`` keeps every pixel.

    Returns
    -------
    matrix : ndarray of int64, shape (C, C)
        ``matrix[i, j]`` = number of pixels with ground truth ``i`` predicted as ``j``.

    Raises
    ------
    ValueError
        If the shapes differ or a value is out of range (the message names the argument and
        the values).
    """
    prd, lab, n = _check_pair(pred, labels, n_classes, ignore_index)
    # Each (label, pred) pair becomes one flat index label*C + pred of the (C, C) matrix.
    counts = np.bincount(lab * n + prd, minlength=n * n)  # (C*C,)
    return counts.reshape(n, n).astype(np.int64)  # (C*C,) -> (C, C)


def confusion_matrix_naive(pred, labels, n_classes, *, ignore_index=255):
    """Reference twin of :func:`confusion_matrix`: one Python loop over the pixels.

    Same parameters, result and errors; kept for study and as the oracle of the tests.
    """
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    _check_pair(pred, labels, n_classes, ignore_index)  # same validation and errors
    n = int(n_classes)
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(labels.ravel().tolist(), pred.ravel().tolist()):
        if ignore_index is not None and t == ignore_index:
            continue
        matrix[t, p] += 1
    return matrix


def _check_matrix(matrix):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"The parameter `matrix` must be a square (C, C) confusion matrix; got shape "
            f"{matrix.shape}"
        )
    return matrix.astype(np.float64)


def pixel_accuracy(matrix):
    """Fraction of counted pixels whose prediction equals the ground truth.

    ``sum_c M[c, c] / sum_ij M[i, j]``; NaN if no pixel was counted.
    """
    m = _check_matrix(matrix)
    total = m.sum()
    return float(np.trace(m) / total) if total > 0 else float("nan")


def per_class_iou(matrix):
    """Intersection over union of each class, ``TP / (TP + FP + FN)``.

    Returns
    -------
    iou : ndarray of float64, shape (C,)
        NaN for a class absent from both the ground truth and the predictions (``0 / 0``).
    """
    m = _check_matrix(matrix)
    tp = np.diag(m)
    union = m.sum(axis=1) + m.sum(axis=0) - tp  # TP + FN + TP + FP - TP
    iou = np.full(m.shape[0], np.nan)
    present = union > 0
    iou[present] = tp[present] / union[present]
    return iou


def mean_iou(matrix):
    """Mean of the per-class IoUs over the classes present (NaN entries left out).

    NaN if no class is present at all.
    """
    iou = per_class_iou(matrix)
    present = ~np.isnan(iou)
    return float(iou[present].mean()) if present.any() else float("nan")


class ConfusionMatrix:
    """Accumulate a confusion matrix over a dataset and read pixel accuracy and IoUs from it.

    Parameters
    ----------
    n_classes : int
        Number of classes ``C`` (2 for the post's binary task, 21 for PASCAL VOC).
    ignore_index : int or None, optional
        Label left out of the counts (255 = void, as in the loss).

    Attributes
    ----------
    matrix : ndarray of int64, shape (C, C)
        ``matrix[i, j]``: pixels of ground truth ``i`` predicted as ``j``, summed over all updates.

    Examples
    --------
    >>> cm = ConfusionMatrix(2)
    >>> cm.update(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 255]]))
    >>> cm.matrix
    array([[1, 1],
           [0, 1]])
    >>> cm.pixel_accuracy(), cm.per_class_iou().tolist(), cm.mean_iou()
    (0.6666666666666666, [0.5, 0.5], 0.5)
    """

    def __init__(self, n_classes, *, ignore_index=255):
        n_classes = int(n_classes)
        if n_classes < 1:
            raise ValueError(f"The parameter `n_classes` must be >= 1; got {n_classes}")
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, pred, labels):
        """Add the pixels of one prediction (any shape; ``pred`` and ``labels`` alike)."""
        self.matrix += confusion_matrix(
            pred, labels, self.n_classes, ignore_index=self.ignore_index
        )

    def reset(self):
        """Set all counts to zero."""
        self.matrix[...] = 0

    def pixel_accuracy(self):
        """See :func:`pixel_accuracy`."""
        return pixel_accuracy(self.matrix)

    def per_class_iou(self):
        """See :func:`per_class_iou`."""
        return per_class_iou(self.matrix)

    def mean_iou(self):
        """See :func:`mean_iou`."""
        return mean_iou(self.matrix)

    def summary(self, class_names=None):
        """The metrics as a JSON-able dict (NaN IoUs become ``None``).

        Parameters
        ----------
        class_names : sequence of str, optional
            Names for the per-class IoUs; class indices as strings by default.

        Returns
        -------
        dict
            ``{"pixel_accuracy": float, "mean_iou": float, "per_class_iou": {name: float|None},
            "n_pixels": int}``
        """
        names = list(class_names) if class_names is not None else [
            str(c) for c in range(self.n_classes)
        ]
        if len(names) != self.n_classes:
            raise ValueError(
                f"The parameter `class_names` must have {self.n_classes} names; got {len(names)}"
            )

        def clean(v):
            return None if np.isnan(v) else float(v)

        return {
            "pixel_accuracy": clean(self.pixel_accuracy()),
            "mean_iou": clean(self.mean_iou()),
            "per_class_iou": {n: clean(v) for n, v in zip(names, self.per_class_iou())},
            "n_pixels": int(self.matrix.sum()),
        }

    def __repr__(self):
        return f"ConfusionMatrix(n_classes={self.n_classes}, pixels={int(self.matrix.sum())})"


# ----------------------------------------------------------------------------- trimap
def _check_band_args(labels, w):
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"The parameter `labels` must be a 2-dimensional (H, W) label map; got shape "
                         f"{labels.shape}")
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
        raise ValueError(f"The parameter `w` must be a positive integer (pixels); got {w!r}")
    return labels, int(w)


def trimap_band(labels, w):
    """Pixels within ``±w`` of a ground-truth label boundary: DeepLab's "trimap" band.

    A pixel is in the band when its ``(2w+1) × (2w+1)`` window (cut at the image border) holds
    more than one label value. Across a straight boundary between two regions that is ``w``
    pixels on each side, a band ``2w`` pixels wide (chessboard distance: a pixel within ``w``
    rows *and* ``w`` columns of the other label). The void label (255) counts as a value, so on
    PASCAL VOC — whose void outlines run along object boundaries — the band follows the objects
    as in DeepLab; void pixels themselves are left out of the counts by :class:`TrimapMeter`.

    Parameters
    ----------
    labels : (H, W) int array, the ground truth
    w : int >= 1, the half-width in pixels

    Returns
    -------
    band : (H, W) bool

    Examples
    --------
    >>> trimap_band(np.array([[0, 0, 0, 1, 1, 1]]), 1).astype(int)
    array([[0, 0, 1, 1, 0, 0]])
    """
    from scipy import ndimage

    labels, w = _check_band_args(labels, w)
    size = 2 * w + 1
    # max == min over the window <=> one label value in it ("nearest" = windows cut at the border)
    high = ndimage.maximum_filter(labels, size=size, mode="nearest")
    low = ndimage.minimum_filter(labels, size=size, mode="nearest")
    return high != low


def trimap_band_naive(labels, w):
    """Reference twin of :func:`trimap_band`: look at every pixel's window in a Python loop."""
    labels, w = _check_band_args(labels, w)
    H, W = labels.shape
    band = np.zeros((H, W), bool)
    for y in range(H):
        for x in range(W):
            window = labels[max(0, y - w):y + w + 1, max(0, x - w):x + w + 1]
            band[y, x] = np.unique(window).size > 1
    return band


class TrimapMeter:
    """Confusion matrices restricted to the trimap band, one per half-width, over a dataset.

    Parameters
    ----------
    n_classes : int
    widths : sequence of int, the band half-widths in pixels (default :data:`TRIMAP_WIDTHS`)
    ignore_index : int, label left out of the counts (255)

    Examples
    --------
    >>> meter = TrimapMeter(2, widths=(1,))
    >>> meter.update(np.array([[0, 0, 0, 0, 1, 1]]), np.array([[0, 0, 0, 1, 1, 1]]))
    >>> meter.summary()["1"]["pixel_accuracy"]     # band = columns 2, 3: one right of two
    0.5
    """

    def __init__(self, n_classes, widths=TRIMAP_WIDTHS, *, ignore_index=255):
        self.widths = tuple(int(w) for w in widths)
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"The parameter `widths` must be positive integers; got {widths!r}")
        self.ignore_index = ignore_index
        self.matrices = {w: ConfusionMatrix(n_classes, ignore_index=ignore_index) for w in self.widths}

    def update(self, pred, labels, where=None):
        """Add one image: for each width, the pixels of ``labels``' band (void left out).

        ``where`` (bool, the shape of ``labels``) counts only those pixels — e.g. the held-out
        ones of a partly labelled training image — while the band still follows every boundary
        of ``labels``, so that the edge of ``where`` makes no band of its own.
        """
        labels = np.asarray(labels)
        if where is not None and np.shape(where) != labels.shape:
            raise ValueError(f"`where` has shape {np.shape(where)} but `labels` has {labels.shape}")
        for w, cm in self.matrices.items():
            band = trimap_band(labels, w)
            if where is not None:
                band &= np.asarray(where, bool)
            cm.update(pred, np.where(band, labels, self.ignore_index))

    def mean_iou(self, w):
        return self.matrices[w].mean_iou()

    def pixel_accuracy(self, w):
        return self.matrices[w].pixel_accuracy()

    def summary(self):
        """``{"4": {"mean_iou": …, "pixel_accuracy": …, "n_pixels": …}, …}`` (NaN -> None)."""
        out = {}
        for w, cm in self.matrices.items():
            s = cm.summary()
            out[str(w)] = {"mean_iou": s["mean_iou"], "pixel_accuracy": s["pixel_accuracy"],
                           "n_pixels": s["n_pixels"]}
        return out

    def __repr__(self):
        return f"TrimapMeter(widths={self.widths})"
