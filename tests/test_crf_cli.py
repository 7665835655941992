"""``tinyseg crf``: writes the refined labels; bad input is one line, exit code 1."""
import numpy as np
import pytest

from tinyseg.cli import build_parser, main


@pytest.fixture
def files(tmp_path, rng):
    from PIL import Image

    img = np.zeros((12, 16, 3), np.uint8)
    img[:, 8:] = (220, 200, 40)
    Image.fromarray(img).save(tmp_path / "img.png")
    p = np.full((12, 16, 2), 0.5, np.float32)
    p[:, :6] = (0.8, 0.2)
    p[:, 10:] = (0.3, 0.7)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "p_chw.npy", p.transpose(2, 0, 1))
    return tmp_path


def test_crf_subcommand_writes_the_labels(files, capsys):
    from tinyseg.data import load_annotation

    out = files / "labels.png"
    rc = main(["crf", "--image", str(files / "img.png"), "--probabilities", str(files / "p.npy"),
               "--out", str(out), "--sdims", "5", "--gaussian-sdims", "2", "--iterations", "4",
               "--save-q", str(files / "q.npy")])
    assert rc == 0
    labels = load_annotation(out)
    assert labels.shape == (12, 16)
    np.testing.assert_array_equal(labels[:, :8], 0)      # the colour edge wins over the 0.5s
    np.testing.assert_array_equal(labels[:, 8:], 1)
    assert np.load(files / "q.npy").shape == (12, 16, 2)
    assert "wrote" in capsys.readouterr().out


def test_crf_subcommand_accepts_classes_first(files):
    rc = main(["crf", "--image", str(files / "img.png"), "--probabilities", str(files / "p_chw.npy"),
               "--out", str(files / "l.png"), "--method", "exact", "--iterations", "1"])
    assert rc == 0


def test_crf_subcommand_reports_a_shape_mismatch(files, capsys):
    np.save(files / "bad.npy", np.full((5, 16, 2), 0.5, np.float32))
    rc = main(["crf", "--image", str(files / "img.png"), "--probabilities", str(files / "bad.npy"),
               "--out", str(files / "l.png")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "shape (5, 16, 2)" in err and "12×16" in err and "Traceback" not in err


def test_crf_subcommand_reports_a_missing_file(files, capsys):
    rc = main(["crf", "--image", str(files / "img.png"), "--probabilities", str(files / "nope.npy"),
               "--out", str(files / "l.png")])
    assert rc == 1 and "nope.npy" in capsys.readouterr().err


def test_every_crf_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["crf"]
    for action in sub._actions:
        assert action.help, action.dest
