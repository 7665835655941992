"""The seed's figures as PNG files (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _binary_view(labels):
    # As the seed: it shows ``labels != 1`` with the 'bwr' colour map, so the object is blue and the
    # background red; ignored pixels (255) are drawn white-ish.
    return np.where(labels == 255, 0.55, labels != 1).astype(np.float32)


def prediction_figure(path, labels, probabilities, class_index: int = 1, title_prefix: str = "Final"):
    """The seed's "Final Argmax" next to "Final Probability of the Class" with a colour bar."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(12, 4))
    ax1.imshow(_binary_view(labels), vmax=1.5, vmin=-0.4, cmap="bwr")
    ax1.set_title(f"{title_prefix} Argmax")
    graph = ax2.imshow(probabilities[..., class_index], vmin=0, vmax=1)
    ax2.set_title(f"{title_prefix} Probability of the Class")
    fig.colorbar(graph, ax=ax2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def crf_figure(path, crf_labels, ground_truth):
    """The seed's "Segmentation with CRF post-processing" next to the ground truth."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(12, 4))
    ax1.imshow(_binary_view(crf_labels), vmax=1.5, vmin=-0.4, cmap="bwr")
    ax1.set_title("Segmentation with CRF post-processing")
    ax2.imshow(_binary_view(ground_truth), vmax=1.5, vmin=-0.4, cmap="bwr")
    ax2.set_title("Ground-Truth Annotation (white: ignored)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def panel_figure(path, image, fcn_labels, probabilities, crf_labels, ground_truth, iou_fcn=None,
                 iou_crf=None):
    """One row: image, FCN argmax, class probability, CRF result, ground truth."""
    plt = _plt()
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    views = [(image, "Image", {}),
             (_binary_view(fcn_labels), "FCN-32s argmax" + (f" (IoU {iou_fcn:.3f})" if iou_fcn is not None else ""),
              dict(vmax=1.5, vmin=-0.4, cmap="bwr")),
             (probabilities[..., 1], "P(object)", dict(vmin=0, vmax=1)),
             (_binary_view(crf_labels), "after dense CRF" + (f" (IoU {iou_crf:.3f})" if iou_crf is not None else ""),
              dict(vmax=1.5, vmin=-0.4, cmap="bwr")),
             (_binary_view(ground_truth), "ground truth", dict(vmax=1.5, vmin=-0.4, cmap="bwr"))]
    for ax, (img, title, kw) in zip(axes, views):
        im = ax.imshow(img, **kw)
        ax.set_title(title)
        ax.axis("off")
        if title == "P(object)":
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def loss_figure(path, losses):
    """Training loss per iteration."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy (sum over pixels)")
    ax.set_yscale("log")
    ax.set_title("Training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
