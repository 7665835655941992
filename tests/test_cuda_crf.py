"""The dense CRF's CUDA filters and mean field equal their CPU twins (tiny images, simulator-safe)."""
import numpy as np
import pytest

from tinyseg.backend import get_backend
from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import ExactFilter, GridFilter, SeparableGaussianFilter
from tinyseg.crf.inference import MeanField, PairwiseTerm

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def crf():
    get_backend("cuda")                   # raises if neither a GPU nor the simulator is present
    from tinyseg.crf import cuda as crf
    return crf


def scene(rng, h=5, w=6, n_labels=2):
    """A two-colour image and noisy probabilities that roughly follow it."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = [200, 60, 50]
    img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    logits = rng.normal(0, 1.0, (h, w, n_labels))
    logits[:, w // 2:, 1 % n_labels] += 1.0
    p = np.exp(logits)
    return img, (p / p.sum(-1, keepdims=True)).astype(np.float32)


def values(rng, n, m):
    return rng.random((n, m)).astype(np.float32)


def test_cuda_exact_filter_matches_cpu(crf, rng):
    feats = bilateral_features(scene(rng)[0], (2, 2), (30, 30, 30))
    v = values(rng, feats.shape[0], 2)
    np.testing.assert_allclose(crf.CudaExactFilter(feats).apply(v), ExactFilter(feats).apply(v),
                               rtol=1e-5, atol=1e-6)


def test_cuda_separable_filter_matches_cpu(crf, rng):
    v = values(rng, 5 * 6, 3)
    cpu = SeparableGaussianFilter((5, 6), (1.5, 2.0), truncate=2.0)
    np.testing.assert_allclose(crf.to_cuda_filter(cpu).apply(v), cpu.apply(v), rtol=1e-5, atol=1e-6)


def test_cuda_grid_filter_matches_cpu(crf, rng):
    feats = bilateral_features(scene(rng)[0], (2, 2), (30, 30, 30))
    cpu = GridFilter(feats)
    v = values(rng, feats.shape[0], 3)                 # odd M: the CPU's complex pairing + a single
    np.testing.assert_allclose(crf.CudaGridFilter(cpu).apply(v), cpu.apply(v), rtol=1e-4, atol=1e-5)


def test_cuda_filter_keeps_device_arrays_on_device(crf, rng):
    gpu = get_backend("cuda")
    filt = crf.CudaSeparableGaussianFilter((5, 6), (1.0, 1.0))
    out = filt.apply(gpu.asarray(values(rng, 30, 2)))
    assert gpu.owns(out)


@pytest.mark.parametrize("n_labels,compat,bilateral", [(2, 10.0, GridFilter), (3, [1.0, 2.0, 3.0], ExactFilter)])
def test_cuda_mean_field_matches_cpu(crf, rng, n_labels, compat, bilateral):
    """Potts with the grid, and a label-wise compatibility with the exact bilateral filter."""
    img, p = scene(rng, 4, 5, n_labels=n_labels)
    h, w = img.shape[:2]
    unary = -np.log(p.reshape(h * w, n_labels))
    terms = [PairwiseTerm(SeparableGaussianFilter((h, w), (1.0, 1.0)), 3.0),
             PairwiseTerm(bilateral(bilateral_features(img, (3, 3), (60, 60, 60))), compat)]
    want = MeanField(unary, terms).run(2)
    assert np.abs(want - MeanField(unary, []).run(0)).max() > 0.05   # the pairwise terms matter
    got = crf.mean_field(unary, terms, iterations=2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_cuda_mean_field_other_normalisations_match_cpu(crf, rng):
    img, p = scene(rng, 4, 4)
    unary = -np.log(p.reshape(16, 2))
    feats = spatial_features((4, 4), (1.5, 1.5))
    terms = [PairwiseTerm(ExactFilter(feats), 2.0, normalization="before"),
             PairwiseTerm(ExactFilter(feats), 1.0, normalization="none")]
    np.testing.assert_allclose(crf.mean_field(unary, terms, 2), MeanField(unary, terms).run(2),
                               rtol=1e-4, atol=1e-5)


def test_to_cuda_filter_rejects_unknown_filters(crf):
    with pytest.raises(TypeError, match="no CUDA version"):
        crf.to_cuda_filter(object())


@pytest.mark.cuda
def test_dense_crf_on_the_cuda_device_matches_the_cpu():
    from tinyseg.crf import dense_crf

    rng = np.random.default_rng(0)
    image, _ = scene(rng, 9, 11)                # two colours: a small grid, a fast simulator
    p = rng.dirichlet(np.ones(3), size=(9, 11)).astype(np.float32)
    kw = dict(sdims=3, schan=60, gaussian_sdims=1, iterations=2)    # a small grid: fast simulator
    labels_cpu, q_cpu = dense_crf(image, p, **kw)
    labels_gpu, q_gpu = dense_crf(image, p, device="cuda", **kw)
    np.testing.assert_allclose(q_gpu, q_cpu, atol=1e-4)
    assert (labels_gpu == labels_cpu).mean() > 0.98


def test_cuda_grid_filter_from_its_layout_and_its_transpose(crf, rng):
    feats = bilateral_features(scene(rng)[0], (2, 2), (30, 30, 30))
    cpu = GridFilter(feats)
    gpu = crf.CudaGridFilter(cpu.describe())                # built from the public description
    v = values(rng, feats.shape[0], 2)
    np.testing.assert_allclose(gpu.apply(v), cpu.apply(v), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.apply_transpose(v), cpu.apply_transpose(v), rtol=1e-4, atol=1e-5)
    assert gpu.symmetric and crf.to_cuda_filter(ExactFilter(feats)).symmetric


def test_cuda_mean_field_with_a_general_compatibility_matrix(crf, rng):
    img, p = scene(rng, 4, 5, n_labels=3)
    unary = -np.log(p.reshape(20, 3))
    m = rng.normal(0, 2, (3, 3)).astype(np.float32)               # not symmetric
    terms = [PairwiseTerm(ExactFilter(bilateral_features(img, (3, 3), (60, 60, 60))), m)]
    np.testing.assert_allclose(crf.mean_field(unary, terms, 2), MeanField(unary, terms).run(2),
                               rtol=1e-4, atol=1e-5)


def test_cuda_recursive_and_cluster_filters_match_cpu(crf, rng):
    from tinyseg.crf.filters import ClusterFilter, RecursiveGaussianFilter

    rec = RecursiveGaussianFilter((5, 6), (3.0, 4.0))
    v = values(rng, 30, 2)
    np.testing.assert_allclose(crf.to_cuda_filter(rec).apply(v), rec.apply(v), rtol=1e-4, atol=1e-5)
    clu = ClusterFilter(bilateral_features(scene(rng)[0], (2, 2), (5, 5, 5)))
    gpu = crf.to_cuda_filter(clu)
    np.testing.assert_allclose(gpu.apply(v), clu.apply(v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu.apply_transpose(v), clu.apply_transpose(v), rtol=1e-5, atol=1e-6)
