"""One rule turns ``--classes N|FILE``, a dataset's ``classes.txt``, ``--mask-values``, ``--labels``
and a checkpoint's classes into class names and mask values: a file's names are never replaced by
generic ones, and a count that disagrees is an error naming both sources."""
import numpy as np
import pytest
from PIL import Image

from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.cli import main
from tinyseg.data import LabelMap
from tinyseg.data.classes import resolve_classes

BO = ("background", "object")
C3 = ("class0", "class1", "class2")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ds").mkdir()
    found = tmp_path / "ds" / "classes.txt"
    found.write_text("background\ncoin\n")
    given = tmp_path / "mine.txt"
    given.write_text("sea\nland\n")
    return {"FOUND": str(found), "FILE": str(given)}


# (--classes, found classes.txt?, --mask-values) -> (names, values) or the two sources an error names.
TABLE = [
    (None, False, None, "not known"),
    (None, False, "0,255", (BO, (0, 255))),
    (None, False, "0,128,255", (C3, (0, 128, 255))),
    (None, True, None, (("background", "coin"), None)),
    (None, True, "0,255", (("background", "coin"), (0, 255))),
    (None, True, "0,128,255", ("--mask-values has 3 values", "FOUND names 2 classes")),
    ("2", False, None, (BO, None)),
    ("2", False, "0,255", (BO, (0, 255))),
    ("2", False, "0,128,255", ("--mask-values has 3 values", "--classes gives 2 classes")),
    ("2", True, None, (("background", "coin"), None)),
    ("2", True, "0,255", (("background", "coin"), (0, 255))),
    ("2", True, "0,128,255", ("--mask-values has 3 values", "FOUND names 2 classes")),
    ("3", False, None, (C3, None)),
    ("3", False, "0,255", ("--mask-values has 2 values", "--classes gives 3 classes")),
    ("3", False, "0,128,255", (C3, (0, 128, 255))),
    ("3", True, None, ("--classes gives 3 classes", "FOUND names 2 classes")),
    ("3", True, "0,255", ("--classes gives 3 classes", "FOUND names 2 classes")),
    ("3", True, "0,128,255", ("--classes gives 3 classes", "FOUND names 2 classes")),
    ("FILE", False, None, (("sea", "land"), None)),
    ("FILE", False, "0,255", (("sea", "land"), (0, 255))),
    ("FILE", False, "0,128,255", ("--mask-values has 3 values", "--classes FILE names 2 classes")),
    ("FILE", True, None, (("sea", "land"), None)),              # an explicit file replaces the found one
    ("FILE", True, "0,255", (("sea", "land"), (0, 255))),
    ("FILE", True, "0,128,255", ("--mask-values has 3 values", "--classes FILE names 2 classes")),
]


@pytest.mark.parametrize("classes,found,mask_values,expected", TABLE)
def test_every_combination_of_classes_found_file_and_mask_values(files, classes, found, mask_values,
                                                                  expected):
    kwargs = dict(classes=files.get(classes, classes), found=files["FOUND"] if found else None,
                  mask_values=mask_values)
    if isinstance(expected, str) or isinstance(expected[0], str):
        needles = [expected] if isinstance(expected, str) else expected
        with pytest.raises(ValueError) as info:
            resolve_classes(**kwargs)
        message = str(info.value)
        assert "\n" not in message
        for needle in needles:
            for key, path in files.items():
                needle = needle.replace(key, path)
            assert needle in message, message
    else:
        assert resolve_classes(**kwargs) == LabelMap(*expected)


@pytest.mark.parametrize("classes,found,mask_values,expected", TABLE)
def test_the_commands_data_options_follow_the_same_table(files, tmp_path, classes, found, mask_values,
                                                         expected):
    """The same table through the commands' option handling, with ``--data`` a folders dataset."""
    import argparse
    import os

    from tinyseg.cli.dataopts import label_map_from_args

    root = tmp_path / "ds"
    if not found:
        os.remove(files["FOUND"])
    args = argparse.Namespace(image=None, annotation=None, voc=None, data=str(root), split=None,
                              labels=None, classes=files.get(classes, classes), mask_values=mask_values)
    files = dict(files, FOUND=os.path.join(str(root), "classes.txt"))
    if isinstance(expected, str) or isinstance(expected[0], str):
        with pytest.raises(ValueError) as info:
            label_map_from_args(args)
        needles = ["--classes"] if isinstance(expected, str) else expected
        for needle in needles:
            for key, path in files.items():
                needle = needle.replace(key, path)
            assert needle in str(info.value), str(info.value)
    else:
        assert label_map_from_args(args) == LabelMap(*expected)


def test_a_one_line_classes_file_and_two_mask_values_disagree(tmp_path):
    found = tmp_path / "classes.txt"
    found.write_text("coin\n")
    with pytest.raises(ValueError, match=r"--mask-values has 2 values but .*classes.txt names 1 class\b"):
        resolve_classes(mask_values="0,255", found=str(found))


def test_a_checkpoints_classes_are_kept_and_bind_the_count(files):
    saved = LabelMap(("background", "coin"), (0, 255))
    assert resolve_classes(saved=saved, saved_from="checkpoint c.h5") == saved
    # a dataset's file names, the checkpoint's mask values
    assert resolve_classes(classes=files["FILE"], saved=saved) == LabelMap(("sea", "land"), (0, 255))
    assert resolve_classes(mask_values="0,1", saved=saved) == LabelMap(("background", "coin"), (0, 1))
    with pytest.raises(ValueError, match="--mask-values has 3 values but checkpoint c.h5 names 2 classes"):
        resolve_classes(mask_values="0,1,2", saved=saved, saved_from="checkpoint c.h5")
    # a checkpoint that stored no names: the dataset's file names its classes
    unnamed = LabelMap.numbered(2)
    assert resolve_classes(saved=unnamed, found=files["FOUND"]).names == ("background", "coin")


def test_labels_name_a_set_and_the_fallback_never_overrides_a_count(files):
    assert resolve_classes(labels="binary", found=files["FOUND"]) == LabelMap.binary()
    assert resolve_classes(labels="binary", mask_values="0,255") == LabelMap(BO, (0, 255))
    with pytest.raises(ValueError, match="--mask-values has 3 values but --labels binary names 2"):
        resolve_classes(labels="binary", mask_values="0,1,2")
    with pytest.raises(ValueError, match="--labels and --classes FILE"):
        resolve_classes(labels="voc", classes=files["FILE"])
    assert resolve_classes(fallback=LabelMap.voc()) == LabelMap.voc()
    assert resolve_classes(fallback=LabelMap.voc(), mask_values="0,255") == LabelMap(BO, (0, 255))
    assert resolve_classes(fallback=LabelMap.binary(), mask_values="0,255") == LabelMap(BO, (0, 255))


@pytest.fixture
def coins(tmp_path):
    """A folders dataset of two 0/255 masks and a classes.txt naming background and coin."""
    rng = np.random.default_rng(0)
    root = tmp_path / "coins_set"
    for name in ("images", "masks"):
        (root / name).mkdir(parents=True)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(root / "images" / f"c{k}.png")
        mask = np.zeros((24, 30), np.uint8)
        mask[5:15, 6 + k:20] = 255
        Image.fromarray(mask).save(root / "masks" / f"c{k}.png")
    (root / "classes.txt").write_text("background\ncoin\n")
    return root


TINY = ["--width", "0.03125", "--no-progress", "--iterations", "1"]


def test_train_keeps_the_dataset_class_names_with_mask_values(coins, tmp_path, capsys):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", "--data", str(coins), "--mask-values", "0,255", *TINY, "--checkpoint", ckpt]) == 0
    assert "2 classes (background, coin)" in capsys.readouterr().out
    assert load_checkpoint(ckpt).config["classes"] == {"names": ["background", "coin"], "values": [0, 255]}
    assert main(["train", "--data", str(coins), "--mask-values", "0,128,255", *TINY, "--checkpoint",
                 str(tmp_path / "d.h5")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mask-values has 3 values but" in err
    assert "classes.txt names 2 classes" in err


def test_the_rule_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "classes.txt" in out and "names 2 classes" in out
