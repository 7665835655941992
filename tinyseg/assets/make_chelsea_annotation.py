"""Make ``chelsea_annotation.png``, the ground truth of tinyseg's demo image.

The image is scikit-image's ``skimage.data.chelsea()`` (300x451 RGB, a tabby cat's head filling
most of the frame, a blurred room behind it on the right and top left). The annotation is a
palette PNG in PASCAL VOC style: 1 = cat, 0 = background, 255 = a thin "void" band along the
outline that loss and metrics ignore.

How it is made (semi-automatic, deterministic):

1. **Markers chosen by hand** (the polygons below, in (x, y) pixel coordinates): one large "cat"
   polygon well inside the head and body plus one inside the right ear, and two "background"
   polygons, one over the blurred room on the right and one over the pale wall top left. They stay
   5-25 px away from the visible outline, so only the outline itself is left to the algorithm.
2. **Features** per pixel: CIELAB colour (the cat is yellow-brown, the room grey/pink/white) and
   a focus measure, the log of the locally averaged squared high-pass of the gray image (the cat
   is in focus, the background strongly blurred); each scaled, then smoothed with a Gaussian of
   sigma 1.5 px.
3. **Random walker** segmentation (Grady 2006; ``skimage.segmentation.random_walker``, beta=30,
   conjugate gradient with Jacobi preconditioner, tol 1e-4) from those markers; a pixel is cat where
   its probability of reaching a cat marker first is > 0.5. (beta=120 gave nearly the same outline;
   beta=400 cut into the right cheek beside the eye.)
4. **Clean-up**: keep the largest cat component, fill holes, morphological opening then closing
   with a disk of radius 2 to smooth pixel noise.
5. **Void band**: pixels within 2 px of the outline (either side, so about 4-5 px wide, as in VOC)
   become 255; below and right of the right eye (x >= 280, y >= 200), where the white cheek fur
   and the white blurred background meet without a visible edge, the band is 4 px each side.

Whiskers are left as background (VOC annotators leave them out too). The result was checked by
eye on an overlay (``--overlay``): outline in red on the image, zoomed on the ears, the right
cheek and the lower right; see ``README.md`` in this folder.

Run (from anywhere; writes next to this file unless ``--out`` is given)::

    python -m tinyseg.assets.make_chelsea_annotation            # doctest: +SKIP
    python tinyseg/assets/make_chelsea_annotation.py --overlay /tmp/chelsea_overlay.png

The output is deterministic for a given NumPy/SciPy/scikit-image; the committed PNG was made with
numpy 2.4, scipy and scikit-image 0.26. ``--check`` recomputes and reports how many pixels differ
from the committed file instead of writing it.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "chelsea_annotation.png")

# Markers, (x, y) polygon vertices in pixels of the 451x300 image.
CAT_MARKERS = [
    # head and body: well inside the outline
    [(55, 5), (345, 5), (340, 70), (338, 140), (318, 190), (300, 235), (285, 299),
     (0, 299), (0, 150), (25, 130), (45, 100), (50, 40)],
    # the blurred right ear
    [(350, 0), (392, 0), (374, 30), (362, 55), (345, 55)],
]
BACKGROUND_MARKERS = [
    # the room right of the head
    [(412, 0), (450, 0), (450, 299), (350, 299), (345, 270), (355, 230), (375, 200),
     (385, 150), (385, 90), (386, 62), (390, 35), (405, 8)],
    # the pale wall top left, beside the left ear
    [(0, 0), (25, 0), (22, 40), (18, 80), (10, 105), (0, 115)],
]
BETA = 30.0
VOID_RADIUS = 2          # px each side of the outline
VOID_RADIUS_WIDE = 4     # px each side in the ambiguous lower right
WIDE_REGION = (280, 200)  # (x0, y0): x >= x0 and y >= y0


def _polygons_mask(polygons, shape):
    from skimage import draw

    mask = np.zeros(shape, dtype=bool)
    for pts in polygons:
        pts = np.asarray(pts, dtype=float)
        rr, cc = draw.polygon(pts[:, 1], pts[:, 0], shape)
        mask[rr, cc] = True
    return mask


def make_annotation(image):
    """Return (annotation uint8 (H, W) with 0/1/255, cat mask bool (H, W)) for ``image``."""
    from scipy import ndimage as ndi
    from skimage import color, filters, measure, morphology, segmentation

    H, W = image.shape[:2]
    markers = np.zeros((H, W), dtype=np.int32)
    markers[_polygons_mask(BACKGROUND_MARKERS, (H, W))] = 2
    markers[_polygons_mask(CAT_MARKERS, (H, W))] = 1

    lab = color.rgb2lab(image)                             # (H, W, 3) L in 0..100, a/b ~ -30..60
    gray = color.rgb2gray(image)
    highpass = gray - filters.gaussian(gray, sigma=2)
    focus = np.log(filters.gaussian(highpass ** 2, sigma=6) + 1e-7)
    focus = 2 * (focus - focus.mean()) / focus.std()
    feats = np.dstack([lab[..., 0] / 10, lab[..., 1] / 5, lab[..., 2] / 5, focus])  # (H, W, 4)
    feats = filters.gaussian(feats, sigma=1.5, channel_axis=-1)

    prob = segmentation.random_walker(
        feats, markers, beta=BETA, mode="cg_j", tol=1e-4, channel_axis=-1,
        return_full_prob=True,
    )                                                      # (2, H, W): P(cat), P(background)
    cat = prob[0] > 0.5

    lab_cc = measure.label(cat, connectivity=1)
    sizes = np.bincount(lab_cc.ravel())
    sizes[0] = 0
    cat = lab_cc == np.argmax(sizes)
    cat = ndi.binary_fill_holes(cat)
    # Opening then closing; the mask is edge-padded first so the image border acts as neither
    # class (the cat continues past the bottom and left edges, the room past the right edge).
    pad = 6
    padded = np.pad(cat, pad, mode="edge")
    disk = morphology.disk(2)
    padded = ndi.binary_opening(padded, structure=disk)
    padded = ndi.binary_closing(padded, structure=disk)
    cat = padded[pad:-pad, pad:-pad]

    # Distance of every pixel to the other class: the outline is where both distances are small.
    dist_in = ndi.distance_transform_edt(cat)             # cat pixels: px to the nearest background
    dist_out = ndi.distance_transform_edt(~cat)           # background pixels: px to the nearest cat
    dist = np.where(cat, dist_in, dist_out)
    radius = np.full((H, W), float(VOID_RADIUS))
    yy, xx = np.mgrid[:H, :W]
    radius[(xx >= WIDE_REGION[0]) & (yy >= WIDE_REGION[1])] = VOID_RADIUS_WIDE
    annotation = cat.astype(np.uint8)
    annotation[dist <= radius] = 255
    return annotation, cat


def overlay(image, annotation, cat):
    """RGB check image: void band tinted yellow, outline of the cat mask (last cat pixel) red."""
    from skimage import segmentation

    out = image.astype(np.float32).copy()
    void = annotation == 255
    out[void] = 0.6 * out[void] + 0.4 * np.array([255, 255, 0])
    out[segmentation.find_boundaries(cat, mode="inner")] = [255, 0, 0]
    return np.clip(out, 0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="annotation PNG to write")
    parser.add_argument("--overlay", help="also write an overlay PNG for checking by eye")
    parser.add_argument("--check", action="store_true",
                        help="compare with the existing --out file instead of writing it")
    args = parser.parse_args(argv)

    from skimage import data, io

    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # run from a source checkout
    from tinyseg.data import load_annotation, save_label_png

    image = data.chelsea()
    annotation, cat = make_annotation(image)
    counts = {v: int((annotation == v).sum()) for v in (0, 1, 255)}
    print(f"pixels: background {counts[0]}, cat {counts[1]}, void {counts[255]}")
    if args.check:
        ref = load_annotation(args.out)
        n = int((ref != annotation).sum())
        print(f"{n} pixels differ from {args.out}")
        return 1 if n else 0
    save_label_png(args.out, annotation)
    print(f"wrote {args.out}")
    if args.overlay:
        io.imsave(args.overlay, overlay(image, annotation, cat), check_contrast=False)
        print(f"wrote {args.overlay}")
    return 0


from tinyseg._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)


if __name__ == "__main__":
    sys.exit(main())
