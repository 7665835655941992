"""The spatial Gaussian on a 2-D grid: its NumPy twin, its error against the exact Gaussian,
symmetry, writing over its input, and when the fast method picks it."""
import numpy as np
import pytest

from tinyseg.crf.filters import (RecursiveGaussianFilter, SeparableGaussianFilter,
                                 SpatialGridFilter, separable_gaussian_reference,
                                 spatial_gaussian, spatial_grid_reference)


@pytest.mark.parametrize("shape,sdims", [((37, 51), (3.0, 4.0)), ((40, 30), (10.0, 10.0)),
                                          ((20, 25), (1.0, 2.0)), ((130, 90), (5.0, 7.0))])
@pytest.mark.parametrize("channels", [1, 20])
def test_spatial_grid_matches_its_numpy_twin(rng, shape, sdims, channels):
    values = rng.random((shape[0] * shape[1], channels)).astype(np.float32)
    out = SpatialGridFilter(shape, sdims).apply(values)
    ref = spatial_grid_reference(shape, sdims, values)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * ref.max())


@pytest.mark.parametrize("sdims,channels,worst,mean", [((5.0, 5.0), 20, 0.015, 0.004),
                                                       ((10.0, 10.0), 20, 0.015, 0.004),
                                                       ((3.0, 3.0), 20, 0.025, 0.005)])
def test_spatial_grid_approximates_the_exact_gaussian(rng, sdims, channels, worst, mean):
    """The error of the grid the fast method picks: cells of 0.5 sigma from sigma 5 on (1.5% of
    the peak at worst, 0.4% on average), 0.65 below (2.5%, 0.5%: the bilateral grid's own)."""
    shape = (60, 80)
    values = rng.random((shape[0] * shape[1], 3)).astype(np.float32)
    exact = separable_gaussian_reference(shape, sdims, values, truncate=10.0)
    filt = spatial_gaussian(shape, sdims, channels)
    assert isinstance(filt, SpatialGridFilter)
    err = np.abs(filt.apply(values) - exact)
    assert err.max() < worst * exact.max()
    assert err.mean() < mean * np.abs(exact).mean()


def test_spatial_grid_is_symmetric_and_writes_over_its_input(rng):
    filt = SpatialGridFilter((23, 17), (6.0, 5.0))
    k = filt.apply(np.eye(23 * 17, dtype=np.float32))                  # columns: K e_j
    np.testing.assert_allclose(k, k.T, rtol=1e-5, atol=1e-6)
    values = rng.random((23 * 17, 4)).astype(np.float32)
    want = filt.apply(values)
    assert filt.apply(values, out=values) is values
    np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(filt.apply_transpose(want), filt.apply(want), rtol=1e-6)


def test_spatial_gaussian_picks_the_grid_for_many_channels_and_wide_kernels():
    assert isinstance(spatial_gaussian((10, 10), (10.0, 10.0), channels=20), SpatialGridFilter)
    assert isinstance(spatial_gaussian((10, 10), (5.0, 8.0), channels=4), SpatialGridFilter)
    assert isinstance(spatial_gaussian((10, 10), (2.4, 3.0), channels=20), RecursiveGaussianFilter)
    assert spatial_gaussian((10, 10), (3.0, 3.0), channels=20).cell == 0.65
    assert spatial_gaussian((10, 10), (5.0, 6.0), channels=20).cell == 0.5
    assert isinstance(spatial_gaussian((10, 10), (10.0, 10.0), channels=2), SeparableGaussianFilter)
    assert isinstance(spatial_gaussian((10, 10), (10.0, 10.0)), SeparableGaussianFilter)


def test_spatial_grid_layout_is_the_same_filter(rng):
    """What the CUDA backend runs (a GridLayout through the generic grid) equals the filter."""
    from tinyseg.crf.filters import layout_filter_reference

    filt = SpatialGridFilter((31, 26), (5.0, 6.0))
    values = rng.random((31 * 26, 3)).astype(np.float32)
    ref = layout_filter_reference(filt.describe(), values)
    np.testing.assert_allclose(filt.apply(values), ref, rtol=1e-4, atol=1e-5 * ref.max())
