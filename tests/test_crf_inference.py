"""Mean-field inference: against a plain NumPy mean field, and fast filters against brute force."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tinyseg.crf import dense_crf
from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import ExactFilter, exact_filter_reference
from tinyseg.crf.inference import (MeanField, PairwiseTerm, mean_field_reference, softmax,
                                   softmax_reference)


def scene(rng, h=20, w=28, n_labels=2):
    """A small image with a bright blob and noisy, coarse probabilities that favour the blob."""
    yy, xx = np.mgrid[:h, :w]
    blob = ((yy - h / 2) ** 2 + (xx - w / 2.2) ** 2) < (h / 3) ** 2
    img = np.where(blob[..., None], [200, 60, 50], [40, 90, 160]).astype(np.float64)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    logits = rng.normal(0, 1.0, (h, w, n_labels))
    logits[..., 1 % n_labels] += 1.2 * gaussian_filter(blob.astype(float), 4)
    p = np.exp(logits)
    return img, (p / p.sum(-1, keepdims=True)).astype(np.float32)


def test_softmax_matches_reference_and_is_stable(rng):
    logits = rng.normal(0, 50, (40, 5)).astype(np.float32)
    logits[0] = [1e4, 1e4 - 1, -1e4, 0, 3]
    out = softmax(logits)
    np.testing.assert_allclose(out, softmax_reference(logits), atol=1e-6)
    assert np.all(np.isfinite(out))


def test_symmetric_normalisation_numerically(rng):
    """K̃ = D^-1/2 K D^-1/2 with D = K 1 (diagonal included): K̃ is symmetric, K̃ D^1/2 1 = D^1/2 1."""
    feats = bilateral_features(scene(rng, 6, 7)[0], (3, 3), (40, 40, 40))
    n = feats.shape[0]
    mf = MeanField(np.zeros((n, 1), np.float32), [PairwiseTerm(ExactFilter(feats), 1.0)])
    term = mf.terms[0]
    k_tilde = np.empty((n, n), np.float32)
    for j in range(n):                                  # K̃ column by column, through inference's path
        e = np.zeros((n, 1), np.float32)
        e[j] = 1
        mf._filtered(term, e, k_tilde[:, j:j + 1])
    k = exact_filter_reference(feats, np.eye(n))        # dense K, K[i, i] = 1
    d = k.sum(axis=1)
    np.testing.assert_allclose(k_tilde, k / np.sqrt(np.outer(d, d)), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(k_tilde, k_tilde.T, atol=1e-6)
    np.testing.assert_allclose(k_tilde @ np.sqrt(d), np.sqrt(d), rtol=1e-4)


@pytest.mark.parametrize("n_labels", [2, 3, 5])
def test_mean_field_matches_numpy_reference(rng, n_labels):
    img, p = scene(rng, 10, 12, n_labels)
    h, w = img.shape[:2]
    unary = -np.log(p.reshape(h * w, n_labels))
    f_spatial = spatial_features((h, w), (2, 2))
    f_bilateral = bilateral_features(img, (5, 5), (20, 20, 20))
    terms = [PairwiseTerm(ExactFilter(f_spatial), 3.0), PairwiseTerm(ExactFilter(f_bilateral), 10.0)]
    q = MeanField(unary, terms).run(5)
    kernels = [exact_filter_reference(f, np.eye(h * w)) for f in (f_spatial, f_bilateral)]
    ref = mean_field_reference(unary, kernels, [3.0, 10.0], iterations=5)
    np.testing.assert_allclose(q, ref, atol=2e-5)


def test_label_compatibility_forms_agree(rng):
    """pydensecrf's convention: Potts w == vector -w == matrix -w I."""
    img, p = scene(rng, 8, 9, 3)
    unary = -np.log(p.reshape(-1, 3))
    feats = spatial_features((8, 9), (2, 2))
    out = [MeanField(unary, [PairwiseTerm(ExactFilter(feats), c)]).run(3)
           for c in (4.0, np.full(3, -4.0), -4.0 * np.eye(3))]
    np.testing.assert_allclose(out[1], out[0], atol=1e-6)
    np.testing.assert_allclose(out[2], out[0], atol=1e-6)


def test_kl_divergence_falls_over_the_iterations(rng):
    img, p = scene(rng)
    h, w = img.shape[:2]
    mf = MeanField(-np.log(p.reshape(h * w, 2)),
                   [PairwiseTerm(ExactFilter(bilateral_features(img, (8, 8), (20, 20, 20))), 10.0)])
    q = mf.start()
    kls = [mf.kl_divergence(q)]
    for _ in range(4):
        q = mf.step(q)
        kls.append(mf.kl_divergence(q))
    assert kls[-1] < kls[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_crf_agrees_with_the_exact_crf(seed):
    rng = np.random.default_rng(seed)
    img, p = scene(rng, 24, 30)
    params = dict(sdims=(12, 12), schan=(20, 20, 20), compat=10, gaussian_sdims=(3, 3),
                  gaussian_compat=3, iterations=5)
    fast, q_fast = dense_crf(img, p, **params)
    exact, q_exact = dense_crf(img, p, method="exact", **params)
    assert np.mean(fast == exact) >= 0.98
    assert np.abs(q_fast - q_exact).max() < 0.2
    assert np.mean(exact != p.argmax(2)) > 0.02          # the CRF did change something


def test_dense_crf_shapes_dtypes_and_zero_iterations(rng):
    img, p = scene(rng, 9, 11, 4)
    labels, q = dense_crf(img, p, iterations=0)
    assert labels.shape == (9, 11) and labels.dtype == np.int32
    assert q.shape == (9, 11, 4) and q.dtype == np.float32
    np.testing.assert_array_equal(labels, p.argmax(2))                  # Q = softmax(log p) = p
    np.testing.assert_allclose(q, p, atol=1e-6)
    np.testing.assert_allclose(dense_crf(img, p)[1].sum(2), 1.0, atol=1e-5)


def test_dense_crf_with_one_label_and_without_pairwise_terms(rng):
    img, p = scene(rng, 5, 6, 2)
    labels, q = dense_crf(img, p[..., :1] / p[..., :1])
    assert np.all(labels == 0) and np.allclose(q, 1)
    labels, q = dense_crf(img, p, compat=0, gaussian_compat=0)
    np.testing.assert_array_equal(labels, p.argmax(2))


@pytest.mark.parametrize("normalization", ["before", "after", "none"])
def test_other_normalisations_match_their_definitions(rng, normalization):
    """pydensecrf's NORMALIZE_BEFORE: K D^-1; NORMALIZE_AFTER: D^-1 K; NO_NORMALIZATION: K."""
    feats = spatial_features((5, 6), (1.5, 2.0))
    n = feats.shape[0]
    mf = MeanField(np.zeros((n, 2), np.float32), [PairwiseTerm(ExactFilter(feats), 1.0, normalization)])
    q = rng.random((n, 2)).astype(np.float32)
    out = np.empty_like(q)
    mf._filtered(mf.terms[0], q, out)
    k = exact_filter_reference(feats, np.eye(n))
    d = k.sum(axis=1)
    expected = {"before": k / d[None, :], "after": k / d[:, None], "none": k}[normalization] @ q
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)
    q2 = rng.random((n, 2)).astype(np.float32)
    q2 /= q2.sum(1, keepdims=True)                      # rows sum to 1: the C-1 channel path
    mf._filtered(mf.terms[0], q2, out)
    expected = {"before": k / d[None, :], "after": k / d[:, None], "none": k}[normalization] @ q2
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_general_compatibility_matrix_matches_numpy_reference(rng):
    """A full, non-symmetric C×C compatibility (CRF-as-RNN's): logits = -U - K̃Q M^T."""
    img, p = scene(rng, 8, 10, 4)
    h, w = img.shape[:2]
    unary = -np.log(p.reshape(h * w, 4))
    f_spatial = spatial_features((h, w), (2, 2))
    f_bilateral = bilateral_features(img, (4, 4), (30, 30, 30))
    m = rng.normal(0, 2, (4, 4)).astype(np.float32)
    assert np.abs(m - m.T).max() > 0.5
    terms = [PairwiseTerm(ExactFilter(f_spatial), 3.0), PairwiseTerm(ExactFilter(f_bilateral), m)]
    q = MeanField(unary, terms).run(4)
    kernels = [exact_filter_reference(f, np.eye(h * w)) for f in (f_spatial, f_bilateral)]
    np.testing.assert_allclose(q, mean_field_reference(unary, kernels, [3.0, m], 4), atol=2e-5)
    # and it is not the symmetrised matrix's result
    sym = mean_field_reference(unary, kernels, [3.0, (m + m.T) / 2], 4)
    assert np.abs(q - sym).max() > 1e-3
