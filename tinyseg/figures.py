"""The post's figures as PNG files (matplotlib, Agg backend: no display needed).

Every figure that shows labels carries a legend naming each colour's class. Two colourings:

* the post's binary view (its ``bwr`` colour map on ``labels != 1``): object blue, background
  red, ignored pixels (255) white;
* overlays for any number of classes (:func:`label_overlay`): the image with each class's PASCAL
  VOC palette colour (the colours of the label PNGs) blended in; background left as it is.
"""
from __future__ import annotations

import numpy as np

IGNORE = 255
# The post's view: imshow(labels != 1, cmap="bwr", vmin=-0.4, vmax=1.5); 0.55 (ignored) is white.
_BWR = dict(vmin=-0.4, vmax=1.5, cmap="bwr")
_VIEW_OBJECT, _VIEW_BACKGROUND, _VIEW_IGNORED = 0.0, 1.0, 0.55
OVERLAY_ALPHA = 0.55                    # weight of the class colour in an overlay pixel


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi=80):
    """Write and close ``fig`` (one place, so tests can look at the figure instead)."""
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)


def _binary_view(labels):
    # As the post: it shows ``labels != 1`` with the 'bwr' colour map, so the object is blue and the
    # background red; ignored pixels (255) are drawn white.
    return np.where(labels == IGNORE, _VIEW_IGNORED,
                    np.where(labels == 1, _VIEW_OBJECT, _VIEW_BACKGROUND)).astype(np.float32)


def _binary_legend(class_names, with_ignored=True):
    """Legend patches of the binary view, coloured by the same colour map and limits."""
    import matplotlib.colors
    import matplotlib.patches
    import matplotlib.pyplot as plt

    cmap, norm = plt.get_cmap(_BWR["cmap"]), matplotlib.colors.Normalize(_BWR["vmin"], _BWR["vmax"])
    entries = [(class_names[1], _VIEW_OBJECT), (class_names[0], _VIEW_BACKGROUND)]
    if with_ignored:
        entries.append(("ignored (255)", _VIEW_IGNORED))
    return [matplotlib.patches.Patch(facecolor=cmap(norm(v)), edgecolor="0.3", label=name)
            for name, v in entries]


def _image_colorbar(fig, ax, mappable):
    """A colour bar beside ``ax`` that takes no room from it (the panels stay aligned)."""
    cax = ax.inset_axes([1.03, 0.0, 0.05, 1.0])
    fig.colorbar(mappable, cax=cax)
    return cax


def label_overlay(image, labels, alpha: float = OVERLAY_ALPHA):
    """The image with each labelled pixel tinted by its class's VOC palette colour.

    ``out = (1 − alpha)·image + alpha·palette[label]`` where ``label != 0``; background pixels
    (label 0) keep the image's colour. Ignored pixels (255) get the palette's cream.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    labels : ndarray of int, shape (H, W), values 0..255

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    from .data import voc_colormap

    image, labels = np.asarray(image), np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or labels.shape != image.shape[:2]:
        raise ValueError(f"The parameter `labels` must be H×W for an H×W×3 `image`; got "
                         f"{labels.shape} and {image.shape}")
    colours = voc_colormap(256).astype(np.float32)[labels.astype(np.int64) & 255]   # (H, W, 3)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    out = np.where((labels != 0)[..., None], blended, image.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _overlay_legend(labels, class_names):
    import matplotlib.patches

    from .data import voc_colormap

    palette = voc_colormap(256) / 255.0
    present = [int(v) for v in np.unique(labels) if v != 0]
    handles = [matplotlib.patches.Patch(facecolor=(1, 1, 1, 0), edgecolor="0.3",
                                        label=f"{_name(class_names, 0)} (image as is)")]
    for v in present:
        name = "ignored (255)" if v == IGNORE else _name(class_names, v)
        handles.append(matplotlib.patches.Patch(facecolor=palette[v], edgecolor="0.3", label=name))
    return handles


def _name(class_names, index):
    return class_names[index] if class_names is not None and index < len(class_names) else f"class {index}"


def overlay_figure(path, image, labels, class_names=None, title: str | None = None):
    """Write the image with the labels' colours blended in (:func:`label_overlay`) and a legend."""
    plt = _plt()
    h, w = np.asarray(labels).shape
    fig, ax = plt.subplots(figsize=(max(4.0, w / 80), max(3.0, h / 80) + 0.8), layout="constrained")
    ax.imshow(label_overlay(image, labels))
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.legend(handles=_overlay_legend(labels, class_names), loc="outside lower center", ncol=4,
               fontsize="small", frameon=False)
    _save(fig, path)


def prediction_figure(path, labels, probabilities, class_index: int = 1, title_prefix: str = "Final",
                      class_names=("background", "object")):
    """The post's "Final Argmax" next to "Final Probability of the Class" with a colour bar."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(12, 4.6))
    ax1.imshow(_binary_view(labels), **_BWR)
    ax1.set_title(f"{title_prefix} Argmax")
    graph = ax2.imshow(probabilities[..., class_index], vmin=0, vmax=1)
    ax2.set_title(f"{title_prefix} Probability of the Class ({class_names[class_index]})")
    _image_colorbar(fig, ax2, graph)
    fig.legend(handles=_binary_legend(class_names, bool(np.any(labels == IGNORE))),
               loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    _save(fig, path)


def crf_figure(path, crf_labels, ground_truth, class_names=("background", "object")):
    """The post's "Segmentation with CRF post-processing" next to the ground truth."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(12, 4.6))
    ax1.imshow(_binary_view(crf_labels), **_BWR)
    ax1.set_title("Segmentation with CRF post-processing")
    ax2.imshow(_binary_view(ground_truth), **_BWR)
    ax2.set_title("Ground-Truth Annotation")
    fig.legend(handles=_binary_legend(class_names), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    _save(fig, path)


def panel_figure(path, image, fcn_labels, probabilities, crf_labels, ground_truth, iou_fcn=None,
                 iou_crf=None, class_names=("background", "object")):
    """One row: image, FCN argmax, class probability, CRF result, ground truth; one legend."""
    plt = _plt()
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.7))
    views = [(image, "Image", {}),
             (_binary_view(fcn_labels), "FCN-32s argmax" + (f" (IoU {iou_fcn:.3f})" if iou_fcn is not None else ""),
              _BWR),
             (probabilities[..., 1], f"P({class_names[1]})", dict(vmin=0, vmax=1)),
             (_binary_view(crf_labels), "after dense CRF" + (f" (IoU {iou_crf:.3f})" if iou_crf is not None else ""),
              _BWR),
             (_binary_view(ground_truth), "ground truth", _BWR)]
    for ax, (img, title, kw) in zip(axes, views):
        im = ax.imshow(img, **kw)
        ax.set_title(title)
        ax.axis("off")
        if title.startswith("P("):
            _image_colorbar(fig, ax, im)
    fig.legend(handles=_binary_legend(class_names), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1), w_pad=3.0)     # w_pad: room for the colour bar's ticks
    _save(fig, path)


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
    _save(fig, path)


def show(path):
    """Inside Jupyter (and the docs build) display a figure written to ``path``; as a script, nothing."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(filename=path))
