"""Tests of tinyseg.data: loading, label mappings, preprocessing, palette PNGs, VOC folders."""

import numpy as np
import pytest
from PIL import Image

import tinyseg.data as tsdata
from tinyseg.data import (
    BINARY_CLASSES,
    VGG_MEAN_RGB,
    VOC_CLASSES,
    VOCDataset,
    binary_labels,
    chelsea,
    deprocess,
    load_annotation,
    load_image,
    preprocess,
    save_label_png,
    voc_colormap,
    voc_labels,
)


def _rgb(h=4, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- images

def test_load_image_rgb_png_round_trip(tmp_path):
    img = _rgb()
    Image.fromarray(img).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, img)


def test_load_image_jpeg(tmp_path):
    Image.fromarray(_rgb(16, 16)).save(tmp_path / "a.jpg", quality=95)
    out = load_image(tmp_path / "a.jpg")
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_load_image_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _rgb()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_load_image_rgba_drops_alpha_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(tsdata.io, "_warned_alpha", False)
    rgba = np.dstack([_rgb(), np.full((4, 5), 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match=r"a\.png.*alpha") as record:
        out = load_image(tmp_path / "a.png")
        load_image(tmp_path / "a.png")
    assert len([w for w in record if "alpha" in str(w.message)]) == 1
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_load_image_16bit_error_names_file(tmp_path):
    Image.fromarray(np.full((3, 3), 1000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"deep\.png"):
        load_image(tmp_path / "deep.png")


def test_load_image_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg"):
        load_image(tmp_path / "missing.jpg")


def test_load_image_not_an_image_names_file(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.png"):
        load_image(tmp_path / "notes.png")


# ---------------------------------------------------------------- annotations

def test_load_annotation_palette_png_gives_indices_not_colours(tmp_path):
    idx = np.array([[0, 1, 2], [15, 20, 255]], np.uint8)
    img = Image.fromarray(idx)
    img.putpalette(voc_colormap().ravel().tolist())  # index 1 is drawn (128, 0, 0)
    img.save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "P"
    out = load_annotation(tmp_path / "a.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, idx)


def test_load_annotation_grayscale_png(tmp_path):
    idx = np.array([[0, 1], [255, 3]], np.uint8)
    Image.fromarray(idx).save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_annotation(tmp_path / "g.png"), idx)


def test_load_annotation_16bit_gives_int32(tmp_path):
    idx = np.array([[0, 1], [300, 3]], np.uint16)
    Image.fromarray(idx).save(tmp_path / "g16.png")
    out = load_annotation(tmp_path / "g16.png")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, idx)


def test_load_annotation_rgb_colour_image_error_names_file(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"colour\.png.*colour image"):
        load_annotation(tmp_path / "colour.png")


def test_load_annotation_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        load_annotation(tmp_path / "nope.png")


# ---------------------------------------------------------------- label mappings

def test_binary_labels_value_one_is_object_class_one():
    ann = np.array([[0, 1, 2], [15, 1, 255]], np.uint8)
    out = binary_labels(ann)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 1, 0], [0, 1, 255]])
    assert BINARY_CLASSES[1] == "object"


def test_binary_labels_post_mapping_without_ignore():
    out = binary_labels(np.array([[1, 255, 3]]), keep_ignore=False)
    np.testing.assert_array_equal(out, [[1, 0, 0]])


def test_binary_labels_rejects_3d_input_naming_argument():
    with pytest.raises(ValueError, match="`annotation`"):
        binary_labels(np.zeros((2, 2, 3), np.uint8))


def test_voc_labels_accepts_classes_and_ignore():
    ann = np.array([[0, 20], [255, 8]], np.uint8)
    out = voc_labels(ann)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ann)
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[8] == "cat"


def test_voc_labels_unknown_value_names_value_and_file():
    with pytest.raises(ValueError, match=r"\[21, 128\].*'x/2007_000032\.png'"):
        voc_labels(np.array([[0, 21, 128, 255]], np.uint8), path="x/2007_000032.png")


def test_voc_labels_rejects_float_naming_argument():
    with pytest.raises(TypeError, match="`annotation`"):
        voc_labels(np.zeros((2, 2)))


# ---------------------------------------------------------------- preprocessing

def test_preprocess_subtracts_vgg_rgb_means():
    img = _rgb()
    x = preprocess(img)
    assert x.dtype == np.float32 and x.shape == img.shape
    np.testing.assert_allclose(x[1, 2], img[1, 2].astype(np.float32) - [123.68, 116.779, 103.939], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(VGG_MEAN_RGB, np.float32([123.68, 116.779, 103.939]))


def test_preprocess_accepts_a_batch():
    assert preprocess(np.zeros((2, 3, 4, 3), np.uint8)).shape == (2, 3, 4, 3)


def test_preprocess_rejects_channels_first_naming_argument():
    with pytest.raises(ValueError, match="`image`"):
        preprocess(np.zeros((3, 8, 8), np.uint8))


def test_deprocess_inverts_preprocess():
    img = _rgb()
    np.testing.assert_array_equal(deprocess(preprocess(img)), img)


# ---------------------------------------------------------------- palette PNGs

def test_voc_colormap_known_colours():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]
    assert cmap[8].tolist() == [64, 0, 0]        # cat
    assert cmap[15].tolist() == [192, 128, 128]  # person
    assert cmap[255].tolist() == [224, 224, 192]  # void


def test_save_label_png_writes_palette_png_read_back_exactly(tmp_path):
    labels = np.array([[0, 1, 255], [20, 8, 1]], np.int32)
    save_label_png(tmp_path / "l.png", labels)
    img = Image.open(tmp_path / "l.png")
    assert img.mode == "P"
    assert np.asarray(img.convert("RGB"))[0, 1].tolist() == [128, 0, 0]
    np.testing.assert_array_equal(load_annotation(tmp_path / "l.png"), labels)


def test_save_label_png_out_of_range_names_argument(tmp_path):
    with pytest.raises(ValueError, match="`labels`.*256"):
        save_label_png(tmp_path / "l.png", np.array([[0, 256]]))


# ---------------------------------------------------------------- VOC folders

def _make_voc(root, ids=("a", "b"), split="train", ann_values=(0, 1, 255), size=(6, 7)):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for k, i in enumerate(ids):
        Image.fromarray(_rgb(*size, seed=k)).save(root / "JPEGImages" / f"{i}.jpg", quality=95)
        ann = np.resize(np.array(ann_values, np.uint8), size)
        save_label_png(root / "SegmentationClass" / f"{i}.png", ann)
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")


def test_voc_dataset_reads_items(tmp_path):
    _make_voc(tmp_path)
    ds = VOCDataset(tmp_path, "train")
    assert len(ds) == 2 and ds.ids == ["a", "b"]
    image, labels = ds[1]
    assert image.shape == (6, 7, 3) and image.dtype == np.uint8
    assert labels.shape == (6, 7) and labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1, 255}
    assert len(list(ds)) == 2


def test_voc_dataset_binary_labels(tmp_path):
    _make_voc(tmp_path, ann_values=(0, 1, 255))
    _, labels = VOCDataset(tmp_path, "train", labels="binary")[0]
    assert set(np.unique(labels)) == {0, 1, 255}


def test_voc_dataset_binary_labels_reject_other_values_instead_of_calling_them_background(tmp_path):
    _make_voc(tmp_path, ann_values=(0, 1, 8, 255))
    with pytest.raises(ValueError, match=r"a\.png.*\[8\].*--mask-values"):
        VOCDataset(tmp_path, "train", labels="binary")[0]


def test_voc_dataset_missing_folder_is_named(tmp_path):
    _make_voc(tmp_path)
    (tmp_path / "SegmentationClass" / "a.png").unlink()
    (tmp_path / "SegmentationClass" / "b.png").unlink()
    (tmp_path / "SegmentationClass").rmdir()
    with pytest.raises(FileNotFoundError, match="SegmentationClass"):
        VOCDataset(tmp_path, "train")


def test_voc_dataset_missing_split_list_is_named(tmp_path):
    _make_voc(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"val\.txt"):
        VOCDataset(tmp_path, "val")


def test_voc_dataset_missing_listed_file_is_named(tmp_path):
    _make_voc(tmp_path)
    (tmp_path / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.jpg"):
        VOCDataset(tmp_path, "train")


def test_voc_dataset_size_mismatch_names_both_files(tmp_path):
    _make_voc(tmp_path)
    save_label_png(tmp_path / "SegmentationClass" / "a.png", np.zeros((5, 7), np.uint8))
    with pytest.raises(ValueError, match=r"a\.png.*5x7.*a\.jpg.*6x7"):
        VOCDataset(tmp_path, "train")[0]


def test_voc_dataset_unknown_label_names_value_and_file(tmp_path):
    _make_voc(tmp_path, ann_values=(0, 42))
    with pytest.raises(ValueError, match=r"a\.png.*\[42\]"):
        VOCDataset(tmp_path, "train")[0]


def test_voc_dataset_bad_labels_option_names_argument(tmp_path):
    _make_voc(tmp_path)
    with pytest.raises(ValueError, match="`labels`"):
        VOCDataset(tmp_path, "train", labels="coco")


# ---------------------------------------------------------------- bundled demo data

def test_chelsea_image_and_annotation():
    image, annotation = chelsea()
    assert image.shape == (300, 451, 3) and image.dtype == np.uint8
    assert annotation.shape == (300, 451) and annotation.dtype == np.uint8
    assert set(np.unique(annotation)) == {0, 1, 255}
    frac = {v: (annotation == v).mean() for v in (0, 1, 255)}
    assert 0.6 < frac[1] < 0.85 and 0.15 < frac[0] < 0.35 and frac[255] < 0.05
    # The cat fills the centre; the blurred room on the right is background.
    assert annotation[150, 225] == 1 and annotation[150, 440] == 0 and annotation[10, 5] == 0


def test_chelsea_annotation_maps_to_binary_labels():
    _, annotation = chelsea()
    labels = binary_labels(annotation)
    np.testing.assert_array_equal(labels == 1, annotation == 1)
    np.testing.assert_array_equal(labels == 255, annotation == 255)
