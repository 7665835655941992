"""Random flip, scale and crop of an (image, labels) pair, deterministic in ``(seed, step, index)``.

The random numbers of a sample come from ``numpy.random.default_rng([seed, step, index])``, where
``index`` is the sample's position in the global batch. So a run resumed from a checkpoint, or
split over any number of MPI ranks, draws exactly the same augmentations.

For a sample, in this order:

* **scale** by ``s`` drawn uniformly from ``scale`` (DeepLab uses 0.5..1.5): the image is resized
  bilinearly, the labels by nearest neighbour, both to ``round(s·H) × round(s·W)``, with pixel
  centres aligned (output pixel ``i`` samples input coordinate ``(i + ½)/s − ½``);
* **flip** left-right with probability ½;
* **crop** a random ``crop`` window; an image smaller than the window is first padded at the
  bottom/right with the VGG mean colour (network input 0) and the labels with 255 (ignored);
* **colour** jitter of strength ``c`` (labels untouched): contrast and saturation scaled by factors
  drawn from ``[1 − c, 1 + c]``, brightness shifted by up to ``±c·64`` grey levels, and the hue
  turned by up to ``±c·180°`` (a rotation of the RGB cube about its grey axis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.io import IGNORE_LABEL, VGG_MEAN_RGB

__all__ = ["AugmentConfig", "augment", "resize_bilinear", "resize_nearest", "hue_rotation", "jitter_colors"]


@dataclass
class AugmentConfig:
    flip: bool = False                  # random left-right flip with probability 1/2
    scale: tuple = (1.0, 1.0)           # range of the random scale factor (1, 1: none)
    crop: tuple | None = None           # (H, W) of a random crop; None: the whole (scaled) image
    color: float = 0.0                  # colour jitter strength in [0, 1] (0: none)

    def __post_init__(self):
        lo, hi = (float(v) for v in self.scale)
        if not 0 < lo <= hi:
            raise ValueError(f"the scale range must be 0 < low <= high, got {self.scale}")
        self.scale = (lo, hi)
        if self.crop is not None:
            h, w = (int(v) for v in self.crop)
            if h < 1 or w < 1:
                raise ValueError(f"the crop size must be positive, got {self.crop}")
            self.crop = (h, w)
        if not 0.0 <= float(self.color) <= 1.0:
            raise ValueError(f"the colour jitter strength must be in [0, 1], got {self.color}")
        self.color = float(self.color)

    @property
    def active(self) -> bool:
        return self.flip or self.scale != (1.0, 1.0) or self.crop is not None or self.color > 0


def _source_coordinates(n_out: int, n_in: int) -> np.ndarray:
    """Input coordinate sampled by each output pixel, centres aligned: ``(i + ½)·n_in/n_out − ½``."""
    return (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5


def resize_bilinear(image: np.ndarray, H: int, W: int) -> np.ndarray:
    """Bilinear resize of ``(h, w, C)`` to ``(H, W, C)`` (edges clamped), uint8 in, uint8 out."""
    h, w = image.shape[:2]
    ys = np.clip(_source_coordinates(H, h), 0, h - 1)
    xs = np.clip(_source_coordinates(W, w), 0, w - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]          # (H, 1, 1), (1, W, 1)
    img = image.astype(np.float32)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx                # (H, W, C)
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def resize_nearest(labels: np.ndarray, H: int, W: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(h, w)`` labels to ``(H, W)`` (no new label values)."""
    h, w = labels.shape
    ys = np.clip(np.floor((np.arange(H) + 0.5) * h / H).astype(np.int64), 0, h - 1)
    xs = np.clip(np.floor((np.arange(W) + 0.5) * w / W).astype(np.int64), 0, w - 1)
    return labels[ys][:, xs]


def hue_rotation(angle: float) -> np.ndarray:
    """The 3×3 matrix turning RGB vectors by ``angle`` (radians) about the grey axis (1, 1, 1)/√3.

    Rodrigues' formula ``R = cos θ·I + sin θ·[k]× + (1 − cos θ)·k kᵀ`` with ``k = (1, 1, 1)/√3``;
    greys stay grey, saturation and brightness are kept, hues turn (θ = 120° maps R→G→B→R).
    """
    k = np.full(3, 1 / np.sqrt(3.0))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * np.outer(k, k)


def jitter_colors(image: np.ndarray, rng, strength: float) -> np.ndarray:
    """Colour jitter of a uint8 ``(H, W, 3)`` image (see the module docstring); uint8 out."""
    c = strength
    img = image.astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)                                  # (H, W, 1)
    img = grey + (img - grey) * rng.uniform(1 - c, 1 + c)                   # saturation
    img = img @ hue_rotation(rng.uniform(-np.pi * c, np.pi * c)).T.astype(np.float32)  # hue
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - c, 1 + c) + mean                   # contrast
    img = img + rng.uniform(-64 * c, 64 * c)                                # brightness
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def augment(image: np.ndarray, labels: np.ndarray, config: AugmentConfig, seed: int, step: int,
            index: int):
    """The augmented ``(image uint8 (H', W', 3), labels int32 (H', W'))`` of one sample.

    ``seed``, ``step`` and ``index`` (>= 0) fully determine the random choices.
    """
    if not config.active:
        return image, labels
    rng = np.random.default_rng([int(seed), int(step), int(index)])
    s = rng.uniform(*config.scale)
    flip = rng.random() < 0.5
    dy, dx = rng.random(), rng.random()            # crop offsets, as fractions of the slack
    color_rng = np.random.default_rng(rng.integers(2**63))  # its own stream: other draws unchanged
    if config.scale != (1.0, 1.0):
        h, w = labels.shape
        H, W = max(1, round(s * h)), max(1, round(s * w))
        image, labels = resize_bilinear(image, H, W), resize_nearest(labels, H, W)
    if config.flip and flip:
        image, labels = image[:, ::-1], labels[:, ::-1]
    if config.crop is not None:
        ch, cw = config.crop
        h, w = labels.shape
        if h < ch or w < cw:   # pad bottom/right: mean colour (input 0) and ignored labels
            ph, pw = max(ch, h), max(cw, w)
            padded = np.empty((ph, pw, 3), np.uint8)
            padded[...] = np.rint(VGG_MEAN_RGB).astype(np.uint8)
            padded[:h, :w] = image
            plabels = np.full((ph, pw), IGNORE_LABEL, labels.dtype)
            plabels[:h, :w] = labels
            image, labels, h, w = padded, plabels, ph, pw
        y, x = int(dy * (h - ch + 1)), int(dx * (w - cw + 1))
        image, labels = image[y:y + ch, x:x + cw], labels[y:y + ch, x:x + cw]
    if config.color > 0:
        image = jitter_colors(image, color_rng, config.color)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels, dtype=np.int32)
