"""What the cures buy near object boundaries, measured (issue 8's accuracy claims).

For every trimap half-width w ≤ 8 px (2, 4, 8): FCN-8s scores a higher trimap mean IoU than
FCN-32s, and the seed's dense CRF raises each model's. Two datasets, each model trained the same
way from the same seed (so from the same initial VGG backbone):

* **synthetic** — 6 images (128×160) of textured shapes of 3 classes on a textured ground, exact
  ground truth (:func:`tinyseg.data.synthetic.synthetic_dataset`); width 1/16, 250 iterations of Adam
  1e-3 on the mean loss, scored on the training images as the seed scores its one image (the
  held-out version, 16 training and 6 test images, is ``benchmarks/bench_boundary.py``);
* **chelsea** — the bundled cat, exactly the study's setting (``tinyseg demo --compare``:
  width 0.25, 30 iterations of Adam 1e-4 on the summed loss, the seed's protocol).

On chelsea the CRF does *not* raise FCN-8s's trimap IoU: from scratch FCN-8s fits its one
training image almost exactly, and along the cat's right side — white fur against a blurred white
wall, where the annotation itself has no visible edge — the CRF's colour term pulls the boundary
into the fur. That claim is kept as a strict xfail with the measured numbers.

Each dataset trains three small networks (about a minute on 2 cores), hence ``slow``.
"""
import pytest

from tinyseg.study import SETTINGS, score_model, study_data, train_model
from tinyseg.data.synthetic import synthetic_dataset

pytestmark = pytest.mark.slow

MODELS = ("fcn32s", "fcn8s", "deeplab-largefov")
BAND = (2, 4, 8)


def trimap(scores, name, stage, w):
    return scores[name][stage]["trimap"][str(w)]["mean_iou"]


@pytest.fixture(scope="module")
def synthetic():
    samples = synthetic_dataset(6, size=(128, 160), n_classes=4, seed=1)
    scores = {}
    for name in MODELS:
        model, _, _ = train_model(name, samples, 4, width=0.0625, iterations=250, lr=1e-3,
                                  reduction="mean")
        scores[name] = score_model(model, samples, 4, widths=BAND)[0]
    return scores


@pytest.fixture(scope="module")
def chelsea():
    train, test, n_classes = study_data("chelsea")
    scores = {}
    for name in MODELS:
        model, _, _ = train_model(name, train, n_classes, **SETTINGS["chelsea"]["scratch"])
        scores[name] = score_model(model, test, n_classes, widths=BAND)[0]
    return scores


@pytest.mark.parametrize("w", BAND)
def test_synthetic_fcn8s_beats_fcn32s_near_boundaries(synthetic, w):
    assert trimap(synthetic, "fcn8s", "fcn", w) > trimap(synthetic, "fcn32s", "fcn", w)


@pytest.mark.parametrize("name", MODELS)
def test_synthetic_crf_raises_boundary_iou_of_each_model(synthetic, name):
    for w in BAND:
        assert trimap(synthetic, name, "crf", w) > trimap(synthetic, name, "fcn", w), w


@pytest.mark.parametrize("w", BAND)
def test_chelsea_fcn8s_beats_fcn32s_near_boundaries(chelsea, w):
    assert trimap(chelsea, "fcn8s", "fcn", w) > trimap(chelsea, "fcn32s", "fcn", w)


@pytest.mark.parametrize("name", ["fcn32s", "deeplab-largefov"])
def test_chelsea_crf_raises_boundary_iou_of_fcn32s_and_deeplab(chelsea, name):
    for w in BAND:
        assert trimap(chelsea, name, "crf", w) > trimap(chelsea, name, "fcn", w), w


@pytest.mark.xfail(strict=True, reason="measured: the CRF lowers FCN-8s's trimap IoU on chelsea "
                   "(2026-11-30: w=2 0.760 -> 0.698, w=4 0.840 -> 0.815, w=8 0.916 -> 0.902; DeepLab's CRF "
                   "parameters lower it too); see the module docstring")
def test_chelsea_crf_raises_boundary_iou_of_fcn8s(chelsea):
    for w in BAND:
        assert trimap(chelsea, "fcn8s", "crf", w) > trimap(chelsea, "fcn8s", "fcn", w), w
