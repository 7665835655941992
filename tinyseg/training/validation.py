"""Validation while training: the mean IoU of a model on held-out samples, sharded over MPI ranks.

One confusion matrix per stage is accumulated over every image of the split (rank ``r`` takes
images ``r, r+R, …``) and summed over the ranks before the mean IoU is taken, so ``R`` ranks
measure what one process measures. A CRF-as-RNN model
(:class:`tinyseg.models.crf_rnn.NetworkWithCRF`) has two stages: its output (network + CRF,
the CRF at its test-time iteration count) and its network alone.
"""
from __future__ import annotations

__all__ = ["mean_ious"]


def mean_ious(model, samples, world) -> tuple:
    """``(mean IoU of the model's output, mean IoU of its network alone or None)`` on ``samples``.

    ``samples``: a sequence of ``(image uint8 H×W×3, labels int H×W)``, 255 = ignore; ``world``:
    a :class:`tinyseg.distributed.World` (every rank must call this, it sums over them).
    """
    from ..models.crf_rnn import is_crf_rnn, predict_with_crf_rnn
    from ..metrics import ConfusionMatrix, mean_iou
    from ..predict import predict

    n = model.config.n_classes
    both = is_crf_rnn(model)
    output, alone = ConfusionMatrix(n), ConfusionMatrix(n)
    for i in world.share(range(len(samples))):
        image, labels = samples[i]
        if both:
            network, _, with_crf, _ = predict_with_crf_rnn(model, image)
            alone.update(network, labels)
            output.update(with_crf, labels)
        else:
            output.update(predict(model, image)[0], labels)
    miou = float(mean_iou(world.sum_int(output.matrix)))
    return miou, (float(mean_iou(world.sum_int(alone.matrix))) if both else None)
