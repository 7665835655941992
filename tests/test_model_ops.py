"""The model heads' ops (crop-and-add, scale, pool5a, interp) and gradient accumulation and the trainable
transposed convolution layer: kernels equal their NumPy twins, backwards pass central finite
differences in float64, and PyTorch agrees (skipped without torch, failed under CI=true)."""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg import reference as ref
from tinyseg.backend import get_backend
from tinyseg.layers import CropAdd, Interp, TransposedConv2D
from tinyseg.ops.upsampling import bilinear_upsample_weights, upsample_filt
from finite_differences import numerical_grad
from conftest import require

cpu = get_backend("cpu")


def rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- vs the NumPy twins
def test_crop_add_equals_reference_and_its_backward_pads(rng):
    big, small = rand(rng, 2, 5, 7, 3), rand(rng, 2, 4, 6, 3)
    out, cache = ops.crop_add_forward(big, small)
    want, _ = ref.crop_add_forward(big, small)
    np.testing.assert_array_equal(out, want)
    dout = rand(rng, *out.shape)
    dbig, dsmall = ops.crop_add_backward(dout, cache)
    np.testing.assert_array_equal(dbig, ref.crop_add_backward(dout, cache)[0])
    assert not dbig[:, 4:].any() and not dbig[:, :, 6:].any()
    assert dsmall is dout


def test_crop_add_rejects_a_big_map_smaller_than_the_small_one(rng):
    with pytest.raises(ValueError, match="`big`"):
        ops.crop_add_forward(rand(rng, 1, 3, 3, 2), rand(rng, 1, 4, 3, 2))


def test_accumulate_and_scale_equal_reference(rng):
    acc, x = rand(rng, 2, 3, 4, 5), rand(rng, 2, 3, 4, 5)
    want = acc + x
    ops.add_into(acc, x)
    np.testing.assert_array_equal(acc, want)
    out, s = ops.scale_forward(x, 0.01)
    np.testing.assert_allclose(out, ref.scale_forward(x, 0.01)[0], rtol=1e-7)
    np.testing.assert_allclose(ops.scale_backward(x, s), x * np.float32(0.01), rtol=1e-7)


@pytest.mark.parametrize("H,W", [(1, 1), (4, 5), (7, 3)])
def test_avgpool3x3_equals_reference(rng, H, W):
    x = rand(rng, 2, H, W, 3)
    np.testing.assert_allclose(ops.avgpool3x3_forward(x)[0], ref.avgpool3x3_forward(x)[0],
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("factor,h,w,H,W", [(8, 3, 4, 17, 25), (8, 5, 7, 40, 56), (2, 3, 3, 5, 6),
                                            (3, 2, 4, 4, 12), (1, 3, 2, 3, 2)])
def test_interp_equals_reference_forward_and_backward(rng, factor, h, w, H, W):
    x = rand(rng, 2, h, w, 3)
    out, cache = ops.interp_forward(x, factor, (H, W))
    np.testing.assert_allclose(out, ref.interp_forward(x, factor, (H, W))[0], rtol=1e-5, atol=1e-6)
    dout = rand(rng, *out.shape)
    np.testing.assert_allclose(ops.interp_backward(dout, cache), ref.interp_backward(dout, cache),
                               rtol=1e-5, atol=1e-5)


def test_interp_puts_score_i_on_pixel_f_times_i():
    """DeepLab's alignment: a delta score at (1, 2) gives exactly 1 at pixel (8, 16), a tent around it."""
    x = np.zeros((1, 3, 4, 1), np.float32)
    x[0, 1, 2, 0] = 1.0
    out = ops.interp_forward(x, 8, (20, 30))[0][0, :, :, 0]
    assert out[8, 16] == 1.0 and out.max() == 1.0
    np.testing.assert_allclose(out[8, 16 - 7:16 + 8], 1 - np.abs(np.arange(-7, 8)) / 8, rtol=1e-6)
    np.testing.assert_allclose(out[1:16, 16], 1 - np.abs(np.arange(-7, 8)) / 8, rtol=1e-6)
    assert not out[:1].any() and not out[16:].any()     # support rows 1..15, i.e. 8 ± 7


def test_interp_interpolates_linearly_between_scores():
    x = np.array([0.0, 8.0, 4.0], np.float32).reshape(1, 3, 1, 1)
    out = ops.interp_forward(x, 4, (9, 1))[0][0, :, 0, 0]
    np.testing.assert_allclose(out, [0, 2, 4, 6, 8, 7, 6, 5, 4], rtol=1e-6)


def test_interp_rejects_an_output_larger_than_the_map_covers(rng):
    with pytest.raises(ValueError, match="`size`"):
        ops.interp_forward(rand(rng, 1, 2, 2, 1), 8, (17, 16))


# ----------------------------------------------------------------------------- finite differences
def test_crop_add_backward_finite_differences(rng):
    big, small = rng.standard_normal((1, 4, 5, 2)), rng.standard_normal((1, 3, 3, 2))
    out = np.empty(small.shape)
    G = rng.standard_normal(out.shape)

    def forward():
        cpu.crop_add(big, small, out)
        return out

    dbig = np.zeros(big.shape)
    cpu.uncrop(G, dbig)
    np.testing.assert_allclose(dbig, numerical_grad(forward, big, G), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(G, numerical_grad(forward, small, G), rtol=1e-5, atol=1e-7)


def test_avgpool3x3_backward_finite_differences(rng):
    x = rng.standard_normal((1, 4, 3, 2))
    out = np.empty(x.shape)
    G = rng.standard_normal(x.shape)

    def forward():
        cpu.box3x3(x, out)
        return out

    dx = np.empty(x.shape)
    cpu.box3x3(G, dx)                                 # the box filter is its own adjoint
    np.testing.assert_allclose(dx, numerical_grad(forward, x, G), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("factor,H,W", [(3, 7, 8), (4, 9, 4)])
def test_interp_backward_finite_differences(rng, factor, H, W):
    x = rng.standard_normal((1, 3, 2, 2))
    out = np.empty((1, H, W, 2))
    G = rng.standard_normal(out.shape)

    def forward():
        cpu.interp(x, factor, out)
        return out

    dx = np.empty(x.shape)
    cpu.interp_backward(G, factor, dx)
    np.testing.assert_allclose(dx, numerical_grad(forward, x, G), rtol=1e-5, atol=1e-7)


def test_transposed_conv2d_layer_backward_finite_differences(rng):
    """The trainable ×2 layer: dx and dw of ⟨G, layer(x)⟩ against central differences (float64)."""
    x, w = rng.standard_normal((1, 3, 2, 2)), rng.standard_normal((4, 4, 3, 2))
    out = np.empty((1, 6, 4, 3))
    G = rng.standard_normal(out.shape)

    def forward():
        cpu.conv_transpose2d_forward(x, w, 2, out)
        return out

    dx, dw = np.empty(x.shape), np.empty(w.shape)
    cpu.conv_transpose2d_backward_input(G, w, 2, dx)
    cpu.conv_transpose2d_backward_weights(x, G, 2, dw)
    np.testing.assert_allclose(dx, numerical_grad(forward, x, G), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_grad(forward, w, G), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- layers
def test_transposed_conv2d_layer_keeps_nothing_in_test_mode_and_fills_grads_in_training(rng):
    layer = TransposedConv2D("upscore2", bilinear_upsample_weights(2, 3), 2)
    x = rand(rng, 1, 3, 4, 3)
    layer.forward(x, train=False)
    assert layer._cache is None
    out = layer.forward(x, train=True)
    assert out.shape == (1, 6, 8, 3)
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and layer.grads["w"].shape == (4, 4, 3, 3)


def test_head_layers_keep_nothing_in_test_mode(rng):
    fuse, interp = CropAdd("fuse"), Interp("interp", 8)
    fuse.forward(rand(rng, 1, 4, 4, 2), rand(rng, 1, 3, 3, 2), train=False)
    interp.forward(rand(rng, 1, 3, 3, 2), train=False, size=(20, 20))
    assert fuse._cache is None and interp._cache is None


# ----------------------------------------------------------------------------- PyTorch
def test_interp_equals_torch_conv_transpose_with_the_odd_tent_and_align_corners_interpolate(rng):
    torch = require("torch")
    F = torch.nn.functional
    f, C = 8, 3
    x = rand(rng, 1, 4, 5, C)
    out = ops.interp_forward(x, f, (31, 36))[0]
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64)
    tent = torch.tensor(np.repeat(upsample_filt(2 * f - 1)[None, None], C, axis=0))   # (C, 1, 15, 15)
    full = F.conv_transpose2d(xt, tent, stride=f, groups=C)                            # (1, C, 8·3+15, …)
    want = full[:, :, f - 1:f - 1 + 31, f - 1:f - 1 + 36].numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # Between the first and last score it is align_corners bilinear interpolation.
    corners = F.interpolate(xt, size=(f * 3 + 1, f * 4 + 1), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(out[:, :25, :33], corners.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)


def test_avgpool3x3_equals_torch_avg_pool_counting_padding(rng):
    torch = require("torch")
    x = rand(rng, 2, 5, 6, 3)
    want = torch.nn.functional.avg_pool2d(torch.tensor(x.transpose(0, 3, 1, 2)), 3, 1, 1,
                                          count_include_pad=True)
    np.testing.assert_allclose(ops.avgpool3x3_forward(x)[0], want.numpy().transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-6)


def test_transposed_conv2d_layer_equals_torch_conv_transpose2d(rng):
    torch = require("torch")
    w = rand(rng, 4, 4, 3, 2)                                        # (k, k, c_out, c_in)
    layer = TransposedConv2D("upscore2", w, 2)
    x = rand(rng, 1, 3, 5, 2)
    out = layer.forward(x, train=True)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1), dtype=torch.float64, requires_grad=True)  # (ci, co, k, k)
    ot = torch.nn.functional.conv_transpose2d(xt, wt, stride=2)[:, :, 1:7, 1:11]   # TF SAME: crop 1
    np.testing.assert_allclose(out, ot.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    dout = rand(rng, *out.shape)
    dx = layer.backward(dout)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2), dtype=torch.float64))
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads["w"], wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-5, atol=1e-5)
