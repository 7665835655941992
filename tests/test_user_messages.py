"""What a user with their own data reads: ``tinyseg crf`` refuses work that cannot be a CRF, and the
messages about stray mask values, damaged checkpoints and a second Ctrl-C say what happened (the
output paths the demo prints: tests/test_cli.py)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import main
from helpers import one_line_error  # noqa: E402
from tinyseg.data import LabelMap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def crf_files(tmp_path):
    img = np.zeros((12, 16, 3), np.uint8)
    img[:, 8:] = (220, 200, 40)
    Image.fromarray(img).save(tmp_path / "img.png")
    np.save(tmp_path / "one.npy", np.ones((12, 16, 1), np.float32))
    np.save(tmp_path / "two.npy", np.full((12, 16, 2), 0.5, np.float32))
    return tmp_path


def test_crf_refuses_fewer_than_two_classes(crf_files, capsys):
    out = crf_files / "l.png"
    assert main(["crf", "--image", str(crf_files / "img.png"), "--probabilities",
                 str(crf_files / "one.npy"), "--out", str(out), "--quiet"]) == 1
    one_line_error(capsys, "one.npy", "1 class", "at least 2")
    assert not out.exists()


@pytest.mark.parametrize("argv,needle", [(["--iterations", "0"], "--iterations"),
                                         (["--iterations", "-3"], "--iterations"),
                                         (["--crf-params", "ZERO"], "zero.json")])
def test_crf_refuses_non_positive_iterations(crf_files, capsys, argv, needle):
    from tinyseg.cli.crf_options import save_crf_params

    save_crf_params(str(crf_files / "zero.json"), dict(iterations=0))
    argv = [str(crf_files / "zero.json") if a == "ZERO" else a for a in argv]
    out = crf_files / "l.png"
    assert main(["crf", "--image", str(crf_files / "img.png"), "--probabilities",
                 str(crf_files / "two.npy"), "--out", str(out), "--quiet", *argv]) != 0
    one_line_error(capsys, needle, "iterations")
    assert not out.exists()


def test_a_stray_value_names_itself_and_the_classes_values():
    lm = LabelMap(("background", "coin"), (0, 255))
    mask = np.array([[0, 128, 255]], np.uint8)
    with pytest.raises(ValueError) as info:
        lm.to_labels(mask, path="m.png")
    message = str(info.value)
    assert "'m.png'" in message and "[128]" in message
    assert "0 (background), 255 (coin)" in message
    assert "ignore" not in message.split(";")[0]            # 255 is a class here
    with pytest.raises(ValueError, match=r"\[7\].*0 \(a\), 1 \(b\), 2 \(c\); 255 is ignored"):
        LabelMap(("a", "b", "c")).to_labels(np.array([[0, 7]], np.uint8), path="m.png")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_checkpoint_says_it_is_truncated(tmp_path, keep, capsys):
    from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "c.h5"
    w = np.arange(5000, dtype=np.float32)
    save_checkpoint(str(path), {"w": w}, {"m": {"w": w}, "v": {"w": w}, "step": 1}, {"model": {}})
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError) as info:
        load_checkpoint(str(path))
    message = str(info.value)
    assert "truncated" in message and "not an HDF5 file" not in message, message
    (tmp_path / "x.h5").write_bytes(b"hello, not a checkpoint at all" * 10)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        load_checkpoint(str(tmp_path / "x.h5"))


def test_the_notice_of_a_signal_says_what_the_last_checkpoint_holds(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    Image.fromarray((rng.random((24, 30)) > 0.5).astype(np.uint8)).save(tmp_path / "ann.png")
    ckpt = tmp_path / "c.h5"
    command = [sys.executable, "-m", "tinyseg.cli", "train", "--image", str(tmp_path / "img.png"),
               "--annotation", str(tmp_path / "ann.png"), "--width", "0.03125", "--iterations",
               "1000000", "--checkpoint", str(ckpt), "--checkpoint-every", "2", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    notice = next(line for line in err.splitlines() if "SIGINT received" in line)
    assert f"the last checkpoint, {ckpt}, holds iteration " in notice, err
    held = int(notice.split("holds iteration ")[1].split()[0].rstrip(")"))
    assert held >= 2 and held % 2 == 0


def test_the_notice_without_a_checkpoint_says_nothing_is_saved():
    from tinyseg.training.interrupt import stop_on_signals

    child = ("import os, signal, sys\n"
             "from tinyseg.training.interrupt import stop_on_signals\n"
             "with stop_on_signals('test', saved=lambda: None) as stop:\n"
             "    os.kill(os.getpid(), signal.SIGINT)\n"
             "    while not stop: pass\n")
    err = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=60).stderr
    assert "no checkpoint is written yet" in err, err
    assert stop_on_signals is not None
