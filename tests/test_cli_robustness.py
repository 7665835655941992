"""Every subcommand given bad input: one line on stderr, exit code != 0, no traceback, nothing done.
`--debug` shows the traceback instead."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinyseg.predict
from tinyseg.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(argv, capsys):
    """``(exit code, stdout, stderr)`` of ``tinyseg argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:                       # argparse exits for bad options
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(d / "img.png")
    Image.fromarray((rng.random((24, 30)) > 0.5).astype(np.uint8)).save(d / "ann.png")
    np.save(d / "probs.npy", np.full((24, 30, 2), 0.5, np.float32))
    (d / "a_file").write_text("not a folder")
    (d / "fake.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    ckpt = str(d / "ckpt.h5")
    assert main(["train", "--image", str(d / "img.png"), "--annotation", str(d / "ann.png"),
                 "--width", "0.03125", "--iterations", "1", "--checkpoint", ckpt, "--no-progress"]) == 0
    return {k: str(d / v) for k, v in dict(img="img.png", ann="ann.png", probs="probs.npy",
                                           file="a_file", fake="fake.h5", ckpt="ckpt.h5").items()} | {"dir": str(d)}


def data(f):
    return ["--image", f["img"], "--annotation", f["ann"], "--no-progress"]


# (name, argv from the files, words the one line must contain)
CASES = [
    ("train --iterations 0", lambda f: ["train", *data(f), "--iterations", "0"], ["--iterations", "'0'"]),
    ("train --iterations -3", lambda f: ["train", *data(f), "--iterations=-3"], ["--iterations"]),
    ("train --lr -1", lambda f: ["train", *data(f), "--lr=-1"], ["--lr"]),
    ("train --lr 0", lambda f: ["train", *data(f), "--lr", "0"], ["--lr"]),
    ("train --lr inf", lambda f: ["train", *data(f), "--lr", "inf"], ["--lr"]),
    ("train --lr nan", lambda f: ["train", *data(f), "--lr", "nan"], ["--lr"]),
    ("train --lr beyond float32", lambda f: ["train", *data(f), "--lr", "1e300"], ["--lr", "float32"]),
    ("train --batch beyond the images", lambda f: ["train", *data(f), "--batch", "100000"],
     ["--batch 100000", "training images"]),
    ("train --lr abc", lambda f: ["train", *data(f), "--lr", "abc"], ["--lr"]),
    ("train --checkpoint-every -1", lambda f: ["train", *data(f), "--checkpoint-every=-1"], ["--checkpoint-every"]),
    ("train --dropout 1.5", lambda f: ["train", *data(f), "--dropout", "1.5"], ["--dropout"]),
    ("train --width 0", lambda f: ["train", *data(f), "--width", "0"], ["--width"]),
    ("train --width -1", lambda f: ["train", *data(f), "--width=-1"], ["--width"]),
    ("train unknown option", lambda f: ["train", *data(f), "--bogus"], ["--bogus"]),
    ("train no data", lambda f: ["train", "--no-progress"], ["--image", "--voc"]),
    ("train missing image", lambda f: ["train", "--image", "nope.png", "--annotation", f["ann"]], ["nope.png"]),
    ("train --resume and --overwrite", lambda f: ["train", *data(f), "--resume", "--overwrite"], ["--overwrite"]),
    ("train --resume without checkpoint", lambda f: ["train", *data(f), "--resume", "--checkpoint",
                                                     f["dir"] + "/none.h5"], ["none.h5"]),
    ("train --checkpoint in a missing folder", lambda f: ["train", *data(f), "--checkpoint",
                                                          f["dir"] + "/no/c.h5"], ["--checkpoint", "no"]),
    ("train --checkpoint a folder", lambda f: ["train", *data(f), "--checkpoint", f["dir"]], ["folder"]),
    ("train --log-csv in a missing folder", lambda f: ["train", *data(f), "--overwrite", "--checkpoint",
                                                       f["dir"] + "/x.h5", "--log-csv", f["dir"] + "/no/l.csv"],
     ["--log-csv"]),
    ("train --weights missing", lambda f: ["train", *data(f), "--weights", "nope.npz"], ["--weights", "nope.npz"]),
    ("train --weights with a wrong MD5", lambda f: ["train", *data(f), "--weights", f["fake"], "--checkpoint",
                                                    f["dir"] + "/md5.h5"], ["MD5", "--no-verify"]),
    ("train --weights not Keras (--no-verify)", lambda f: ["train", *data(f), "--weights", f["fake"],
                                                           "--no-verify", "--checkpoint", f["dir"] + "/md5.h5"],
     ["fake.h5"]),
    ("demo --iterations 0", lambda f: ["demo", "--iterations", "0"], ["--iterations"]),
    ("demo --lr nan", lambda f: ["demo", "--lr", "nan"], ["--lr"]),
    ("demo --width -1", lambda f: ["demo", "--width=-1"], ["--width"]),
    ("demo --out a file", lambda f: ["demo", "--out", f["file"]], ["--out", "a_file"]),
    ("predict --out a file", lambda f: ["predict", "--checkpoint", f["ckpt"], "--image", f["img"],
                                        "--out", f["file"]], ["--out", "a_file", "not a folder"]),
    ("predict missing checkpoint", lambda f: ["predict", "--checkpoint", "none.h5", "--image", f["img"]],
     ["none.h5"]),
    ("predict not a checkpoint", lambda f: ["predict", "--checkpoint", f["img"], "--image", f["img"],
                                            "--out", f["dir"] + "/p"], ["img.png"]),
    ("predict missing image", lambda f: ["predict", "--checkpoint", f["ckpt"], "--image", "none.png"],
     ["none.png"]),
    ("evaluate --json in a missing folder", lambda f: ["evaluate", "--checkpoint", f["ckpt"], *data(f)[:4],
                                                       "--json", f["dir"] + "/no/m.json"], ["--json"]),
    ("evaluate missing checkpoint", lambda f: ["evaluate", "--checkpoint", "none.h5", *data(f)[:4]], ["none.h5"]),
    ("import-weights missing file", lambda f: ["import-weights", "none.h5"], ["none.h5"]),
    ("import-weights --out under a file", lambda f: ["import-weights", f["fake"], "--out", f["file"] + "/w.npz"],
     ["--out"]),
    ("crf missing image", lambda f: ["crf", "--image", "none.png", "--probabilities", f["probs"],
                                     "--out", f["dir"] + "/l.png"], ["none.png"]),
    ("crf wrong --sdims", lambda f: ["crf", "--image", f["img"], "--probabilities", f["probs"],
                                     "--out", f["dir"] + "/l.png", "--sdims", "1", "2", "3"], ["--sdims"]),
    ("unknown command", lambda f: ["segment"], ["segment"]),
]


@pytest.mark.parametrize("name,argv,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_a_nonzero_exit(files, capsys, monkeypatch, name, argv, words):
    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the input was checked")

    monkeypatch.setattr(tinyseg.predict, "evaluate", no_work)
    code, out, err = run_cli(argv(files), capsys)
    assert code not in (0, None), (name, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("tinyseg"), err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_the_checkpoint_of_a_refused_run_is_untouched(files, capsys):
    before = open(files["ckpt"], "rb").read()
    code, _, err = run_cli(["train", *data(files), "--checkpoint", files["ckpt"], "--iterations", "0"], capsys)
    assert code == 2 and open(files["ckpt"], "rb").read() == before


def test_debug_shows_the_traceback(files, capsys):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "predict", "--checkpoint", "none.h5", "--image", files["img"]])
    with pytest.raises(FileNotFoundError):
        main(["predict", "--checkpoint", "none.h5", "--image", files["img"], "--debug"])


def test_an_unexpected_error_is_one_line_that_points_to_debug(monkeypatch, capsys):
    import tinyseg.cli.import_weights as command

    def broken(args):
        raise AttributeError("'NoneType' object has no attribute 'shape'\nsecond line")

    monkeypatch.setattr(command, "_import_weights", broken)
    code, _, err = run_cli(["import-weights", "x.h5"], capsys)
    assert code == 1 and err.count("\n") == 1 and "AttributeError" in err and "--debug" in err


def test_ctrl_c_outside_training_is_one_line_and_exit_130(monkeypatch, capsys):
    import tinyseg.cli.import_weights as command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "_import_weights", interrupted)
    code, _, err = run_cli(["import-weights", "x.h5"], capsys)
    assert code == 130 and err == "tinyseg import-weights: interrupted\n"


def test_checkpoint_every_zero_means_only_at_the_end_and_help_says_so(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    help_text = " ".join(out.split())
    assert "default 0: only at the end" in help_text and "--overwrite" in help_text


@pytest.mark.parametrize("command", [["demo", "--width", "0.03125", "--iterations", "1"],
                                     ["train", "--width", "0.03125", "--iterations", "1"]])
def test_device_cuda_without_a_gpu_is_one_line_and_leaves_no_folder(tmp_path, files, command):
    env = {**os.environ, "PYTHONPATH": ROOT, "NUMBA_ENABLE_CUDASIM": "0"}
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command[0] == "demo" else [*data(files), "--checkpoint", str(out / "c.h5")]
    if command[0] == "train":
        out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "tinyseg.cli", *command, *extra, "--device", "cuda",
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode == 0:
        pytest.skip("a CUDA GPU is present")
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cuda" in lines[0] and proc.returncode == 1
    assert not out.exists() if command[0] == "demo" else os.listdir(out) == []
