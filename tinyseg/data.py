"""Images, annotations and datasets: loading, label mappings, preprocessing, label PNGs.

Conventions (shared by the whole of tinyseg)
--------------------------------------------
* An **image** is a ``uint8`` array of shape ``(H, W, 3)`` in RGB order.
* An **annotation** is what an annotation file holds: a 2-D ``uint8`` (or ``int32`` for 16-bit
  files) array of class *indices*. PASCAL VOC stores them as palette PNGs; the palette only
  decides how they look, so tinyseg reads the indices and never the colours.
* **Labels** are the training/evaluation targets derived from an annotation: ``int32`` ``(H, W)``
  with values in ``0 .. C-1`` and ``255`` = ignore (PASCAL VOC's "void" border band); pixels
  labelled 255 count neither in the loss nor in the metrics.
* The network input is ``float32`` ``(H, W, 3)`` (batched ``(N, H, W, 3)``, NHWC): the RGB image
  minus the VGG RGB means ``(123.68, 116.779, 103.939)`` (the seed's ``_mean_image_subtraction``
  with ``[_R_MEAN, _G_MEAN, _B_MEAN]``). There is no scaling to ``[0, 1]``.

Two label sets are provided:

* the seed's **binary** mapping (:func:`binary_labels`): annotation value 1 is the object,
  class index **1**; every other value is background, class index **0** (see :data:`BINARY_CLASSES`).
  Note that the seed's own one-hot put the object in *column 0*; tinyseg uses index 1 = object so
  that a label map *is* the object mask.
* PASCAL VOC's 21 classes (:func:`voc_labels`, :data:`VOC_CLASSES`).
"""
from __future__ import annotations

import os
import warnings
from importlib import resources

import numpy as np

__all__ = [
    "VGG_MEAN_RGB",
    "VOC_CLASSES",
    "BINARY_CLASSES",
    "IGNORE_LABEL",
    "load_image",
    "load_annotation",
    "binary_labels",
    "voc_labels",
    "preprocess",
    "deprocess",
    "voc_colormap",
    "save_label_png",
    "VOCDataset",
    "chelsea",
]

#: Per-channel means subtracted from RGB images (R, G, B), as in VGG/TF-Slim's preprocessing.
VGG_MEAN_RGB = np.array([123.68, 116.779, 103.939], dtype=np.float32)

#: The label value that is ignored by the loss and the metrics (PASCAL VOC's "void").
IGNORE_LABEL = 255

#: PASCAL VOC 2012 class names; the position is the class index (0 = background).
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

#: Class names of the seed's binary task: index 0 = background, index 1 = object.
BINARY_CLASSES = ("background", "object")

# Whether the "alpha channel dropped" warning has been given in this process (it is said once).
_warned_alpha = False


def _open_pil(path, what):
    """Open ``path`` with Pillow, turning every failure into an error that names the file."""
    from PIL import Image

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path!r}")
    try:
        img = Image.open(path)
        img.load()
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, ...)
        raise ValueError(f"cannot read {what} file {path!r}: {exc}") from exc
    return img


def load_image(path):
    """Load an image file (JPEG, PNG, ...) as an RGB ``uint8`` array.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image. Grayscale files are repeated on 3 channels; palette images are expanded to
        their RGB colours; an alpha channel (RGBA, LA) is dropped, with one warning per process.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable image, or has a pixel format other than 8-bit
        grayscale/RGB/RGBA/palette/CMYK/YCbCr (e.g. 16-bit or floating point); the message names
        the file.
    """
    global _warned_alpha
    img = _open_pil(path, "image")
    mode = img.mode
    path = os.fspath(path)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        if not _warned_alpha:
            warnings.warn(
                f"image {path!r} has an alpha channel (mode {mode!r}); it is dropped "
                "(further images with alpha are not reported)",
                UserWarning,
                stacklevel=2,
            )
            _warned_alpha = True
    if mode == "1":
        arr = np.asarray(img.convert("L"))
    elif mode in ("L", "LA"):
        arr = np.asarray(img.convert("L"))
    elif mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "RGBX"):
        arr = np.asarray(img.convert("RGB"))
    else:
        raise ValueError(
            f"image {path!r} has unsupported pixel format {mode!r}; tinyseg reads 8-bit "
            "grayscale, RGB, RGBA or palette images (convert it to 8-bit RGB first)"
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)  # (H, W) -> (H, W, 3)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover
        raise ValueError(f"image {path!r} decoded to an unexpected array {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def load_annotation(path):
    """Load an annotation file (grayscale or palette PNG) as a 2-D array of class indices.

    Palette ('P' mode) PNGs, as PASCAL VOC ships them, store a class index per pixel and a
    palette that only decides the colours; this function returns the **indices**. Converting
    such a file to RGB or grayscale would return colours or luminances instead, a classic
    silent bug.

    Parameters
    ----------
    path : str or os.PathLike
        The annotation file (PNG; any lossless format Pillow reads in these modes works).

    Returns
    -------
    annotation : ndarray, shape (H, W)
        ``uint8`` for palette, 8-bit grayscale and 1-bit files (1-bit gives 0/1);
        ``int32`` for 16/32-bit grayscale files.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not readable, or is an RGB/RGBA colour image (colours are not class
        indices) or another unsupported format; the message names the file.
    """
    img = _open_pil(path, "annotation")
    path = os.fspath(path)
    mode = img.mode
    if mode in ("P", "L"):
        arr = np.asarray(img)  # palette indices / gray levels, (H, W) uint8
    elif mode == "1":
        arr = np.asarray(img).astype(np.uint8)
    elif mode in ("I", "I;16", "I;16B", "I;16L"):
        arr = np.asarray(img).astype(np.int32)
    elif mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LA", "PA"):
        raise ValueError(
            f"annotation {path!r} is a colour image (mode {mode!r}), not class indices; "
            "annotations must be grayscale ('L') or palette ('P') PNGs whose pixel values are "
            "class indices (a VOC colour rendering must be mapped back to indices first)"
        )
    else:
        raise ValueError(f"annotation {path!r} has unsupported pixel format {mode!r}")
    if arr.ndim != 2:  # pragma: no cover
        raise ValueError(f"annotation {path!r} decoded to shape {arr.shape}, expected (H, W)")
    return np.ascontiguousarray(arr)


def _check_annotation(annotation, name="annotation"):
    annotation = np.asarray(annotation)
    if annotation.ndim != 2:
        raise ValueError(
            f"The parameter `{name}` must be a 2-dimensional (H, W) array; got shape "
            f"{annotation.shape}"
        )
    if not np.issubdtype(annotation.dtype, np.integer):
        raise TypeError(
            f"The parameter `{name}` must hold integers (class indices); got dtype "
            f"{annotation.dtype}"
        )
    return annotation


def binary_labels(annotation, *, keep_ignore=True):
    """Map an annotation to the seed's binary labels: 1 = object, 0 = background.

    The seed's mapping is ``object = (annotation == 1)``, ``background = (annotation != 1)``.
    tinyseg uses class index **1 for the object and 0 for the background** (the seed's one-hot
    put the object in column 0; the index order does not change what is learned).

    Unlike the seed, which maps *every* value other than 1 to background, tinyseg keeps the
    PASCAL VOC void value 255 as ``255`` = ignore by default, so the uncertain border band is
    left out of the loss and the metrics. Pass ``keep_ignore=False`` for the seed's exact
    mapping (255 becomes background).

    Parameters
    ----------
    annotation : ndarray of int, shape (H, W)
        Class indices as returned by :func:`load_annotation`.
    keep_ignore : bool, optional
        Keep 255 as the ignore label (default) instead of mapping it to background.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        Values in {0, 1} (and 255 where ``annotation == 255`` if ``keep_ignore``).

    Examples
    --------
    >>> binary_labels(np.array([[0, 1, 2, 255]], dtype=np.uint8))
    array([[  0,   1,   0, 255]], dtype=int32)
    """
    annotation = _check_annotation(annotation)
    labels = (annotation == 1).astype(np.int32)
    if keep_ignore:
        labels[annotation == IGNORE_LABEL] = IGNORE_LABEL
    return labels


def voc_labels(annotation, *, path=None):
    """Validate a PASCAL VOC annotation and return it as ``int32`` labels.

    Parameters
    ----------
    annotation : ndarray of int, shape (H, W)
        Class indices; valid values are 0..20 (:data:`VOC_CLASSES`) and 255 (ignore).
    path : str, optional
        The file the annotation came from, named in error messages.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        A copy of ``annotation``.

    Raises
    ------
    ValueError
        If a value is neither a VOC class index nor 255; the message names the values and the
        file.
    """
    annotation = _check_annotation(annotation)
    values = np.unique(annotation)
    bad = values[(values != IGNORE_LABEL) & ((values < 0) | (values >= len(VOC_CLASSES)))]
    if bad.size:
        where = f" in annotation {os.fspath(path)!r}" if path is not None else ""
        raise ValueError(
            f"unknown label value(s) {bad.tolist()}{where}: PASCAL VOC labels are "
            f"0..{len(VOC_CLASSES) - 1} and {IGNORE_LABEL} (ignore)"
        )
    return annotation.astype(np.int32)


def preprocess(image):
    """Turn an RGB ``uint8`` image into the network input: float32 minus the VGG RGB means.

    ``x[..., c] = float32(image[..., c]) - VGG_MEAN_RGB[c]`` with ``VGG_MEAN_RGB = (123.68,
    116.779, 103.939)`` for (R, G, B), as the seed's ``_mean_image_subtraction``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (N, H, W, 3)
        RGB image(s), normally uint8 in 0..255 (any real dtype is accepted as 0..255 values).

    Returns
    -------
    x : ndarray of float32, same shape as ``image``

    See Also
    --------
    deprocess : the inverse, for display.
    """
    image = np.asarray(image)
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise ValueError(
            "The parameter `image` must have shape (H, W, 3) or (N, H, W, 3) (RGB, channels "
            f"last); got shape {image.shape}"
        )
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"The parameter `image` must be numeric; got dtype {image.dtype}")
    return image.astype(np.float32) - VGG_MEAN_RGB


def deprocess(x):
    """Invert :func:`preprocess` for display: add the means back, round, clip to uint8.

    Parameters
    ----------
    x : ndarray, shape (..., 3)
        Network input(s) as made by :func:`preprocess`.

    Returns
    -------
    image : ndarray of uint8, same shape as ``x``
    """
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"The parameter `x` must have 3 channels last; got shape {x.shape}")
    return np.clip(np.rint(x.astype(np.float32) + VGG_MEAN_RGB), 0, 255).astype(np.uint8)


def voc_colormap(n=256):
    """The PASCAL VOC colour map: ``n`` RGB colours made by interleaving the index bits.

    Index ``i`` is read three bits at a time, from its least significant bits; the ``j``-th
    group of three bits ``(b0, b1, b2)`` sets bit ``7 - j`` of (R, G, B)::

        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3

    so 0 is black, 1 dark red (128, 0, 0), 2 dark green (0, 128, 0), 15 (person) (192, 128,
    128) and 255 (void) (224, 224, 192).

    Parameters
    ----------
    n : int, optional
        Number of colours (1..256).

    Returns
    -------
    cmap : ndarray of uint8, shape (n, 3)
    """
    if not 1 <= int(n) <= 256:
        raise ValueError(f"The parameter `n` must be in 1..256; got {n}")
    cmap = np.zeros((int(n), 3), dtype=np.uint8)
    for i in range(int(n)):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def save_label_png(path, labels):
    """Write a label map as a palette PNG with the PASCAL VOC colours.

    The pixel values of the file are the labels themselves (0..255); the VOC palette
    (:func:`voc_colormap`) only makes them visible: background black, class 1 dark red,
    255 (ignore) cream. :func:`load_annotation` reads the file back exactly.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (PNG).
    labels : ndarray of int or bool, shape (H, W)
        Values in 0..255.
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    labels = _check_annotation(labels, "labels")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(
            f"The parameter `labels` must hold values in 0..255 to be saved as a palette PNG; "
            f"got values in {labels.min()}..{labels.max()}"
        )
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))  # mode 'L'
    img.putpalette(voc_colormap(256).ravel().tolist())  # 'L' + palette -> mode 'P'
    img.save(os.fspath(path), format="PNG", optimize=True)


class VOCDataset:
    """A PASCAL VOC-layout segmentation dataset on disk.

    Layout (as in ``VOCdevkit/VOC2012``)::

        root/JPEGImages/<id>.jpg
        root/SegmentationClass/<id>.png            palette PNG of class indices, 255 = void
        root/ImageSets/Segmentation/<split>.txt    one <id> per line

    All listed files must exist (checked when the dataset is created); sizes and label values
    are checked when an item is read.

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder (the one holding ``JPEGImages``).
    split : str, optional
        Name of the id list, e.g. ``"train"``, ``"val"`` or ``"trainval"``.
    labels : {"voc", "binary"}, optional
        ``"voc"``: the 21 VOC classes (:func:`voc_labels`); ``"binary"``: the seed's mapping
        (:func:`binary_labels`: value 1 = object, others background, 255 kept as ignore).

    Examples
    --------
    >>> ds = VOCDataset("VOCdevkit/VOC2012", "val")  # doctest: +SKIP
    >>> image, labels = ds[0]  # uint8 (H, W, 3), int32 (H, W)  # doctest: +SKIP
    """

    def __init__(self, root, split="train", *, labels="voc"):
        self.root = os.fspath(root)
        self.split = str(split)
        if labels not in ("voc", "binary"):
            raise ValueError(f"The parameter `labels` must be 'voc' or 'binary'; got {labels!r}")
        self.labels = labels
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"dataset folder not found: {self.root!r}")
        self.image_dir = os.path.join(self.root, "JPEGImages")
        self.annotation_dir = os.path.join(self.root, "SegmentationClass")
        list_path = os.path.join(self.root, "ImageSets", "Segmentation", f"{self.split}.txt")
        for folder in (self.image_dir, self.annotation_dir):
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"folder {folder!r} not found: a PASCAL VOC dataset needs JPEGImages/, "
                    "SegmentationClass/ and ImageSets/Segmentation/"
                )
        if not os.path.isfile(list_path):
            raise FileNotFoundError(f"split list {list_path!r} not found (split={self.split!r})")
        with open(list_path, encoding="utf-8") as f:
            # A line may carry extra columns (as in the classification lists); the id is first.
            self.ids = [line.split()[0] for line in f if line.strip()]
        if not self.ids:
            raise ValueError(f"split list {list_path!r} is empty")
        missing = [
            p
            for i in self.ids
            for p in (self.image_path(i), self.annotation_path(i))
            if not os.path.isfile(p)
        ]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise FileNotFoundError(
                f"split {self.split!r} lists files that do not exist: "
                f"{', '.join(repr(p) for p in missing[:3])}{more}"
            )

    def image_path(self, image_id):
        """Path of the JPEG image of ``image_id``."""
        return os.path.join(self.image_dir, f"{image_id}.jpg")

    def annotation_path(self, image_id):
        """Path of the annotation PNG of ``image_id``."""
        return os.path.join(self.annotation_dir, f"{image_id}.png")

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        """Return ``(image, labels)``: uint8 (H, W, 3) RGB and int32 (H, W) with 255 = ignore."""
        image_id = self.ids[index]
        image_path = self.image_path(image_id)
        annotation_path = self.annotation_path(image_id)
        image = load_image(image_path)
        annotation = load_annotation(annotation_path)
        if annotation.shape != image.shape[:2]:
            raise ValueError(
                f"annotation {annotation_path!r} is {annotation.shape[0]}x{annotation.shape[1]} "
                f"but image {image_path!r} is {image.shape[0]}x{image.shape[1]} (H x W)"
            )
        if self.labels == "voc":
            labels = voc_labels(annotation, path=annotation_path)
        else:
            labels = binary_labels(annotation)
        return image, labels

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"VOCDataset({self.root!r}, {self.split!r}, labels={self.labels!r}) [{len(self)} images]"


#: Where the bundled annotation lives inside the package.
CHELSEA_ANNOTATION = "assets/chelsea_annotation.png"


def chelsea():
    """The demo's image and ground truth: scikit-image's ``chelsea`` cat and its annotation.

    The image ships with scikit-image (``skimage.data.chelsea()``, 300x451). The annotation
    ships with tinyseg (``tinyseg/assets/chelsea_annotation.png``, a palette PNG; see
    ``tinyseg/assets/README.md`` for how it was made and checked): 1 = cat, 0 = background,
    255 = a thin uncertain band along the cat's outline (ignored by loss and metrics).

    Returns
    -------
    image : ndarray of uint8, shape (300, 451, 3)
        RGB image.
    annotation : ndarray of uint8, shape (300, 451)
        Values 0, 1 and 255; pass it to :func:`binary_labels` for training labels.
    """
    from skimage import data as skdata

    image = skdata.chelsea()
    ref = resources.files("tinyseg").joinpath(CHELSEA_ANNOTATION)
    with resources.as_file(ref) as path:
        annotation = load_annotation(path)
    if annotation.shape != image.shape[:2]:  # pragma: no cover - guards a bad asset
        raise ValueError(
            f"bundled annotation {CHELSEA_ANNOTATION!r} is {annotation.shape} but the chelsea "
            f"image is {image.shape[:2]}"
        )
    return np.ascontiguousarray(image, dtype=np.uint8), annotation
