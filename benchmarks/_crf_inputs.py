"""The CRF benchmarks' inputs: photos from scikit-image, network-like probabilities, parameters,
and one CRF through a pydensecrf-style module.

Network-like probabilities of an H×W photo with C labels: SLIC superpixels (about 40 segments),
each given one class (background with probability 1/2, else one of up to three other classes
drawn for the image); logits 3 for the segment's class, 0 elsewhere, plus Gaussian noise drawn
on a stride-8 grid and upsampled bilinearly (a network's coarse errors); blurred by a Gaussian of
σ = 8 px (a stride-8 network's soft boundaries), then softmax. Deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np

# (spatial sxy, spatial w, bilateral sxy, srgb, bilateral w): the post's pydensecrf call, and
# DeepLab's PASCAL VOC setting.
PARAMS = {
    "post": (10, 3, 50, 20, 10),
    "deeplab": (3, 3, 80, 13, 4),
    # small colour bandwidths, where a bilateral grid needs many cells
    "srgb5": (3, 3, 80, 5, 4),
    "srgb3": (3, 3, 80, 3, 4),
    "srgb1": (3, 3, 80, 1, 4),
}
SIZES = {"375x500": (375, 500), "512x512": (512, 512)}
#: photos of the per-image columns (a) and (b)
CASE_PHOTOS = ("chelsea", "astronaut", "coffee", "rocket")
#: photos of the throughput set (each as is and mirrored: 16 images)
SET_PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "motorcycle", "immunohistochemistry",
              "hubble_deep_field", "retina")


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo (H, W, 3) uint8 (all bundled with scikit-image)."""
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def resized(image: np.ndarray, shape) -> np.ndarray:
    from skimage import transform

    out = transform.resize(image, shape, anti_aliasing=True, preserve_range=True)
    return np.ascontiguousarray(np.clip(out.round(), 0, 255).astype(np.uint8))


def network_like_probabilities(image: np.ndarray, n_labels: int, seed: int = 0) -> np.ndarray:
    """(H, W, C) float32 probabilities that look like a segmentation network's (module docstring)."""
    from scipy.ndimage import gaussian_filter
    from skimage import transform
    from skimage.segmentation import slic

    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    segments = slic(image, n_segments=40, compactness=10, start_label=0)
    others = rng.choice(np.arange(1, n_labels), size=min(3, n_labels - 1), replace=False)
    classes = np.where(rng.random(segments.max() + 1) < 0.5, 0, rng.choice(others, segments.max() + 1))
    logits = np.zeros((h, w, n_labels))
    np.put_along_axis(logits, classes[segments][..., None], 3.0, axis=2)
    noise = rng.normal(0.0, 1.0, (-(-h // 8), -(-w // 8), n_labels))
    logits += transform.resize(noise, (h, w), order=1)
    logits = gaussian_filter(logits, sigma=(8, 8, 0))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def unary_of(p: np.ndarray) -> np.ndarray:
    """(H, W, C) probabilities -> (C, H*W) float32 unary, C-contiguous (pydensecrf's layout)."""
    return np.ascontiguousarray(-np.log(np.maximum(p, 1e-8)).transpose(2, 0, 1).reshape(p.shape[2], -1),
                                dtype=np.float32)


def run_crf(module, image, unary, params="post", iterations=10, **kw):
    """Set-up + inference through a pydensecrf-style ``module``; returns Q (C, N) as an array."""
    gsxy, gw, bsxy, srgb, bw = PARAMS[params]
    h, w = image.shape[:2]
    d = module.DenseCRF2D(w, h, unary.shape[0], **kw)
    d.setUnaryEnergy(unary)
    d.addPairwiseGaussian(sxy=gsxy, compat=gw)
    d.addPairwiseBilateral(sxy=bsxy, srgb=srgb, rgbim=image, compat=bw)
    return np.asarray(d.inference(iterations))


def dense_crf_params(params: str, iterations: int) -> dict:
    """The same CRF as :func:`run_crf` in :func:`tinyseg.crf.dense_crf`'s keywords."""
    gsxy, gw, bsxy, srgb, bw = PARAMS[params]
    return dict(gaussian_sdims=(gsxy, gsxy), gaussian_compat=float(gw), sdims=(bsxy, bsxy),
                schan=(srgb,) * 3, compat=float(bw), iterations=iterations)


def pydensecrf_refine(image: np.ndarray, probabilities: np.ndarray, params: str,
                      iterations: int) -> np.ndarray:
    """What a pydensecrf user's worker does with one image: unary, set-up, inference, argmax."""
    import pydensecrf.densecrf as dcrf

    q = run_crf(dcrf, np.ascontiguousarray(image), unary_of(probabilities), params, iterations)
    return q.argmax(0).reshape(image.shape[:2]).astype(np.int32)


def peer_module():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        return None
    return dcrf
