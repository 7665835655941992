"""``tinyseg crf``: writes the refined labels; bad input is one line, exit code 1."""
import os

import numpy as np
import pytest

from tinyseg.cli import build_parser, main
from helpers import save_crf_inputs


@pytest.fixture
def files(tmp_path, rng):
    p = save_crf_inputs(tmp_path)
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


# ---- what a new user hits ----------------------------------------------------------------------

def _crf(files, probabilities, out="l.png", *extra):
    return main(["crf", "--image", str(files / "img.png"), "--probabilities", str(probabilities),
                 "--out", str(files / out), "--quiet", *extra])


def test_npz_probabilities_are_read_or_refused_in_one_line(files, capsys):
    p = np.load(files / "p.npy")
    np.savez(files / "one.npz", p)
    assert _crf(files, files / "one.npz") == 0
    np.savez(files / "two.npz", a=p, b=p)
    assert _crf(files, files / "two.npz") == 1
    err = capsys.readouterr().err
    assert "holds 2 arrays" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_image_given_as_probabilities_is_named(files, capsys):
    assert _crf(files, files / "img.png") == 1
    err = capsys.readouterr().err
    assert "is an image, not an array" in err and "pickle" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["labels.jpg", "labels.JPEG", "labels"])
def test_label_output_must_be_png(files, capsys, name):
    assert _crf(files, files / "p.npy", name) == 1
    assert "must end in .png" in capsys.readouterr().err
    assert not (files / name).exists()


def test_exact_method_refuses_a_large_image_before_any_work(tmp_path, capsys):
    import time

    from PIL import Image

    Image.fromarray(np.zeros((400, 600, 3), np.uint8)).save(tmp_path / "big.png")
    np.save(tmp_path / "p.npy", np.full((400, 600, 2), 0.5, np.float32))
    t0 = time.perf_counter()
    rc = main(["crf", "--image", str(tmp_path / "big.png"), "--probabilities",
               str(tmp_path / "p.npy"), "--out", str(tmp_path / "l.png"), "--method", "exact"])
    assert rc == 1 and time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert "N^2" in err and "--force" in err and not (tmp_path / "l.png").exists()


def test_long_crf_work_answers_ctrl_c_within_seconds(tmp_path):
    """A forced exact CRF of ~10 s per iteration: SIGINT ends it within 2 s, one line, code 130."""
    import signal
    import subprocess
    import sys
    import time

    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (150, 300, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    np.save(tmp_path / "p.npy", rng.dirichlet(np.ones(5), (150, 300)).astype(np.float32))
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyseg.cli", "crf", "--image", str(tmp_path / "i.png"),
         "--probabilities", str(tmp_path / "p.npy"), "--out", str(tmp_path / "l.png"),
         "--method", "exact", "--force", "--iterations", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:     # wait for the progress bar
        time.sleep(0.5)
        if _progress_shown(proc):
            break
    time.sleep(1.0)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.perf_counter() - t0 < 2.5
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "l.png").exists()


def _progress_shown(proc) -> bool:
    """Whether the child has started filtering (its stderr has the tqdm bar's 'crf:')."""
    import select

    ready, _, _ = select.select([proc.stderr], [], [], 0)
    if not ready:
        return False
    chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    return "crf" in chunk
