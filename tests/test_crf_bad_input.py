"""Bad input to the CRF gives an error that names the argument, or a documented clip."""
import numpy as np
import pytest

import tinyseg.crf.compat as dcrf
from tinyseg.crf import PROBABILITY_CLIP, dense_crf
from tinyseg.crf.compat.utils import unary_from_softmax
from conftest import require


@pytest.fixture
def image(rng):
    return rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)


@pytest.fixture
def probs(rng):
    p = rng.random((4, 6, 2)).astype(np.float32) + 0.1
    return p / p.sum(-1, keepdims=True)


def test_probabilities_and_image_must_share_height_and_width(image):
    with pytest.raises(ValueError, match=r"`probabilities` has shape \(4, 5, 2\) but `image` is 4×6"):
        dense_crf(image, np.full((4, 5, 2), 0.5, np.float32))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((4, 6), np.uint8), "H×W×3"),
    (np.zeros((4, 6, 4), np.uint8), "H×W×3"),
    (np.zeros((4, 6, 3), np.float32), "uint8"),
])
def test_image_must_be_uint8_rgb(bad, match, probs):
    with pytest.raises(ValueError, match=match):
        dense_crf(bad, probs)


def test_nan_probabilities_are_rejected(image, probs):
    probs[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="`probabilities` contains NaN"):
        dense_crf(image, probs)


def test_negative_or_integer_probabilities_are_rejected(image, probs):
    with pytest.raises(ValueError, match="non-negative"):
        dense_crf(image, probs - 0.5)
    with pytest.raises(ValueError, match="floating point"):
        dense_crf(image, (probs > 0.5).astype(np.int64))


def _constrained_scene():
    """A flat image: the left of it strongly class 0, a strip on the right with p(class 0) = 0."""
    img = np.full((12, 16, 3), 120, np.uint8)
    p = np.zeros((12, 16, 2), np.float32)
    p[..., 0], p[..., 1] = 0.99, 0.01
    p[:, 12:] = (0.0, 1.0)
    return img, p


STRONG = dict(sdims=20, gaussian_sdims=3, compat=100, gaussian_compat=30, iterations=5)


def test_zero_probabilities_are_hard_constraints(image, probs):
    img, p = _constrained_scene()
    labels, q = dense_crf(img, p, **STRONG)
    assert np.all(labels[:, 12:] == 1) and np.all(q[:, 12:, 0] == 0.0)   # class 0 stays out
    # clipped, the zeros are soft: the strong smoothing pulls class 0 into the strip
    labels, q = dense_crf(img, p, clip=PROBABILITY_CLIP, **STRONG)
    assert np.all(labels[:, 12:] == 0)


def test_zero_probabilities_agree_with_pydensecrf():
    dcrf_peer = require("pydensecrf.densecrf")
    img, p = _constrained_scene()
    with np.errstate(divide="ignore"):
        u = np.ascontiguousarray((-np.log(p)).transpose(2, 0, 1).reshape(2, -1), dtype=np.float32)
    out = []
    for module in (dcrf_peer, dcrf):
        d = module.DenseCRF2D(16, 12, 2)
        d.setUnaryEnergy(u)
        d.addPairwiseGaussian(sxy=3, compat=30)
        d.addPairwiseBilateral(sxy=20, srgb=20, rgbim=img, compat=100)
        out.append(np.asarray(d.inference(5)))
    assert np.all(out[0][0].reshape(12, 16)[:, 12:] == 0.0)                # pydensecrf's behaviour
    assert np.all(out[1][0].reshape(12, 16)[:, 12:] == 0.0)
    np.testing.assert_array_equal(out[1].argmax(0), out[0].argmax(0))


def test_a_pixel_without_any_possible_class_is_rejected(image, probs):
    probs[1, 2] = 0.0
    with pytest.raises(ValueError, match="every class"):
        dense_crf(image, probs)


def test_bad_options_are_named(image, probs):
    with pytest.raises(ValueError, match="`iterations`"):
        dense_crf(image, probs, iterations=-1)
    with pytest.raises(ValueError, match="`method`"):
        dense_crf(image, probs, method="lattice")
    with pytest.raises(ValueError, match="`sdims`"):
        dense_crf(image, probs, sdims=(0, 5))
    with pytest.raises(ValueError, match="`schan`"):
        dense_crf(image, probs, schan=(1, 2))


# ---- the pydensecrf-compatible API ------------------------------------------------------------

@pytest.fixture
def crf():
    return dcrf.DenseCRF2D(6, 4, 2)


def test_unary_must_be_float32(crf, probs):
    u = unary_from_softmax(probs.transpose(2, 0, 1)).astype(np.float64)
    with pytest.raises(ValueError, match="`unary` must be float32, got float64"):
        crf.setUnaryEnergy(u)


def test_unary_must_be_c_contiguous(crf, probs):
    u = np.asfortranarray(unary_from_softmax(probs.transpose(2, 0, 1)))
    with pytest.raises(ValueError, match="C-contiguous"):
        crf.setUnaryEnergy(u)


def test_unary_shape_must_match_the_image(crf):
    with pytest.raises(ValueError, match=r"\(nlabels, nvar\) = \(2, 24\), got \(2, 20\)"):
        crf.setUnaryEnergy(np.zeros((2, 20), np.float32))
    with pytest.raises(ValueError, match=r"got \(24, 2\)"):
        crf.setUnaryEnergy(np.zeros((24, 2), np.float32))


def test_unary_nan_is_rejected_and_inf_is_a_hard_constraint(crf, image):
    u = np.zeros((2, 24), np.float32)
    u[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        crf.setUnaryEnergy(u)
    u[0, 3] = np.inf                                    # -log 0, e.g. from softmax_to_unary
    crf.setUnaryEnergy(u)
    crf.addPairwiseBilateral(sxy=3, srgb=10, rgbim=image, compat=5)
    q = crf.inference(3)
    assert np.all(np.isfinite(q)) and q[0, 3] == 0.0
    u[1, 3] = np.inf
    with pytest.raises(ValueError, match="every label"):
        crf.setUnaryEnergy(u)


def test_pairwise_arguments_are_checked(crf, image):
    with pytest.raises(ValueError, match="`rgbim` must have shape"):
        crf.addPairwiseBilateral(sxy=3, srgb=10, rgbim=image[:3], compat=5)
    with pytest.raises(ValueError, match="`rgbim` must be uint8"):
        crf.addPairwiseBilateral(sxy=3, srgb=10, rgbim=image.astype(np.float32), compat=5)
    with pytest.raises(ValueError, match="`compat`"):
        crf.addPairwiseGaussian(sxy=3, compat=np.eye(3))
    with pytest.raises(ValueError, match="`features`"):
        crf.addPairwiseEnergy(np.zeros((2, 23), np.float32), compat=3)
    with pytest.raises(ValueError, match="`normalization`"):
        crf.addPairwiseGaussian(sxy=3, compat=3, normalization=7)
    with pytest.raises(ValueError, match="`sxy`"):
        crf.addPairwiseGaussian(sxy=-1, compat=3)


def test_step_inference_checks_its_buffers(crf):
    q, t1, t2 = crf.startInference()
    with pytest.raises(ValueError, match="`Q`"):
        crf.stepInference(q.astype(np.float64), t1, t2)
