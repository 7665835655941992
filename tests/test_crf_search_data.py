"""``crf-search`` reads datasets with the same options as ``train`` and ``evaluate`` (one builder),
and says when its best value lies on the edge of the grid, widening the grid there."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import build_parser, main
from tinyseg.crf.grid import edges, further_options, staged_search

DATASET_OPTIONS = ("--image", "--annotation", "--voc", "--data", "--split", "--classes",
                   "--mask-values", "--labels")


def _options(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices and "train" in a.choices)
    return {s: a for a in sub.choices[command]._actions for s in a.option_strings}


def test_every_command_that_reads_a_dataset_takes_the_same_options():
    reference = _options("train")
    for command in ("evaluate", "crf-search"):
        mine = _options(command)
        for option in DATASET_OPTIONS:
            assert option in mine, f"{command} lacks {option}"
            help_text = mine[option].help.replace("default: val;", "default: train;")  # the split default
            assert help_text == reference[option].help, (command, option)
            assert mine[option].required == reference[option].required, (command, option)


@pytest.fixture
def coins(tmp_path):
    """A folders dataset with a val split: 0/255 masks, a classes.txt, and the network's
    probabilities (two channels) as .npy files named by image."""
    rng = np.random.default_rng(1)
    root = tmp_path / "coins_set"
    probs = tmp_path / "probs"
    probs.mkdir()
    for name in ("images", "masks"):
        (root / "val" / name).mkdir(parents=True)
    truth = {}
    for k in range(2):
        mask = np.zeros((20, 24), np.uint8)
        mask[4:14, 5 + 2 * k:18] = 255
        image = np.where(mask[..., None] == 255, 200, 40) + rng.integers(0, 20, (20, 24, 3))
        Image.fromarray(image.astype(np.uint8)).save(root / "val" / "images" / f"c{k}.png")
        Image.fromarray(mask).save(root / "val" / "masks" / f"c{k}.png")
        shifted = np.roll(mask, 2, axis=1) == 255
        p1 = np.clip(0.3 + 0.4 * shifted + 0.1 * rng.random((20, 24)), 0.01, 0.99)
        np.save(probs / f"c{k}.npy", np.stack([1 - p1, p1], -1).astype(np.float32))
        truth[k] = (mask == 255, p1 > 0.5)
    (root / "classes.txt").write_text("background\ncoin\n")
    return root, probs, truth


GRID = ["--coarse-compat", "3", "--coarse-sdims", "5", "20", "--coarse-schan", "13",
        "--crf-iterations", "2", "--quiet", "--jobs", "1", "--no-fine"]


def test_crf_search_reads_a_folders_dataset_with_mask_values(coins, tmp_path, capsys):
    root, probs, truth = coins
    out = tmp_path / "best.json"
    assert main(["crf-search", "--data", str(root), "--split", "val", "--mask-values", "0,255",
                 "--probabilities", str(probs), "--out", str(out), *GRID]) == 0, capsys.readouterr().err
    search = json.loads(out.read_text())["search"]
    # the mean IoU of the plain argmax, computed here from the masks' 255 = coin
    inter = np.zeros(2)
    union = np.zeros(2)
    for gt, pred in truth.values():
        for c, (g, p) in enumerate([(~gt, ~pred), (gt, pred)]):
            inter[c] += np.sum(g & p)
            union[c] += np.sum(g | p)
    assert search["mean_iou_without_crf"] == pytest.approx(np.mean(inter / union))
    assert search["classes"] == ["background", "coin"]


def test_crf_search_refuses_mask_values_that_disagree_with_classes_txt(coins, tmp_path, capsys):
    root, probs, _ = coins
    assert main(["crf-search", "--data", str(root), "--split", "val", "--mask-values", "0,128,255",
                 "--probabilities", str(probs), "--out", str(tmp_path / "b.json"), *GRID]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mask-values has 3 values but" in err and "classes.txt" in err


def test_the_best_value_on_an_edge_is_reported_with_the_options_to_search_further(coins, tmp_path, capsys):
    root, probs, _ = coins
    out = tmp_path / "best.json"
    argv = ["crf-search", "--data", str(root), "--split", "val", "--mask-values", "0,255",
            "--probabilities", str(probs), "--out", str(out), *GRID]
    assert main([*argv, "--widen-rounds", "0"]) == 0
    text = capsys.readouterr().out
    best = json.loads(out.read_text())["params"]["sdims"][0]
    side = "largest" if best == 20 else "smallest"
    assert f"sdims {best:g} is the {side} value searched" in text, text
    further = "--coarse-sdims 5 20 35 50" if best == 20 else "--coarse-sdims 1.25 2.5 5 20"
    assert further in text, text
    assert main(argv) == 0                                       # widened at the edge by default
    text = capsys.readouterr().out
    stages = [s["stage"] for s in json.loads(out.read_text())["search"]["stages"]]
    assert "widen" in stages and "widening the grid to" in text, text


def test_staged_search_widens_the_grid_towards_an_optimum_past_its_edge():
    def score(stage, points):                  # a peak at compat 4, sdims 150, schan 13
        return [-(p["compat"] - 4) ** 2 - ((p["sdims"] - 150) / 20) ** 2 - (p["schan"] - 13) ** 2
                for p in points]

    grids = dict(compat=[3, 4, 5], sdims=[30, 50, 70, 90, 110], schan=[3, 13, 20])
    said = []
    best, log, wide = staged_search(score, grids, widen_rounds=1, fine=False, say=said.append)
    assert best["sdims"] == 130 and wide["sdims"][-1] == 130
    assert said == ["crf-search: the best sdims 110 is the largest value searched; widening the grid to 130"]
    assert edges(best, wide) == {"sdims": "largest"}
    assert further_options(best, wide) == "--coarse-sdims 30 50 70 90 110 130 150 170"
    best, log, wide = staged_search(score, grids, widen_rounds=3, fine=True, say=said.append)
    assert best["sdims"] == 150 and edges(best, wide) == {}
    assert [s["stage"] for s in log] == ["coarse", "widen", "widen", "widen", "fine"]
    best, _, wide = staged_search(score, dict(grids, sdims=[200, 300]), widen_rounds=2, say=said.append)
    assert best["sdims"] == 150 and wide["sdims"][0] == 100     # downwards: 200 - 100, then fine


def test_a_flat_score_is_no_edge():
    """Where the best ties with its neighbour inwards, nothing suggests an optimum past the edge."""
    said = []
    best, log, wide = staged_search(lambda stage, points: [0.5] * len(points),
                                    dict(compat=[3, 5], sdims=[30, 110], schan=[3, 13]), say=said.append)
    assert said == [] and [s["stage"] for s in log] == ["coarse", "fine"]
    from tinyseg.crf.grid import scores_of

    assert edges(best, wide, scores_of(log)) == {} and edges(best, wide) != {}
