"""The study's fine-tuning recipe in the trainer and `tinyseg train`: --crf-warmup (the network
frozen, bit-identical, while the CRF trains) and --crf-aux-weight (deep supervision)."""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.cli import main
from tinyseg.crf import CRFasRNN
from tinyseg.models import model_from_config
from tinyseg.models.crf_rnn import NetworkWithCRF
from tinyseg.data import preprocess
from tinyseg.models import build_model
from tinyseg.training.trainer import TrainConfig, Trainer
from test_trainable_crf_cli import TINY, data, scene  # noqa: F401 (data: a fixture)

def small_model(**recipe):
    network = build_model("fcn8s", 2, width=0.03125, seed=0, dropout=0.0)
    return NetworkWithCRF(network, CRFasRNN(2, iterations=2, sdims=10, gaussian_sdims=3), 100.0,
                          **recipe)


def split(params):
    network = {k: v.copy() for k, v in params.items() if not k.startswith("crf.")}
    crf = {k: v.copy() for k, v in params.items() if k.startswith("crf.")}
    return network, crf


@pytest.mark.parametrize("optimizer, batch", [("adam", 1), ("sgd", 2)])
def test_warmup_freezes_the_network_exactly_then_releases_it(optimizer, batch):
    model = small_model(crf_warmup=2, aux_weight=1.0)
    net0, crf0 = split(model.host_params())
    config = TrainConfig(iterations=4, batch=batch, optimizer=optimizer, lr=1e-3, reduction="mean",
                         progress=False, handle_signals=False)     # SGD: weight decay 5e-4
    trainer = Trainer(model, [scene(0), scene(1)], config)
    trainer.run(2)
    net2, crf2 = split(model.host_params())
    for k, v in net0.items():
        np.testing.assert_array_equal(net2[k], v, err_msg=k)
    assert all(np.any(crf2[k] != v) for k, v in crf0.items())
    trainer.run()
    net4, _ = split(model.host_params())
    assert all(np.any(net4[k] != v) for k, v in net0.items() if k.endswith(".w"))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_aux_loss_is_added_to_the_loss_and_to_the_networks_gradient(reduction):
    weight = 3.0
    image, labels = scene()
    labels[:4] = 255                                   # ignored pixels count in neither term
    model = small_model(aux_weight=weight)
    config = TrainConfig(iterations=1, lr=1e-3, reduction=reduction, progress=False,
                         handle_signals=False)
    loss = Trainer(model, [(image, labels)], config).step()

    twin = small_model()                               # the same parameters, no aux term
    x = preprocess(image)[None]
    logits = twin.network.forward(x, train=True, step=0)
    out = twin.crf.forward(logits, image[None], train=True)
    crf_loss, dout = ops.softmax_cross_entropy(out, labels[None], reduction="sum")
    aux_loss, daux = ops.softmax_cross_entropy(logits, labels[None], reduction="sum")
    scale = 1.0 / np.count_nonzero(labels != 255) if reduction == "mean" else 1.0
    assert loss == pytest.approx((crf_loss + weight * aux_loss) * scale, rel=1e-5)
    assert aux_loss > 0.01 * crf_loss
    twin.network.backward(twin.crf.backward(dout * np.float32(scale))
                          + np.float32(weight * scale) * daux)
    for k, g in twin.network.grads.items():
        np.testing.assert_allclose(model.network.grads[k], g, rtol=1e-4,
                                   atol=1e-5 * float(np.abs(g).max()), err_msg=k)


def test_recipe_is_recorded_and_old_configs_load():
    model = small_model(crf_warmup=5, aux_weight=0.5)
    config = model.config_dict()
    assert config["crf_rnn"]["crf_warmup"] == 5 and config["crf_rnn"]["aux_weight"] == 0.5
    rebuilt = model_from_config(config)
    assert (rebuilt.crf_warmup, rebuilt.aux_weight) == (5, 0.5)
    old = small_model().config_dict()                   # without the options, as older checkpoints
    assert "crf_warmup" not in old["crf_rnn"] and "aux_weight" not in old["crf_rnn"]
    assert (model_from_config(old).crf_warmup, model_from_config(old).aux_weight) == (0, 0.0)
    with pytest.raises(ValueError, match="crf_warmup"):
        small_model(crf_warmup=-1)


def test_train_command_records_the_recipe_and_resume_keeps_it(tmp_path, data, capsys):
    ckpt = str(tmp_path / "crf.h5")
    assert main(["train", *data, "--model", "fcn8s", "--crf-rnn", "--crf-warmup", "3",
                 "--crf-aux-weight", "2", "--checkpoint", ckpt, *TINY]) == 0
    saved = load_checkpoint(ckpt)
    assert saved.config["model"]["crf_rnn"]["crf_warmup"] == 3
    assert saved.config["model"]["crf_rnn"]["aux_weight"] == 2.0
    net = {k: v for k, v in saved.params.items() if not k.startswith("crf.")}
    assert main(["train", *data, "--checkpoint", ckpt, "--resume", "--iterations", "3",
                 "--no-progress"]) == 0
    resumed = load_checkpoint(ckpt)
    assert resumed.config["model"]["crf_rnn"]["crf_warmup"] == 3
    for k, v in net.items():                           # iteration 3 (t = 2) is still warm-up
        np.testing.assert_array_equal(resumed.params[k], v, err_msg=k)
    capsys.readouterr()


def run_cli(argv, capsys):
    """``(exit code, stderr)`` of ``tinyseg argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:                       # argparse exits for bad options
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--crf-warmup", "2"], ["--crf-warmup", "add --crf-rnn"]),
    (["--crf-aux-weight", "1"], ["--crf-aux-weight", "add --crf-rnn"]),
    (["--crf-rnn", "--crf-warmup", "-1"], ["--crf-warmup", ">= 0"]),
    (["--crf-rnn", "--crf-warmup", "1.5"], ["--crf-warmup"]),
    (["--crf-rnn", "--crf-aux-weight", "-0.5"], ["--crf-aux-weight", ">= 0"]),
    (["--crf-rnn", "--crf-aux-weight", "nan"], ["--crf-aux-weight"]),
])
def test_recipe_option_errors_are_one_line(tmp_path, data, capsys, args, words):
    ckpt = tmp_path / "x.h5"
    code, err = run_cli(["train", *data, *args, "--checkpoint", str(ckpt), *TINY], capsys)
    assert code not in (0, None)
    assert all(w in err for w in words), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not ckpt.exists()


def test_resume_refuses_new_recipe_values(tmp_path, data, capsys):
    ckpt = str(tmp_path / "crf.h5")
    assert main(["train", *data, "--model", "fcn8s", "--crf-rnn", "--checkpoint", ckpt, *TINY]) == 0
    capsys.readouterr()
    assert main(["train", *data, "--checkpoint", ckpt, "--resume", "--crf-warmup", "5",
                 "--iterations", "3", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--crf-warmup is the checkpoint's" in err and "Traceback" not in err
