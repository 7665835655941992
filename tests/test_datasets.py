"""Own datasets with N classes: class sets, mask values, the folders layout, checks that name the
file, and the synthetic dataset's exact ground truth."""
import numpy as np
import pytest
from PIL import Image

from tinyseg.data import (
    FolderDataset,
    LabelError,
    LabelMap,
    VOCDataset,
    load_annotation,
    open_dataset,
    read_class_names,
    save_label_png,
)
from tinyseg.data.synthetic import class_names, synthetic_dataset, synthetic_sample, write_dataset


# ---------------------------------------------------------------- class sets and mask values

def test_mask_values_map_a_0_255_mask_to_background_and_object():
    lm = LabelMap.from_options(mask_values="0,255")
    assert lm.names == ("background", "object") and lm.n_classes == 2
    np.testing.assert_array_equal(lm.to_labels(np.array([[0, 255, 0]], np.uint8)), [[0, 1, 0]])


def test_a_value_outside_the_classes_is_an_error_naming_file_values_and_hint():
    lm = LabelMap.numbered(3)
    with pytest.raises(LabelError, match=r"'m/a\.png' has value\(s\) \[7, 9\].*--classes.*--mask-values 0,255"):
        lm.to_labels(np.array([[0, 7, 9, 255]], np.uint8), path="m/a.png")


def test_binary_map_rejects_values_the_post_silently_called_background():
    with pytest.raises(LabelError, match=r"\[7\]"):
        LabelMap.binary().to_labels(np.array([[0, 1, 7]], np.uint8))


def test_an_all_ignore_mask_is_an_error():
    with pytest.raises(LabelError, match=r"'x\.png' has no labelled pixel"):
        LabelMap.binary().to_labels(np.full((3, 4), 255, np.uint8), path="x.png")


def test_255_is_a_class_when_mask_values_list_it():
    labels = LabelMap.from_options(mask_values=[0, 255]).to_labels(np.full((2, 2), 255, np.uint8))
    assert (labels == 1).all()


def test_unlisted_255_stays_ignore_with_mask_values():
    labels = LabelMap.from_options(mask_values="10,20").to_labels(np.array([[10, 20, 255]], np.uint8))
    np.testing.assert_array_equal(labels, [[0, 1, 255]])


def test_classes_file_names_classes_and_count(tmp_path):
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\n\n")
    lm = LabelMap.from_options(str(tmp_path / "classes.txt"))
    assert lm.names == ("sky", "road", "car") and lm.values is None
    assert LabelMap.from_options("5").names == ("class0", "class1", "class2", "class3", "class4")
    assert LabelMap.from_dict(lm.to_dict()) == lm


@pytest.mark.parametrize("text,match", [("", "empty"), ("a\n\nb\n", "empty line 2"), ("a\nb\na\n", "more than once")])
def test_bad_classes_file_is_named(tmp_path, text, match):
    (tmp_path / "c.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_class_names(tmp_path / "c.txt")


@pytest.mark.parametrize("kwargs,match", [
    (dict(classes="0"), "1..255"), (dict(classes="300"), "1..255"),
    (dict(classes="nofile.txt"), "nofile"), (dict(mask_values="0;255"), "comma"),
    (dict(mask_values="5"), "at least 2"), (dict(classes="3", mask_values="0,255"), "one mask value per class"),
])
def test_bad_class_options_are_named(kwargs, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        LabelMap.from_options(**kwargs)


# ---------------------------------------------------------------- folders layout

def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _make_folders(root, stems=("a", "b", "c"), values=(0, 1, 2), size=(6, 8)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, s in enumerate(stems):
        Image.fromarray(_rgb(*size, seed=k)).save(root / "images" / f"{s}.png")
        save_label_png(root / "masks" / f"{s}.png", np.resize(np.array(values, np.uint8), size))


def test_folders_are_matched_by_stem(tmp_path):
    _make_folders(tmp_path)
    Image.fromarray(_rgb(6, 8)).save(tmp_path / "images" / "d.jpg")
    save_label_png(tmp_path / "masks" / "d.png", np.zeros((6, 8), np.uint8))
    ds = FolderDataset(tmp_path, labels=LabelMap.numbered(3))
    assert ds.ids == ["a", "b", "c", "d"] and ds.image_path(3).endswith("d.jpg")
    image, labels = ds[1]
    assert image.shape == (6, 8, 3) and set(np.unique(labels)) == {0, 1, 2}
    assert ds.check().tolist() == [16 + 16 + 16 + 48, 16 * 3, 16 * 3]


def test_folder_splits_by_subfolder_or_list(tmp_path):
    _make_folders(tmp_path / "train")
    _make_folders(tmp_path / "val", stems=("v",))
    assert len(open_dataset(tmp_path, "train", LabelMap.numbered(3))) == 3
    assert open_dataset(tmp_path, "val", LabelMap.numbered(3)).ids == ["v"]
    _make_folders(tmp_path / "flat")
    (tmp_path / "flat" / "val.txt").write_text("b\n")
    assert open_dataset(tmp_path / "flat", "val", LabelMap.numbered(3)).ids == ["b"]
    with pytest.raises(FileNotFoundError, match="no split 'test'"):
        open_dataset(tmp_path / "flat", "test", LabelMap.numbered(3))


def test_image_without_mask_is_named(tmp_path):
    _make_folders(tmp_path)
    (tmp_path / "masks" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"images/b\.png"):
        FolderDataset(tmp_path, labels=LabelMap.numbered(3))


def test_jpeg_mask_is_refused(tmp_path):
    _make_folders(tmp_path)
    (tmp_path / "masks" / "a.png").rename(tmp_path / "masks" / "a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg.*lossless"):
        FolderDataset(tmp_path, labels=LabelMap.numbered(3))


@pytest.mark.parametrize("damage,match", [
    ("size", r"b\.png' is 5x8 but image .*b\.png' is 6x8"),
    ("value", r"b\.png' has value\(s\) \[9\]"),
    ("unreadable", r"cannot read image file .*b\.png"),
    ("empty", r"b\.png' has no labelled pixel"),
])
def test_check_names_the_bad_file_before_any_work(tmp_path, damage, match):
    _make_folders(tmp_path)
    if damage == "size":
        save_label_png(tmp_path / "masks" / "b.png", np.zeros((5, 8), np.uint8))
    elif damage == "value":
        save_label_png(tmp_path / "masks" / "b.png", np.full((6, 8), 9, np.uint8))
    elif damage == "unreadable":
        (tmp_path / "images" / "b.png").write_bytes(b"not an image")
    else:
        save_label_png(tmp_path / "masks" / "b.png", np.full((6, 8), 255, np.uint8))
    ds = FolderDataset(tmp_path, labels=LabelMap.numbered(3))
    with pytest.raises(ValueError, match=match):
        ds.check()


def test_empty_split_is_named(tmp_path):
    _make_folders(tmp_path)
    (tmp_path / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"val\.txt' is empty"):
        FolderDataset(tmp_path, "val", labels=LabelMap.numbered(3))
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(ValueError, match="has no images"):
        FolderDataset(tmp_path / "empty", labels=LabelMap.numbered(3))


# ---------------------------------------------------------------- synthetic data

def test_synthetic_samples_are_deterministic_with_several_classes():
    a, la = synthetic_sample((3, 1), n_classes=4)
    b, lb = synthetic_sample((3, 1), n_classes=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert a.shape == (160, 224, 3) and la.dtype == np.int32
    present = set()
    for _, labels in synthetic_dataset(12, size=(40, 56), seed=0):
        present |= set(np.unique(labels).tolist())
    assert present == {0, 1, 2, 3}
    assert class_names(4) == ("background", "disc", "square", "triangle")


def test_synthetic_labels_are_exact_shapes():
    """A lone disc's label region is exactly the pixels whose centre lies inside the circle."""
    _, labels = synthetic_sample(7, size=(64, 64), n_classes=2, max_objects=1)
    ys, xs = np.nonzero(labels == 1)
    cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
    r = np.sqrt((labels == 1).sum() / np.pi)
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    assert (disc != (labels == 1)).mean() < 0.02  # a disc (clipped by the border at most a little)


@pytest.mark.parametrize("layout", ["voc", "folders"])
def test_write_dataset_in_both_layouts_reads_back(tmp_path, layout):
    names = write_dataset(tmp_path, {"train": 3, "val": 2}, layout=layout, size=(24, 32), n_classes=3)
    lm = LabelMap.from_options(str(tmp_path / "classes.txt"))
    assert lm.names == names == ("background", "disc", "square")
    train, val = open_dataset(tmp_path, "train", lm), open_dataset(tmp_path, "val", lm)
    assert len(train) == 3 and len(val) == 2
    assert isinstance(train, VOCDataset if layout == "voc" else FolderDataset)
    _, expected = synthetic_sample((0, 3), (24, 32), 3)          # val starts after train's 3
    np.testing.assert_array_equal(val[0][1], expected)
    assert load_annotation(val.mask_path(0)).dtype == np.uint8


def test_synthetic_classes_have_their_own_hue_but_the_background_any():
    import colorsys

    hues = {1: [], 2: [], 3: []}
    backgrounds = []
    for image, labels in synthetic_dataset(24, size=(48, 64), n_classes=4, seed=3):
        for k in hues:
            if (labels == k).sum() > 50:
                r, g, b = image[labels == k].mean(axis=0) / 255
                hues[k].append(colorsys.rgb_to_hsv(r, g, b)[0] * 360)
        r, g, b = image[labels == 0].mean(axis=0) / 255
        backgrounds.append(colorsys.rgb_to_hsv(r, g, b)[0] * 360)
    for k, centre in ((1, 0.0), (2, 120.0), (3, 240.0)):
        assert hues[k], k
        off = [min(abs(h - centre), 360 - abs(h - centre)) for h in hues[k]]
        assert max(off) < 45, (k, hues[k])
    assert max(backgrounds) - min(backgrounds) > 180            # backgrounds of every hue
