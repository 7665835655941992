"""Nothing lost, nothing overwritten unasked: checkpoints of other runs, --resume conflicts, stale
temporary files, the loss CSV after a resume, --tensorboard without tensorboardX."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyseg.weights.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from tinyseg.cli import main
from helpers import one_line_error, save_image_and_annotation  # noqa: E402
from tinyseg.models import FCN32s, FCN32sConfig
from tinyseg.training.trainer import TrainConfig, Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--width", "0.03125", "--no-progress"]


@pytest.fixture
def data(tmp_path):
    img, ann = save_image_and_annotation(tmp_path, (24, 30), (6, 18, 8, 22))
    return ["--image", img, "--annotation", ann]


# ----------------------------------------------------------------------------- another run's checkpoint
def test_a_new_run_refuses_an_existing_checkpoint_unless_overwrite(tmp_path, data, capsys):
    ckpt = tmp_path / "checkpoint.h5"
    assert main(["train", *data, *TINY, "--checkpoint", str(ckpt), "--iterations", "2"]) == 0
    before = ckpt.read_bytes()
    assert main(["train", *data, *TINY, "--checkpoint", str(ckpt), "--iterations", "1"]) == 1
    one_line_error(capsys, str(ckpt), "--resume", "--overwrite")
    assert ckpt.read_bytes() == before
    assert main(["train", *data, *TINY, "--checkpoint", str(ckpt), "--iterations", "1", "--overwrite"]) == 0
    assert read_checkpoint_config(ckpt)[1] == 1


def test_trainer_refuses_a_checkpoint_it_did_not_resume(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    samples = [(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.int32))]
    config = FCN32sConfig(width=1 / 32)
    Trainer(FCN32s(config), samples, TrainConfig(iterations=1, progress=False, checkpoint=ckpt)).run()
    other = Trainer(FCN32s(config), samples, TrainConfig(iterations=1, progress=False, checkpoint=ckpt))
    with pytest.raises(FileExistsError, match="overwrite"):
        other.run()
    assert other.iteration == 0
    Trainer(FCN32s(config), samples, TrainConfig(iterations=1, progress=False, checkpoint=ckpt,
                                                 overwrite=True)).run()


@pytest.mark.parametrize("option,value,key", [("--width", "0.0625", "width"), ("--dropout", "0.2", "dropout"),
                                              ("--seed", "7", "seed")])
def test_resume_refuses_a_model_option_that_differs_from_the_checkpoint(tmp_path, data, capsys,
                                                                        option, value, key):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, *TINY, "--checkpoint", ckpt, "--iterations", "1"]) == 0
    capsys.readouterr()
    assert main(["train", *data, "--no-progress", "--checkpoint", ckpt, "--iterations", "2",
                 "--resume", option, value]) == 1
    one_line_error(capsys, option, key, "--overwrite")
    assert read_checkpoint_config(ckpt)[1] == 1


def test_resume_takes_the_checkpoints_options_and_accepts_equal_ones(tmp_path, data):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, *TINY, "--checkpoint", ckpt, "--iterations", "1", "--seed", "3",
                 "--lr", "1e-3", "--dropout", "0.25"]) == 0
    assert main(["train", *data, *TINY, "--checkpoint", ckpt, "--iterations", "2", "--resume",
                 "--seed", "3"]) == 0
    config, step = read_checkpoint_config(ckpt)
    assert step == 2 and config["adam"]["lr"] == 1e-3
    assert config["model"]["dropout"] == 0.25 and config["train"]["shuffle_seed"] == 3


def test_resume_refuses_weights_and_a_finished_checkpoint(tmp_path, data, capsys):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, *TINY, "--checkpoint", ckpt, "--iterations", "2"]) == 0
    capsys.readouterr()
    assert main(["train", *data, "--no-progress", "--checkpoint", ckpt, "--iterations", "2", "--resume"]) == 1
    one_line_error(capsys, "iteration 2 already")
    assert main(["train", *data, "--no-progress", "--checkpoint", ckpt, "--iterations", "3", "--resume",
                 "--weights", ckpt]) == 1
    one_line_error(capsys, "--weights")


# ----------------------------------------------------------------------------- stale temporary files
CHILD_KILLED_MID_WRITE = """
import sys, time
from tinyseg._atomic import atomic_output
with atomic_output(sys.argv[1], "checkpoint") as tmp:
    open(tmp, "wb").write(b"half a checkpoint")
    print(tmp, flush=True)
    time.sleep(120)
"""


def test_stale_temp_files_of_a_killed_write_are_removed_and_nothing_else(tmp_path):
    path = tmp_path / "ckpt.h5"
    env = {**os.environ, "PYTHONPATH": ROOT}
    child = subprocess.Popen([sys.executable, "-c", CHILD_KILLED_MID_WRITE, str(path)],
                             stdout=subprocess.PIPE, text=True, env=env)
    stale = child.stdout.readline().strip()
    child.kill()
    child.wait()
    assert os.path.basename(stale).startswith(f".ckpt.h5.tinyseg-tmp-{child.pid}-")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead = child.pid
        keep = [f".ckpt.h5.abcd1234.tmp",                            # not our pattern (old style)
                f".ckpt.h5.tinyseg-tmp-{alive.pid}-abcdefgh.tmp",    # a writer that is still running
                f".other.h5.tinyseg-tmp-{dead}-abcdefgh.tmp",         # another file's
                f"ckpt.h5.tinyseg-tmp-{dead}-abcdefgh.tmp",           # no leading dot
                f".ckpt.h5.tinyseg-tmp-{dead}-abcdefgh.tmp.bak",      # something else's name
                f".xckpt.h5.tinyseg-tmp-{dead}-abcdefgh.tmp"]
        for name in keep:
            (tmp_path / name).write_bytes(b"not ours to remove")
        params = {"w": np.ones(3, np.float32)}
        save_checkpoint(path, params, {"m": {}, "v": {}, "step": 0}, {})
        assert not os.path.exists(stale)
        assert sorted(os.listdir(tmp_path)) == sorted(keep + ["ckpt.h5"])
        np.testing.assert_array_equal(load_checkpoint(path).params["w"], 1)
    finally:
        alive.kill()
        alive.wait()


def test_an_unwritable_checkpoint_folder_names_the_checkpoint_not_the_temp_file(data, capsys):
    # /sys refuses new files even to root (os.access says yes to root, so it cannot be a chmod)
    path = "/sys/tinyseg_ckpt.h5"
    try:
        save_checkpoint(path, {"w": np.ones(3, np.float32)}, {"m": {}, "v": {}, "step": 0}, {})
    except OSError as exc:
        assert path in str(exc) and "tinyseg-tmp" not in str(exc)
    else:
        pytest.skip("/sys is writable here")
    assert main(["train", *data, *TINY, "--checkpoint", path, "--iterations", "1"]) == 1
    err = one_line_error(capsys, path, "--checkpoint")
    assert "tinyseg-tmp" not in err


# ----------------------------------------------------------------------------- the loss CSV
def rows(path):
    return list(csv.reader(open(path)))[1:]


def test_resume_cuts_the_loss_csv_to_the_checkpoint_and_a_new_run_starts_it_afresh(tmp_path, data):
    ckpt, log = str(tmp_path / "c.h5"), tmp_path / "loss.csv"
    log.write_text("iteration,loss\n1,99\n2,99\n7,99\n")              # an old run's log
    common = [*data, *TINY, "--checkpoint", ckpt, "--log-csv", str(log)]
    assert main(["train", *common, "--iterations", "3"]) == 0
    first = rows(log)
    assert [r[0] for r in first] == ["1", "2", "3"] and "99" not in [r[1] for r in first]
    with open(log, "a") as f:                   # a run killed after iteration 5, checkpoint at 3
        f.write("4,1.5\n5,1.25\n")
    assert main(["train", *common, "--iterations", "6", "--resume"]) == 0
    resumed = rows(log)
    assert [r[0] for r in resumed] == ["1", "2", "3", "4", "5", "6"]
    assert resumed[:3] == first and resumed[3][1] != "1.5"
    assert [float(r[1]) for r in resumed] == load_checkpoint(ckpt).extra["losses"]


# ----------------------------------------------------------------------------- TensorBoard
def test_tensorboard_without_tensorboardx_fails_before_training(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)      # `import tensorboardX` fails
    ckpt = tmp_path / "c.h5"
    assert main(["train", *data, *TINY, "--checkpoint", str(ckpt), "--iterations", "1",
                 "--tensorboard", str(tmp_path / "tb")]) == 1
    one_line_error(capsys, "tensorboardX", "tinyseg[tensorboard]")
    assert not ckpt.exists()
    samples = [(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.int32))]
    trainer = Trainer(FCN32s(FCN32sConfig(width=1 / 32)), samples,
                      TrainConfig(iterations=1, progress=False, tensorboard=str(tmp_path / "tb")))
    with pytest.raises(RuntimeError, match="tensorboardX"):
        trainer.run()
    assert trainer.iteration == 0
