"""3×3 max pooling with padding 1, stride 1 or 2 (DeepLab's pools): twin, gradients, PyTorch, CUDA.

The output is ``⌈H/s⌉ × ⌈W/s⌉`` and equals ``torch.nn.functional.max_pool2d(x, 3, s, 1)``; ties
go to the first maximum of the window in row-major order (PyTorch's choice), and backward sums
the ``dout`` of every overlapping window a pixel won.
"""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.backend import get_backend
from tinyseg.layers import MaxPool3x3
from finite_differences import numerical_grad
from conftest import require
from helpers import assert_maxpool3x3_equals_twin, rand

cpu = get_backend("cpu")
SHAPES = [(1, 1, 1), (1, 2, 3), (2, 5, 7), (1, 6, 4), (2, 9, 8), (1, 47, 63)]   # (N, H, W)


@pytest.mark.parametrize("N,H,W", SHAPES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("C", [1, 3])
def test_pool3x3_matches_reference(rng, N, H, W, stride, C):
    assert_maxpool3x3_equals_twin(rand(rng, N, H, W, C), stride, lambda shape: rand(rng, *shape))


@pytest.mark.parametrize("stride", [1, 2])
def test_pool3x3_ties_go_to_the_first_pixel_in_row_major_order(stride):
    """A constant image: every window's winner is its top-left inside pixel."""
    x = np.ones((1, 4, 5, 1), np.float32)
    out, cache = ops.maxpool3x3_forward(x, stride)
    dx = ops.maxpool3x3_backward(np.ones_like(out), cache)
    want = np.zeros((4, 5), np.float32)
    for yo in range(out.shape[1]):
        for xo in range(out.shape[2]):
            want[max(stride * yo - 1, 0), max(stride * xo - 1, 0)] += 1
    np.testing.assert_array_equal(dx[0, :, :, 0], want)


def test_pool3x3_stride1_keeps_the_size_and_overlapping_windows_add_up():
    x = np.zeros((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = 5.0                               # the centre wins all 9 windows
    out, cache = ops.maxpool3x3_forward(x, 1)
    np.testing.assert_array_equal(out[0, :, :, 0], np.full((3, 3), 5.0))
    dx = ops.maxpool3x3_backward(np.full_like(out, 2.0), cache)
    assert dx[0, 1, 1, 0] == 18.0 and dx.sum() == 18.0


@pytest.mark.parametrize("bad", [0, 3, 1.0, True])
def test_bad_stride_is_named(bad):
    with pytest.raises(ValueError, match="`stride`"):
        ops.maxpool3x3_forward(np.zeros((1, 3, 3, 1), np.float32), bad)


# ----------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("H,W", [(5, 3), (4, 6)])
def test_pool3x3_backward_finite_differences(rng, stride, H, W):
    """Float64 through the Numba kernels; distinct values, so the max is differentiable."""
    x = rng.permutation(2 * H * W * 2).reshape(2, H, W, 2).astype(np.float64) * 0.1
    out = np.empty((2, -(-H // stride), -(-W // stride), 2))
    argmax = np.empty(out.shape, np.int8)

    def forward():
        cpu.maxpool3x3_forward(x, stride, out, argmax)
        return out.copy()

    G = rng.standard_normal(out.shape)
    forward()
    dx = np.empty_like(x)
    cpu.maxpool3x3_backward(G, argmax, stride, dx)
    eps = 1e-6                                  # values are 0.1 apart: the winners never change
    numeric = numerical_grad(forward, x, G, eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("N,H,W", SHAPES)
@pytest.mark.parametrize("stride", [1, 2])
def test_pool3x3_equals_torch(rng, N, H, W, stride):
    torch = require("torch")
    x = rand(rng, N, H, W, 3)
    x[..., 0] = np.round(x[..., 0])                   # many ties in channel 0
    out, cache = ops.maxpool3x3_forward(x, stride)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    ot = torch.nn.functional.max_pool2d(xt, 3, stride, 1)
    np.testing.assert_array_equal(out, ot.detach().numpy().transpose(0, 2, 3, 1))
    dout = rand(rng, *out.shape)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(ops.maxpool3x3_backward(dout, cache),
                               xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


def test_pool3x3_nan_wins_as_in_torch():
    torch = require("torch")
    x = np.arange(1 * 4 * 5 * 1, dtype=np.float32).reshape(1, 4, 5, 1)
    x[0, 1, 1, 0] = np.nan
    x[0, 2, 3, 0] = np.nan
    for stride in (1, 2):
        out, cache = ops.maxpool3x3_forward(x, stride)
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
        ot, idx = torch.nn.functional.max_pool2d(xt, 3, stride, 1, return_indices=True)
        np.testing.assert_array_equal(out, ot.numpy().transpose(0, 2, 3, 1))
        # torch's flat index y·W + x of the winner vs our 3·dy + dx
        _, argmax, _ = cache
        Ho, Wo = out.shape[1:3]
        yo, xo = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
        ours = (stride * yo - 1 + argmax[0, :, :, 0] // 3) * 5 + stride * xo - 1 + argmax[0, :, :, 0] % 3
        np.testing.assert_array_equal(ours, idx.numpy()[0, 0])


# ----------------------------------------------------------------------------- layer
def test_maxpool3x3_layer(rng):
    x = rand(rng, 1, 7, 6, 2)
    layer = MaxPool3x3("pool4", stride=1)
    out = layer.forward(x, train=True)
    assert out.shape == x.shape
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.sum() == pytest.approx(out.size)
    with pytest.raises(ValueError, match="`stride`"):
        MaxPool3x3("bad", stride=3)


# ----------------------------------------------------------------------------- CUDA twin
@pytest.mark.cuda
@pytest.mark.parametrize("H,W", [(1, 1), (3, 5), (4, 2)])
@pytest.mark.parametrize("stride", [1, 2])
def test_cuda_pool3x3_matches_cpu_including_argmax(rng, H, W, stride):
    gpu = get_backend("cuda")
    x = rand(rng, 2, H, W, 2)
    x[..., 0] = np.round(x[..., 0])                   # ties
    x[0, 0, 0, 1] = np.nan
    out, cache = ops.maxpool3x3_forward(x, stride)
    dout_, dcache = ops.maxpool3x3_forward(gpu.asarray(x), stride)
    np.testing.assert_array_equal(gpu.to_numpy(dout_), out)
    np.testing.assert_array_equal(gpu.to_numpy(dcache[1]), cache[1])
    g = rand(rng, *out.shape)
    np.testing.assert_allclose(gpu.to_numpy(ops.maxpool3x3_backward(gpu.asarray(g), dcache)),
                               ops.maxpool3x3_backward(g, cache), rtol=1e-6, atol=1e-6)
