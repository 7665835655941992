"""CRF filters: every fast filter against its NumPy twin and against brute force."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import (ExactFilter, GridFilter, SeparableGaussianFilter,
                                 exact_filter_reference, grid_blur_taps, grid_filter_reference,
                                 separable_gaussian_reference)


def smooth_image(rng, h=24, w=32):
    """A small image with regions and edges (blurred noise, contrast stretched)."""
    img = gaussian_filter(rng.random((h, w, 3)) * 255, (2, 2, 0)) * 3 - 255
    return np.clip(img, 0, 255).astype(np.uint8)


def test_exact_filter_matches_numpy_reference(rng):
    feats = rng.normal(size=(60, 3)).astype(np.float32)
    values = rng.random((60, 2)).astype(np.float32)
    out = ExactFilter(feats).apply(values)
    np.testing.assert_allclose(out, exact_filter_reference(feats, values), rtol=1e-5)


def test_exact_filter_includes_the_point_itself(rng):
    feats = rng.normal(size=(10, 2)) * 100      # far apart: K is nearly the identity
    out = ExactFilter(feats).apply(np.eye(10, dtype=np.float32))
    np.testing.assert_allclose(np.diag(out), 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape,sdims", [((13, 17), (2.5, 3.0)), ((9, 40), (1.0, 7.0)), ((1, 5), (2, 2))])
def test_separable_filter_matches_brute_force(rng, shape, sdims):
    values = rng.random((shape[0] * shape[1], 3)).astype(np.float32)
    exact = exact_filter_reference(spatial_features(shape, sdims), values)
    wide = SeparableGaussianFilter(shape, sdims, truncate=20.0).apply(values)
    np.testing.assert_allclose(wide, exact, rtol=2e-5)
    default = SeparableGaussianFilter(shape, sdims).apply(values)      # cut at 4 sigma
    assert np.max(np.abs(default - exact) / exact) < 1e-3


def test_separable_filter_matches_numpy_reference(rng):
    values = rng.random((11 * 14, 2)).astype(np.float32)
    out = SeparableGaussianFilter((11, 14), (2.0, 1.5), truncate=2.0).apply(values)
    ref = separable_gaussian_reference((11, 14), (2.0, 1.5), values, truncate=2.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5)


@pytest.mark.parametrize("dims", [1, 2, 3, 5])
def test_grid_filter_matches_dense_numpy_reference(rng, dims):
    feats = (rng.random((150, dims)) * 4).astype(np.float32)
    values = rng.random((150, 2)).astype(np.float32)
    out = GridFilter(feats).apply(values)
    ref = grid_filter_reference(feats, values)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * ref.max())


@pytest.mark.parametrize("channels", [1, 2, 3, 7])
def test_grid_filter_channel_paths_match_reference(rng, channels):
    """Below GridFilter.rows_from channels: one by one; from it on: channels-last kernels."""
    feats = (rng.random((33000, 3)) * 3).astype(np.float32)      # enough points for 2 chunks
    values = rng.random((33000, channels)).astype(np.float32)
    out = GridFilter(feats).apply(values)
    ref = grid_filter_reference(feats, values)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * ref.max())


def test_grid_filter_index_types_agree(rng, monkeypatch):
    feats = (rng.random((300, 5)) * 3).astype(np.float32)
    values = rng.random((300, 3)).astype(np.float32)
    small = GridFilter(feats)
    monkeypatch.setattr(GridFilter, "_uint16_cells", 0)
    wide = GridFilter(feats)
    assert small.pair_delta.dtype == np.uint16 and wide.pair_delta.dtype == np.int32
    np.testing.assert_array_equal(small.apply(values), wide.apply(values))


def test_grid_filter_blur_order_does_not_change_the_result(rng):
    feats = bilateral_features(smooth_image(rng, 12, 16), (4, 4), (30, 30, 30))
    values = rng.random((feats.shape[0], 1)).astype(np.float32)
    a = GridFilter(feats, order=(0, 1, 2, 3, 4)).apply(values)
    b = GridFilter(feats, order=(4, 2, 0, 3, 1)).apply(values)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_grid_blur_taps_complete_the_unit_variance():
    cell = 0.75
    taps = grid_blur_taps(cell, truncate=6.0).astype(np.float64)
    t = np.arange(len(taps)) - len(taps) // 2
    blur_var = np.sum(taps * t ** 2) / np.sum(taps) * cell ** 2          # in sigma^2
    assert blur_var + cell ** 2 / 3 == pytest.approx(1.0, rel=1e-3)     # + splat and slice tents
    assert np.sum(taps) * cell == pytest.approx(np.sqrt(2 * np.pi), rel=1e-6)


def test_grid_filter_approximates_brute_force(rng):
    """The bilateral grid's error, as the CRF sees it: the normalised filter D^-1 K."""
    img = smooth_image(rng)
    feats = bilateral_features(img, (6, 6), (20, 20, 20))
    values = rng.random((feats.shape[0], 2)).astype(np.float32)
    ones = np.ones((feats.shape[0], 1), np.float32)
    grid = GridFilter(feats)
    d_exact, d_grid = exact_filter_reference(feats, ones), grid.apply(ones)
    assert np.max(np.abs(d_grid / d_exact - 1)) < 0.3                    # K 1, pointwise
    normalised_error = np.abs(grid.apply(values) / d_grid - exact_filter_reference(feats, values) / d_exact)
    assert normalised_error.max() < 0.05                                  # values are in [0, 1]
    assert normalised_error.mean() < 0.01


def test_filters_accept_a_vector_and_reject_wrong_lengths(rng):
    feats = rng.random((20, 2)).astype(np.float32)
    for filt in (ExactFilter(feats), GridFilter(feats), SeparableGaussianFilter((4, 5), (1, 1))):
        assert filt.apply(np.ones(20)).shape == (20, 1)
        with pytest.raises(ValueError, match="`values`"):
            filt.apply(np.ones((21, 1)))


def test_grid_filter_coarsens_or_refuses_a_huge_grid(rng):
    feats = (rng.random((100, 5)) * 30).astype(np.float32)          # 42^5 cells at 0.75
    with pytest.warns(RuntimeWarning, match="less accurate"):
        grid = GridFilter(feats, max_cells=1 << 22)
    assert 0.75 < grid.cell <= 1.5 and np.prod(grid.sizes) <= 1 << 22
    values = rng.random((100, 1)).astype(np.float32)
    np.testing.assert_allclose(grid.apply(values), grid_filter_reference(feats, values, cell=grid.cell),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="max_cells"):
        GridFilter((rng.random((100, 5)) * 1000).astype(np.float32))


def test_filters_reject_nan_features():
    feats = np.zeros((4, 2), np.float32)
    feats[1, 1] = np.nan
    for cls in (ExactFilter, GridFilter):
        with pytest.raises(ValueError, match="`features`"):
            cls(feats)


def test_grid_dilation_matches_numpy_reference(rng):
    from tinyseg.crf.filters import dilate as _dilate, dilate_reference as _dilate_reference

    sizes = (5, 7, 6)
    src = rng.random(np.prod(sizes)) > 0.93
    for axis, stride in enumerate((42, 6, 1)):
        for radius in (1, 2, 4, 9):
            dst = np.empty_like(src)
            _dilate(src, stride, sizes[axis], radius, dst)
            np.testing.assert_array_equal(dst, _dilate_reference(src, stride, sizes[axis], radius))


def test_bilateral_features_match_numpy_reference(rng):
    from tinyseg.crf.features import bilateral_features_reference

    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_allclose(bilateral_features(img, (3, 5), (10, 20, 30)),
                               bilateral_features_reference(img, (3, 5), (10, 20, 30)), rtol=1e-6)


def test_rotating_colours_onto_principal_axes_keeps_the_kernel(rng):
    from tinyseg.crf.filters import rotate_to_principal_axes

    feats = bilateral_features(smooth_image(rng, 10, 12), (4, 4), (20, 20, 20))
    turned = rotate_to_principal_axes(feats, (2, 3, 4))
    np.testing.assert_array_equal(turned[:, :2], feats[:, :2])
    assert np.var(turned[:, 2]) >= np.var(turned[:, 3]) >= np.var(turned[:, 4])
    values = rng.random((feats.shape[0], 2)).astype(np.float32)
    np.testing.assert_allclose(exact_filter_reference(turned, values),
                               exact_filter_reference(feats, values), rtol=1e-5)
    grid = GridFilter(feats, rotate=(2, 3, 4))
    assert np.prod(grid.sizes) <= np.prod(GridFilter(feats).sizes)
    np.testing.assert_allclose(grid.apply(values), grid_filter_reference(turned, values), rtol=1e-4,
                               atol=1e-6)


# ---- the filter interface: adjoints and the grid's public description ------------------------

def _adjoint_gap(filt, rng, m=3):
    """|<K y, x> - <y, K^T x>| relative to |<K y, x>|, sums in float64."""
    n = filt.n_points
    x = rng.standard_normal((n, m)).astype(np.float32)
    y = rng.standard_normal((n, m)).astype(np.float32)
    left = np.sum(filt.apply(y).astype(np.float64) * x)
    right = np.sum(y.astype(np.float64) * filt.apply_transpose(x))
    return abs(left - right) / max(abs(left), 1e-12)


@pytest.mark.parametrize("channels", [1, 7])
def test_every_filter_has_an_exact_adjoint(rng, channels):
    img = smooth_image(rng, 10, 13)
    feats = bilateral_features(img, (3, 3), (25, 25, 25))
    filters = [ExactFilter(feats), SeparableGaussianFilter((10, 13), (2.0, 1.5)),
               GridFilter(feats), GridFilter(feats, rotate=(2, 3, 4))]
    for filt in filters:
        assert _adjoint_gap(filt, rng, channels) < 1e-5, filt.name
        values = rng.random((filt.n_points, channels)).astype(np.float32)
        # all of them are symmetric, so the adjoint is the filter itself
        assert filt.symmetric
        np.testing.assert_allclose(filt.apply_transpose(values), filt.apply(values), rtol=1e-4,
                                   atol=1e-5)


def test_grid_transpose_is_built_from_the_transposed_passes(rng):
    """The transposed chain (scatter passes in reverse) matches the description read literally."""
    from tinyseg.crf.filters import layout_filter_reference

    feats = (rng.random((200, 3)) * 3).astype(np.float32)
    grid = GridFilter(feats)
    values = rng.random((200, 2)).astype(np.float32)
    ref_t = layout_filter_reference(grid.describe(), values, transpose=True)
    np.testing.assert_allclose(grid.apply_transpose(values), ref_t, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dims", [2, 5])
def test_grid_layout_describes_the_filter(rng, dims):
    from tinyseg.crf.filters import layout_filter_reference

    feats = (rng.random((300, dims)) * 4).astype(np.float32)
    grid = GridFilter(feats)
    layout = grid.describe()
    assert layout.n_points == 300 and layout.n_dims == dims and len(layout.passes) == dims
    assert layout.corner_pairs.shape == (300, 2 ** (dims - 1)) and layout.corner_pairs.dtype == np.int32
    np.testing.assert_allclose(layout.pair_weights.sum(1), 1.0, rtol=1e-5)   # multilinear weights
    values = rng.random((300, 2)).astype(np.float32)
    np.testing.assert_allclose(layout_filter_reference(layout, values), grid.apply(values),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layout_filter_reference(layout, values),
                               grid_filter_reference(feats, values), rtol=1e-4, atol=1e-6)


def test_filter_matrix_is_k(rng):
    feats = rng.normal(size=(12, 2)).astype(np.float32)
    np.testing.assert_allclose(ExactFilter(feats).matrix(), exact_filter_reference(feats, np.eye(12)),
                               rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 7])
def test_image_row_factorised_grid_equals_the_plain_grid(rng, channels):
    """Splat and slice by image rows (a 5-D bilateral grid over an image's pixels) change nothing."""
    img = smooth_image(rng, 20, 30)
    feats = bilateral_features(img, (4, 5), (25, 25, 25))
    rows = GridFilter(feats, rotate=(2, 3, 4), image_shape=(20, 30))
    plain = GridFilter(feats, rotate=(2, 3, 4))
    assert rows._rows is not None and plain._rows is None
    values = rng.random((600, channels)).astype(np.float32)
    np.testing.assert_allclose(rows._apply_image_rows(values, rows.neighbours), plain.apply(values),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows.apply(values), plain.apply(values), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="image_shape"):
        GridFilter(feats[rng.permutation(600)], image_shape=(20, 30))


def test_grid_rebuilds_its_plain_tables_from_the_row_tables(rng):
    img = smooth_image(rng, 20, 30)
    feats = bilateral_features(img, (4, 5), (25, 25, 25))
    rows = GridFilter(feats, rotate=(2, 3, 4), image_shape=(20, 30))
    plain = GridFilter(feats, rotate=(2, 3, 4))
    assert "pair_delta" not in rows.__dict__                     # dropped after the row tables
    np.testing.assert_array_equal(rows.pair_base, plain.pair_base)
    np.testing.assert_array_equal(rows.pair_delta, plain.pair_delta)
    assert rows.pair_delta.dtype == plain.pair_delta.dtype
    np.testing.assert_allclose(rows.w_a, plain.w_a, rtol=1e-6)
