"""FCN-32s: shapes and alignment for any H×W, parameter count, and forward/backward against PyTorch."""
import dataclasses

import numpy as np
import pytest

from tinyseg import ops
from tinyseg.models import FCN32s, FCN32sConfig
from conftest import require

TINY = FCN32sConfig(width=1 / 32, n_classes=3, seed=1)     # 2..16 channels, fc6/fc7 128


@pytest.mark.parametrize("H,W", [(37, 45), (32, 64), (1, 1), (75, 125)])
def test_logits_have_the_input_size_for_any_h_w(H, W):
    model = FCN32s(TINY)
    x = np.random.default_rng(0).standard_normal((2, H, W, 3)).astype(np.float32)
    logits = model.forward(x, train=True)                   # a test-mode forward keeps nothing
    assert logits.shape == (2, H, W, 3)
    assert model.backward(np.ones_like(logits)) is None      # conv1_1 skips the image's gradient
    assert set(model.grads) == set(model.params)


def test_the_posts_size_375x500_is_covered_by_ceil_pooling_then_cropped():
    model = FCN32s(FCN32sConfig(width=1 / 64, n_classes=2))
    x = np.zeros((1, 375, 500, 3), np.float32)
    logits = model.forward(x, train=True)                   # keeps fc8's input for backward
    pool5 = [l for l in model.layers if l.name == "fc8"][0]._cache[0]
    assert pool5.shape[1:3] == (12, 16)                      # ⌈375/32⌉, ⌈500/32⌉
    assert logits.shape == (1, 375, 500, 2)                  # from a 384×512 map, cropped


def test_upsampled_score_is_centred_on_its_32x32_block():
    """Score pixel i sits at upsampled coordinate 32i + 15.5: rows 32i+15 and 32i+16 see it with
    weight 63/64 each, so a delta score at (1, 1) peaks symmetrically inside block [32, 64)."""
    model = FCN32s(TINY)
    up, crop = model.layers[-2], model.layers[-1]
    s = np.zeros((1, 3, 3, 1), np.float32)
    s[0, 1, 1, 0] = 1.0
    out = crop.forward(up.forward(s), size=(90, 90))[0, :, :, 0]
    peak_rows = np.flatnonzero(out.max(axis=1) == out.max())
    np.testing.assert_array_equal(peak_rows, [47, 48])       # 32·1 + 15, 32·1 + 16
    assert out[47, 47] == pytest.approx((63 / 64) ** 2)


def test_vgg16_fcn32s_has_the_vgg16_parameter_count():
    # VGG-16 (ImageNet, 1000 classes) has 138,357,544 parameters; fc8 with 21 classes instead of
    # 1000 removes 4096·979 + 979 of them.
    shapes = FCN32s.param_shapes(FCN32sConfig(n_classes=21))
    assert sum(int(np.prod(s)) for s in shapes.values()) == 138_357_544 - (4096 * 979 + 979)
    assert shapes["fc6.w"] == (7, 7, 512, 4096)


def test_width_scales_channels_and_params_can_be_reloaded():
    model = FCN32s(FCN32sConfig(width=0.25, n_classes=2))
    assert model.shapes["conv1_1.w"] == (3, 3, 3, 16) and model.shapes["fc7.w"] == (1, 1, 1024, 1024)
    params = model.host_params()
    other = FCN32s(FCN32sConfig(width=0.25, n_classes=2, seed=5), params=params)
    for k in params:
        np.testing.assert_array_equal(other.host_params()[k], params[k])


def test_fc8_starts_at_zero_so_every_class_starts_equally_likely():
    model = FCN32s(TINY)
    assert not model.host_params()["fc8.w"].any()
    logits = model.forward(np.ones((1, 33, 40, 3), np.float32))
    assert not logits.any()


def test_wrong_parameter_shape_names_the_parameter():
    with pytest.raises(ValueError, match="conv1_1.w"):
        FCN32s(TINY, params={"conv1_1.w": np.zeros((3, 3, 3, 7), np.float32)})


def with_random_fc8(model, rng):
    params = model.host_params()
    params["fc8.w"] = rng.standard_normal(params["fc8.w"].shape).astype(np.float32) * 0.1
    model.load_params(params)
    return model


def test_dropout_masks_depend_on_the_step_and_repeat_for_the_same_step():
    model = with_random_fc8(FCN32s(TINY), np.random.default_rng(1))
    x = np.random.default_rng(0).standard_normal((1, 40, 40, 3)).astype(np.float32)
    a, b, c = (model.forward(x, train=True, step=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def torch_fcn32s(params, config):
    """The same network in PyTorch (NCHW, ceil pooling, same SAME padding, same crop)."""
    torch = require("torch")
    F = torch.nn.functional
    tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in params.items()}

    def conv(x, name):
        w = tp[f"{name}.w"].permute(3, 2, 0, 1)               # (kh, kw, ci, co) -> (co, ci, kh, kw)
        return F.conv2d(x, w, tp[f"{name}.b"], padding=w.shape[-1] // 2)

    def run(x_nhwc):
        x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).astype(np.float64))
        H, W = x.shape[2:]
        for block, n, _ in [(1, 2, 0), (2, 2, 0), (3, 3, 0), (4, 3, 0), (5, 3, 0)]:
            for i in range(1, n + 1):
                x = F.relu(conv(x, f"conv{block}_{i}"))
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = F.relu(conv(x, "fc6"))
        x = F.relu(conv(x, "fc7"))
        x = conv(x, "fc8")
        C = x.shape[1]
        from tinyseg import bilinear_upsample_weights
        w = torch.tensor(bilinear_upsample_weights(32, C).transpose(3, 2, 0, 1).astype(np.float64))
        up = F.conv_transpose2d(x, w, stride=32)[:, :, 16:, 16:]  # TF SAME: pad (64 − 32) // 2
        return up[:, :, :H, :W]
    return tp, run


def test_forward_and_backward_equal_pytorch():
    torch = require("torch")
    rng = np.random.default_rng(0)
    config = dataclasses.replace(TINY, dropout=0.0)         # train=True keeps activations, no dropout
    model = with_random_fc8(FCN32s(config), rng)              # fc8 = 0 would zero every other grad
    params = model.host_params()
    tp, run = torch_fcn32s(params, config)
    x = rng.standard_normal((1, 45, 70, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(1, 45, 70)).astype(np.int32)
    logits = model.forward(x, train=True)
    ref = run(x)
    np.testing.assert_allclose(logits, ref.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-3, atol=1e-4)
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    ref_loss = torch.nn.functional.cross_entropy(ref, torch.tensor(labels, dtype=torch.long), reduction="sum")
    ref_loss.backward()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-4)
    for name, g in model.grads.items():
        want = tp[name].grad.numpy()
        scale = np.abs(want).max() + 1e-12
        np.testing.assert_allclose(g / scale, want / scale, atol=2e-4, err_msg=name)
