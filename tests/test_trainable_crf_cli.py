"""CRF-as-RNN in the training loop and the commands: NetworkWithCRF, `tinyseg train --crf-rnn`,
checkpoints (exact resume), predict/evaluate using the trained CRF."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyseg import ops
from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.cli import main
from tinyseg.cli.common import load_model
from tinyseg.crf import CRFasRNN
from tinyseg.models import model_from_config
from tinyseg.models.crf_rnn import NetworkWithCRF, _image_from_input
from tinyseg.data import preprocess
from tinyseg.models import build_model
from tinyseg.training.optim import Adam, AdamConfig
from tinyseg.training.trainer import TrainConfig, Trainer

TINY = ["--width", "0.03125", "--iterations", "2", "--lr", "1e-3", "--no-progress"]


def scene(seed=0, h=37, w=45):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.int32)
    labels[9:29, 11:38] = 1
    image[labels == 1] = (220, 200, 40)
    return image, labels


@pytest.fixture
def data(tmp_path):
    image, labels = scene()
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(labels.astype(np.uint8)).save(tmp_path / "ann.png")
    return ["--image", str(tmp_path / "img.png"), "--annotation", str(tmp_path / "ann.png")]


def small_model(seed=0):
    network = build_model("fcn8s", 2, width=0.03125, seed=seed, dropout=0.0)
    return NetworkWithCRF(network, CRFasRNN(2, iterations=2, sdims=10, gaussian_sdims=3), 100.0)


def test_the_composite_is_the_network_then_the_crf():
    image, labels = scene()
    model = small_model()
    x = preprocess(image)[None]
    np.testing.assert_array_equal(_image_from_input(x)[0], image)     # exact recovery of the image
    assert set(model.params) == set(model.network.params) | {"crf.compat", "crf.w_spatial",
                                                               "crf.w_bilateral"}
    assert model.lr_scale == {"crf.compat": 100.0, "crf.w_spatial": 100.0, "crf.w_bilateral": 100.0}
    want = model.crf.forward(model.network.forward(x), image[None], train=False, iterations=2)
    out = model.forward(x, train=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    _, dout = ops.softmax_cross_entropy(out, labels[None])
    announced = []
    model.backward(dout, grad_ready=announced.extend)
    assert announced[:3] == ["crf.compat", "crf.w_spatial", "crf.w_bilateral"]
    assert set(announced) == set(model.params) and set(model.grads) == set(model.params)
    rebuilt = model_from_config(model.config_dict(), params=model.host_params())
    assert isinstance(rebuilt, NetworkWithCRF) and rebuilt.lr_mult == 100.0
    for k, v in model.host_params().items():
        np.testing.assert_array_equal(rebuilt.host_params()[k], v)


def test_optimizers_scale_the_crf_rate():
    params = {"a": np.zeros(3, np.float32), "crf.b": np.zeros(3, np.float32)}
    grads = {"a": np.ones(3, np.float32), "crf.b": np.ones(3, np.float32)}
    adam = Adam(AdamConfig(lr=1e-3))
    adam.lr_scale = {"crf.b": 50.0}
    adam.step(params, grads)
    np.testing.assert_allclose(params["crf.b"], 50 * params["a"], rtol=1e-5)


def test_trainer_resumes_a_crf_rnn_run_exactly(tmp_path):
    samples = [scene(0), scene(1)]
    config = dict(iterations=4, batch=2, lr=1e-3, reduction="mean", progress=False,
                  handle_signals=False)
    straight = small_model()
    trainer = Trainer(straight, samples, TrainConfig(**config))
    assert trainer.optimizer.lr_scale["crf.compat"] == 100.0
    trainer.run()
    ckpt = str(tmp_path / "half.h5")
    first = small_model()
    Trainer(first, samples, TrainConfig(**config, checkpoint=ckpt)).run(2)
    resumed = model_from_config(load_checkpoint(ckpt).config["model"])
    second = Trainer(resumed, samples, TrainConfig(**config, checkpoint=ckpt))
    second.resume(ckpt)
    second.run()
    for k, v in straight.host_params().items():
        np.testing.assert_array_equal(resumed.host_params()[k], v, err_msg=k)
    assert np.any(straight.host_params()["crf.compat"] != 1 - np.eye(2, dtype=np.float32))


def test_train_crf_rnn_command_then_evaluate_and_predict(tmp_path, data, capsys):
    ckpt = str(tmp_path / "crf.h5")
    assert main(["train", *data, "--model", "fcn8s", "--crf-rnn", "--crf-lr", "0.1",
                 "--checkpoint", ckpt, *TINY]) == 0
    assert "fcn8s+crf-rnn" in capsys.readouterr().out
    saved = load_checkpoint(ckpt)
    assert saved.config["model"]["crf_rnn"]["lr_mult"] == pytest.approx(100.0)
    assert saved.params["crf.compat"].shape == (2, 2)
    assert not np.allclose(saved.params["crf.w_bilateral"], 10.0)          # it trained
    model = load_model(ckpt)
    assert isinstance(model, NetworkWithCRF)
    np.testing.assert_array_equal(model.crf.host_params()["compat"], saved.params["crf.compat"])
    assert main(["train", *data, "--checkpoint", ckpt, "--resume", "--iterations", "3",
                 "--no-progress"]) == 0
    assert load_checkpoint(ckpt).adam_state["step"] == 3
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", ckpt, *data, "--json", str(report), "--trimap", "2"]) == 0
    stages = json.loads(report.read_text())
    assert {"fcn", "crf", "crf_rnn"} <= set(stages)
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", data[1], "--out", str(out)]) == 0
    q = np.load(out / "probabilities.npy")
    assert q.shape == (37, 45, 2)
    np.testing.assert_allclose(q.sum(-1), 1.0, rtol=1e-5)


def test_crf_rnn_option_errors_are_one_line(tmp_path, data, capsys):
    plain = str(tmp_path / "plain.h5")
    assert main(["train", *data, "--crf-lr", "0.1", "--checkpoint", plain, *TINY]) == 1
    assert "--crf-lr" in capsys.readouterr().err
    assert main(["train", *data, "--checkpoint", plain, *TINY]) == 0
    capsys.readouterr()
    assert main(["train", *data, "--checkpoint", plain, "--resume", "--crf-rnn", "--iterations", "3",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "without --crf-rnn" in err and "Traceback" not in err
