"""Every written file follows the process umask like ``open()`` does: checkpoints (written through
a temporary file and ``os.replace``), ``NAME.best.h5``, ``--log-csv`` files and the demo's
loss.csv included (0644 under umask 022, 0600 under 077)."""
import os
import stat

import numpy as np
import pytest

from tinyseg._atomic import atomic_output
from tinyseg.cli import main
from tinyseg.data.synthetic import write_dataset


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_output_follows_the_umask(tmp_path, umask):
    path = tmp_path / "out.bin"
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(b"x")
    assert mode(path) == 0o666 & ~umask
    with atomic_output(path) as tmp, open(tmp, "wb") as f:   # replacing an existing file too
        f.write(b"y")
    assert mode(path) == 0o666 & ~umask and path.read_bytes() == b"y"


def test_train_outputs_follow_the_umask(tmp_path, umask):
    write_dataset(tmp_path / "d", {"train": 2, "val": 1}, layout="folders", size=(16, 20), n_classes=3)
    ckpt, log = tmp_path / "c.h5", tmp_path / "loss.csv"
    assert main(["train", "--data", str(tmp_path / "d"), "--classes", str(tmp_path / "d" / "classes.txt"),
                 "--width", "0.03125", "--no-progress", "--iterations", "2", "--checkpoint", str(ckpt),
                 "--val-split", "val", "--val-every", "1", "--log-csv", str(log)]) == 0
    for path in (ckpt, tmp_path / "c.best.h5", log):
        assert mode(path) == 0o666 & ~umask, path


def test_demo_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "demo"
        assert main(["demo", "--out", str(out), "--width", "0.03125", "--iterations", "1",
                     "--no-progress"]) == 0
    finally:
        os.umask(old)
    files = sorted(os.listdir(out))
    assert "loss.csv" in files
    for name in files:
        assert mode(out / name) == 0o644, name
