"""Training: the loss falls, resuming continues exactly, divergence stops cleanly, logs are written."""
import csv

import numpy as np
import pytest

from tinyseg.models import FCN32s, FCN32sConfig
from tinyseg.training.trainer import TrainConfig, Trainer, TrainingDiverged
from conftest import require

CONFIG = FCN32sConfig(width=1 / 32, n_classes=2, seed=3)


def toy_samples(n=2, H=40, W=52):
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(n):
        image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        labels = np.zeros((H, W), np.int32)
        labels[10:30, 15:40] = 1
        image[labels == 1] = 200
        labels[0, :5] = 255
        samples.append((image, labels))
    return samples


def test_loss_decreases_on_one_image():
    """An object filling one 32×32 cell of the coarse map is learnable by FCN-32s in a few steps."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    labels = np.zeros((64, 96), np.int32)
    labels[:32, 32:64] = 1
    image[labels == 1] = 200
    model = FCN32s(FCN32sConfig(width=1 / 32, n_classes=2, seed=3, dropout=0.0))
    losses = Trainer(model, [(image, labels)], TrainConfig(iterations=15, lr=1e-3, progress=False)).run()
    assert len(losses) == 15
    assert losses[0] == pytest.approx(64 * 96 * np.log(2), rel=1e-5)     # fc8 = 0: p = 1/2 everywhere
    assert np.mean(losses[-3:]) < 0.3 * losses[0]


def test_resume_2_plus_2_equals_4_straight(tmp_path):
    samples = toy_samples(3)
    straight = Trainer(FCN32s(CONFIG), samples, TrainConfig(iterations=4, lr=1e-3, progress=False))
    straight.run()

    ckpt = str(tmp_path / "run.h5")
    first = Trainer(FCN32s(CONFIG), samples, TrainConfig(iterations=2, lr=1e-3, progress=False, checkpoint=ckpt))
    first.run()
    second = Trainer(FCN32s(CONFIG), samples, TrainConfig(iterations=4, lr=1e-3, progress=False, checkpoint=ckpt))
    second.resume(ckpt)
    assert second.iteration == 2
    second.run()
    assert second.state.losses == straight.state.losses
    for name, value in straight.model.host_params().items():
        np.testing.assert_array_equal(second.model.host_params()[name], value, err_msg=name)
    for name, value in straight.optimizer.state()["v"].items():
        np.testing.assert_array_equal(second.optimizer.state()["v"][name], value, err_msg=name)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    samples = toy_samples(1)
    trainer = Trainer(FCN32s(CONFIG), samples, TrainConfig(iterations=2, progress=False, checkpoint=ckpt))
    trainer.run()
    good = {k: v.copy() for k, v in trainer.model.host_params().items()}
    trainer.model.layers[0].params["w"][...] = np.nan          # poison the weights
    with pytest.raises(TrainingDiverged, match="iteration 3.*last good checkpoint"):
        trainer.run(iterations=3)
    from tinyseg.weights.checkpoint import load_checkpoint
    saved = load_checkpoint(ckpt)
    assert saved.adam_state["step"] == 2
    np.testing.assert_array_equal(saved.params["conv1_1.w"], good["conv1_1.w"])


def test_loss_csv_has_one_row_per_iteration(tmp_path):
    log = tmp_path / "loss.csv"
    Trainer(FCN32s(CONFIG), toy_samples(1), TrainConfig(iterations=3, progress=False, log_csv=str(log))).run()
    rows = list(csv.reader(open(log)))
    assert rows[0] == ["iteration", "loss", "val_miou"] and [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert all(float(r[1]) > 0 for r in rows[1:])


def test_resume_rejects_a_checkpoint_of_another_model(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    Trainer(FCN32s(CONFIG), toy_samples(1), TrainConfig(iterations=1, progress=False, checkpoint=ckpt)).run()
    other = Trainer(FCN32s(FCN32sConfig(width=1 / 16, n_classes=2)), toy_samples(1), TrainConfig(progress=False))
    with pytest.raises(ValueError, match="model config"):
        other.resume(ckpt)


def test_every_sample_is_visited_once_per_epoch():
    trainer = Trainer(FCN32s(CONFIG), toy_samples(5), TrainConfig(progress=False))
    for epoch in range(3):
        assert sorted(trainer.sample_index(epoch * 5 + k) for k in range(5)) == list(range(5))


def test_tensorboard_logs_loss_and_gradient_histograms(tmp_path):
    require("tensorboardX")
    logdir = tmp_path / "tb"
    Trainer(FCN32s(CONFIG), toy_samples(1), TrainConfig(iterations=2, progress=False,
                                                         tensorboard=str(logdir))).run()
    events = list(logdir.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000
    data = events[0].read_bytes()
    assert b"cross_entropy_loss" in data and b"gradients/conv1_1/w" in data
