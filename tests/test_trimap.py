"""Boundary accuracy (DeepLab's trimap): the band and the metrics inside it, on hand-made masks."""
import numpy as np
import pytest

from tinyseg.metrics import TrimapMeter, trimap_band, trimap_band_naive


def test_band_across_a_vertical_edge_is_w_pixels_on_each_side():
    labels = np.repeat(np.array([[0] * 6 + [1] * 6]), 3, axis=0)          # edge between cols 5 and 6
    for w, cols in [(1, [5, 6]), (2, [4, 5, 6, 7]), (4, [2, 3, 4, 5, 6, 7, 8, 9])]:
        band = trimap_band(labels, w)
        assert band.all(axis=0).tolist() == [c in cols for c in range(12)]
        assert not band[:, [c for c in range(12) if c not in cols]].any()


def test_band_around_a_square_uses_chessboard_distance():
    labels = np.zeros((9, 9), int)
    labels[3:6, 3:6] = 2                                                   # a 3×3 square
    band = trimap_band(labels, 1)
    expected = np.zeros((9, 9), bool)
    expected[2:7, 2:7] = True                                              # one ring out ...
    expected[4, 4] = False                                                 # ... the centre is 1 px deep
    np.testing.assert_array_equal(band, expected)
    assert trimap_band(labels, 2)[1:8, 1:8].all() and not trimap_band(labels, 2)[0].any()


def test_void_counts_as_a_label_so_voc_outlines_make_a_band():
    labels = np.array([[0, 0, 255, 1, 1, 1]])
    np.testing.assert_array_equal(trimap_band(labels, 1), [[0, 1, 1, 1, 0, 0]])


def test_a_single_label_has_no_band():
    assert not trimap_band(np.full((5, 7), 3), 4).any()


@pytest.mark.parametrize("w", [1, 2, 3, 8])
def test_fast_band_equals_the_naive_twin(rng, w):
    labels = rng.integers(0, 3, size=(13, 17))
    labels[rng.random((13, 17)) < 0.6] = 0
    labels[4:9, 2:5] = 255
    np.testing.assert_array_equal(trimap_band(labels, w), trimap_band_naive(labels, w))


def test_meter_counts_only_band_pixels_with_exact_iou():
    labels = np.array([[0, 0, 0, 0, 1, 1, 1, 1],
                       [0, 0, 0, 0, 1, 1, 1, 1]])
    pred = np.array([[0, 0, 0, 1, 1, 1, 1, 0],                             # one band error, one far error
                     [0, 0, 0, 0, 1, 1, 1, 1]])
    meter = TrimapMeter(2, widths=(1, 2))
    meter.update(pred, labels)
    # w = 1: band = columns 3, 4 → 4 pixels: labels 0,1 / 0,1; preds 1,1 / 0,1.
    # class 0: TP 1, FN 1, FP 0 → 1/2; class 1: TP 2, FP 1 → 2/3; mean 7/12; accuracy 3/4.
    assert meter.mean_iou(1) == pytest.approx(7 / 12)
    assert meter.pixel_accuracy(1) == pytest.approx(3 / 4)
    # w = 2: columns 2..5, 8 pixels, the same single error → class 0 3/4, class 1 4/5.
    assert meter.mean_iou(2) == pytest.approx((3 / 4 + 4 / 5) / 2)
    s = meter.summary()
    assert set(s) == {"1", "2"} and s["2"]["n_pixels"] == 8
    assert s["1"]["pixel_accuracy"] == pytest.approx(0.75)


def test_meter_leaves_void_out_and_accumulates_over_images():
    labels = np.array([[0, 0, 255, 1, 1, 1]])
    pred = np.array([[0, 1, 1, 1, 1, 0]])
    meter = TrimapMeter(2, widths=(1,))
    meter.update(pred, labels)            # band cols 1..3; void col 2 left out → cols 1 (wrong), 3 (right)
    assert meter.pixel_accuracy(1) == pytest.approx(0.5)
    meter.update(labels.clip(0, 1), labels)
    assert meter.matrices[1].matrix.sum() == 4 and meter.pixel_accuracy(1) == pytest.approx(0.75)


def test_meter_where_counts_only_those_pixels_and_makes_no_band_of_its_own():
    labels = np.array([[0, 0, 0, 0, 1, 1, 1, 1]] * 4)                      # edge between cols 3 and 4
    pred = np.array([[0, 0, 0, 1, 1, 1, 1, 1]] * 4)                         # col 3 wrong in every row
    where = np.zeros((4, 8), bool)
    where[2:] = True                                                        # rows 2, 3 scored
    meter = TrimapMeter(2, widths=(1,))
    meter.update(pred, labels, where=where)
    # band = cols 3, 4 of rows 2, 3 only: 4 pixels, 2 right; the edge of `where` (between rows 1
    # and 2) adds none — had rows 0, 1 been void (255) instead, their border would have.
    assert meter.matrices[1].matrix.sum() == 4 and meter.pixel_accuracy(1) == pytest.approx(0.5)
    # class 0: TP 0, FN 2 → 0; class 1: TP 2, FP 2 → 1/2
    assert meter.mean_iou(1) == pytest.approx(0.25)
    voided = TrimapMeter(2, widths=(1,))
    voided.update(pred, np.where(where, labels, 255))
    assert voided.matrices[1].matrix.sum() == 8 + 2                       # all of row 2, cols 3-4 of row 3
    with pytest.raises(ValueError, match="`where`"):
        meter.update(pred, labels, where=where[:2])


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="`w`"):
        trimap_band(np.zeros((3, 3), int), 0)
    with pytest.raises(ValueError, match="`labels`"):
        trimap_band(np.zeros((3, 3, 1), int), 1)
    with pytest.raises(ValueError, match="`widths`"):
        TrimapMeter(2, widths=(0,))
