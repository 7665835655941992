"""Resource checks before work: the memory a model and a training step (or a forward) need is
estimated from the options (tinyseg.models.memory) and a run that cannot fit is refused in one
line naming the option and the figure, not an internal MemoryError after the run started."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyseg.cli import main
from helpers import one_line_error as shared_one_line_error  # noqa: E402
from tinyseg.data.synthetic import write_dataset
from tinyseg.models import build_model
from tinyseg.models.memory import available_memory, estimate_memory, format_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mem") / "d"
    write_dataset(root, {"train": 2, "val": 1}, layout="folders", size=(24, 30), n_classes=2)
    return ["--data", str(root), "--classes", str(root / "classes.txt"), "--no-progress",
            "--iterations", "1"]


def one_line_error(capsys, *needles):
    """helpers.one_line_error, and the line does not speak of an internal error."""
    err = shared_one_line_error(capsys, *needles)
    assert "internal" not in err, err
    return err


def test_the_parameter_bytes_are_exact():
    for name in ("fcn32s", "fcn8s", "deeplab-largefov"):
        model = build_model(name, 5, width=1 / 16)
        exact = sum(np.asarray(v).nbytes for v in model.host_params().values())
        estimate = estimate_memory(name, 5, 1 / 16, (64, 64))
        assert estimate.parameters == exact
        assert estimate.optimizer == 3 * exact                 # gradients and Adam's two moments
    # VGG-16 FCN-32s, 21 classes: convs 14,714,688 + fc6 102,764,544 + fc7 16,781,312 + fc8 86,037
    assert estimate_memory("fcn32s", 21, 1.0, (8, 8)).parameters == 4 * 134_346_581


def test_width_1000_is_refused_in_one_line_before_any_work(tmp_path, data, capsys):
    ckpt = tmp_path / "c.h5"
    assert main(["train", *data, "--width", "1000", "--checkpoint", str(ckpt)]) == 1
    err = one_line_error(capsys, "--width 1000 needs about", "TiB for a training step", "available",
                         "lower --width")
    assert not ckpt.exists()
    figure = float(err.split("needs about ")[1].split()[0])
    assert 1000 < figure < 5000          # TiB: fc6's kernel alone is 7·7·512000·4096000 floats (374 TiB)


def test_a_huge_crop_is_refused_naming_the_crop(tmp_path, data, capsys):
    assert main(["train", *data, "--width", "0.03125", "--crop", "100000,100000",
                 "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "--crop 100000,100000 needs about", "for a training step", "lower --width or --crop")


def test_a_huge_scale_is_refused_naming_the_scale(tmp_path, data, capsys):
    """The whole image is resized before the crop: 2000 x 24x30 is 48000x60000 pixels."""
    assert main(["train", *data, "--width", "0.03125", "--crop", "16,16", "--scale-range", "1,2000",
                 "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "a training image of 48000x60000 (scaled by 2000) needs about",
                   "lower --scale-range")
    assert main(["train", *data, "--width", "0.03125", "--scale-range", "1,2000",
                 "--checkpoint", str(tmp_path / "c.h5")]) == 1
    one_line_error(capsys, "a training image of 48000x60000 (scaled by 2000)", "add --crop")


def test_predict_and_evaluate_check_the_forward(tmp_path, data, capsys, monkeypatch):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, "--width", "0.03125", "--checkpoint", ckpt]) == 0
    root = data[1]
    image = os.path.join(root, "train", "images", sorted(os.listdir(os.path.join(root, "train", "images")))[0])
    monkeypatch.setattr("tinyseg.models.memory.available_memory", lambda: 2**20)     # 1 MiB free
    capsys.readouterr()
    assert main(["predict", "--checkpoint", ckpt, "--image", image, "--out", str(tmp_path / "p")]) == 1
    one_line_error(capsys, "24x30", "needs about", "for a forward", "1.0 MiB available")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", root, "--split", "val", "--no-crf"]) == 1
    one_line_error(capsys, "24x30", "needs about", "for a forward", "1.0 MiB available")


def test_available_memory_and_format():
    free = available_memory()
    assert free is None or 2**20 < free < 2**50
    assert format_bytes(137.4 * 2**30) == "137 GiB" and format_bytes(3.14 * 2**30) == "3.1 GiB"
    assert format_bytes(512 * 2**20) == "512 MiB"


MEASURE = r"""
import json, sys
import numpy as np
from tinyseg.models import build_model
from tinyseg.models.memory import estimate_memory
from tinyseg.predict import predict
from tinyseg.training.trainer import TrainConfig, Trainer

def status(key):
    return int([l for l in open("/proc/self/status") if l.startswith(key)][0].split()[1]) * 1024

name, width, H, W, train = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
rng = np.random.default_rng(0)
image, labels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rng.integers(0, 3, (H, W)).astype(np.int32)
config = dict(iterations=1, progress=False, handle_signals=False)
small = build_model(name, 3, width=width)              # compile on a small image first
Trainer(small, [(image[:40, :40], labels[:40, :40])], TrainConfig(**config)).run()
predict(small, image[:40, :40])
del small
model = build_model(name, 3, width=width)
open("/proc/self/clear_refs", "w").write("5")          # the peak (VmHWM) starts again from here
before = status("VmRSS:")
if train:
    Trainer(model, [(image, labels)], TrainConfig(**config)).run()
else:
    predict(model, image)
estimate = estimate_memory(name, 3, width, (H, W), train=train)
print(json.dumps([status("VmHWM:") - before + estimate.parameters, estimate.total]))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc peak reset")
@pytest.mark.parametrize("name,width,train", [("fcn32s", 0.25, True), ("fcn32s", 0.25, False),
                                              ("deeplab-largefov", 0.125, True)])
def test_the_estimate_is_within_a_factor_2_above_the_measured_peak(name, width, train):
    """The resident set's growth over one step (its parameters added: they were allocated
    before) against the estimate, with glibc's malloc left as is so freed blocks go back."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TINYSEG_SYSTEM_MALLOC": "1", "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MEASURE, name, str(width), "160", "160", str(int(train))],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    measured, estimate = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.45 * estimate <= measured <= 1.05 * estimate, (measured, estimate)
