"""Images, masks and datasets: loading, class sets and mask values, preprocessing, label PNGs.

Conventions (shared by the whole of tinyseg)
--------------------------------------------
* An **image** is a ``uint8`` array of shape ``(H, W, 3)`` in RGB order.
* An **annotation** (mask) is a 2-D array of pixel values as the file holds them (palette
  indices for VOC's PNGs, never their colours).
* **Labels** are the training/evaluation targets derived from an annotation: ``int32`` ``(H, W)``
  with values in ``0 .. C-1`` and ``255`` = ignore; pixels labelled 255 count neither in the loss
  nor in the metrics. A :class:`LabelMap` turns masks into labels and rejects a mask whose values
  do not fit the classes, naming the file.
* The network input is ``float32`` ``(H, W, 3)`` (batched ``(N, H, W, 3)``, NHWC): the RGB image
  minus the VGG RGB means ``(123.68, 116.779, 103.939)``. There is no scaling to ``[0, 1]``.

Modules: :mod:`~tinyseg.data.io` (files, preprocessing, palettes), :mod:`~tinyseg.data.labels`
(class sets, mask values), :mod:`~tinyseg.data.datasets` (VOC and folders layouts, the bundled
cat), :mod:`~tinyseg.data.synthetic` (generated datasets with exact ground truth).
"""
from .datasets import (
    FolderDataset,
    SegmentationDataset,
    VOCDataset,
    chelsea,
    dataset_layout,
    open_dataset,
)
from .io import (
    IGNORE_LABEL,
    VGG_MEAN_RGB,
    check_annotation,
    deprocess,
    image_size,
    load_annotation,
    load_image,
    preprocess,
    save_label_png,
    voc_colormap,
)
from .labels import (
    BINARY_CLASSES,
    MASK_HINT,
    VOC_CLASSES,
    LabelError,
    LabelMap,
    binary_labels,
    read_class_names,
    voc_labels,
)

__all__ = [
    "VGG_MEAN_RGB", "VOC_CLASSES", "BINARY_CLASSES", "IGNORE_LABEL", "load_image", "load_annotation",
    "image_size", "check_annotation", "binary_labels", "voc_labels", "preprocess", "deprocess",
    "voc_colormap", "save_label_png", "LabelMap", "LabelError", "MASK_HINT", "read_class_names",
    "SegmentationDataset", "VOCDataset", "FolderDataset", "open_dataset", "dataset_layout", "chelsea",
]
