"""``tinyseg crf-search`` and the shared CRF options (``--crf-params``, one option per parameter)."""
import json
import os

import numpy as np
import pytest

from tinyseg.cli import main
from helpers import save_crf_inputs


def _voc(root, rng, n=3, h=20, w=28, classes=(0, 8, 15), n_classes=21):
    """A tiny VOC folder (three classes in colour regions) and noisy, coarse probabilities."""
    from PIL import Image

    from tinyseg.data import save_label_png

    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / sub, exist_ok=True)
    probs_dir = root / "probs"
    os.makedirs(probs_dir, exist_ok=True)
    ids = []
    colours = dict(zip(classes, [(40, 60, 160), (200, 150, 40), (60, 200, 80)]))
    for k in range(n):
        labels = np.zeros((h, w), np.uint8)
        labels[:, w // 3:] = classes[1]
        labels[h // 2:, 2 * w // 3:] = classes[2]
        labels[0, 0] = 255                                         # an ignored pixel
        image = np.zeros((h, w, 3), np.float64)
        for c, rgb in colours.items():
            image[labels == c] = rgb
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        logits = rng.normal(0, 1.0, (h, w, n_classes))
        for c in colours:                                          # blurred, shifted evidence
            shifted = np.roll(labels == c, 3, axis=1)
            logits[..., c] += 2.5 * shifted
        p = np.exp(logits)
        p /= p.sum(-1, keepdims=True)
        name = f"img{k}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=98)
        save_label_png(root / "SegmentationClass" / f"{name}.png", labels)
        np.save(probs_dir / f"{name}.npy", p.astype(np.float32))
        ids.append(name)
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids) + "\n")
    return probs_dir


SMALL_GRID = ["--coarse-compat", "2", "6", "--coarse-sdims", "5", "20", "--coarse-schan", "10", "40",
              "--crf-iterations", "3", "--quiet"]


def test_crf_search_writes_the_best_parameters(tmp_path, rng, capsys):
    probs = _voc(tmp_path, rng)
    out = tmp_path / "best.json"
    rc = main(["crf-search", "--voc", str(tmp_path), "--probabilities", str(probs), "--out",
               str(out), "--jobs", "1", *SMALL_GRID])
    assert rc == 0
    doc = json.loads(out.read_text())
    params, search = doc["params"], doc["search"]
    assert params["gaussian_sdims"] == [3.0, 3.0] and params["gaussian_compat"] == 3.0
    assert params["iterations"] == 3
    stages = {s["stage"]: s["results"] for s in search["stages"]}
    assert len(stages["coarse"]) == 8 and 0 < len(stages["fine"]) <= 26
    every = [r for s in search["stages"] for r in s["results"]]         # coarse, widen, fine
    best = max(every, key=lambda r: r["mean_iou"])
    assert search["mean_iou"] == best["mean_iou"]
    assert (params["compat"], params["sdims"][0], params["schan"][0]) == (
        best["compat"], best["sdims"], best["schan"])
    assert search["mean_iou"] > search["mean_iou_without_crf"]            # the CRF helps here
    assert "wrote" in capsys.readouterr().out


def test_crf_search_in_parallel_equals_serial(tmp_path, rng):
    probs = _voc(tmp_path, rng)
    docs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"best{jobs}.json"
        assert main(["crf-search", "--voc", str(tmp_path), "--probabilities", str(probs), "--out",
                     str(out), "--jobs", jobs, "--no-fine", *SMALL_GRID]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["search"]["stages"] == docs[1]["search"]["stages"]   # integer confusions


def test_fine_values_are_halfway_to_the_coarse_neighbours():
    from tinyseg.cli.crf_search import fine_values

    assert fine_values(50, [30, 50, 70, 90]) == [40, 50, 60]
    assert fine_values(30, [30, 50]) == [30, 40]
    assert fine_values(5, [5]) == [5]


def test_crf_search_reports_bad_input_in_one_line(tmp_path, rng, capsys):
    _voc(tmp_path, rng)
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["crf-search", "--voc", str(tmp_path), "--probabilities", str(empty), "--out",
               str(tmp_path / "b.json"), *SMALL_GRID])
    err = capsys.readouterr().err
    assert rc == 1 and "lacks 3 of the images" in err and "Traceback" not in err
    rc = main(["crf-search", "--voc", str(tmp_path), "--probabilities", str(empty), "--out",
               str(tmp_path / "nope" / "b.json"), *SMALL_GRID])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


# ---- the shared options ------------------------------------------------------------------------

def _parse(argv):
    import argparse

    from tinyseg.cli.crf_options import add_crf_options, crf_params_from_args

    p = argparse.ArgumentParser()
    add_crf_options(p)
    return crf_params_from_args(p.parse_args(argv))


def test_crf_params_precedence_post_then_file_then_options(tmp_path):
    from tinyseg.cli.crf_options import save_crf_params
    from tinyseg.crf.refine import POST_CRF

    assert _parse([]) == POST_CRF
    f = tmp_path / "p.json"
    save_crf_params(str(f), dict(sdims=80, schan=13, compat=4, gaussian_sdims=3, iterations=10))
    got = _parse(["--crf-params", str(f), "--compat", "5"])
    assert got["sdims"] == (80.0, 80.0) and got["schan"] == (13.0,) * 3 and got["compat"] == 5.0
    assert got["gaussian_sdims"] == (3.0, 3.0) and got["iterations"] == 10
    assert got["gaussian_compat"] == POST_CRF["gaussian_compat"]


@pytest.mark.parametrize("content,match", [
    ("{not json", "as JSON"),
    ('[1, 2]', "JSON object"),
    ('{"sdims": -3}', "must be > 0"),
    ('{"sxy": 3}', "unknown CRF parameter `sxy`"),
    ('{"iterations": 2.5}', "non-negative integer"),
])
def test_bad_crf_params_files_are_named(tmp_path, content, match):
    f = tmp_path / "p.json"
    f.write_text(content)
    with pytest.raises(ValueError, match=match):
        _parse(["--crf-params", str(f)])


def test_bad_crf_options_are_named():
    with pytest.raises(ValueError, match="--schan takes 1 or 3 numbers"):
        _parse(["--schan", "1", "2"])
    with pytest.raises(ValueError, match="--compat"):
        _parse(["--compat", "-1"])


def test_crf_command_takes_a_params_file(tmp_path, rng):
    from tinyseg.cli.crf_options import save_crf_params

    p = save_crf_inputs(tmp_path)
    # both kernels' weights 0: the mean field keeps the network's probabilities
    save_crf_params(str(tmp_path / "c.json"), dict(sdims=5, gaussian_sdims=2, compat=0,
                                                   gaussian_compat=0, iterations=2))
    rc = main(["crf", "--image", str(tmp_path / "img.png"), "--probabilities",
               str(tmp_path / "p.npy"), "--out", str(tmp_path / "l.png"), "--crf-params",
               str(tmp_path / "c.json"), "--quiet"])
    assert rc == 0
    from tinyseg.data import load_annotation

    np.testing.assert_array_equal(load_annotation(tmp_path / "l.png"), p.argmax(2))   # no pairwise term


def test_predict_evaluate_and_search_take_crf_params(tmp_path, rng, capsys):
    """A tiny checkpoint; --crf-params with 0 iterations makes the CRF the identity, so the CRF
    labels and metrics must equal the network's; crf-search computes its probabilities."""
    from PIL import Image

    from tinyseg.cli.crf_options import save_crf_params

    _voc(tmp_path, rng, n=2, classes=(0, 1, 1), n_classes=2)
    image = np.asarray(Image.open(tmp_path / "JPEGImages" / "img0.jpg"))
    ann = np.asarray(Image.open(tmp_path / "SegmentationClass" / "img0.png")).copy()
    Image.fromarray(ann).save(tmp_path / "ann.png")
    Image.fromarray(image).save(tmp_path / "img.png")
    ckpt = str(tmp_path / "ckpt.h5")
    assert main(["train", "--image", str(tmp_path / "img.png"), "--annotation", str(tmp_path / "ann.png"),
                 "--checkpoint", ckpt, "--no-progress", "--width", "0.03125", "--iterations", "1"]) == 0
    params = tmp_path / "identity.json"
    save_crf_params(str(params), dict(iterations=0))
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", str(tmp_path / "img.png"), "--out",
                 str(out), "--crf-params", str(params)]) == 0                  # implies --crf
    np.testing.assert_array_equal(np.asarray(Image.open(out / "crf_labels.png")),
                                  np.asarray(Image.open(out / "labels.png")))
    report = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", ckpt, "--image", str(tmp_path / "img.png"),
                 "--annotation", str(tmp_path / "ann.png"), "--crf-params", str(params),
                 "--json", str(report)]) == 0
    m = json.loads(report.read_text())
    assert m["crf"]["confusion_matrix"] == m["fcn"]["confusion_matrix"]
    capsys.readouterr()
    assert main(["crf-search", "--voc", str(tmp_path), "--labels", "binary", "--checkpoint", ckpt,
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "s.json"),
                 "--jobs", "1", "--no-fine", *SMALL_GRID]) == 0
    assert sorted(os.listdir(tmp_path / "cache")) == ["img0.npy", "img1.npy"]
    assert json.loads((tmp_path / "s.json").read_text())["search"]["images"] == 2
