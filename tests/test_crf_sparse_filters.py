"""The recursive spatial Gaussian, the cluster filter and its k-d tree, and the fast-method choice."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import (ClusterFilter, ExactFilter, GridFilter, RecursiveGaussianFilter,
                                 SeparableGaussianFilter, auto_filter, cluster_filter_reference,
                                 exact_filter_reference, recursive_gaussian_reference,
                                 separable_gaussian_reference, spatial_gaussian)


def smooth_image(rng, h=24, w=32):
    img = gaussian_filter(rng.random((h, w, 3)) * 255, (2, 2, 0)) * 3 - 255
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- recursive -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,sdims", [((23, 31), (3.0, 5.0)), ((40, 37), (10.0, 6.0)),
                                          ((12, 9), (1.0, 2.5)), ((60, 50), (40.0, 80.0))])
def test_recursive_gaussian_matches_its_numpy_twin(rng, shape, sdims):
    values = rng.random((shape[0] * shape[1], 3)).astype(np.float32)
    out = RecursiveGaussianFilter(shape, sdims).apply(values)
    ref = recursive_gaussian_reference(shape, sdims, values)
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-5 * ref.max())


@pytest.mark.parametrize("shape,sdims", [((30, 41), (3.0, 4.0)), ((50, 45), (10.0, 10.0))])
def test_recursive_gaussian_approximates_the_exact_gaussian(rng, shape, sdims):
    """Deriche's approximation: within 1e-3 of the peak-normalised exact Gaussian, zero-padded."""
    values = rng.random((shape[0] * shape[1], 2)).astype(np.float32)
    exact = separable_gaussian_reference(shape, sdims, values, truncate=10.0)
    out = RecursiveGaussianFilter(shape, sdims).apply(values)
    assert np.abs(out - exact).max() < 1e-3 * exact.max()


def test_spatial_gaussian_picks_fir_for_small_and_recursive_for_large_sigma():
    assert isinstance(spatial_gaussian((10, 10), (1.5, 2.0), channels=20), SeparableGaussianFilter)
    assert isinstance(spatial_gaussian((10, 10), (2.4, 3.0), channels=20), RecursiveGaussianFilter)
    assert isinstance(spatial_gaussian((10, 10), (10.0, 10.0)), SeparableGaussianFilter)
    assert isinstance(spatial_gaussian((10, 10), (10.0, 10.0), channels=1), SeparableGaussianFilter)
    assert isinstance(spatial_gaussian((10, 10), (20.0, 20.0), channels=1), RecursiveGaussianFilter)


def test_recursive_filter_writes_into_out(rng):
    values = rng.random((20 * 30, 4)).astype(np.float32)
    filt = RecursiveGaussianFilter((20, 30), (4.0, 4.0))
    out = np.empty_like(values)
    assert filt.apply(values, out=out) is out
    np.testing.assert_array_equal(out, filt.apply(values))


# ---- k-d tree and cluster filter -----------------------------------------------------------------

@pytest.mark.parametrize("dims,leaf", [(1, 1), (3, 4), (5, 12), (13, 8)])
def test_kdtree_finds_exactly_the_neighbours(rng, dims, leaf):
    from tinyseg.crf.filters.kdtree import KDTree, neighbours_reference

    points = rng.random((400, dims)) * 4
    radius = 0.8 + rng.random(400)
    row_ptr, cols = KDTree(points, leaf_size=leaf).neighbours(radius)
    ref = neighbours_reference(points, radius)
    for a in range(400):
        np.testing.assert_array_equal(np.sort(cols[row_ptr[a]:row_ptr[a + 1]]), ref[a])


@pytest.mark.parametrize("dims", [2, 5, 13])
def test_cluster_filter_matches_its_numpy_twin(rng, dims):
    feats = (rng.random((250, dims)) * 4).astype(np.float32)
    values = rng.random((250, 3)).astype(np.float32)
    out = ClusterFilter(feats, cell=0.8).apply(values)
    ref = cluster_filter_reference(feats, values, cell=0.8)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_cluster_filter_of_singleton_cells_is_the_exact_filter(rng):
    """Every point alone in its cell: W is the exact kernel between the points (cut at 6 sigma)."""
    feats = rng.normal(size=(80, 4)) * 3
    values = rng.random((80, 2)).astype(np.float32)
    filt = ClusterFilter(feats, cell=1e-3, cutoff=6.0)
    assert filt.n_cells == 80
    np.testing.assert_allclose(filt.apply(values), exact_filter_reference(feats, values),
                               rtol=1e-4, atol=1e-5)


def test_cluster_filter_approximates_brute_force_at_small_bandwidths(rng):
    """The CRF sees D^-1 K: normalised outputs stay within 0.03 of the exact ones (values in [0, 1])."""
    feats = bilateral_features(smooth_image(rng), (3, 3), (2, 2, 2))
    values = rng.random((feats.shape[0], 2)).astype(np.float32)
    ones = np.ones((feats.shape[0], 1), np.float32)
    filt = ClusterFilter(feats)
    approx = filt.apply(values) / filt.apply(ones)
    exact = exact_filter_reference(feats, values) / exact_filter_reference(feats, ones)
    assert np.abs(approx - exact).max() < 0.03 and np.abs(approx - exact).mean() < 0.003


def test_cluster_filter_is_symmetric_and_writes_into_out(rng):
    feats = (rng.random((150, 3)) * 3).astype(np.float32)
    filt = ClusterFilter(feats)
    k = filt.matrix()
    np.testing.assert_allclose(k, k.T, rtol=1e-5, atol=1e-7)
    values = rng.random((150, 2)).astype(np.float32)
    out = np.empty_like(values)
    assert filt.apply(values, out=out) is out
    np.testing.assert_allclose(filt.apply_transpose(values), out, rtol=1e-6)


# ---- which filter "fast" takes -------------------------------------------------------------------

def test_auto_filter_takes_the_grid_for_wide_and_the_cluster_for_narrow_bandwidths(rng):
    img = smooth_image(rng, 30, 40)
    assert isinstance(auto_filter(bilateral_features(img, 20, 20), rotate=(2, 3, 4)), GridFilter)
    narrow = auto_filter(bilateral_features(img, 3, 1), rotate=(2, 3, 4), max_cells=1 << 17)
    assert isinstance(narrow, ClusterFilter)
    assert isinstance(auto_filter(rng.random((50, 8)).astype(np.float32)), ClusterFilter)


def test_sxy3_srgb1_runs_without_error_or_blow_up(rng):
    """Narrow bandwidths on noise (sxy 3, srgb 1), which pydensecrf runs: a dense grid would span
    too many cells; the sparse filters run it in little memory and stay finite."""
    import tracemalloc

    from tinyseg.crf import dense_crf

    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)            # worst case: noise
    p = rng.dirichlet(np.ones(3), size=(60, 80)).astype(np.float32)
    tracemalloc.start()
    labels, q = dense_crf(img, p, sdims=3, schan=1, gaussian_sdims=3, iterations=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert labels.shape == (60, 80) and np.all(np.isfinite(q))
    assert peak < 64 * 2 ** 20                                           # no blow-up


def test_many_feature_dimensions_through_the_compat_api(rng):
    """2-D positions + 11 channels (13 features): runs and stays close to the exact CRF."""
    import tinyseg.crf.compat as dcrf
    from tinyseg.crf.compat.utils import create_pairwise_bilateral, unary_from_softmax

    h, w = 16, 20
    img = np.zeros((h, w, 11), np.float32)
    img[:, w // 2:] = 1.0
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    p = np.full((h, w, 2), 0.5, np.float32)
    p[:, :3] = (0.9, 0.1)
    p[:, -3:] = (0.1, 0.9)
    feats = create_pairwise_bilateral((5, 5), 0.5, img, chdim=2)          # (13, N)
    labels = []
    for method in ("fast", "exact"):
        d = dcrf.DenseCRF(h * w, 2, method=method)
        d.setUnaryEnergy(unary_from_softmax(p.transpose(2, 0, 1)))
        d.addPairwiseEnergy(feats, compat=10)
        labels.append(np.asarray(d.inference(5)).argmax(0).reshape(h, w))
    assert isinstance(d._terms[0].filter, ExactFilter)
    np.testing.assert_array_equal(labels[1][:, : w // 2], 0)              # the colour edge wins
    np.testing.assert_array_equal(labels[1][:, w // 2:], 1)
    assert np.mean(labels[0] == labels[1]) >= 0.99


def test_exact_method_refuses_a_big_image_unless_forced(rng):
    from tinyseg.crf.filters import MAX_EXACT_POINTS

    feats = np.zeros((MAX_EXACT_POINTS + 1, 2), np.float32)
    with pytest.raises(ValueError, match="force"):
        ExactFilter(feats)
    ExactFilter(feats, force=True)                                        # set-up only: cheap


def test_exact_filter_reports_progress_in_blocks(rng):
    feats = spatial_features((30, 40), (2, 2))
    seen = []
    ExactFilter(feats, progress=lambda done, total: seen.append((done, total))).apply(
        np.ones((1200, 30000), np.float32)[:, :1])
    assert seen[-1] == (1200, 1200) and all(t == 1200 for _, t in seen)


def test_grid_widens_its_cells_when_they_outnumber_the_points(rng, monkeypatch):
    from tinyseg.crf.filters import grid_filter_reference

    import tinyseg.crf.filters.grid as grid_module

    feats = bilateral_features(smooth_image(rng, 30, 40), (20, 20), (3, 3, 3))
    fine = GridFilter(feats)
    assert fine.cell == 0.75 and fine.n_occupied > 0.45 * fine.n_points
    assert GridFilter(feats, max_occupied=0.45).cell == 0.75            # a small grid stays fine
    monkeypatch.setattr(grid_module, "_FEW_CELLS", 0)
    coarse = GridFilter(feats, max_occupied=0.45)
    assert coarse.cell > 0.75 and (coarse.n_occupied <= 0.45 * coarse.n_points or coarse.cell == 1.7)
    values = rng.random((feats.shape[0], 2)).astype(np.float32)
    np.testing.assert_allclose(coarse.apply(values),
                               grid_filter_reference(feats, values, cell=coarse.cell),
                               rtol=1e-4, atol=1e-5)


def test_every_filter_may_write_over_its_input(rng):
    """MeanField filters in place (out=values) to save memory: each filter must allow it."""
    img = smooth_image(rng, 12, 15)
    feats = bilateral_features(img, (3, 3), (20, 20, 20))
    filters = [ExactFilter(feats), SeparableGaussianFilter((12, 15), (1.5, 1.5)),
               RecursiveGaussianFilter((12, 15), (3.0, 3.0)), ClusterFilter(feats),
               GridFilter(feats, rotate=(2, 3, 4), image_shape=(12, 15)), GridFilter(feats)]
    for filt in filters:
        for m in (1, 7):
            values = rng.random((180, m)).astype(np.float32)
            want = filt.apply(values)
            inplace = values.copy()
            assert filt.apply(inplace, out=inplace) is inplace
            np.testing.assert_allclose(inplace, want, rtol=1e-6, atol=1e-7, err_msg=filt.name)
