"""Dilated (atrous) convolution: kernels vs the NumPy twin, finite differences, PyTorch, CUDA twin.

Shapes are odd and include maps smaller than the dilated kernel (dilation 12 on a 5×7 map: only
the centre tap ever lands inside the image), dilation 1 (the ordinary convolution, same kernels)
and a workspace of a few rows (many im2col blocks per image).
"""
import numpy as np
import pytest

from tinyseg import ops, reference as ref
from tinyseg.backend import get_backend
from tinyseg.layers import Conv2D
from finite_differences import numerical_grad
from conftest import require
from helpers import rand

cpu = get_backend("cpu")
# (N, H, W, C, F, k, dilation)
CASES = [(1, 7, 9, 3, 4, 3, 2), (2, 5, 7, 2, 3, 3, 12), (1, 9, 8, 3, 2, 3, 1), (1, 11, 13, 2, 3, 3, 4),
         (2, 6, 5, 3, 2, 5, 2), (1, 1, 1, 2, 2, 3, 12), (1, 30, 27, 2, 3, 3, 12)]


@pytest.mark.parametrize("N,H,W,C,F,k,d", CASES)
def test_dilated_conv_matches_reference(rng, N, H, W, C, F, k, d):
    x, w, b = rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F)
    out, cache = ops.conv2d_forward(x, w, b, dilation=d)
    out_ref, cache_ref = ref.conv2d_forward(x, w, b, dilation=d)
    assert out.shape == (N, H, W, F)
    np.testing.assert_allclose(out, out_ref, rtol=1e-4, atol=1e-4)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(dout, cache), ref.conv2d_backward(dout, cache_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 2, 12])
def test_dilated_conv_blocked_im2col_matches_reference(rng, monkeypatch, d):
    """A two-row workspace: 7 blocks per image, dw accumulated across blocks, col2im per block."""
    monkeypatch.setattr(cpu, "CONV_WORKSPACE_BYTES", 2 * 9 * 3 * 3 * 3 * 4)
    x, w, b = rand(rng, 2, 13, 9, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    assert ops.conv_rows_per_block(x.shape, w.shape, cpu.CONV_WORKSPACE_BYTES) == 2
    out, cache = ops.conv2d_forward(x, w, b, dilation=d)
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, d)[0], rtol=1e-4, atol=1e-4)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(dout, cache), ref.conv2d_backward(dout, (x, w, d))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_dilation_one_is_the_plain_convolution(rng):
    x, w, b = rand(rng, 1, 6, 7, 3), rand(rng, 3, 3, 3, 2), rand(rng, 2)
    np.testing.assert_array_equal(ops.conv2d_forward(x, w, b, dilation=1)[0], ops.conv2d_forward(x, w, b)[0])


def test_dilated_tap_reads_the_pixel_d_away():
    """A kernel that is 1 only at its top-left tap copies the input shifted by (d, d)."""
    d = 3
    x = np.arange(1 * 8 * 9 * 1, dtype=np.float32).reshape(1, 8, 9, 1)
    w = np.zeros((3, 3, 1, 1), np.float32)
    w[0, 0] = 1.0
    out, _ = ops.conv2d_forward(x, w, np.zeros(1, np.float32), dilation=d)
    np.testing.assert_array_equal(out[0, d:, d:, 0], x[0, :-d, :-d, 0])
    assert not out[0, :d].any() and not out[0, :, :d].any()


def test_need_dx_false_skips_the_input_gradient_only(rng):
    x, w, b = rand(rng, 1, 7, 6, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    out, cache = ops.conv2d_forward(x, w, b, dilation=2)
    dout = rand(rng, *out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    none, dw2, db2 = ops.conv2d_backward(dout, cache, need_dx=False)
    assert none is None and dx.shape == x.shape
    np.testing.assert_allclose(dw2, dw, rtol=1e-5, atol=1e-5)     # maybe summed per worker
    np.testing.assert_allclose(db2, db, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_dilation_is_named(rng, bad):
    x, w, b = rand(rng, 1, 3, 3, 1), rand(rng, 3, 3, 1, 1), rand(rng, 1)
    with pytest.raises((TypeError, ValueError), match="`dilation`"):
        ops.conv2d_forward(x, w, b, dilation=bad)


# ----------------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("N,H,W,C,F,k,d", [(1, 5, 6, 2, 2, 3, 2), (1, 4, 5, 2, 2, 3, 12), (2, 3, 5, 1, 2, 3, 1)])
@pytest.mark.parametrize("block_rows", [1, 100])
def test_dilated_conv_kernel_backward_finite_differences(rng, N, H, W, C, F, k, d, block_rows):
    """The Numba kernels on float64 arrays: dx, dw, db against central differences."""
    x, w, b = rng.standard_normal((N, H, W, C)), rng.standard_normal((k, k, C, F)), rng.standard_normal(F)
    col = np.empty((min(block_rows, H) * W, k * k * C))
    out = np.empty((N, H, W, F))

    def forward():
        cpu.conv2d_forward(x, w, b, out, col, d)
        return out

    G = rng.standard_normal(out.shape)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    cpu.conv2d_backward(x, w, G, dx, dw, db, col, np.empty((k * k * C, F)), d, True)
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, numerical_grad(forward, wrt, G), rtol=1e-5, atol=1e-7)


def test_dilated_reference_backward_finite_differences(rng):
    """The NumPy twin is itself checked, so the kernel-vs-twin tests compare against a known truth."""
    x, w, b = rng.standard_normal((1, 5, 4, 2)), rng.standard_normal((3, 3, 2, 2)), rng.standard_normal(2)
    G = rng.standard_normal((1, 5, 4, 2))
    dx, dw, db = ref.conv2d_backward(G, (x, w, 2))
    f = lambda: ref.conv2d_forward(x, w, b, 2)[0]     # noqa: E731
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, numerical_grad(f, wrt, G), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("N,H,W,C,F,k,d", CASES)
def test_dilated_conv_equals_torch(rng, N, H, W, C, F, k, d):
    require("torch")
    from torch_nets import assert_conv2d_equals_torch

    assert_conv2d_equals_torch(rng, rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F), d)


# ----------------------------------------------------------------------------- layer
def test_conv2d_layer_with_dilation_and_need_dx(rng):
    x, w, b = rand(rng, 1, 6, 5, 2), rand(rng, 3, 3, 2, 3), rand(rng, 3)
    layer = Conv2D("atrous", w, b, dilation=2, need_dx=False)
    out = layer.forward(x, train=True)
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, 2)[0], rtol=1e-4, atol=1e-4)
    dout = rand(rng, *out.shape)
    assert layer.backward(dout) is None
    _, dw, db = ref.conv2d_backward(dout, (x, w, 2))
    np.testing.assert_allclose(layer.grads["w"], dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["b"], db, rtol=1e-4, atol=1e-4)
    assert "dilation=2" in repr(layer)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_per_worker_im2col_forward_matches_reference(rng, workers):
    """Each worker im2cols and multiplies its own blocks (here of 2 rows) with its own buffer."""
    x, w, b = rand(rng, 2, 9, 7, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    for d in (1, 2, 12):
        out = np.full((2, 9, 7, 4), np.nan, np.float32)
        cpu.conv2d_forward_blocks(x, w, b, out, np.empty((workers, 2 * 7, 27), np.float32), d)
        np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, d)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_per_worker_weight_grad_matches_reference(rng, workers):
    """dw alone, each worker summing its own blocks of 2 rows, then the workers' partial sums."""
    x, w, dout = rand(rng, 2, 9, 7, 3), rand(rng, 3, 3, 3, 4), rand(rng, 2, 9, 7, 4)
    for d in (1, 2, 12):
        dw = np.full_like(w, np.nan)
        P = workers
        cpu.conv2d_weight_grad_blocks(x, dout, dw, np.empty((P, 27, 4), np.float32),
                                      np.empty((P, 2 * 7, 27), np.float32), np.empty((P, 27, 4), np.float32), d)
        np.testing.assert_allclose(dw, ref.conv2d_backward(dout, (x, w, d))[1], rtol=1e-4, atol=1e-4)


def test_need_dx_false_first_layer_uses_per_worker_dw(rng, monkeypatch):
    """conv1_1-like (3 input channels, im2col): without dx, the per-worker dw path runs and agrees."""
    x, w, b = rand(rng, 1, 17, 6, 3), rand(rng, 3, 3, 3, 5), rand(rng, 5)
    out, cache = ops.conv2d_forward(x, w, b)
    dout = rand(rng, *out.shape)
    called = []
    real = cpu.conv2d_weight_grad_blocks
    monkeypatch.setattr(cpu, "conv2d_weight_grad_blocks", lambda *a: (called.append(1), real(*a)))
    monkeypatch.setattr(cpu, "parallel_workers", lambda: 2)
    _, dw, db = ops.conv2d_backward(dout, cache, need_dx=False)
    assert called
    _, dw_ref, db_ref = ref.conv2d_backward(dout, (x, w, 1))
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, db_ref, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- CUDA twin
@pytest.mark.cuda
@pytest.mark.parametrize("N,H,W,k,d", [(1, 3, 4, 3, 2), (2, 2, 3, 3, 12), (1, 4, 3, 3, 1)])
def test_cuda_dilated_conv_matches_cpu(rng, N, H, W, k, d):
    gpu = get_backend("cuda")
    C, F = 2, 3
    x, w, b = rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F)
    out, cache = ops.conv2d_forward(x, w, b, dilation=d)
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b), dilation=d)
    np.testing.assert_allclose(gpu.to_numpy(dout_), out, rtol=1e-5, atol=1e-5)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        assert gpu.owns(got)
        np.testing.assert_allclose(gpu.to_numpy(got), want, rtol=1e-5, atol=1e-5)
    none, dw, _ = ops.conv2d_backward(gpu.asarray(g), dcache, need_dx=False)
    assert none is None
    np.testing.assert_allclose(gpu.to_numpy(dw), ops.conv2d_backward(g, cache)[1], rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_cuda_per_worker_forward_twin_matches_cpu(rng):
    gpu = get_backend("cuda")
    x, w, b = rand(rng, 1, 4, 3, 2), rand(rng, 3, 3, 2, 2), rand(rng, 2)
    out = gpu.empty((1, 4, 3, 2), np.float32)
    gpu.conv2d_forward_blocks(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b), out,
                              gpu.empty((1, 2 * 3, 18), np.float32), 2)
    np.testing.assert_allclose(gpu.to_numpy(out), ref.conv2d_forward(x, w, b, 2)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_cuda_per_worker_weight_grad_twin_matches_cpu(rng):
    gpu = get_backend("cuda")
    x, w, dout = rand(rng, 1, 4, 3, 2), rand(rng, 3, 3, 2, 2), rand(rng, 1, 4, 3, 2)
    dw = gpu.empty(w.shape, np.float32)
    gpu.conv2d_weight_grad_blocks(gpu.asarray(x), gpu.asarray(dout), dw, None,
                                  gpu.empty((1, 2 * 3, 18), np.float32), None, 2)
    np.testing.assert_allclose(gpu.to_numpy(dw), ref.conv2d_backward(dout, (x, w, 2))[1], rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_cuda_dilated_conv_blocked_matches_cpu(rng, monkeypatch):
    gpu = get_backend("cuda")
    x, w, b = rand(rng, 1, 5, 3, 2), rand(rng, 3, 3, 2, 2), rand(rng, 2)
    monkeypatch.setattr(gpu, "CONV_WORKSPACE_BYTES", 2 * 3 * 3 * 3 * 2 * 4)   # two rows a block
    out, cache = ops.conv2d_forward(x, w, b, dilation=2)
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b), dilation=2)
    np.testing.assert_allclose(gpu.to_numpy(dout_), out, rtol=1e-5, atol=1e-5)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        np.testing.assert_allclose(gpu.to_numpy(got), want, rtol=1e-5, atol=1e-5)
