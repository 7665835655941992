"""The ``tinyseg`` command: help for every subcommand, train → resume → predict → evaluate, demo."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import main
from helpers import save_image_and_annotation  # noqa: E402

SUBCOMMANDS = ["demo", "train", "predict", "evaluate", "import-weights", "crf"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tinyseg " + command in capsys.readouterr().out


@pytest.fixture
def image_and_annotation(tmp_path):
    return save_image_and_annotation(tmp_path, (40, 50), (10, 30, 12, 40), colour=(220, 200, 40))


def test_train_resume_predict_evaluate(tmp_path, image_and_annotation, capsys):
    img, ann = image_and_annotation
    ckpt = str(tmp_path / "ckpt.h5")
    common = ["--image", img, "--annotation", ann, "--checkpoint", ckpt, "--no-progress"]
    assert main(["train", *common, "--width", "0.03125", "--iterations", "2", "--lr", "1e-3",
                 "--log-csv", str(tmp_path / "loss.csv")]) == 0
    assert main(["train", *common, "--iterations", "3", "--resume", "--log-csv", str(tmp_path / "loss.csv")]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert len(open(tmp_path / "loss.csv").read().splitlines()) == 1 + 3
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", img, "--out", str(out), "--crf"]) == 0
    labels = np.asarray(Image.open(out / "labels.png"))
    assert Image.open(out / "labels.png").mode == "P" and labels.shape == (40, 50)
    assert np.load(out / "probabilities.npy").shape == (40, 50, 2)
    assert (out / "crf_labels.png").exists() and (out / "prediction.png").exists()
    assert main(["evaluate", "--checkpoint", ckpt, "--image", img, "--annotation", ann,
                 "--json", str(tmp_path / "m.json")]) == 0
    report = json.load(open(tmp_path / "m.json"))
    assert set(report) == {"fcn", "crf"}


def test_bad_input_is_one_line_error_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--image", str(tmp_path / "missing.jpg"), "--annotation", "x.png",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "Traceback" not in err
    assert main(["import-weights", str(tmp_path / "nope.h5")]) == 1
    assert "nope.h5" in capsys.readouterr().err


def test_demo_writes_figures_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out) + "/", "--width", "0.03125", "--iterations", "2",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out            # a trailing slash is no "demo//panel.png"
    assert os.path.join(str(out), "panel.png") in printed and "//" not in printed, printed
    metrics = json.load(open(out / "metrics.json"))
    assert {"iou_fcn", "iou_crf", "seconds"} <= set(metrics)
    assert 0.0 <= metrics["iou_fcn"] <= 1.0 and len(metrics["losses"]) == 2
    for name in ("panel.png", "fcn_prediction.png", "crf_vs_ground_truth.png", "loss.png"):
        assert os.path.getsize(out / name) > 1000
