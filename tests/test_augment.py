"""Augmentation: deterministic in (seed, step, index), labels stay exact classes, geometry right."""
import numpy as np
import pytest

from tinyseg.training.augment import AugmentConfig, augment, resize_bilinear, resize_nearest


def _pair(h=20, w=30):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (h, w)).astype(np.int32)
    return image, labels


def test_same_seed_step_index_gives_the_same_sample_and_others_differ():
    image, labels = _pair()
    cfg = AugmentConfig(flip=True, scale=(0.5, 1.5), crop=(16, 16))
    a = augment(image, labels, cfg, 1, 5, 2)
    b = augment(image, labels, cfg, 1, 5, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    outs = {augment(image, labels, cfg, 1, step, 0)[0].tobytes() for step in range(8)}
    assert len(outs) > 4
    assert a[0].shape == (16, 16, 3) and a[1].shape == (16, 16)


def test_flip_only_mirrors_both_together():
    image, labels = _pair()
    flipped = [augment(image, labels, AugmentConfig(flip=True), 0, t, 0) for t in range(20)]
    n_flipped = 0
    for im, lab in flipped:
        if np.array_equal(im, image[:, ::-1]):
            np.testing.assert_array_equal(lab, labels[:, ::-1])
            n_flipped += 1
        else:
            np.testing.assert_array_equal(im, image)
            np.testing.assert_array_equal(lab, labels)
    assert 3 <= n_flipped <= 17


def test_scaled_labels_keep_only_existing_classes_and_image_follows():
    image, labels = _pair()
    labels[:10] = 255
    for t in range(5):
        im, lab = augment(image, labels, AugmentConfig(scale=(0.5, 2.0)), 0, t, 0)
        assert im.shape[:2] == lab.shape
        assert set(np.unique(lab)) <= {0, 1, 2, 255}


def test_crop_larger_than_image_pads_with_ignore_and_mean():
    image, labels = _pair(8, 10)
    im, lab = augment(image, labels, AugmentConfig(crop=(12, 14)), 0, 0, 0)
    assert im.shape == (12, 14, 3)
    np.testing.assert_array_equal(lab[:8, :10], labels)
    assert (lab[8:] == 255).all() and (lab[:, 10:] == 255).all()
    np.testing.assert_array_equal(im[10, 12], [124, 117, 104])


def test_resize_bilinear_matches_skimage_order_1():
    skimage = pytest.importorskip("skimage.transform")
    image, _ = _pair(9, 13)
    mine = resize_bilinear(image, 17, 20)
    ref = skimage.resize(image.astype(np.float64), (17, 20), order=1, mode="edge", anti_aliasing=False,
                         preserve_range=True)
    assert np.abs(mine.astype(float) - ref).max() <= 1.0


def test_resize_nearest_by_integer_factor_repeats_pixels():
    labels = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(resize_nearest(labels, 4, 6), labels.repeat(2, 0).repeat(2, 1))


@pytest.mark.parametrize("kwargs", [dict(scale=(0, 1)), dict(scale=(2, 1)), dict(crop=(0, 5))])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        AugmentConfig(**kwargs)


def test_hue_rotation_keeps_grey_and_turns_primaries_in_a_cycle():
    from tinyseg.training.augment import hue_rotation

    R = hue_rotation(2 * np.pi / 3)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(R @ [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


def test_color_jitter_changes_colours_only_and_is_deterministic():
    image, labels = _pair()
    cfg = AugmentConfig(color=0.5)
    a_img, a_lab = augment(image, labels, cfg, 2, 3, 1)
    b_img, _ = augment(image, labels, cfg, 2, 3, 1)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, labels)
    assert not np.array_equal(a_img, image) and a_img.dtype == np.uint8
    # the other augmentations draw the same numbers with or without colour jitter
    geo = AugmentConfig(flip=True, scale=(0.5, 1.5))
    both = AugmentConfig(flip=True, scale=(0.5, 1.5), color=0.5)
    np.testing.assert_array_equal(augment(image, labels, geo, 0, 7, 0)[1], augment(image, labels, both, 0, 7, 0)[1])
