"""The training loop's recipes: batches by accumulation, SGD/poly, augmentation, validation with a
best checkpoint, the time budget, exact resume, and bad data mid-run losing nothing."""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.training.augment import AugmentConfig
from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.data import preprocess
from tinyseg.data.synthetic import synthetic_dataset
from tinyseg.models import build_model
from tinyseg.training.trainer import TrainConfig, Trainer, best_path

TINY = dict(width=1 / 32, seed=3)


def samples(n=4, size=(24, 32), seed=0):
    return synthetic_dataset(n, size=size, n_classes=3, seed=seed)


def model(name="fcn32s", dropout=0.0):
    return build_model(name, 3, dropout=dropout, **TINY)


def _gradient(m, image, labels):
    logits = m.forward(preprocess(image)[None], train=True, step=0)
    _, dlogits = ops.softmax_cross_entropy(logits, labels[None], reduction="sum")
    m.backward(dlogits)
    m.clear()
    return {k: v.copy() for k, v in m.grads.items()}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_a_batch_of_two_steps_with_the_sum_of_both_images_gradients(reduction):
    data = samples(2)
    ref = model()
    start = ref.host_params()
    g = [_gradient(ref, *data[i]) for i in range(2)]
    trainer = Trainer(model(), data, TrainConfig(iterations=1, batch=2, optimizer="sgd", lr=1e-4,
                                                 momentum=0.0, weight_decay=0.0, reduction=reduction,
                                                 shuffle_seed=5, progress=False))
    trainer.run()
    pixels = sum(int((labels != 255).sum()) for _, labels in data)
    scale = 1.0 / pixels if reduction == "mean" else 1.0
    for name, p in trainer.model.host_params().items():
        expected = start[name] - 1e-4 * scale * (g[0][name] + g[1][name])
        np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_every_sample_is_visited_once_per_epoch_with_batches():
    trainer = Trainer(model(), samples(5), TrainConfig(batch=2, progress=False))
    seen = [trainer.sample_index(k) for k in range(15)]
    for epoch in range(3):
        assert sorted(seen[5 * epoch:5 * epoch + 5]) == list(range(5))


RECIPE = dict(batch=2, optimizer="sgd", lr=1e-3, momentum=0.9, lr_schedule="poly", warmup=1,
              reduction="mean", val_every=2, progress=False,
              augment=AugmentConfig(flip=True, scale=(0.8, 1.2), crop=(20, 28)))


def test_resume_is_exact_with_batches_augmentation_poly_and_validation(tmp_path):
    data, val = samples(3), samples(2, seed=9)
    straight = Trainer(model("fcn8s", dropout=0.5), data, TrainConfig(iterations=5, **RECIPE),
                       val_samples=val)
    straight.run()
    ckpt = str(tmp_path / "run.h5")
    first = Trainer(model("fcn8s", dropout=0.5), data, TrainConfig(iterations=5, checkpoint=ckpt, **RECIPE),
                    val_samples=val)
    first.run(iterations=3)
    second = Trainer(model("fcn8s", dropout=0.5), data, TrainConfig(iterations=5, checkpoint=ckpt, **RECIPE),
                     val_samples=val)
    second.resume(ckpt)
    assert second.iteration == 3
    second.run()
    assert second.state.losses == straight.state.losses
    # the same validations, plus the one that ended the first part at iteration 3
    assert [v for v in second.state.validations if v[0] != 3] == straight.state.validations
    for name, value in straight.model.host_params().items():
        np.testing.assert_array_equal(second.model.host_params()[name], value, err_msg=name)
    for name, value in straight.optimizer.state()["m"].items():
        np.testing.assert_array_equal(second.optimizer.state()["m"][name], value, err_msg=name)
    saved = load_checkpoint(ckpt)
    assert saved.config["optimizer"] == "sgd" and saved.config["train"]["batch"] == 2
    assert saved.config["train"]["augment"]["crop"] == [20, 28]


def test_validation_keeps_the_best_checkpoint_beside_the_last(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    trainer = Trainer(model(), samples(3), TrainConfig(iterations=4, checkpoint=ckpt, lr=1e-3, val_every=1,
                                                       progress=False), val_samples=samples(2, seed=9))
    trainer.run()
    history = trainer.state.validations
    assert [it for it, _ in history] == [1, 2, 3, 4]
    best = max(history, key=lambda v: v[1])
    assert trainer.state.best_miou == best[1] and trainer.state.best_iteration == best[0]
    saved_best = load_checkpoint(best_path(ckpt))
    assert saved_best.adam_state["step"] == best[0]
    assert load_checkpoint(ckpt).adam_state["step"] == 4


def test_max_minutes_stops_at_a_step_boundary_and_saves(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    trainer = Trainer(model(), samples(2), TrainConfig(iterations=1000, max_minutes=1e-4, checkpoint=ckpt,
                                                       progress=False))
    trainer.run()
    assert trainer.iteration >= 1 and "--max-minutes" in trainer.stopped_early
    assert load_checkpoint(ckpt).adam_state["step"] == trainer.iteration


def test_iterations_zero_fits_the_poly_schedule_to_the_time_budget(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    config = TrainConfig(iterations=0, max_minutes=0.05, lr_schedule="poly", warmup=2, checkpoint=ckpt,
                         progress=False)
    trainer = Trainer(model(), samples(2), config)
    trainer.run()
    fitted = load_checkpoint(ckpt).config["train"]["iterations"]
    assert fitted >= 4 and trainer.schedule.total == fitted
    assert trainer.iteration <= fitted


class _BadAt:
    """A dataset whose item ``bad`` cannot be read (as a damaged file would)."""

    def __init__(self, data, bad):
        self.data, self.bad = data, bad

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError("cannot read image file 'x/broken.jpg': truncated")
        return self.data[i]


def test_a_bad_file_mid_run_names_it_and_keeps_what_was_trained(tmp_path):
    ckpt = str(tmp_path / "run.h5")
    data = _BadAt(samples(3), bad=None)
    trainer = Trainer(model(), data, TrainConfig(iterations=10, checkpoint=ckpt, progress=False))
    data.bad = trainer.sample_index(2)                     # the third iteration's image
    with pytest.raises(ValueError, match="broken.jpg"):
        trainer.run()
    assert trainer.iteration == 2 and load_checkpoint(ckpt).adam_state["step"] == 2
