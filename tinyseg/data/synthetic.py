"""A synthetic segmentation dataset with exact ground truth: textured shapes on textured backgrounds.

Each image is a smooth, grainy random background with 1..``max_objects`` objects on it. Class
``k >= 1`` is one shape filled with one texture family in colours of its own hue: class 1 is discs
with stripes, 2 squares with a checkerboard, 3 triangles with dots, 4 rings with waves, 5 crosses
with stripes; the class hues are spread evenly around the colour wheel. Every object varies: its
position, size, rotation, texture period and orientation, its two shades (hue within ±25° of the
class's, random saturation and brightness). The background mixes two colours of any hue, so a
class's colour alone does not tell it from the background: its texture and shape do. A pixel
belongs to the last shape drawn over its centre: the labels are exact (no anti-aliasing, no
ignore band).

:func:`write_dataset` writes a dataset to disk in the VOC layout or the folders layout (with a
``classes.txt``), for the tests, the benchmarks and ``tinyseg synthetic``. Everything is a pure
function of ``seed``.

In these images every label edge is also a strong colour edge and the textures are fine: the
dense CRF's best case. :func:`camouflage_sample` draws the opposite case, where colour edges and
label edges disagree.
"""
from __future__ import annotations

import os

import numpy as np

from .io import save_label_png

__all__ = ["SHAPES", "TEXTURES", "class_names", "synthetic_sample", "synthetic_dataset", "write_dataset",
           "camouflage_sample", "camouflage_dataset"]

#: Shape and texture of class k (k >= 1) are SHAPES[k-1] and TEXTURES[k-1].
SHAPES = ("disc", "square", "triangle", "ring", "cross")
TEXTURES = ("stripes", "checker", "dots", "waves", "stripes")


def class_names(n_classes: int) -> tuple:
    """``("background", "disc", "square", ...)``: the names of the first ``n_classes`` classes."""
    if not 2 <= n_classes <= len(SHAPES) + 1:
        raise ValueError(f"The parameter `n_classes` must be 2..{len(SHAPES) + 1}; got {n_classes}")
    return ("background",) + SHAPES[:n_classes - 1]


def _smooth_field(rng, H, W, scale):
    """A smooth random field in [0, 1]: coarse noise on a (H/scale, W/scale) grid, upsampled."""
    from scipy.ndimage import zoom

    gh, gw = max(2, H // scale + 2), max(2, W // scale + 2)
    coarse = rng.random((gh, gw))
    field = zoom(coarse, (H / (gh - 1), W / (gw - 1)), order=3)[:H, :W]  # (gh, gw) -> (>=H, >=W)
    field -= field.min()
    return field / max(field.max(), 1e-6)


def _texture(kind, rng, yy, xx):
    """A texture pattern in [0, 1] on the pixel grid ``(yy, xx)``; random period and orientation."""
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)        # coordinate along the pattern
    v = -xx * np.sin(theta) + yy * np.cos(theta)       # and across it
    period = rng.uniform(5.0, 9.0)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    if kind == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)
    if kind == "dots":
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        return (du * du + dv * dv < 0.09).astype(np.float64)
    if kind == "waves":
        return 0.5 + 0.5 * np.sin(2 * np.pi * (u + 3.0 * np.sin(2 * np.pi * v / (3 * period))) / period)
    raise ValueError(f"unknown texture {kind!r}")


def _shape_mask(kind, rng, yy, xx, H, W):
    """A boolean mask of one shape with a random centre, size and rotation."""
    r = rng.uniform(0.09, 0.22) * min(H, W) * 1.4
    cy, cx = rng.uniform(0.1 * H, 0.9 * H), rng.uniform(0.1 * W, 0.9 * W)
    theta = rng.uniform(0, 2 * np.pi)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)          # rotated coordinates around the centre
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    if kind == "disc":
        return u * u + v * v < r * r
    if kind == "square":
        return (np.abs(u) < 0.8 * r) & (np.abs(v) < 0.8 * r)
    if kind == "triangle":  # equilateral, circumradius r: inside all three half-planes
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = theta + 2 * np.pi * k / 3
            inside &= (dx * np.cos(a) + dy * np.sin(a)) < 0.5 * r
        return inside
    if kind == "ring":
        d2 = u * u + v * v
        return (d2 < r * r) & (d2 > (0.55 * r) ** 2)
    if kind == "cross":
        arm = 0.3 * r
        return ((np.abs(u) < r) & (np.abs(v) < arm)) | ((np.abs(v) < r) & (np.abs(u) < arm))
    raise ValueError(f"unknown shape {kind!r}")


def _colour_pair(rng):
    """Two random RGB colours at least 90 apart (so every texture is visible)."""
    while True:
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if np.linalg.norm(a - b) > 90:
            return a, b


def _hsv_to_rgb(h, s, v):
    """One colour from hue ``h`` (degrees), saturation and value in [0, 1] to RGB in [0, 255]."""
    import colorsys

    return 255.0 * np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v))


def _class_shades(rng, k, n_classes):
    """The two shades of an object of class ``k``: its hue near the class's, a light and a dark one."""
    hue = 360.0 * (k - 1) / (n_classes - 1) + rng.uniform(-25, 25)
    light = _hsv_to_rgb(hue, rng.uniform(0.5, 1.0), rng.uniform(0.75, 1.0))
    dark = _hsv_to_rgb(hue + rng.uniform(-10, 10), rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.45))
    return light, dark


def synthetic_sample(seed, size=(160, 224), n_classes: int = 4, max_objects: int = 4):
    """One image and its exact labels.

    Parameters
    ----------
    seed : int or sequence of int
        Everything is drawn from ``numpy.random.default_rng(seed)``.
    size : (int, int)
        ``(H, W)``.
    n_classes : int
        Background plus ``n_classes - 1`` object classes (2..6).
    max_objects : int
        Objects per image are drawn uniformly from ``1..max_objects``.

    Returns
    -------
    image : ndarray of uint8, shape (H, W, 3)
    labels : ndarray of int32, shape (H, W)
        Class of every pixel, ``0`` = background.
    """
    class_names(n_classes)  # validates
    H, W = (int(s) for s in size)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5      # pixel centres, (H, W) each
    a, b = _colour_pair(rng)
    t = _smooth_field(rng, H, W, scale=int(rng.integers(12, 40)))[..., None]  # (H, W, 1)
    image = a * (1 - t) + b * t
    labels = np.zeros((H, W), np.int32)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        k = int(rng.integers(1, n_classes))
        mask = _shape_mask(SHAPES[k - 1], rng, yy, xx, H, W)
        ca, cb = _class_shades(rng, k, n_classes)
        pattern = _texture(TEXTURES[k - 1], rng, yy, xx)[..., None]       # (H, W, 1)
        image = np.where(mask[..., None], ca * (1 - pattern) + cb * pattern, image)
        labels[mask] = k
    image = image + rng.normal(0.0, 6.0, image.shape)                      # sensor grain
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels


def synthetic_dataset(n: int, size=(160, 224), n_classes: int = 4, seed: int = 0, max_objects: int = 4):
    """``n`` samples ``[(image, labels), ...]``; sample ``i`` is ``synthetic_sample((seed, i), ...)``."""
    return [synthetic_sample((seed, i), size, n_classes, max_objects) for i in range(int(n))]


def _patchwork(rng, palette, yy, xx, n_cells):
    """Index into ``palette`` of every pixel of a Voronoi patchwork of ``n_cells`` random cells."""
    H, W = yy.shape
    centres = rng.uniform((0, 0), (H, W), (n_cells, 2))                       # (n_cells, 2)
    d2 = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2  # (H, W, n_cells)
    return rng.integers(0, len(palette), n_cells)[np.argmin(d2, axis=-1)]    # (H, W)


def camouflage_sample(seed, size=(160, 224), n_classes: int = 4, max_objects: int = 4):
    """One image whose colour edges are not its label edges, and its exact labels.

    The counter-example to :func:`synthetic_sample`. An image has a palette of four random colours
    (pairwise at least 60 apart). The background is a patchwork of 8–16 Voronoi cells, each one
    palette colour: strong colour edges where no label changes. Object ``k`` is shape
    ``SHAPES[k-1]`` painted in two palette colours with texture ``TEXTURES[k-1]`` at a coarse
    period (8–16 px, thresholded to a hard two-colour pattern): strong colour edges inside the
    object. Object and background share the palette, so along a label edge the two sides often
    have the same colour. Only shape and texture layout tell the classes apart; a colour-following
    CRF has nothing right to follow. Parameters and returns as :func:`synthetic_sample`.
    """
    class_names(n_classes)  # validates
    H, W = (int(s) for s in size)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5      # pixel centres, (H, W) each
    while True:
        palette = rng.uniform(0, 255, (4, 3))
        gaps = np.linalg.norm(palette[:, None] - palette[None], axis=-1)   # (4, 4)
        if gaps[np.triu_indices(4, 1)].min() > 60:
            break
    image = palette[_patchwork(rng, palette, yy, xx, int(rng.integers(8, 17)))]  # (H, W, 3)
    labels = np.zeros((H, W), np.int32)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        k = int(rng.integers(1, n_classes))
        mask = _shape_mask(SHAPES[k - 1], rng, yy, xx, H, W)
        i, j = rng.choice(4, 2, replace=False)
        pattern = _texture(TEXTURES[k - 1], rng, yy / 1.8, xx / 1.8) > 0.5         # period 9–16 px
        image = np.where(mask[..., None], np.where(pattern[..., None], palette[i], palette[j]), image)
        labels[mask] = k
    image = image + rng.normal(0.0, 6.0, image.shape)                      # sensor grain
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels


def camouflage_dataset(n: int, size=(160, 224), n_classes: int = 4, seed: int = 0, max_objects: int = 4):
    """``n`` samples of :func:`camouflage_sample`; sample ``i`` is ``camouflage_sample((seed, i), ...)``."""
    return [camouflage_sample((seed, i), size, n_classes, max_objects) for i in range(int(n))]


def write_dataset(root, splits=None, layout: str = "voc", size=(160, 224), n_classes: int = 4,
                  seed: int = 0, max_objects: int = 4) -> tuple:
    """Write a synthetic dataset under ``root``; return the class names.

    Parameters
    ----------
    root : str or os.PathLike
        Output folder (created). ``classes.txt`` (line k names class k) is written in it.
    splits : dict of str -> int, optional
        Images per split, default ``{"train": 32, "val": 12}``; splits draw disjoint samples.
    layout : {"voc", "folders"}
        ``"voc"``: ``JPEGImages/<id>.jpg`` (quality 95), ``SegmentationClass/<id>.png`` and
        ``ImageSets/Segmentation/<split>.txt``. ``"folders"``: ``<split>/images/<id>.png`` and
        ``<split>/masks/<id>.png``.
    """
    from PIL import Image

    if layout not in ("voc", "folders"):
        raise ValueError(f"The parameter `layout` must be 'voc' or 'folders'; got {layout!r}")
    splits = {"train": 32, "val": 12} if splits is None else dict(splits)
    names = class_names(n_classes)
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    start = 0
    for split, n in splits.items():
        ids = [f"{split}_{i:04d}" for i in range(n)]
        if layout == "voc":
            dirs = [os.path.join(root, d) for d in ("JPEGImages", "SegmentationClass",
                                                    os.path.join("ImageSets", "Segmentation"))]
        else:
            dirs = [os.path.join(root, split, "images"), os.path.join(root, split, "masks")]
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        for k, image_id in enumerate(ids):
            image, labels = synthetic_sample((seed, start + k), size, n_classes, max_objects)
            if layout == "voc":
                Image.fromarray(image).save(os.path.join(dirs[0], f"{image_id}.jpg"), quality=95)
                save_label_png(os.path.join(dirs[1], f"{image_id}.png"), labels)
            else:
                Image.fromarray(image).save(os.path.join(dirs[0], f"{image_id}.png"))
                save_label_png(os.path.join(dirs[1], f"{image_id}.png"), labels)
        if layout == "voc":
            with open(os.path.join(dirs[2], f"{split}.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(ids) + "\n")
        start += n
    return names
