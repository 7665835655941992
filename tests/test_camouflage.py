"""The camouflage set: synthetic images whose colour edges are not their label edges."""
import numpy as np
import pytest

from tinyseg.data.synthetic import (camouflage_dataset, camouflage_sample, class_names,
                                    synthetic_dataset)


def _label_edges_seen_in_colour(samples, threshold=40.0):
    """Share of label edges (between horizontal neighbours) that are strong colour edges too."""
    on_label = strong_on_label = 0
    for image, labels in samples:
        jump = np.linalg.norm(np.diff(image.astype(np.float64), axis=1), axis=-1)   # (H, W-1)
        label_edge = np.diff(labels, axis=1) != 0
        on_label += label_edge.sum()
        strong_on_label += (label_edge & (jump > threshold)).sum()
    return strong_on_label / on_label


def test_camouflage_is_a_pure_function_of_its_seed():
    a_image, a_labels = camouflage_sample((3, 1), size=(40, 56))
    b_image, b_labels = camouflage_sample((3, 1), size=(40, 56))
    c_image, _ = camouflage_sample((3, 2), size=(40, 56))
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(a_image, c_image)


@pytest.mark.parametrize("n_classes", [2, 4, 6])
def test_camouflage_shapes_dtypes_and_classes(n_classes):
    samples = camouflage_dataset(6, size=(48, 64), n_classes=n_classes, seed=5)
    for image, labels in samples:
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert labels.shape == (48, 64) and labels.dtype == np.int32
        assert labels.min() >= 0 and labels.max() < len(class_names(n_classes))
    assert any((labels > 0).any() for _, labels in samples)


@pytest.mark.parametrize("seed", [1, 2])
def test_camouflage_label_edges_are_often_invisible_in_colour_unlike_the_shapes(seed):
    # the shapes: every object in its own colours, so (nearly) every label edge is a colour edge
    assert _label_edges_seen_in_colour(synthetic_dataset(8, size=(96, 128), seed=seed)) > 0.95
    # camouflage: object and background share one palette, so many label edges are not
    assert _label_edges_seen_in_colour(camouflage_dataset(8, size=(96, 128), seed=seed)) < 0.85
