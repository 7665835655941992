"""A synthetic segmentation dataset with exact ground truth: textured shapes on textured ground.

Nothing is downloaded: every image is drawn from a seed. Each image has a textured background
(class 0: smooth colour clouds plus grain) and 2–4 shapes (random ellipses and polygons,
overlapping in drawing order), each of a class ``1 … C−1`` with its own colour and texture
(stripes of random orientation, a checkerboard, spots…). Labels are the rasterised shapes,
exact to the pixel — no void — so boundary accuracy (:func:`tinyseg.metrics.trimap_band`) can
be measured without annotation noise. Shapes are a few tens of pixels across, smaller than
FCN-32s's 32-pixel cells, so how a model places boundaries decides most of its score.

    >>> samples = textured_shapes(3, size=(64, 80), n_classes=4, seed=0)
    >>> image, labels = samples[0]
    >>> image.shape, image.dtype, labels.shape, sorted(set(labels.ravel()) - {0}) != []
    ((64, 80, 3), dtype('uint8'), (64, 80), True)
"""
from __future__ import annotations

import numpy as np

__all__ = ["textured_shapes", "CLASS_COLOURS"]

# Mean RGB of each class: background, then the shapes (reused cyclically beyond 6 classes).
CLASS_COLOURS = np.array([(110, 120, 100), (200, 70, 60), (60, 90, 190), (225, 200, 70),
                          (90, 180, 90), (170, 90, 180)], np.float32)


def _clouds(rng, H, W, cell):
    """Smooth noise in [-1, 1]: a coarse random grid upsampled bilinearly (``cell`` px per knot)."""
    gh, gw = H // cell + 2, W // cell + 2
    grid = rng.uniform(-1, 1, (gh, gw))
    y = np.arange(H) / cell
    x = np.arange(W) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g = grid
    return ((1 - fy) * (1 - fx) * g[y0][:, x0] + (1 - fy) * fx * g[y0][:, x0 + 1]
            + fy * (1 - fx) * g[y0 + 1][:, x0] + fy * fx * g[y0 + 1][:, x0 + 1])


def _texture(rng, kind, H, W):
    """A (H, W) texture in [-1, 1] of the given kind (0 stripes, 1 checkerboard, 2 spots)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if kind == 0:
        angle, period = rng.uniform(0, np.pi), rng.uniform(5, 9)
        return np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    if kind == 1:
        p = int(rng.integers(3, 6))
        return np.where(((yy // p) + (xx // p)) % 2 == 0, 1.0, -1.0)
    spots = rng.random((H, W)) < 0.08
    return np.where(spots, 1.0, -0.2)


def _shape_mask(rng, H, W, radius):
    """A random ellipse or convex polygon of radii in ``radius`` (px), somewhere in the image."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cy, cx = rng.uniform(0.1 * H, 0.9 * H), rng.uniform(0.1 * W, 0.9 * W)
    if rng.random() < 0.5:
        a, b = rng.uniform(radius[0] * 0.7, radius[1], 2)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    n = int(rng.integers(3, 7))
    angles = rng.uniform(0, 2 * np.pi) + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    radii = rng.uniform(radius[0], radius[1], n)
    px, py = cx + radii * np.cos(angles), cy + radii * np.sin(angles)
    inside = np.ones((H, W), bool)
    for i in range(n):                       # left of every edge of a counter-clockwise polygon
        x0, y0, x1, y1 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def textured_shapes(n_images: int, size=(128, 160), n_classes: int = 4, seed: int = 0,
                    radius=(14, 32)):
    """``n_images`` pairs ``(image uint8 (H, W, 3), labels int32 (H, W))`` from ``seed``.

    Shapes have radii in ``radius`` (pixels). Every image contains at least one shape; class ``c``'s colour is ``CLASS_COLOURS[c]`` and
    its texture kind is ``(c − 1) mod 3``, the same in every image (that is what a model learns).
    """
    if n_classes < 2:
        raise ValueError(f"`n_classes` must be at least 2 (background and one shape), got {n_classes}")
    H, W = size
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_images):
        labels = np.zeros((H, W), np.int32)
        for _ in range(int(rng.integers(2, 5))):
            labels[_shape_mask(rng, H, W, radius)] = int(rng.integers(1, n_classes))
        if not labels.any():
            labels[_shape_mask(rng, H, W, radius)] = 1
        image = np.empty((H, W, 3), np.float32)
        ground = _clouds(rng, H, W, 24)[..., None] * 35 + _clouds(rng, H, W, 6)[..., None] * 15
        image[:] = CLASS_COLOURS[0] + ground
        for c in range(1, n_classes):
            where = labels == c
            if where.any():
                tex = _texture(rng, (c - 1) % 3, H, W)[..., None] * 30
                shade = _clouds(rng, H, W, 16)[..., None] * 20
                image[where] = (CLASS_COLOURS[c % len(CLASS_COLOURS)] + tex + shade)[where]
        image += rng.normal(0, 12, image.shape)                 # sensor grain everywhere
        samples.append((np.clip(image, 0, 255).astype(np.uint8), labels))
    return samples
