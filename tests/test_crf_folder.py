"""``tinyseg crf`` on folders: STEM.npy matched to each image by stem, labels as OUT/STEM.png,
equal to one image at a time; unmatched stems and bad shapes are one error before any work."""
import numpy as np
import pytest

from tinyseg.cli import main

ARGS = ["--sdims", "10", "--schan", "13", "--compat", "4", "--gaussian-sdims", "3",
        "--iterations", "4", "--quiet"]
PARAMS = dict(sdims=(10, 10), schan=(13, 13, 13), compat=4.0, gaussian_sdims=(3, 3),
              gaussian_compat=3.0, iterations=4)


@pytest.fixture
def folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    (tmp_path / "img").mkdir()
    (tmp_path / "prob").mkdir()
    data = {}
    for k, stem in enumerate(["a", "b", "c"]):
        h, w = 20 + k, 24
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        image[:, w // 2:] = (230, 210, 30)
        logits = rng.normal(0, 1, (h, w, 3))
        p = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        Image.fromarray(image).save(tmp_path / "img" / f"{stem}.png")
        np.save(tmp_path / "prob" / f"{stem}.npy", p)
        data[stem] = (image, p)
    return tmp_path, data


def _run(tmp, *extra):
    return main(["crf", "--image", str(tmp / "img"), "--probabilities", str(tmp / "prob"),
                 "--out", str(tmp / "out"), *ARGS, *extra])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_folder_labels_equal_one_image_at_a_time(folders, workers):
    from tinyseg.crf import dense_crf
    from tinyseg.data import load_annotation

    tmp, data = folders
    assert _run(tmp, "--workers", workers) == 0
    for stem, (image, p) in data.items():
        got = load_annotation(tmp / "out" / f"{stem}.png")
        np.testing.assert_array_equal(got, dense_crf(image, p, **PARAMS)[0])


def test_unmatched_stems_are_one_error_before_work(folders, capsys):
    tmp, _ = folders
    (tmp / "prob" / "b.npy").rename(tmp / "prob" / "z.npy")
    assert _run(tmp) == 1
    err = capsys.readouterr().err
    assert "unmatched file stems" in err and "b" in err and "z" in err and "Traceback" not in err
    assert not (tmp / "out").exists()                          # nothing written


def test_bad_shape_is_one_error_before_work(folders, capsys):
    tmp, _ = folders
    np.save(tmp / "prob" / "c.npy", np.full((5, 24, 3), 1 / 3, np.float32))
    assert _run(tmp) == 1
    err = capsys.readouterr().err
    assert "c.npy" in err and "(5, 24, 3)" in err and "22×24" in err
    assert not (tmp / "out").exists()


def test_probabilities_must_be_a_folder(folders, capsys):
    tmp, _ = folders
    rc = main(["crf", "--image", str(tmp / "img"), "--probabilities", str(tmp / "prob" / "a.npy"),
               "--out", str(tmp / "out"), "--quiet"])
    assert rc == 1 and "folder of probabilities" in capsys.readouterr().err


def test_predict_crf_on_a_folder_equals_one_image_at_a_time(folders):
    """predict --crf on a folder refines on worker threads; each NAME_crf.png must equal
    dense_crf of that image's saved probabilities."""
    from PIL import Image

    from tinyseg.crf import dense_crf
    from tinyseg.data import load_annotation

    tmp, data = folders
    image, _ = data["a"]
    Image.fromarray((image[..., 0] > 128).astype(np.uint8)).save(tmp / "ann.png")
    ckpt = str(tmp / "ckpt.h5")
    assert main(["train", "--image", str(tmp / "img" / "a.png"), "--annotation", str(tmp / "ann.png"),
                 "--checkpoint", ckpt, "--no-progress", "--width", "0.03125", "--iterations", "1"]) == 0
    out = tmp / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", str(tmp / "img"), "--out", str(out),
                 "--save-probabilities",
                 *[{"--iterations": "--crf-iterations"}.get(a, a) for a in ARGS if a != "--quiet"]]) == 0
    for stem, (image, _) in data.items():
        probs = np.load(out / f"{stem}.npy")
        want = dense_crf(image, probs, **PARAMS)[0]
        np.testing.assert_array_equal(load_annotation(out / f"{stem}_crf.png"), want)


@pytest.mark.slow
def test_folder_under_mpiexec_equals_one_image_at_a_time(folders):
    """Two ranks share the images; rank 0 gathers and writes every label map."""
    from mpi_helpers import tinyseg_mpi

    from tinyseg.crf import dense_crf
    from tinyseg.data import load_annotation

    tmp, data = folders
    res = tinyseg_mpi(2, ["crf", "--image", str(tmp / "img"), "--probabilities", str(tmp / "prob"),
                          "--out", str(tmp / "out"), *ARGS])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 MPI ranks" in res.stdout
    for stem, (image, p) in data.items():
        np.testing.assert_array_equal(load_annotation(tmp / "out" / f"{stem}.png"),
                                      dense_crf(image, p, **PARAMS)[0])


@pytest.mark.slow
def test_crf_search_under_mpiexec_equals_one_process(tmp_path):
    """Two ranks share the images of crf-search and sum their (integer) confusions: the search
    log and the best parameters equal one process's; rank 0 alone writes."""
    import json

    from mpi_helpers import tinyseg_mpi
    from test_crf_search import SMALL_GRID, _voc

    probs = _voc(tmp_path, np.random.default_rng(5), n=3)
    args = ["crf-search", "--voc", str(tmp_path), "--probabilities", str(probs), *SMALL_GRID]
    assert main([*args, "--out", str(tmp_path / "one.json"), "--jobs", "1"]) == 0
    res = tinyseg_mpi(2, [*args, "--out", str(tmp_path / "two.json"), "--jobs", "1"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("wrote") == 1
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert one["params"] == two["params"]
    assert one["search"]["stages"] == two["search"]["stages"]
