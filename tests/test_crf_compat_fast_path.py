"""The pydensecrf-compatible API takes dense_crf's fast path whenever its calls mean the same CRF:
the same filter types, the same Q."""
import numpy as np
import pytest

import tinyseg.crf.compat as tcrf
import tinyseg.crf.refine as refine
from tinyseg.crf import dense_crf


def many_label_inputs(rng, h=48, w=64, c=21):
    """A blocky image and smooth, peaked 21-label probabilities (no zeros: no clipping differs)."""
    image = np.kron(rng.integers(0, 256, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    logits = np.kron(rng.normal(0, 2, (h // 8, w // 8, c)), np.ones((8, 8, 1)))
    logits += rng.normal(0, 0.5, logits.shape)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return image, (p / p.sum(-1, keepdims=True)).astype(np.float32)


# (spatial sxy, spatial w, bilateral sxy, srgb, bilateral w): the post's and DeepLab's
@pytest.mark.parametrize("params", [(10, 3, 50, 20, 10), (3, 3, 80, 13, 4), (1, 3, 20, 5, 4)])
def test_compat_builds_dense_crfs_filters_and_gives_its_labels(rng, params, monkeypatch):
    gsxy, gw, bsxy, srgb, bw = params
    image, p = many_label_inputs(rng)
    h, w, c = p.shape
    seen = {}
    real = refine.mean_field_on

    def spy(device, unary, terms, iterations, callback=None):
        seen["terms"] = terms
        return real(device, unary, terms, iterations, callback=callback)

    monkeypatch.setattr(refine, "mean_field_on", spy)
    labels, q = dense_crf(image, p, gaussian_sdims=gsxy, gaussian_compat=gw, sdims=bsxy,
                          schan=srgb, compat=bw, iterations=10)
    unary = np.ascontiguousarray(-np.log(p).transpose(2, 0, 1).reshape(c, -1), np.float32)
    d = tcrf.DenseCRF2D(w, h, c)
    d.setUnaryEnergy(unary)
    d.addPairwiseGaussian(sxy=gsxy, compat=gw)
    d.addPairwiseBilateral(sxy=bsxy, srgb=srgb, rgbim=image, compat=bw)
    qc = d.inference(10)                                                   # (C, N)
    ours = [type(t.filter) for t in d._terms]
    theirs = [type(t.filter) for t in seen["terms"]]
    assert ours == theirs
    for a, b in zip(d._terms, seen["terms"]):       # the same bandwidths and cells
        assert vars(a.filter).keys() == vars(b.filter).keys()
    np.testing.assert_allclose(qc.T.reshape(h, w, c), q, atol=1e-5)
    assert np.array_equal(qc.argmax(0).reshape(h, w), labels)
