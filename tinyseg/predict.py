"""Prediction and evaluation: argmax labels, softmax probabilities, CRF refinement, IoU.

Metrics come from one confusion matrix accumulated over the whole dataset (not averaged per
image), with label 255 left out exactly as the loss leaves it out.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .crf.refine import POST_CRF
from .data import preprocess
from .metrics import ConfusionMatrix, TrimapMeter
from .models import predict_probabilities


def predict(model, image: np.ndarray):
    """``(labels (H, W) int32, probabilities (H, W, C) float32)`` for one uint8 RGB image."""
    probs = predict_probabilities(model, preprocess(image)[None])[0]
    return probs.argmax(axis=-1).astype(np.int32), probs


def refine(image: np.ndarray, probabilities: np.ndarray, **crf_params):
    """Dense-CRF refinement of ``probabilities`` (the post's parameters unless overridden) → labels, Q.

    ``crf_params`` are :func:`tinyseg.crf.dense_crf`'s keywords (e.g. ``device="cuda"``).
    """
    from .crf import dense_crf

    params = {**POST_CRF, **crf_params}
    return dense_crf(image, probabilities, **params)


def evaluate(model, samples: Iterable, n_classes: int, crf: bool = True, progress: bool = False,
             trimap=None, crf_workers: int | None = None, **crf_params) -> dict:
    """Confusion matrices before (``"fcn"``) and after (``"crf"``) the CRF over all ``samples``.

    ``samples`` yields ``(image uint8 H×W×3, labels int H×W)`` pairs, labels 255 = ignore. With
    ``trimap`` (band half-widths in pixels, e.g. :data:`tinyseg.metrics.TRIMAP_WIDTHS`) the result
    also holds ``"trimap": {"fcn": TrimapMeter, "crf": TrimapMeter}``: the same metrics counted
    only within ±w pixels of the ground truth's boundaries. A model trained with CRF-as-RNN
    (:class:`tinyseg.models.crf_rnn.NetworkWithCRF`) adds ``"crf_rnn"``, its own output; ``"fcn"``
    and ``"crf"`` are then its network alone and the post-hoc CRF on that.

    The CRF runs in ``crf_workers`` single-threaded processes (default: the usable cores; see
    :func:`tinyseg.crf.batch.refine_stream`), a few images at a time, with labels identical to
    refining one image at a time.
    """
    from .crf.batch import refine_stream
    from .models.crf_rnn import is_crf_rnn, predict_with_crf_rnn

    result = {"fcn": ConfusionMatrix(n_classes)}
    if crf:
        result["crf"] = ConfusionMatrix(n_classes)
    if is_crf_rnn(model):
        result["crf_rnn"] = ConfusionMatrix(n_classes)
    bands = None
    if trimap:
        bands = {stage: TrimapMeter(n_classes, trimap) for stage in result}
        result["trimap"] = bands
    items = samples
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(samples, desc="evaluate", unit="image")

    def network():                              # (image, labels, probabilities), image by image
        for image, labels in items:
            if is_crf_rnn(model):
                pred, probs, rnn_labels, _ = predict_with_crf_rnn(model, image)
                result["crf_rnn"].update(rnn_labels, labels)
                if bands:
                    bands["crf_rnn"].update(rnn_labels, labels)
            else:
                pred, probs = predict(model, image)
            result["fcn"].update(pred, labels)
            if bands:
                bands["fcn"].update(pred, labels)
            yield image, labels, probs

    if not crf:
        for _ in network():
            pass
        return result
    params = {**POST_CRF, **crf_params}
    for (_, labels, _), crf_labels in refine_stream(network(), params, workers=crf_workers,
                                                     item=lambda r: (r[0], r[2])):
        result["crf"].update(crf_labels, labels)
        if bands:
            bands["crf"].update(crf_labels, labels)
    return result


from ._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)
