"""The models against independent PyTorch builds (logits and every parameter gradient), their
registry, gradient announcements, staged initialisation and checkpoint round trips."""
import numpy as np
import pytest

from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint
from tinyseg.models import (MODELS, FCN8s, FCN16s, FCN32s, build_model, copy_params_from_fcn16s,
                            copy_params_from_fcn32s, init_from_checkpoint, model_from_config)
from conftest import require

FCN_NAMES = ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"]
TINY = dict(n_classes=3, width=0.0625, seed=1, dropout=0.0)     # 4..32 channels, fc6/fc7 256


def randomised(model, rng, scale=0.1):
    """Every parameter random (zero fc8/score layers would zero most gradients)."""
    params = {k: (rng.standard_normal(v.shape) * (scale if v.ndim < 4 or v.shape[0] < 3 else 1)
                  * np.sqrt(2.0 / max(1, np.prod(v.shape[:-1])))).astype(np.float32)
              for k, v in model.host_params().items()}
    model.load_params(params)
    return params


@pytest.mark.parametrize("name", FCN_NAMES)
def test_forward_and_every_gradient_equal_an_independent_pytorch_build(name):
    require("torch")
    from torch_nets import assert_equals_torch

    rng = np.random.default_rng(0)
    model = build_model(name, **TINY)
    params = randomised(model, rng)
    assert_equals_torch(name, model, params, rng)


@pytest.mark.parametrize("name", FCN_NAMES)
@pytest.mark.parametrize("H,W", [(37, 45), (1, 1), (33, 64), (375, 500)])
def test_logits_have_the_input_size_for_any_h_w(name, H, W):
    model = build_model(name, n_classes=2, width=1 / 64 if H > 100 else 1 / 32)
    x = np.random.default_rng(0).standard_normal((1, H, W, 3)).astype(np.float32)
    logits = model.forward(x, train=True)
    assert logits.shape == (1, H, W, 2)
    model.backward(np.ones_like(logits))
    assert {k: g.shape for k, g in model.grads.items()} == model.shapes


@pytest.mark.parametrize("name", FCN_NAMES)
def test_grad_ready_announces_every_parameter_once_when_final(name):
    rng = np.random.default_rng(2)
    model = build_model(name, **TINY)
    randomised(model, rng)
    x = rng.standard_normal((1, 37, 45, 3)).astype(np.float32)
    logits = model.forward(x, train=True)
    seen = {}

    def ready(names):
        for k in names:
            assert k not in seen, f"{k} announced twice"
            seen[k] = model.grads[k].copy()             # what it is when announced

    model.backward(rng.standard_normal(logits.shape).astype(np.float32), grad_ready=ready)
    assert set(seen) == set(model.params)
    for k, g in model.grads.items():
        np.testing.assert_array_equal(seen[k], g, err_msg=f"{k} changed after it was announced")
    order = list(seen)
    assert order.index("fc8.w") < order.index("fc7.w") < order.index("conv1_1.w")


def test_registry_names_and_config_dicts_round_trip():
    assert list(MODELS) == ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce", "deeplab-largefov"]
    for name in FCN_NAMES:
        model = build_model(name, **TINY)
        cfg = model.config_dict()
        assert cfg["name"] == name
        again = model_from_config(cfg)
        assert type(again) is type(model) and again.config_dict() == cfg


def test_a_config_without_a_name_is_fcn32s_and_unknown_names_are_refused():
    old = {"n_classes": 2, "width": 0.0625, "dropout": 0.5, "fc6_kernel": 7, "seed": 0}
    assert type(model_from_config(old)) is FCN32s
    with pytest.raises(ValueError, match="unknown model 'fcn4s'"):
        build_model("fcn4s", 2)
    with pytest.raises(ValueError, match="unknown fcn16s config field"):
        model_from_config({"name": "fcn16s", "n_classes": 2, "stride": 4})


def test_same_seed_gives_every_fcn_the_same_backbone_and_zero_skips_bilinear_upscores():
    a, b = build_model("fcn32s", **TINY).host_params(), build_model("fcn8s", **TINY).host_params()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not b["score_pool4.w"].any() and not b["score_pool3.w"].any()
    from tinyseg import bilinear_upsample_weights
    np.testing.assert_array_equal(b["upscore2.w"], bilinear_upsample_weights(2, 3))


def test_staged_fcn16s_starts_with_fcn32s_scores_upsampled_in_two_stages():
    """score_pool4 = 0: FCN-16s's logits are FCN-32s's fc8 scores upsampled ×2 then ×16
    (bilinear), not modified by pool4; and FCN-8s from it likewise (×2, ×2, ×8)."""
    from tinyseg.layers import BilinearUpsample, TransposedConv2D
    from tinyseg import bilinear_upsample_weights

    rng = np.random.default_rng(3)
    fcn32 = build_model("fcn32s", **TINY)
    params32 = randomised(fcn32, rng)
    fcn16 = build_model("fcn16s", **{**TINY, "seed": 9})
    copied = copy_params_from_fcn32s(fcn16, params32)
    assert set(copied) == set(params32)
    assert not fcn16.host_params()["score_pool4.w"].any()
    x = rng.standard_normal((1, 90, 130, 3)).astype(np.float32)
    fc7, _ = fcn32.backbone.forward(fcn32._input(x), False, 0, 0)
    score = fcn32.fc8.forward(fc7)                                        # (1, 3, 5, C)
    up2 = TransposedConv2D("u2", bilinear_upsample_weights(2, 3), 2)
    staged = BilinearUpsample("u16", 16).forward(up2.forward(score))[:, :90, :130]
    logits16 = fcn16.forward(x)
    np.testing.assert_allclose(logits16, staged, rtol=1e-5, atol=1e-6 * np.abs(staged).max())
    # Two bilinear stages differ from one ×32 stage only near each coarse score's kink.
    agree = (logits16.argmax(-1) == fcn32.forward(x).argmax(-1)).mean()
    assert agree > 0.9, agree
    fcn8 = build_model("fcn8s", **TINY)
    copy_params_from_fcn16s(fcn8, fcn16.host_params())
    up2b = TransposedConv2D("u2b", bilinear_upsample_weights(2, 3), 2)
    staged8 = BilinearUpsample("u8", 8).forward(up2b.forward(up2.forward(score)))[:, :90, :130]
    np.testing.assert_allclose(fcn8.forward(x), staged8, rtol=1e-5, atol=1e-6 * np.abs(staged).max())


def test_staged_init_refuses_a_finer_or_different_source():
    fcn8 = build_model("fcn8s", **TINY).host_params()
    with pytest.raises(ValueError, match="score_pool3"):
        copy_params_from_fcn32s(build_model("fcn16s", **TINY), fcn8)
    wide = build_model("fcn32s", **{**TINY, "width": 0.125}).host_params()
    with pytest.raises(ValueError, match="same --width"):
        copy_params_from_fcn32s(build_model("fcn16s", **TINY), wide)


@pytest.mark.parametrize("name", FCN_NAMES)
def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path, name):
    rng = np.random.default_rng(4)
    model = build_model(name, **TINY)
    randomised(model, rng)
    path = tmp_path / "m.h5"
    save_checkpoint(path, model.host_params(), {"m": {}, "v": {}, "step": 0}, {"model": model.config_dict()})
    ckpt = load_checkpoint(path)
    again = model_from_config(ckpt.config["model"], params=ckpt.params)
    assert type(again) is type(model)
    x = rng.standard_normal((1, 21, 30, 3)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), model.forward(x))


def test_init_from_checkpoint_copies_a_saved_fcn32s(tmp_path):
    fcn32 = build_model("fcn32s", **TINY)
    randomised(fcn32, np.random.default_rng(5))
    path = tmp_path / "fcn32s.h5"
    save_checkpoint(path, fcn32.host_params(), {"m": {}, "v": {}, "step": 0}, {"model": fcn32.config_dict()})
    fcn16 = FCN16s(FCN16s.config_class(**{k: v for k, v in TINY.items()}))
    names = init_from_checkpoint(fcn16, str(path))
    assert "fc8.w" in names and "score_pool4.w" not in names
    np.testing.assert_array_equal(fcn16.host_params()["fc8.w"], fcn32.host_params()["fc8.w"])


def test_at_once_scales_the_skips_as_the_reference():
    from tinyseg.models.fcn8s import SCALE_POOL3, SCALE_POOL4
    assert (SCALE_POOL4, SCALE_POOL3) == (0.01, 0.0001)
    names = [l.name for l in build_model("fcn8s-atonce", **TINY).layers]
    assert names.index("scale_pool4") + 1 == names.index("score_pool4")
    assert names.index("scale_pool3") + 1 == names.index("score_pool3")
    assert "scale_pool4" not in [l.name for l in FCN8s(FCN8s.config_class(**TINY)).layers]
