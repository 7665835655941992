"""The command line with one's own data: masks that do not fit the classes are errors naming the file
and the values; N-class folders and VOC datasets with their class names; bad
input named before any work, nothing trained lost."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.cli import main
from helpers import one_line_error  # noqa: E402
from tinyseg.data import save_label_png
from tinyseg.data.synthetic import write_dataset

TINY = ["--width", "0.03125", "--no-progress", "--iterations", "2"]


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    return str(tmp_path / "img.png")


def _mask(tmp_path, values):
    mask = np.full((24, 30), values[0], np.uint8)
    mask[6:18, 8:22] = values[1]
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    return str(path)


def test_a_0_255_mask_is_an_error_with_a_hint_not_background_only(tmp_path, image, capsys):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", "--image", image, "--annotation", _mask(tmp_path, (0, 255)), *TINY,
                 "--checkpoint", ckpt]) == 1
    one_line_error(capsys, "mask.png", "--mask-values 0,255", "background")
    assert not os.path.exists(ckpt)
    assert main(["train", "--image", image, "--annotation", _mask(tmp_path, (0, 255)), *TINY,
                 "--checkpoint", ckpt, "--mask-values", "0,255"]) == 0
    assert load_checkpoint(ckpt).config["classes"] == {"names": ["background", "object"], "values": [0, 255]}


def test_a_value_outside_the_classes_is_an_error_naming_file_and_value(tmp_path, image, capsys):
    assert main(["train", "--image", image, "--annotation", _mask(tmp_path, (0, 7)), *TINY,
                 "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "mask.png", "[7]", "--classes")
    assert main(["train", "--image", image, "--annotation", _mask(tmp_path, (0, 7)), *TINY,
                 "--checkpoint", str(tmp_path / "c.h5"), "--classes", "8"]) == 0


def test_an_all_ignore_mask_is_an_error(tmp_path, image, capsys):
    assert main(["train", "--image", image, "--annotation", _mask(tmp_path, (255, 255)), *TINY,
                 "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "mask.png", "no labelled pixel")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.h5"), "--image", image,
                 "--annotation", _mask(tmp_path, (255, 255))]) == 1


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    write_dataset(root / "voc", {"train": 4, "val": 3}, layout="voc", size=(32, 40), n_classes=4)
    write_dataset(root / "folders", {"train": 4, "val": 3}, layout="folders", size=(32, 40), n_classes=4)
    return root


@pytest.mark.parametrize("layout", ["voc", "folders"])
def test_own_classes_are_trained_stored_and_reported_by_name(shapes, tmp_path, layout, capsys):
    root = str(shapes / layout)
    ckpt = str(tmp_path / "c.h5")
    option = "--voc" if layout == "voc" else "--data"
    assert main(["train", option, root, "--classes", os.path.join(root, "classes.txt"), *TINY,
                 "--batch", "2", "--checkpoint", ckpt, "--val-split", "val", "--val-every", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 classes (background, disc, square, triangle)" in out and "best validation mean IoU" in out
    assert load_checkpoint(ckpt).config["classes"]["names"] == ["background", "disc", "square", "triangle"]
    assert os.path.exists(tmp_path / "c.best.h5")
    report = str(tmp_path / "m.json")
    assert main(["evaluate", "--checkpoint", ckpt, option, root, "--split", "val", "--json", report,
                 "--no-crf"]) == 0
    out = capsys.readouterr().out
    assert "triangle" in out and "square" in out
    metrics = json.load(open(report))
    assert set(metrics["fcn"]["per_class_iou"]) == {"background", "disc", "square", "triangle"}
    assert 0 <= metrics["fcn"]["mean_iou"] <= 1


def test_folders_without_classes_ask_for_them(tmp_path, capsys):
    write_dataset(tmp_path / "d", {"train": 2}, layout="folders", size=(16, 16), n_classes=3)
    os.remove(tmp_path / "d" / "classes.txt")
    assert main(["train", "--data", str(tmp_path / "d"), *TINY, "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "--classes")


@pytest.mark.parametrize("damage,needle", [
    ("missing_mask", "train_0001.png"),
    ("size", "train_0001.png"),
    ("value", "[9]"),
    ("unreadable", "train_0001.png"),
    ("empty_split", "train.txt"),
])
def test_bad_data_is_one_line_naming_the_file_before_work(tmp_path, capsys, damage, needle):
    root = tmp_path / "d"
    write_dataset(root, {"train": 3}, layout="voc", size=(16, 20), n_classes=3)
    mask = root / "SegmentationClass" / "train_0001.png"
    if damage == "missing_mask":
        mask.unlink()
    elif damage == "size":
        save_label_png(mask, np.zeros((15, 20), np.uint8))
    elif damage == "value":
        save_label_png(mask, np.full((16, 20), 9, np.uint8))
    elif damage == "unreadable":
        (root / "JPEGImages" / "train_0001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        needle = "train_0001.jpg"
    else:
        (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    ckpt = tmp_path / "c.h5"
    assert main(["train", "--voc", str(root), *TINY, "--checkpoint", str(ckpt)]) == 1
    one_line_error(capsys, needle)
    assert not ckpt.exists()


def test_predict_takes_a_folder_and_names_the_classes(shapes, tmp_path, capsys):
    root = str(shapes / "folders")
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", "--data", root, *TINY, "--checkpoint", ckpt]) == 0
    capsys.readouterr()
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", os.path.join(root, "val", "images"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 images" in printed and "predicted classes:" in printed
    for stem in ("val_0000", "val_0001", "val_0002"):
        labels = np.asarray(Image.open(out / f"{stem}.png"))
        assert labels.shape == (32, 40) and labels.max() < 4
        assert (out / f"{stem}_overlay.png").stat().st_size > 1000
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--checkpoint", ckpt, "--image", str(empty), "--out", str(out)]) == 1
    one_line_error(capsys, "holds no images")


def test_synthetic_command_writes_a_dataset_train_reads(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["synthetic", str(out), "--layout", "folders", "--train", "3", "--val", "2",
                 "--classes", "3", "--size", "24", "32"]) == 0
    assert "background, disc, square" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "val" / "masks").iterdir()) == ["val_0000.png", "val_0001.png"]
    assert main(["train", "--data", str(out), *TINY, "--checkpoint", str(tmp_path / "c.h5")]) == 0
