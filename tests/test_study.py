"""The comparison study (``tinyseg demo --compare``) and the walkthrough chapter on the two cures
run end to end at a tiny width and write their figures and tables."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tinyseg.cli import main
from tinyseg.studies.cures import STUDY_WIDTHS, format_table, mean_scores, study_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_compare_writes_figure_table_and_json(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["demo", "--compare", "--out", str(out), "--width", "0.03125", "--iterations", "2",
                 "--seed", "5", "--seeds", "2", "--no-progress"]) == 0
    for name in ("compare.png", "trimap.png"):
        assert (out / name).read_bytes()[:8] == PNG
    result = json.load(open(out / "compare.json"))
    assert list(result["models"]) == ["fcn32s", "fcn8s", "deeplab-largefov"]
    assert result["settings"]["seeds"] == [5, 6]
    for scores in result["models"].values():
        assert sorted(scores["seeds"]) == ["5", "6"]
        for stage in ("fcn", "crf"):
            assert set(scores[stage]["trimap"]) == {str(w) for w in STUDY_WIDTHS}
            assert 0 <= scores[stage]["mean_iou"] <= 1
            runs = [scores["seeds"][seed][stage]["mean_iou"] for seed in ("5", "6")]
            assert scores[stage]["mean_iou"] == pytest.approx((runs[0] + runs[1]) / 2, abs=1e-12)
    rows = open(out / "compare.csv").read().splitlines()
    assert rows[0].startswith("model,stage,mean_iou,pixel_accuracy,trimap_iou_w2") and len(rows) == 1 + 6
    printed = capsys.readouterr().out
    assert "trimap mean IoU within ±w px" in printed and format_table(result).splitlines()[2] in printed
    assert "mean over seeds 5–6" in printed and "each seed: trimap mean IoU, network -> CRF" in printed


def test_seeds_without_compare_is_one_line_error(tmp_path, capsys):
    assert main(["demo", "--seeds", "2", "--out", str(tmp_path / "d")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0] and "--compare" in err[0], err
    assert not (tmp_path / "d").exists()


def test_mean_scores_averages_every_number_of_the_nested_scores():
    runs = [{"mean_iou": 0.5, "trimap": {"2": {"mean_iou": 0.25}}},
            {"mean_iou": 1.0, "trimap": {"2": {"mean_iou": 0.75}}}]
    assert mean_scores(runs) == {"mean_iou": 0.75, "trimap": {"2": {"mean_iou": 0.5}}}


def test_chelsea_study_data_trains_and_scores_disjoint_rows():
    train, test, n_classes = study_data("chelsea")
    (image, train_labels), (test_image, labels, scored) = train[0], test[0]
    assert n_classes == 2 and image is test_image and scored.shape == labels.shape
    assert scored[30:60].all() and not scored[:30].any() and not scored[60:90].any()
    assert (train_labels[scored] == 255).all()                            # no scored label trains
    assert np.array_equal(train_labels[~scored], labels[~scored])
    assert 0.4 < scored.mean() < 0.6 and set(np.unique(labels[scored])) == {0, 1, 255}
    post_train, post_test, _ = study_data("chelsea-post")
    assert np.array_equal(post_train[0][1], labels) and len(post_test[0]) == 2


def test_scores_count_only_the_scored_pixels():
    from tinyseg.studies.cures import score_model

    class Constant:                          # predicts class 1 everywhere, through predict()'s path
        def forward(self, x, train=False):
            out = np.zeros(x.shape[:3] + (2,), np.float32)
            out[..., 1] = 5.0
            return out

        def clear(self):
            pass

    image = np.full((40, 40, 3), 128, np.uint8)
    labels = np.zeros((40, 40), np.int64)
    labels[:, 20:] = 1
    scored = np.zeros((40, 40), bool)
    scored[:, 30:] = True                                                  # only class-1 pixels count
    scores, _ = score_model(Constant(), [(image, labels, scored)], 2, widths=(2,))
    assert scores["fcn"]["pixel_accuracy"] == 1.0
    assert scores["fcn"]["trimap"]["2"]["n_pixels"] == 0                   # the edge at col 20 is unscored
    scores, _ = score_model(Constant(), [(image, labels)], 2, widths=(2,))
    assert scores["fcn"]["pixel_accuracy"] == 0.5


def test_shapes_study_data_is_multi_image_multi_class_with_held_out_images():
    train, test, n_classes = study_data("shapes")
    assert n_classes == 4 and len(train) == 16 and len(test) == 6
    assert not np.array_equal(train[0][0], test[0][0])
    present = set(np.unique(np.concatenate([l.ravel() for _, l in train])))
    assert present == {0, 1, 2, 3}


@pytest.mark.slow
def test_walkthrough_chapter_on_the_cures_runs_and_checks_its_geometry(tmp_path):
    out = tmp_path / "cures"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "walkthrough_cures.py"),
                           "--width", "0.03125", "--iterations", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "centre j = 2.50" in text and "= 32·1 + 15.5" in text
    assert re.search(r"H = 375: fc8 12 rows -> upscore2 24 vs pool4 24 \(crop 0\); upscore_pool4 48 vs "
                     r"pool3 47 \(crop 1\); upscore8 376 vs image 375 \(crop 1\)", text), text
    diff = float(re.search(r"zeros between the taps: max \|diff\| = (\S+)", text).group(1))
    assert diff < 1e-4
    assert "fc6 404px/s32" in text and "fc6 435px/s8" in text          # receptive fields
    assert "peak at row 16 (= 8·2)" in text
    for name in ("compare.png", "trimap.png", "compare.csv", "compare.json"):
        assert (out / name).exists(), name
