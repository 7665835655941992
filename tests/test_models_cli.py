"""``tinyseg train --model … [--init-from …]``, predict/evaluate reading the model from the
checkpoint, the trimap report, and old (unnamed) checkpoints, end to end on tiny data."""
import json

import numpy as np
import pytest

from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint
from tinyseg.cli import main
from helpers import save_image_and_annotation  # noqa: E402
from tinyseg.cli.common import load_model
from tinyseg.models import DeepLabLargeFOV, FCN8s, FCN16s, FCN32s, build_model

TINY = ["--width", "0.03125", "--iterations", "2", "--lr", "1e-3", "--no-progress"]


@pytest.fixture
def data(tmp_path):
    img, ann = save_image_and_annotation(tmp_path, (37, 45), (9, 29, 11, 38), colour=(220, 200, 40))
    return ["--image", img, "--annotation", ann]


def test_train_each_fcn_and_predict_reads_the_model_from_the_checkpoint(tmp_path, data):
    for name, cls in [("fcn16s", FCN16s), ("fcn8s-atonce", FCN8s), ("deeplab-largefov", DeepLabLargeFOV)]:
        ckpt = str(tmp_path / f"{name}.h5")
        assert main(["train", *data, "--model", name, "--checkpoint", ckpt, *TINY]) == 0
        assert load_checkpoint(ckpt).config["model"]["name"] == name
        model = load_model(ckpt)
        assert isinstance(model, cls) and model.name == name
        out = tmp_path / f"pred-{name}"
        assert main(["predict", "--checkpoint", ckpt, "--image", data[1], "--out", str(out)]) == 0
        assert np.load(out / "probabilities.npy").shape == (37, 45, 2)


def test_staged_training_fcn32s_then_fcn16s_then_fcn8s(tmp_path, data, capsys):
    c32, c16, c8 = (str(tmp_path / f"{n}.h5") for n in ("32", "16", "8"))
    assert main(["train", *data, "--checkpoint", c32, *TINY]) == 0
    tiny_no_width = TINY[2:]                       # --width comes from the checkpoint
    assert main(["train", *data, "--model", "fcn16s", "--init-from", c32, "--checkpoint", c16,
                 *tiny_no_width]) == 0
    assert "fcn16s initialised from" in capsys.readouterr().out
    assert main(["train", *data, "--model", "fcn8s", "--init-from", c16, "--checkpoint", c8,
                 *tiny_no_width]) == 0
    p16 = load_checkpoint(c16).params
    assert load_model(c8).config.width == 0.03125
    # Adam starts afresh in each stage: step 2 of each run, not 4 or 6.
    assert load_checkpoint(c8).adam_state["step"] == 2
    assert set(p16) < set(load_checkpoint(c8).params)


def test_init_from_errors_are_one_line_and_checked_before_training(tmp_path, data, capsys):
    c32 = str(tmp_path / "32.h5")
    assert main(["train", *data, "--checkpoint", c32, *TINY]) == 0
    capsys.readouterr()
    cases = [
        (["--init-from", str(tmp_path / "nope.h5")], "--init-from: file not found"),
        (["--init-from", c32, "--width", "0.0625"], "differs from the --init-from"),
        (["--init-from", c32, "--resume"], "cannot be combined with --resume"),
    ]
    for extra, message in cases:
        assert main(["train", *data, "--model", "fcn16s", "--checkpoint", str(tmp_path / "x.h5"),
                     "--iterations", "1", "--no-progress", *extra]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.h5").exists()


def test_evaluate_json_keeps_its_keys_and_adds_trimap_per_stage(tmp_path, data):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, "--model", "fcn8s", "--checkpoint", ckpt, *TINY]) == 0
    path = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", ckpt, *data, "--json", str(path), "--trimap", "2,4"]) == 0
    report = json.load(open(path))
    assert set(report) == {"fcn", "crf"}
    for stage in ("fcn", "crf"):
        assert {"pixel_accuracy", "mean_iou", "per_class_iou", "n_pixels", "trimap"} <= set(report[stage])
        assert set(report[stage]["trimap"]) == {"2", "4"}
        band = report[stage]["trimap"]["4"]
        assert 0 <= band["mean_iou"] <= 1 and 0 <= band["pixel_accuracy"] <= 1
        assert band["n_pixels"] < report[stage]["n_pixels"]
    assert main(["evaluate", "--checkpoint", ckpt, *data, "--trimap", "2,x"]) == 1


def test_a_checkpoint_without_a_model_name_loads_and_resumes_as_fcn32s(tmp_path, data, capsys):
    """Older checkpoints stored the FCN-32s config without "name": they load and resume as FCN-32s."""
    model = build_model("fcn32s", 2, width=0.03125)
    old_config = {k: v for k, v in model.config_dict().items() if k != "name"}
    ckpt = str(tmp_path / "old.h5")
    save_checkpoint(ckpt, model.host_params(), {"m": {}, "v": {}, "step": 0},
                    {"model": old_config, "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                     "train": {"shuffle_seed": 0, "reduction": "sum"}}, extra={"losses": [], "seconds": 0.0})
    assert isinstance(load_model(ckpt), FCN32s)
    assert main(["train", *data, "--checkpoint", ckpt, "--resume", "--iterations", "1", "--no-progress"]) == 0
    assert "resumed from" in capsys.readouterr().out
