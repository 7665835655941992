"""The CRF's set-up checks, done in one pass: each against its NumPy twin."""
import numpy as np
import pytest

from tinyseg.crf.filters.auto import grid_box_cells
from tinyseg.crf.inference import MeanField, check_unary
from tinyseg.crf.mean_field_kernels import energy_check, energy_check_reference


def _energies(seed, n=257, c=3):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, c)).astype(np.float32)
    e[rng.integers(0, n, 20), rng.integers(0, c, 20)] = np.inf     # hard constraints
    e[5] = np.inf                                                   # a pixel with no label
    e[77] = np.inf
    return e


@pytest.mark.parametrize("negated", [False, True])
@pytest.mark.parametrize("poison", [None, np.nan, -np.inf])
def test_energy_check_equals_its_numpy_twin(negated, poison):
    e = _energies(0)
    if poison is not None:
        e[100, 1] = poison
    arr = -e if negated else e
    bad, stuck = energy_check(arr, negated=negated)
    ref_bad, ref_stuck = energy_check_reference(arr, negated=negated)
    assert bad == ref_bad == (poison is not None)
    np.testing.assert_array_equal(stuck, ref_stuck)
    assert list(stuck) == [5, 77]


def test_check_unary_and_negated_mean_field_name_the_problem():
    e = _energies(1)
    with pytest.raises(ValueError, match="every label"):
        check_unary(e)
    with pytest.raises(ValueError, match="every label"):
        MeanField(-e, [], negated=True)
    e[5] = e[77] = 0.0
    e[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_unary(e)
    with pytest.raises(ValueError, match="NaN"):
        MeanField(-e, [], negated=True)


def test_grid_box_cells_equals_the_numpy_formula():
    f = np.random.default_rng(2).normal(scale=7, size=(1000, 5)).astype(np.float32)
    span = f.max(axis=0).astype(np.float64) - f.min(axis=0)
    for cell in (0.75, 1.7):
        assert grid_box_cells(f, cell) == float(np.prod(np.floor(span / cell) + 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["clean", "nan", "inf", "negative", "empty_pixel", "zeros"])
def test_probability_check_matches_its_twin(dtype, case):
    from tinyseg.crf.mean_field_kernels import probability_check, probability_check_reference

    p = np.random.default_rng(3).random((13, 17, 5)).astype(dtype)
    if case == "nan":
        p[4, 2, 1] = np.nan
    elif case == "inf":
        p[0, 0, 4] = np.inf
    elif case == "negative":
        p[7, 9, 0] = -0.25
    elif case == "empty_pixel":
        p[12, 16, :] = 0.0
    elif case == "zeros":
        p[:, :, 0] = 0.0                       # zeros, but every pixel keeps a class
    got, want = probability_check(p), probability_check_reference(p)
    assert (got[0], got[2]) == (want[0], want[2])
    if not got[0]:                             # the minimum only matters without NaN / inf
        assert got[1] == want[1]
    assert got[0] == (case in ("nan", "inf"))
    assert got[2] == (case == "empty_pixel")
