"""Image and annotation files, the network input, and label PNGs.

* An **image** is a ``uint8`` array of shape ``(H, W, 3)`` in RGB order.
* An **annotation** is what an annotation (mask) file holds: a 2-D ``uint8`` (or ``int32`` for
  16-bit files) array of pixel values. PASCAL VOC stores them as palette PNGs; the palette only
  decides how they look, so tinyseg reads the indices and never the colours. How values become
  class indices is :mod:`tinyseg.data.labels`' job.
* The network input is ``float32`` ``(H, W, 3)`` (batched ``(N, H, W, 3)``, NHWC): the RGB image
  minus the VGG RGB means ``(123.68, 116.779, 103.939)`` (the post's ``_mean_image_subtraction``
  with ``[_R_MEAN, _G_MEAN, _B_MEAN]``). There is no scaling to ``[0, 1]``.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = [
    "VGG_MEAN_RGB",
    "IGNORE_LABEL",
    "load_image",
    "load_annotation",
    "image_size",
    "preprocess",
    "deprocess",
    "voc_colormap",
    "save_label_png",
]

#: Per-channel means subtracted from RGB images (R, G, B), as in VGG/TF-Slim's preprocessing.
VGG_MEAN_RGB = np.array([123.68, 116.779, 103.939], dtype=np.float32)

#: The label value that is ignored by the loss and the metrics (PASCAL VOC's "void").
IGNORE_LABEL = 255

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

def image_size(path, what="image"):
    """``(H, W)`` of an image file from its header, without decoding the pixels.

    Cheap enough to check every file of a dataset before training starts; a file whose header
    cannot be read raises ``ValueError`` naming it (as :func:`load_image` would).
    """
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path!r}")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except Exception as exc:  # PIL raises many types (UnidentifiedImageError, OSError, ...)
        raise ValueError(f"cannot read {what} file {path!r}: {exc}") from exc
    return h, w


def check_annotation(annotation, name="annotation"):
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

def preprocess(image):
    """Turn an RGB ``uint8`` image into the network input: float32 minus the VGG RGB means.

    ``x[..., c] = float32(image[..., c]) - VGG_MEAN_RGB[c]`` with ``VGG_MEAN_RGB = (123.68,
    116.779, 103.939)`` for (R, G, B), as the post's ``_mean_image_subtraction``.

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
    group of three bits ``(b0, b1, b2)`` sets bit ``7 - j`` of (R, G, B): for ``j = 0..7``,

        bit ``7 - j`` of R = bit ``3j`` of i,  of G = bit ``3j + 1``,  of B = bit ``3j + 2``,

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
    labels = check_annotation(labels, "labels")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(
            f"The parameter `labels` must hold values in 0..255 to be saved as a palette PNG; "
            f"got values in {labels.min()}..{labels.max()}"
        )
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))  # mode 'L'
    img.putpalette(voc_colormap(256).ravel().tolist())  # 'L' + palette -> mode 'P'
    img.save(os.fspath(path), format="PNG", optimize=True)
