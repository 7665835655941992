"""Validation is visible while training: every evaluation prints one line (iteration, mean IoU,
best so far), even with --no-progress; ``val_miou`` is a column of the --log-csv file (empty on
the rows of iterations without validation) and a TensorBoard scalar; a resume keeps the column."""
import csv
import re
import struct

import numpy as np
import pytest

from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.cli import main
from tinyseg.data.synthetic import write_dataset
from conftest import require

LINE = re.compile(r"^iteration (\d+): validation mean IoU (\d\.\d{4}) \(best (\d\.\d{4}) at iteration (\d+)\)$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("vl") / "d"
    write_dataset(root, {"train": 2, "val": 2}, layout="folders", size=(16, 20), n_classes=3)
    return ["--data", str(root), "--classes", str(root / "classes.txt"), "--val-split", "val",
            "--width", "0.03125", "--no-progress"]


def validation_lines(out):
    return [LINE.match(line).groups() for line in out.splitlines() if LINE.match(line)]


def csv_rows(path):
    rows = list(csv.reader(open(path)))
    return rows[0], rows[1:]


def test_each_validation_prints_one_line_and_fills_the_csv_column(tmp_path, dataset, capsys):
    ckpt, log = str(tmp_path / "c.h5"), str(tmp_path / "loss.csv")
    assert main(["train", *dataset, "--checkpoint", ckpt, "--iterations", "5", "--val-every", "2",
                 "--log-csv", log]) == 0
    lines = validation_lines(capsys.readouterr().out)
    validations = load_checkpoint(ckpt).extra["validations"]
    assert [int(it) for it, *_ in lines] == [it for it, _ in validations] == [2, 4, 5]
    best, best_at = -1.0, 0
    for (it, miou, shown_best, shown_at), (_, value) in zip(lines, validations):
        assert float(miou) == pytest.approx(value, abs=5e-5)
        if value > best:
            best, best_at = value, int(it)
        assert float(shown_best) == pytest.approx(best, abs=5e-5) and int(shown_at) == best_at
    header, rows = csv_rows(log)
    assert header == ["iteration", "loss", "val_miou"]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    by_iteration = {r[0]: r[2] for r in rows}
    assert by_iteration["1"] == by_iteration["3"] == ""
    for it, value in validations:
        assert float(by_iteration[str(it)]) == value


def test_resume_keeps_the_val_miou_column_and_cuts_later_rows(tmp_path, dataset):
    ckpt, log = str(tmp_path / "c.h5"), tmp_path / "loss.csv"
    common = [*dataset, "--checkpoint", ckpt, "--log-csv", str(log), "--val-every", "1"]
    assert main(["train", *common, "--iterations", "2"]) == 0
    _, first = csv_rows(log)
    with open(log, "a") as f:                       # a run killed after iteration 3, checkpoint at 2
        f.write("3,1.5,0.25\n")
    assert main(["train", *common, "--iterations", "3", "--resume"]) == 0
    header, rows = csv_rows(log)
    assert header == ["iteration", "loss", "val_miou"] and rows[:2] == first
    assert [r[0] for r in rows] == ["1", "2", "3"] and rows[2][1:] != ["1.5", "0.25"]
    validations = load_checkpoint(ckpt).extra["validations"]
    assert [float(r[2]) for r in rows] == [v for _, v in validations]


def tensorboard_scalars(folder):
    """{tag: [(step, value)]} from the TFRecord event files (length, crc, Event proto, crc)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_val_miou_goes_to_tensorboard(tmp_path, dataset):
    require("tensorboardX")
    ckpt, tb = str(tmp_path / "c.h5"), tmp_path / "tb"
    assert main(["train", *dataset, "--checkpoint", ckpt, "--iterations", "3", "--val-every", "2",
                 "--tensorboard", str(tb)]) == 0
    scalars = tensorboard_scalars(tb)
    validations = load_checkpoint(ckpt).extra["validations"]
    assert [s for s, _ in scalars["val_miou"]] == [2, 3]
    assert np.allclose([v for _, v in scalars["val_miou"]], [v for _, v in validations], atol=1e-6)
    assert [s for s, _ in scalars["cross_entropy_loss"]] == [1, 2, 3]
