"""The pydensecrf-compatible API: the post's CRF cell, utils, and agreement with pydensecrf."""
import os
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

import tinyseg.crf.compat as tcrf  # noqa: E402
from tinyseg.crf.compat import utils as tutils  # noqa: E402
from tinyseg.crf.filters import GridFilter, SeparableGaussianFilter  # noqa: E402
from conftest import require  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def post_inputs(rng, h=30, w=40):
    """An image with an object and the coarse two-class probabilities of an FCN (classes first)."""
    yy, xx = np.mgrid[:h, :w]
    obj = ((yy - h / 2) ** 2 / (h / 3) ** 2 + (xx - w / 2) ** 2 / (w / 3.5) ** 2) < 1
    image = np.where(obj[..., None], [210, 180, 60], [50, 70, 120]).astype(np.float64)
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    coarse = gaussian_filter(obj.astype(float), 6)                        # blurry, like FCN-32s
    p_obj = 0.15 + 0.7 * coarse / coarse.max()
    probs = np.stack([p_obj, 1 - p_obj], axis=-1).astype(np.float32)      # (H, W, 2)
    return image, probs, obj


def post_crf_cell() -> str:
    """The source of the walkthrough's cell that holds the post's CRF code."""
    with open(os.path.join(ROOT, "examples", "post_walkthrough.py")) as f:
        cells = f.read().split("\n# %%")
    (cell,) = [c for c in cells if "d = dcrf.DenseCRF(" in c]
    return cell.split("\n", 1)[1]


def test_the_posts_crf_cell_runs_with_only_its_imports_changed(rng):
    import matplotlib.pyplot as plt

    train_image, final_probabilities, train_annotation = post_inputs(rng)
    final_probabilities = final_probabilities[None]                      # (1, H, W, 2), as the post
    processed_probabilities = final_probabilities.squeeze().transpose((2, 0, 1))   # (2, H, W)
    train_annotation = train_annotation.astype(np.uint8)

    # the walkthrough's copy of the post's cell (only its two import lines differ from the post)
    ns = dict(np=np, plt=plt, train_image=train_image, final_probabilities=final_probabilities,
              processed_probabilities=processed_probabilities, train_annotation=train_annotation)
    exec(compile(post_crf_cell(), "examples/post_walkthrough.py (the post's CRF cell)", "exec"), ns)
    plt.close(ns["f"])
    sys.path.remove(ns["path"])
    res, d, image = ns["res"], ns["d"], ns["image"]

    assert res.shape == image.shape[:2]
    assert isinstance(d._terms[0].filter, SeparableGaussianFilter)       # grid features detected
    assert isinstance(d._terms[1].filter, GridFilter)
    # class 0 is the object: the CRF must recover it better than the coarse argmax did
    before = np.mean((processed_probabilities.argmax(0) == 0) == train_annotation.astype(bool))
    after = np.mean((res == 0) == train_annotation.astype(bool))
    assert after >= before and after > 0.95


def test_constants_have_pydensecrf_values():
    assert (tcrf.CONST_KERNEL, tcrf.DIAG_KERNEL, tcrf.FULL_KERNEL) == (0, 1, 2)
    assert (tcrf.NO_NORMALIZATION, tcrf.NORMALIZE_BEFORE, tcrf.NORMALIZE_AFTER,
            tcrf.NORMALIZE_SYMMETRIC) == (0, 1, 2, 3)


def test_dense_crf_2d_equals_dense_crf_with_features(rng):
    image, probs, _ = post_inputs(rng, 16, 21)
    h, w = image.shape[:2]
    unary = tutils.unary_from_softmax(probs.transpose(2, 0, 1))
    a = tcrf.DenseCRF2D(w, h, 2)
    a.setUnaryEnergy(unary)
    a.addPairwiseGaussian(sxy=3, compat=3)
    a.addPairwiseBilateral(sxy=10, srgb=20, rgbim=image, compat=10)
    b = tcrf.DenseCRF(h * w, 2)
    b.setUnaryEnergy(unary)
    b.addPairwiseEnergy(tutils.create_pairwise_gaussian((3, 3), (h, w)), compat=3)
    b.addPairwiseEnergy(tutils.create_pairwise_bilateral((10, 10), (20, 20, 20), image, chdim=2),
                        compat=10)
    np.testing.assert_allclose(a.inference(4), b.inference(4), atol=1e-5)


def test_step_inference_equals_inference(rng):
    image, probs, _ = post_inputs(rng, 12, 15)
    d = tcrf.DenseCRF2D(15, 12, 2)
    d.setUnaryEnergy(tutils.unary_from_softmax(probs.transpose(2, 0, 1)))
    d.addPairwiseBilateral(sxy=5, srgb=20, rgbim=image, compat=10)
    q, tmp1, tmp2 = d.startInference()
    kls = [d.klDivergence(q)]
    for _ in range(3):
        d.stepInference(q, tmp1, tmp2)
        kls.append(d.klDivergence(q))
    np.testing.assert_allclose(q, d.inference(3), atol=1e-5)
    assert kls[-1] < kls[0]


def test_unary_and_label_utils(rng):
    labels = rng.integers(0, 4, (5, 6))
    u = tutils.unary_from_labels(labels, 3, 0.7)
    assert u.shape == (3, 30) and u.dtype == np.float32
    known = labels.ravel() > 0
    np.testing.assert_allclose(u[labels.ravel()[known] - 1, np.flatnonzero(known)], -np.log(0.7), rtol=1e-6)
    np.testing.assert_allclose(u[:, ~known], -np.log(1 / 3), rtol=1e-6)
    np.testing.assert_array_equal(tutils.compute_unary(labels, 3, 0.7), u)
    sm = rng.dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1)
    np.testing.assert_allclose(tutils.softmax_to_unary(sm), -np.log(sm).reshape(3, -1), rtol=1e-6)
    assert np.isinf(tutils.softmax_to_unary(np.array([[0.0, 1.0], [1.0, 0.0]]))).any()


def test_utils_match_pydensecrf(rng):
    pu = require("pydensecrf.utils")
    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    sm = rng.dirichlet(np.ones(3), size=(7, 9)).transpose(2, 0, 1).astype(np.float32)
    labels = rng.integers(0, 4, (7, 9))
    pairs = [
        (tutils.unary_from_softmax(sm), pu.unary_from_softmax(sm)),
        (tutils.unary_from_softmax(sm, scale=0.8, clip=1e-3), pu.unary_from_softmax(sm, 0.8, 1e-3)),
        (tutils.unary_from_labels(labels, 3, 0.6), pu.unary_from_labels(labels, 3, 0.6)),
        (tutils.unary_from_labels(labels, 4, 0.6, False), pu.unary_from_labels(labels, 4, 0.6, False)),
        (tutils.create_pairwise_gaussian((3, 4), (7, 9)), pu.create_pairwise_gaussian((3, 4), (7, 9))),
        (tutils.create_pairwise_bilateral((3, 4), (5, 6, 7), img, 2),
         pu.create_pairwise_bilateral((3, 4), (5, 6, 7), img, 2)),
        (tutils.create_pairwise_bilateral((3, 4), 5, img[..., 0]),
         pu.create_pairwise_bilateral((3, 4), 5, img[..., 0])),
    ]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def _both(h, w, unary, image, bilateral, iterations=5):
    dcrf = require("pydensecrf.densecrf")
    out = []
    for module in (dcrf, tcrf):
        d = module.DenseCRF2D(w, h, unary.shape[0])
        d.setUnaryEnergy(unary)
        d.addPairwiseGaussian(sxy=3, compat=3)
        if bilateral:
            d.addPairwiseBilateral(sxy=20, srgb=13, rgbim=image, compat=10)
        out.append(np.argmax(np.array(d.inference(iterations)), axis=0))
    return out


@pytest.mark.parametrize("bilateral", [False, True], ids=["gaussian-only", "full"])
def test_agrees_with_pydensecrf(rng, bilateral):
    image, probs, _ = post_inputs(rng, 48, 64)
    noisy = np.clip(probs + rng.normal(0, 0.15, probs.shape), 0.01, None)
    unary = tutils.unary_from_softmax((noisy / noisy.sum(-1, keepdims=True)).transpose(2, 0, 1))
    theirs, ours = _both(48, 64, unary, image, bilateral)
    assert np.mean(theirs != unary.argmin(0)) > 0.02                      # the CRF did work
    assert np.mean(ours == theirs) >= 0.98


def test_agrees_with_pydensecrf_on_many_labels(rng):
    """Five colour stripes; the probabilities are blurred, shifted stripes plus noise."""
    h, w, n = 40, 60, 5
    stripe = np.minimum(np.arange(w) * n // w, n - 1)                     # (W,) class per column
    colours = rng.integers(0, 256, (n, 3))
    image = np.clip(colours[stripe][None].repeat(h, 0) + rng.normal(0, 8, (h, w, 3)), 0, 255)
    shifted = np.eye(n)[np.minimum((np.arange(w) + 4) * n // w, n - 1)]   # (W, n), 4 px off
    sm = gaussian_filter(np.broadcast_to(shifted, (h, w, n)), (0, 5, 0)) + rng.random((h, w, n)) * 0.3
    unary = tutils.unary_from_softmax((sm / sm.sum(-1, keepdims=True)).transpose(2, 0, 1))
    theirs, ours = _both(h, w, unary, image.astype(np.uint8), True)
    assert np.mean(theirs != unary.argmin(0)) > 0.02
    assert np.mean(ours == theirs) >= 0.98


@pytest.mark.parametrize("use_2d", [False, True], ids=["generic", "2d"])
def test_pydensecrf_inference_example_procedure_agrees(rng, use_2d):
    """pydensecrf's examples/inference.py, step by step, on a synthetic image and a scribbled
    annotation (0 = unknown, as the example's black): >= 99.5% of the labels as pydensecrf's."""
    peer = require("pydensecrf.densecrf")
    peer_utils = require("pydensecrf.utils")
    h, w = 90, 120
    yy, xx = np.mgrid[:h, :w]
    regions = (xx > 40).astype(int) + ((yy - 45) ** 2 + (xx - 85) ** 2 < 25 ** 2)   # 0, 1, 2
    colours = np.array([[30, 40, 150], [200, 180, 60], [60, 160, 70]])
    img = np.clip(gaussian_filter(colours[regions].astype(float), (1.5, 1.5, 0))
                  + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    anno = np.zeros((h, w), int)                          # scribbles: label l + 1, 0 = unknown
    anno[10:20, 5:30] = 1
    anno[70:80, 50:60] = 2
    anno[40:50, 80:90] = 3
    labels = anno.ravel()
    results = []
    for dcrf, utils in ((peer, peer_utils), (tcrf, tutils)):
        U = utils.unary_from_labels(labels, 3, gt_prob=0.7, zero_unsure=True)
        if use_2d:
            d = dcrf.DenseCRF2D(w, h, 3)
            d.setUnaryEnergy(U)
            d.addPairwiseGaussian(sxy=(3, 3), compat=3, kernel=dcrf.DIAG_KERNEL,
                                  normalization=dcrf.NORMALIZE_SYMMETRIC)
            d.addPairwiseBilateral(sxy=(80, 80), srgb=(13, 13, 13), rgbim=img, compat=10,
                                   kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
        else:
            d = dcrf.DenseCRF(w * h, 3)
            d.setUnaryEnergy(U)
            d.addPairwiseEnergy(utils.create_pairwise_gaussian(sdims=(3, 3), shape=img.shape[:2]),
                                compat=3, kernel=dcrf.DIAG_KERNEL,
                                normalization=dcrf.NORMALIZE_SYMMETRIC)
            d.addPairwiseEnergy(utils.create_pairwise_bilateral(sdims=(80, 80), schan=(13, 13, 13),
                                                                img=img, chdim=2),
                                compat=10, kernel=dcrf.DIAG_KERNEL,
                                normalization=dcrf.NORMALIZE_SYMMETRIC)
        Q = d.inference(5)
        MAP = np.argmax(Q, axis=0)
        Q, tmp1, tmp2 = d.startInference()
        kl = []
        for _ in range(5):
            kl.append(d.klDivergence(Q))
            d.stepInference(Q, tmp1, tmp2)
        results.append((MAP, kl))
    (theirs, kl_theirs), (ours, kl_ours) = results
    assert np.mean(theirs != np.where(labels > 0, labels - 1, theirs)) < 0.01   # scribbles kept
    assert np.mean(ours == theirs) >= 0.995
    assert kl_ours[-1] < kl_ours[0]
    np.testing.assert_allclose(kl_ours, kl_theirs, rtol=0.05)
