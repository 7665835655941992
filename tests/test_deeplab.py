"""DeepLab-LargeFOV: equal to an independent PyTorch build (logits, every gradient), its
alignment (score i on pixel 8i, checked by mirror symmetry), fc6/fc7 from VGG-16 by decimation,
shapes for any H×W, and a checkpoint round trip."""
import numpy as np
import pytest

from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint
from tinyseg.models import DeepLabLargeFOV, build_model, model_from_config
from conftest import require
from helpers import load_mirror_symmetric_params

TINY = dict(n_classes=3, width=0.0625, seed=1, dropout=0.0)        # 4..32 channels, fc6/fc7 64


def randomised(model, rng):
    params = {k: (rng.standard_normal(v.shape) * np.sqrt(2.0 / max(1, np.prod(v.shape[:-1])))).astype(np.float32)
              for k, v in model.host_params().items()}
    model.load_params(params)
    return params


def test_architecture_is_deeplab_largefov():
    model = build_model("deeplab-largefov", n_classes=21)
    s = model.shapes
    assert s["fc6.w"] == (3, 3, 512, 1024) and s["fc7.w"] == (1, 1, 1024, 1024) and s["fc8.w"] == (1, 1, 1024, 21)
    layers = {l.name: l for l in model.layers}
    assert [layers[f"pool{i}"].stride for i in range(1, 6)] == [2, 2, 2, 1, 1]
    assert {layers[f"conv5_{i}"].dilation for i in (1, 2, 3)} == {2} and layers["conv4_3"].dilation == 1
    assert layers["fc6"].dilation == 12 and "pool5a" in layers
    # VGG-16's convs (14.7 M) + fc6 3·3·512·1024 + fc7 1024² + fc8 (1024·21) + biases ≈ 20.5 M ("vgg16_20M")
    assert 20.4e6 < model.n_params() < 20.6e6


def test_forward_and_every_gradient_equal_an_independent_pytorch_build():
    require("torch")
    from torch_nets import assert_equals_torch

    rng = np.random.default_rng(0)
    model = build_model("deeplab-largefov", **TINY)
    params = randomised(model, rng)
    assert_equals_torch("deeplab-largefov", model, params, rng)


@pytest.mark.parametrize("H,W", [(37, 45), (1, 1), (8, 9), (375, 500)])
def test_logits_have_the_input_size_for_any_h_w(H, W):
    model = build_model("deeplab-largefov", n_classes=2, width=1 / 64 if H > 100 else 1 / 32)
    x = np.random.default_rng(0).standard_normal((1, H, W, 3)).astype(np.float32)
    logits = model.forward(x, train=True)
    assert logits.shape == (1, H, W, 2)
    model.backward(np.ones_like(logits))
    assert set(model.grads) == set(model.params)




@pytest.mark.parametrize("H,W", [(41, 57), (33, 33)])
def test_scores_sit_on_pixels_8i_so_the_net_commutes_with_flips_on_8k_plus_1_sizes(H, W):
    """With mirror-symmetric kernels the grid 0, 8, …, 8k is symmetric on H = 8k + 1: flipping
    the image flips the logits exactly. FCN's ``8i + 3.5`` grid would not be."""
    rng = np.random.default_rng(0)
    model = build_model("deeplab-largefov", n_classes=2, width=1 / 32)
    load_mirror_symmetric_params(model, rng)      # DeepLab has no upscore layers
    x = rng.standard_normal((1, H, W, 3)).astype(np.float32)
    a = model.forward(x)
    for axis in (1, 2):
        b = model.forward(np.ascontiguousarray(np.flip(x, axis)))
        np.testing.assert_allclose(np.flip(b, axis), a, rtol=1e-4, atol=1e-5 * np.abs(a).max())
    x = rng.standard_normal((1, H + 4, W, 3)).astype(np.float32)    # 8k + 5: not symmetric
    a = model.forward(x)
    b = model.forward(np.ascontiguousarray(np.flip(x, 1)))
    assert not np.allclose(np.flip(b, 1), a, rtol=1e-4, atol=1e-5 * np.abs(a).max())


def test_fc6_fc7_come_from_vgg16_by_decimation():
    rng = np.random.default_rng(0)
    vgg = {"fc6.w": rng.standard_normal((7, 7, 8, 16)).astype(np.float32),
           "fc6.b": np.arange(16, dtype=np.float32),
           "fc7.w": rng.standard_normal((1, 1, 16, 16)).astype(np.float32),
           "fc7.b": np.arange(16, dtype=np.float32) * 2,
           "conv1_1.w": np.ones((3, 3, 3, 2), np.float32), "fc8.w": np.ones((1, 1, 16, 5), np.float32)}
    p = DeepLabLargeFOV.params_from_vgg16(vgg)
    assert "fc8.w" not in p and p["conv1_1.w"] is vgg["conv1_1.w"]
    assert p["fc6.w"].shape == (3, 3, 8, 4) and p["fc7.w"].shape == (1, 1, 4, 4)
    assert p["fc6.w"][1, 2, 5, 3] == vgg["fc6.w"][3, 6, 5, 12]       # taps 0, 3, 6; filter 4·3
    np.testing.assert_array_equal(p["fc6.b"], [0, 4, 8, 12])
    assert p["fc7.w"][0, 0, 2, 1] == vgg["fc7.w"][0, 0, 8, 4]
    np.testing.assert_array_equal(p["fc7.b"], [0, 8, 16, 24])


def test_build_model_feeds_deeplab_from_imported_vgg16_weights(monkeypatch):
    """build_model(weights=...) passes what the importer returns through params_from_vgg16.

    The importer itself (Keras file -> names, BGR -> RGB) is tested in test_weights.py; here a
    narrow VGG (width 1/16: fc6 (7, 7, 32, 256)) stands in for the 528 MB file.
    """
    from tinyseg import weights
    from tinyseg.models import FCN32s, FCN32sConfig

    vgg = {k: v for k, v in FCN32s.init_params(FCN32sConfig(n_classes=2, width=0.0625)).items()
           if not k.startswith("fc8.")}
    monkeypatch.setattr(weights, "load_params", lambda path, **kw: vgg)
    model = build_model("deeplab-largefov", 2, width=0.0625, weights="vgg16.npz")
    got = model.host_params()
    np.testing.assert_array_equal(got["conv5_3.w"], vgg["conv5_3.w"])
    np.testing.assert_array_equal(got["fc6.w"], vgg["fc6.w"][::3, ::3, :, ::4])
    np.testing.assert_array_equal(got["fc7.w"], vgg["fc7.w"][:, :, ::4, ::4])
    assert not got["fc8.w"].any()


def test_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    model = build_model("deeplab-largefov", **TINY)
    randomised(model, rng)
    path = tmp_path / "d.h5"
    save_checkpoint(path, model.host_params(), {"m": {}, "v": {}, "step": 0}, {"model": model.config_dict()})
    ckpt = load_checkpoint(path)
    assert ckpt.config["model"]["name"] == "deeplab-largefov"
    again = model_from_config(ckpt.config["model"], params=ckpt.params)
    x = rng.standard_normal((1, 21, 30, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
