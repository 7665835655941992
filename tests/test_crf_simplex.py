"""The bilateral grid with simplex (Kuhn) splat and slice: kernels against their NumPy twins, the
shear's covariance correction against the exact filter, the adjoint, and auto_filter's choice."""
import numpy as np
import pytest

from tinyseg.crf.filters import (ExactFilter, GridFilter, SimplexGridFilter, auto_filter,
                                 kuhn_shear, simplex_filter_reference)
from tinyseg.crf.filters.grid_kernels import _grid_geometry
from tinyseg.crf.filters.simplex import simplex_corners, simplex_corners_reference


def _cloud(n, d, seed=0, spread=2.0):
    return np.random.default_rng(seed).normal(0.0, spread, (n, d)).astype(np.float32)


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("shear", [True, False])
@pytest.mark.parametrize("m", [1, 4])
def test_filter_matches_its_dense_twin(d, shear, m):
    f = _cloud(500, d, seed=d)
    v = np.random.default_rng(1).random((500, m)).astype(np.float32)
    got = SimplexGridFilter(f, shear=shear).apply(v)
    want = simplex_filter_reference(f, v, shear=shear)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_corners_kernel_matches_twin_and_reproduces_the_position():
    f = _cloud(300, 5, seed=3)
    base, frac, sizes = _grid_geometry(f, 0.75)
    strides = np.ones(5, np.int64)
    for k in range(3, -1, -1):
        strides[k] = strides[k + 1] * sizes[k + 1]
    corners = np.empty((300, 6), np.int64)
    weights = np.empty((300, 6), np.float32)
    occupied = np.zeros(int(np.prod(sizes)), np.uint8)
    simplex_corners(base @ strides, frac.astype(np.float32), strides, corners, weights, occupied)
    want_corners, want_weights = simplex_corners_reference(base, frac)
    np.testing.assert_array_equal(corners, want_corners @ strides)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    assert (want_weights >= -1e-7).all()
    np.testing.assert_allclose(want_weights.sum(1), 1.0, atol=1e-12)
    # barycentric: the weighted corners are the point itself (linear functions are exact)
    np.testing.assert_allclose((want_corners * want_weights[:, :, None]).sum(1), base + frac,
                               atol=1e-9)
    assert occupied.sum() == np.unique(corners).size


def test_shear_is_the_square_root_of_the_corrected_covariance():
    s = kuhn_shear(0.75, 5).astype(np.float64)
    c2 = 0.75 ** 2 / 6
    np.testing.assert_allclose(s @ s.T, (1 - c2) * np.eye(5) + c2 * np.ones((5, 5)), atol=1e-6)
    np.testing.assert_allclose(s, s.T)


@pytest.mark.parametrize("d", [3, 5])
def test_shear_brings_the_filter_closer_to_the_exact_gaussian(d):
    """Without the shear the kernel leans along the cell diagonal (see the module); with it, the
    filter is closer to the exact one (dense points, smooth values), within twice the multilinear
    grid's error (the simplex weights' covariance varies inside a cell, which no global shear
    removes), and ``K 1`` is 1 at the median, as the exact filter's peak."""
    rng = np.random.default_rng(5)
    f = rng.uniform(0.0, 4.0, (2500, d)).astype(np.float32)
    v = np.stack([np.sin(f.sum(1)), np.cos(f[:, 0] - f[:, 2])], 1).astype(np.float32)
    exact = ExactFilter(f).apply(v)

    def error(filt):
        got = filt.apply(v)
        return float(np.sqrt(np.mean((got - exact) ** 2)) / np.sqrt(np.mean(exact ** 2)))

    with_shear = error(SimplexGridFilter(f, cell=0.75))                 # the same cells as
    without = error(SimplexGridFilter(f, cell=0.75, shear=False))      # the multilinear grid's
    multilinear = error(GridFilter(f, cell=0.75))
    assert with_shear < 0.7 * without, (with_shear, without)
    assert with_shear < 2.0 * multilinear, (with_shear, multilinear)
    ones = np.ones((2500, 1), np.float32)
    ratio = SimplexGridFilter(f, cell=0.75).apply(ones) / ExactFilter(f).apply(ones)
    assert abs(float(np.median(ratio)) - 1.0) < 0.02


def test_apply_transpose_is_the_adjoint():
    f = _cloud(400, 5, seed=7)
    filt = SimplexGridFilter(f)
    rng = np.random.default_rng(2)
    x = rng.random((400, 3)).astype(np.float32)
    y = rng.random((400, 3)).astype(np.float32)
    lhs = float(np.sum(filt.apply(x).astype(np.float64) * y))
    rhs = float(np.sum(x * filt.apply_transpose(y).astype(np.float64)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_out_may_be_the_values():
    f = _cloud(300, 5, seed=8)
    v = np.random.default_rng(3).random((300, 6)).astype(np.float32)
    filt = SimplexGridFilter(f)
    want = filt.apply(v.copy())
    got = filt.apply(v, out=v)
    assert got is v
    np.testing.assert_array_equal(got, want)


def test_coarsened_cells_get_their_own_shear():
    """max_occupied coarsens sparse features' cells; the shear is then redone for the new cell."""
    f = _cloud(60_000, 3, seed=9, spread=10.0)
    filt = SimplexGridFilter(f, max_occupied=0.2)
    assert filt.cell > 0.75
    v = np.random.default_rng(4).random((60_000, 1)).astype(np.float32)
    small = slice(0, 60_000)
    got = filt.apply(v)[small]
    want = simplex_filter_reference(f, v, cell=filt.cell)[small]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_auto_filter_picks_the_simplex_grid_unless_asked():
    f = _cloud(2000, 5, seed=10)
    simplex = auto_filter(f)
    assert type(simplex) is SimplexGridFilter
    assert type(auto_filter(f, interpolation="multilinear")) is GridFilter
    with pytest.raises(ValueError, match="interpolation"):
        auto_filter(f, interpolation="cubic")


def test_its_layout_is_the_same_filter():
    """describe(): the simplex corners as the layout's pairs (frac_last 0), what the CUDA twin runs;
    the layout's NumPy twin gives the filter's result."""
    from tinyseg.crf.filters import layout_filter_reference

    f = _cloud(700, 5, seed=11)
    filt = SimplexGridFilter(f)
    v = np.random.default_rng(6).random((700, 3)).astype(np.float32)
    want = filt.apply(v)
    got = layout_filter_reference(filt.describe(), v)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
