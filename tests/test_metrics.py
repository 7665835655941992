"""Tests of tinyseg.metrics: fast confusion matrix vs the loop reference, and the metrics."""
import numpy as np
import pytest

from tinyseg.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    confusion_matrix_naive,
    mean_iou,
    per_class_iou,
    pixel_accuracy,
)


def _random_case(rng, shape, n_classes, ignore_fraction=0.2):
    pred = rng.integers(0, n_classes, size=shape)
    labels = rng.integers(0, n_classes, size=shape)
    labels[rng.random(shape) < ignore_fraction] = 255
    return pred, labels


@pytest.mark.parametrize("n_classes", [1, 2, 5, 21])
def test_confusion_matrix_matches_naive(n_classes):
    rng = np.random.default_rng(n_classes)
    pred, labels = _random_case(rng, (7, 11), n_classes)
    np.testing.assert_array_equal(
        confusion_matrix(pred, labels, n_classes), confusion_matrix_naive(pred, labels, n_classes)
    )


def test_confusion_matrix_rows_are_ground_truth_columns_are_prediction():
    m = confusion_matrix(np.array([1, 1, 0]), np.array([0, 1, 0]), 2)
    np.testing.assert_array_equal(m, [[1, 1], [0, 1]])


def test_ignore_label_is_excluded_from_counts():
    pred = np.array([[0, 1], [1, 0]])
    labels = np.array([[0, 255], [255, 255]])
    m = confusion_matrix(pred, labels, 2)
    assert m.sum() == 1 and m[0, 0] == 1


def test_ignore_index_none_counts_every_pixel():
    m = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 2, ignore_index=None)
    assert m.sum() == 2


def test_uint8_inputs_do_not_overflow():
    pred = np.full((300, 300), 20, dtype=np.uint8)
    labels = np.full((300, 300), 20, dtype=np.uint8)
    assert confusion_matrix(pred, labels, 21)[20, 20] == 90000


def test_accumulates_over_dataset_not_mean_of_images():
    # Image A: 1 pixel of class 1 predicted right; image B: 3 pixels of class 1, all wrong.
    cm = ConfusionMatrix(2)
    cm.update(np.array([1]), np.array([1]))
    cm.update(np.array([0, 0, 0]), np.array([1, 1, 1]))
    assert cm.per_class_iou()[1] == pytest.approx(1 / 4)  # per-image mean would be 1/2
    assert cm.pixel_accuracy() == pytest.approx(1 / 4)


def test_metrics_on_known_matrix():
    m = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    assert pixel_accuracy(m) == pytest.approx(7 / 10)
    iou = per_class_iou(m)
    np.testing.assert_allclose(iou[:2], [3 / 6, 4 / 7])
    assert np.isnan(iou[2])  # absent from ground truth and prediction
    assert mean_iou(m) == pytest.approx((3 / 6 + 4 / 7) / 2)


def test_class_predicted_but_absent_from_ground_truth_has_zero_iou():
    iou = per_class_iou(confusion_matrix(np.array([1, 0]), np.array([0, 0]), 2))
    assert iou[1] == 0.0


def test_empty_matrix_gives_nan_metrics():
    cm = ConfusionMatrix(3)
    assert np.isnan(cm.pixel_accuracy()) and np.isnan(cm.mean_iou())
    assert np.isnan(cm.per_class_iou()).all()


def test_perfect_prediction_has_iou_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(5, 6))
    cm = ConfusionMatrix(4)
    cm.update(labels, labels)
    assert cm.mean_iou() == 1.0 and cm.pixel_accuracy() == 1.0


def test_reset_clears_counts():
    cm = ConfusionMatrix(2)
    cm.update(np.array([0]), np.array([0]))
    cm.reset()
    assert cm.matrix.sum() == 0


def test_summary_is_json_ready_with_none_for_absent_classes():
    import json

    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1]), np.array([0, 1]))
    s = cm.summary(["bg", "cat", "dog"])
    assert s["per_class_iou"] == {"bg": 1.0, "cat": 1.0, "dog": None}
    assert s["n_pixels"] == 2
    json.dumps(s)


def test_shape_mismatch_names_arguments():
    with pytest.raises(ValueError, match="`pred` and `labels`"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)


def test_label_out_of_range_names_value():
    with pytest.raises(ValueError, match=r"`labels`.*\[7\]"):
        confusion_matrix(np.zeros(2, int), np.array([0, 7]), 2)


def test_pred_out_of_range_names_value():
    with pytest.raises(ValueError, match=r"`pred`.*\[-1\]"):
        confusion_matrix(np.array([0, -1]), np.zeros(2, int), 2)


def test_float_input_is_rejected():
    with pytest.raises(TypeError, match="`pred`"):
        confusion_matrix(np.zeros(2), np.zeros(2, int), 2)


def test_naive_raises_like_fast():
    with pytest.raises(ValueError, match=r"\[7\]"):
        confusion_matrix_naive(np.zeros(2, int), np.array([0, 7]), 2)
