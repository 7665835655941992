"""CRF-as-RNN's math: the backward pass against finite differences (float64, exact filters), the
fast kernels against their NumPy twins, Potts initialisation against the dense CRF, adjoints."""
import numpy as np
import pytest

from tinyseg.crf import MeanField, PairwiseTerm, dense_crf
from tinyseg.crf.rnn import kernels as kern
from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import (ClusterFilter, ExactFilter, GridFilter, RecursiveGaussianFilter,
                                 SeparableGaussianFilter, SpatialGridFilter,
                                 exact_filter_reference)
from tinyseg.crf.refine import bilateral_filter, spatial_filter
from tinyseg.crf.rnn.engine import MeanFieldRNN
from tinyseg.crf.rnn.reference import (combine_reference, complete_reference,
                                       crf_rnn_backward_reference, crf_rnn_forward_reference,
                                       gather_adjoint_reference, normalised_kernel,
                                       pairwise_backward_reference, potts_compat,
                                       scale_columns_reference, softmax_backward_reference)
from finite_differences import numerical_gradient


class Float64ExactFilter:
    """The exact Gaussian filter in float64 (the shipped filters return float32)."""

    symmetric = True

    def __init__(self, features):
        self.features = np.asarray(features, np.float64)
        self.n_points = self.features.shape[0]

    def apply(self, values):
        return exact_filter_reference(self.features, values)

    apply_transpose = apply


def tiny_scene(rng, h=4, w=5):
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    feats = [spatial_features((h, w), (2.0, 1.5)), bilateral_features(img, (3, 3), (60, 50, 70))]
    return img, feats


def random_params(rng, n_labels, n_kernels=2):
    w = rng.uniform(0.5, 3.0, (n_kernels, n_labels))
    mu = potts_compat(n_labels) + 0.5 * rng.standard_normal((n_labels, n_labels))
    return w, mu


@pytest.mark.parametrize("n_labels, iterations", [(2, 1), (3, 3)])
def test_reference_backward_matches_finite_differences(rng, n_labels, iterations):
    _, feats = tiny_scene(rng)
    kernels = [exact_filter_reference(f, np.eye(len(f))) for f in feats]
    z = rng.standard_normal((len(feats[0]), n_labels))
    w, mu = random_params(rng, n_labels)
    dout = rng.standard_normal(z.shape)

    def loss():
        return np.sum(dout * crf_rnn_forward_reference(z, kernels, w, mu, iterations)[0])

    dz, dw, dmu = crf_rnn_backward_reference(dout, crf_rnn_forward_reference(z, kernels, w, mu,
                                                                             iterations)[1])
    for analytic, x in ((dz, z), (dw, w), (dmu, mu)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n_labels, iterations", [(2, 2), (4, 3)])
def test_fast_kernels_in_float64_match_finite_differences(rng, n_labels, iterations):
    """The engine (the CPU kernels, C-1 channel tricks included) differentiated numerically."""
    _, feats = tiny_scene(rng)
    engine = MeanFieldRNN([Float64ExactFilter(f) for f in feats], dtype=np.float64)
    z = rng.standard_normal((engine.n_points, n_labels))
    w, mu = random_params(rng, n_labels)
    dout = rng.standard_normal(z.shape)

    def loss():
        return np.sum(dout * engine.forward(z, w, mu, iterations)[0])

    _, cache = engine.forward(z.copy(), w, mu, iterations, keep=True)
    dz, dw, dmu = engine.backward(dout, cache, w, mu)
    for analytic, x in ((dz, z), (dw, w), (dmu, mu)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


def test_float32_exact_filters_match_the_float64_reference(rng):
    img, feats = tiny_scene(rng, 5, 6)
    kernels = [exact_filter_reference(f, np.eye(len(f))) for f in feats]
    n_labels = 3
    z = rng.standard_normal((len(feats[0]), n_labels))
    w, mu = random_params(rng, n_labels)
    dout = rng.standard_normal(z.shape)
    f32 = np.float32
    engine = MeanFieldRNN([ExactFilter(f) for f in feats])
    logits, cache = engine.forward(z.astype(f32), w.astype(f32), mu.astype(f32), 4, keep=True)
    got = engine.backward(dout.astype(f32), cache, w.astype(f32), mu.astype(f32))
    ref_logits, ref_cache = crf_rnn_forward_reference(z, kernels, w, mu, 4)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-4)
    for a, b in zip(got, crf_rnn_backward_reference(dout, ref_cache)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())


@pytest.mark.parametrize("spatial", ["picked", "recursive"])
def test_backward_through_the_grid_filter_uses_its_adjoint(rng, spatial):
    """With the fast filters (the spatial Gaussian that ``spatial_filter`` picks for many labels --
    the 2-D spatial grid -- or the recursive one, and the bilateral grid), gradients equal the
    reference run on the filters' dense matrices K (whose transposes it takes literally)."""
    h, w = 6, 7
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    if spatial == "picked":
        first = spatial_filter((h, w), 3.0, channels=20)
        assert isinstance(first, SpatialGridFilter)
    else:
        first = RecursiveGaussianFilter((h, w), (3.0, 3.0))
    filters = [first, bilateral_filter(img, 4, 40)]   # "fast"
    assert isinstance(filters[1], GridFilter)
    kernels = [f.matrix().astype(np.float64) for f in filters]
    n_labels = 3
    z = rng.standard_normal((h * w, n_labels)).astype(np.float32)
    wts, mu = (a.astype(np.float32) for a in random_params(rng, n_labels))
    dout = rng.standard_normal(z.shape).astype(np.float32)
    engine = MeanFieldRNN(filters)
    _, cache = engine.forward(z, wts, mu, 3, keep=True)
    got = engine.backward(dout, cache, wts, mu)
    want = crf_rnn_backward_reference(dout, crf_rnn_forward_reference(z, kernels, wts, mu, 3)[1])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * np.abs(b).max())


def test_compat_gradient_columns_sum_to_zero_and_potts_forms_agree(rng):
    _, feats = tiny_scene(rng)
    kernels = [exact_filter_reference(f, np.eye(len(f))) for f in feats]
    z = rng.standard_normal((len(feats[0]), 3))
    w = np.array([[3.0] * 3, [10.0] * 3])
    energy, cache = crf_rnn_forward_reference(z, kernels, w, potts_compat(3), 4)
    reward, _ = crf_rnn_forward_reference(z, kernels, w, -np.eye(3), 4)
    q = lambda x: np.exp(x - x.max(1, keepdims=True)) / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(q(energy), q(reward), rtol=1e-12, atol=1e-14)
    dout = rng.standard_normal(z.shape)
    dout -= dout.mean(axis=1, keepdims=True)       # a loss of Q_T (e.g. cross-entropy): rows sum to 0
    dmu = crf_rnn_backward_reference(dout, cache)[2]
    np.testing.assert_allclose(dmu.sum(axis=0), 0.0, atol=1e-10 * np.abs(dmu).max())


@pytest.mark.parametrize("method", ["exact", "fast"])
@pytest.mark.parametrize("n_labels", [2, 4])
def test_potts_initialisation_reproduces_the_dense_crf(rng, method, n_labels):
    """Potts ``1 - I`` with weights (3, 10) is the post's dense_crf on softmax(logits)."""
    h, w = 9, 11
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    img[:, 5:] //= 3
    z = rng.standard_normal((h * w, n_labels)).astype(np.float32)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    sdims, schan, gs = (4, 4), (20, 20, 20), (2, 2)
    _, q_crf = dense_crf(img, p.reshape(h, w, -1), sdims=sdims, schan=schan, gaussian_sdims=gs,
                         iterations=5, method=method, clip=1e-30)
    terms = [PairwiseTerm(spatial_filter((h, w), gs, method), 3.0),
             PairwiseTerm(bilateral_filter(img, sdims, schan, method), 10.0)]
    q_mf = MeanField(-np.log(p), terms).run(5)
    engine = MeanFieldRNN([t.filter for t in terms])
    weights = np.array([[3.0] * n_labels, [10.0] * n_labels], np.float32)
    logits, _ = engine.forward(z, weights, potts_compat(n_labels).astype(np.float32), 5)
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    np.testing.assert_allclose(q, q_mf, atol=2e-5)
    np.testing.assert_allclose(q.reshape(h, w, -1), q_crf, atol=2e-5)


def test_zero_iterations_is_the_identity(rng):
    _, feats = tiny_scene(rng)
    engine = MeanFieldRNN([ExactFilter(f) for f in feats])
    z = rng.standard_normal((engine.n_points, 3)).astype(np.float32)
    w, mu = (a.astype(np.float32) for a in random_params(rng, 3))
    logits, cache = engine.forward(z, w, mu, 0, keep=True)
    np.testing.assert_array_equal(logits, z)
    dout = rng.standard_normal(z.shape).astype(np.float32)
    dz, dw, dmu = engine.backward(dout, cache, w, mu)
    np.testing.assert_array_equal(dz, dout)
    assert not dw.any() and not dmu.any()


# ---- every kernel against its NumPy twin --------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_labels", [2, 5])
def test_kernels_match_their_numpy_twins(rng, dtype, n_labels):
    n, k, c = 37, 2, n_labels
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    z, messages, weights, compat = r(n, c), r(k, n, c), r(k, c), r(c, c)
    pre, k1, g = rng.uniform(0.2, 1, (k, n)).astype(dtype), r(k, n), r(n, c)
    q = np.empty((n, c), dtype)
    kern.softmax(z, q)
    np.testing.assert_allclose(q, combine_reference(z, messages[:0], weights[:0], compat)[1], **tol)
    logits = np.empty((n, c), dtype)
    kern.combine(z, messages, weights, compat, logits, q)
    ref_logits, ref_q = combine_reference(z, messages, weights, compat)
    np.testing.assert_allclose(logits, ref_logits, **tol)
    np.testing.assert_allclose(q, ref_q, **tol)
    scaled = np.empty((n, c - 1), dtype)
    kern.scale_columns(q, pre[0], scaled)
    np.testing.assert_allclose(scaled, scale_columns_reference(q, pre[0], c - 1), **tol)
    message = np.empty((n, c), dtype)
    kern.complete(scaled, pre[1], k1[0], message)
    np.testing.assert_allclose(message, complete_reference(scaled, pre[1], k1[0]), **tol)
    v = np.empty((k, n, c - 1), dtype)
    parts = kern.partials(n)
    dmu_part, dw_part = np.empty((parts, c, c)), np.empty((parts, k, c))
    work = np.empty(kern.pairwise_scratch_shape(n, c), dtype)
    kern.pairwise_backward(g, messages, weights, compat, pre, work, v, dmu_part, dw_part)
    ref_v, ref_dmu, ref_dw = pairwise_backward_reference(g, messages, weights, compat, pre)
    np.testing.assert_allclose(v, ref_v, **tol)
    np.testing.assert_allclose(dmu_part.sum(0), ref_dmu, **tol)
    np.testing.assert_allclose(dw_part.sum(0), ref_dw, **tol)
    dq = np.full((n, c), np.nan, dtype)
    kern.gather_adjoint(v[0], pre[0], False, dq)
    kern.gather_adjoint(v[1], pre[1], True, dq)
    ref_dq = gather_adjoint_reference(v[1], pre[1], gather_adjoint_reference(v[0], pre[0]))
    np.testing.assert_allclose(dq, ref_dq, **tol)
    new_g, dz = np.empty((n, c), dtype), z.copy()
    kern.softmax_backward(q, dq, new_g, dz)
    np.testing.assert_allclose(new_g, softmax_backward_reference(q, dq), **tol)
    np.testing.assert_allclose(dz, z + softmax_backward_reference(q, dq), **tol)


# ---- adjoints of the normalised filters ---------------------------------------------------------

def test_normalised_filters_have_exact_adjoints(rng):
    """<K̃ y, x> = <y, K̃^T x> with K̃ = D^-1/2 K D^-1/2 applied as the engine applies it."""
    h, w = 9, 10
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    feats = bilateral_features(img, 3, 30)
    for filt in (ExactFilter(feats), SeparableGaussianFilter((h, w), (2.0, 3.0)),
                 RecursiveGaussianFilter((h, w), (3.0, 4.0)), GridFilter(feats, rotate=(2, 3, 4)),
                 ClusterFilter(feats)):
        s = 1.0 / np.sqrt(filt.apply(np.ones((h * w, 1), np.float32))[:, 0].astype(np.float64))
        s32 = s.astype(np.float32)[:, None]
        x = rng.standard_normal((h * w, 4)).astype(np.float32)
        y = rng.standard_normal((h * w, 4)).astype(np.float32)
        ky = s32 * filt.apply(s32 * y)
        ktx = s32 * filt.apply_transpose(s32 * x)
        left = np.sum(ky.astype(np.float64) * x)
        right = np.sum(y.astype(np.float64) * ktx)
        assert abs(left - right) <= 1e-5 * abs(left), type(filt).__name__
        dense = normalised_kernel(filt.matrix())
        np.testing.assert_allclose(ky, dense @ y, rtol=1e-4, atol=1e-5)
