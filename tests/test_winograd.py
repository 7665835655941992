"""Winograd F(2×2, 3×3) convolution: kernels vs the NumPy twins and im2col, any dilation, backward.

The Winograd path must compute the same convolution as im2col (to float32 rounding): forward,
``dx`` through the rotated, channel-swapped filters and ``dw`` through the transform domain, on
odd sizes, dilations 1, 2, 12 (maps smaller than the dilated kernel included), blocks of one
tile row and several workers.
"""
import numpy as np
import pytest

from tinyseg import ops, reference as ref
from tinyseg.backend import get_backend
from tinyseg.backend.cpu import winograd as cpu_winograd
from tinyseg.ops import conv as conv_ops
from finite_differences import numerical_grad
from conftest import require
from helpers import rand

cpu = get_backend("cpu")
# (N, H, W, C, F, dilation)
CASES = [(1, 5, 7, 3, 4, 1), (2, 6, 9, 2, 3, 1), (1, 1, 1, 2, 2, 1), (1, 7, 9, 3, 2, 2),
         (1, 5, 7, 2, 3, 12), (1, 30, 27, 2, 3, 12), (1, 13, 11, 4, 5, 3), (2, 4, 4, 1, 1, 2)]


def test_reference_winograd_equals_the_direct_convolution(rng):
    """The twin itself, in float64, against the definition (sum over taps) for several dilations."""
    for N, H, W, C, F, d in CASES:
        x, w, b = (rng.standard_normal(s) for s in ((N, H, W, C), (3, 3, C, F), (F,)))
        np.testing.assert_allclose(ref.conv2d_winograd_forward(x, w, b, d)[0],
                                   ref.conv2d_forward(x, w, b, d)[0], rtol=1e-12, atol=1e-12)


def test_reference_winograd_weight_grad_equals_the_direct_one(rng):
    for N, H, W, C, F, d in CASES:
        x, w, g = (rng.standard_normal(s) for s in ((N, H, W, C), (3, 3, C, F), (N, H, W, F)))
        np.testing.assert_allclose(ref.conv2d_winograd_weight_grad(g, x, w.shape, d),
                                   ref.conv2d_backward(g, (x, w, d))[1], rtol=1e-10, atol=1e-10)


def test_filter_transform_matches_reference(rng):
    w = rand(rng, 3, 3, 4, 5)
    U = np.empty((16, 4, 5), np.float32)
    cpu.winograd_weights(w, U)
    np.testing.assert_allclose(U, ref.winograd_weights(w).reshape(16, 4, 5), rtol=1e-6, atol=1e-6)
    # the bank rotated 180° with its channels swapped: read from U as U[FLIPPED_XI[ξ]]ᵀ
    flipped = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
    np.testing.assert_allclose(U[cpu_winograd.FLIPPED_XI].transpose(0, 2, 1),
                               ref.winograd_weights(flipped).reshape(16, 5, 4), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("N,H,W,C,F,d", CASES)
def test_winograd_op_matches_twin_and_im2col(rng, N, H, W, C, F, d):
    x, w, b = rand(rng, N, H, W, C), rand(rng, 3, 3, C, F), rand(rng, F)
    out, cache = ops.conv2d_forward(x, w, b, dilation=d, algorithm="winograd")
    np.testing.assert_allclose(out, ref.conv2d_winograd_forward(x, w, b, d)[0], rtol=1e-5, atol=1e-5)
    out_im2col, cache_im2col = ops.conv2d_forward(x, w, b, dilation=d, algorithm="im2col")
    np.testing.assert_allclose(out, out_im2col, rtol=1e-5, atol=1e-5)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(dout, cache), ref.conv2d_backward(dout, (x, w, d))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 2, 12])
def test_winograd_one_tile_row_per_block(rng, monkeypatch, d):
    """A workspace of one tile row: many blocks per image, each transformed and multiplied alone."""
    monkeypatch.setattr(conv_ops, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(cpu, "WINOGRAD_BLOCK_BYTES", 1)
    x, w, b = rand(rng, 2, 13, 9, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    rows = conv_ops.winograd_rows_per_block(x.shape, 4, d, cpu.CONV_WORKSPACE_BYTES, cpu.WINOGRAD_BLOCK_BYTES)
    assert rows == 1
    out, cache = ops.conv2d_forward(x, w, b, dilation=d, algorithm="winograd")
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, d)[0], rtol=1e-5, atol=1e-5)
    dout = rand(rng, *out.shape)
    dx = ops.conv2d_backward(dout, cache)[0]
    np.testing.assert_allclose(dx, ref.conv2d_backward(dout, (x, w, d))[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d,flip", [(1, False), (2, False), (1, True), (3, True)])
def test_one_block_for_the_whole_batch_equals_blocks_per_worker(rng, d, flip):
    """``conv2d_winograd_one_block`` (the workers split the 16 products) gives the same bits as
    ``conv2d_winograd`` with a block per worker, forward and flipped (the backward's dx)."""
    N, H, W, C, F = 2, 7, 9, 5, 6
    x, w, b = rand(rng, N, H, W, C if not flip else F), rand(rng, 3, 3, C, F), rand(rng, F)
    U = np.empty((16, C, F), np.float32)
    cpu.winograd_weights(w, U)
    c_out = C if flip else F
    tiles = conv_ops.winograd_batch_tiles(x.shape, d)
    bias = np.zeros(C, np.float32) if flip else b             # the backward's dx has no bias
    out = np.empty((N, H, W, c_out), np.float32)
    cpu.conv2d_winograd_one_block(x, U, bias, d, out,
                                  np.empty((1, 16, tiles, x.shape[3]), np.float32),
                                  np.empty((1, 16, tiles, c_out), np.float32), flip)
    rows = 2                                           # two workers, several blocks each
    T = rows * conv_ops.winograd_tiles(W, d)
    want = np.empty_like(out)
    cpu.conv2d_winograd(x, U, bias, d, want,
                        np.empty((2, 16, T, x.shape[3]), np.float32), np.empty((2, 16, T, c_out), np.float32), flip)
    np.testing.assert_array_equal(out, want)
    if not flip:
        np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, d)[0], rtol=1e-5, atol=1e-5)


def test_only_a_batch_of_fewer_tiles_than_one_block_goes_as_one_block():
    one_block = conv_ops.winograd_one_block
    assert one_block((1, 14, 14, 512), 512, 1, 2, cpu.CONV_WORKSPACE_BYTES)       # conv5 at 224×224: 49 tiles
    assert not one_block((1, 14, 14, 512), 512, 1, 1, cpu.CONV_WORKSPACE_BYTES)   # one worker: blocks as ever
    assert not one_block((1, 24, 32, 512), 512, 1, 2, cpu.CONV_WORKSPACE_BYTES)   # conv5 at 375×500: 192
    assert not one_block((1, 14, 14, 512), 512, 1, 2, 16 * 49 * 512 * 4 - 1)     # V over the workspace


def test_winograd_tiles_cover_every_output_once():
    """Tile anchors: rows y0 with y0 mod 2d < d; each tile covers y0 and y0 + d."""
    for size in range(1, 40):
        for d in (1, 2, 3, 12):
            anchors = [y for y in range(size) if y % (2 * d) < d]
            assert conv_ops.winograd_tiles(size, d) == len(anchors)
            covered = sorted(y + k for y in anchors for k in (0, d) if y + k < size)
            assert covered == list(range(size))


def test_auto_picks_winograd_for_wide_3x3_only(rng, monkeypatch):
    calls = []
    monkeypatch.setattr(cpu, "conv2d_winograd", lambda *a: calls.append("winograd"))
    monkeypatch.setattr(cpu, "conv2d_winograd_one_block", lambda *a: calls.append("winograd"))
    monkeypatch.setattr(cpu, "conv2d_forward", lambda *a: calls.append("im2col"))
    monkeypatch.setattr(cpu, "conv2d_forward_blocks", lambda *a: calls.append("im2col"))
    wide = conv_ops.WINOGRAD_MIN_CHANNELS
    for k, c_in, c_out in [(3, wide, wide), (3, 3, wide), (1, wide, wide), (7, wide, wide)]:
        ops.conv2d_forward(rand(rng, 1, 4, 5, c_in), rand(rng, k, k, c_in, c_out), rand(rng, c_out))
    assert calls == ["winograd", "im2col", "im2col", "im2col"]


def test_bad_algorithm_is_named(rng):
    x, w, b = rand(rng, 1, 3, 3, 1), rand(rng, 3, 3, 1, 1), rand(rng, 1)
    with pytest.raises(ValueError, match="`algorithm`"):
        ops.conv2d_forward(x, w, b, algorithm="fft")
    with pytest.raises(ValueError, match="3×3"):
        ops.conv2d_forward(x, rand(rng, 5, 5, 1, 1), b, algorithm="winograd")


# ----------------------------------------------------------------------------- finite differences
def test_winograd_dx_finite_differences(rng):
    """dx by the flipped Winograd kernels (float64) against central differences of the forward."""
    N, H, W, C, F, d, eps = 1, 5, 6, 2, 3, 2, 1e-6
    x, w, b = rng.standard_normal((N, H, W, C)), rng.standard_normal((3, 3, C, F)), rng.standard_normal(F)
    tw = conv_ops.winograd_tiles(W, d)

    def forward():
        U = np.empty((16, C, F))
        cpu.winograd_weights(w, U)
        out = np.empty((N, H, W, F))
        cpu.conv2d_winograd(x, U, b, d, out, np.empty((1, 16, tw, C)), np.empty((1, 16, tw, F)))
        return out

    G = rng.standard_normal((N, H, W, F))
    U = np.empty((16, C, F))
    cpu.winograd_weights(w, U)
    dx = np.empty_like(x)
    cpu.conv2d_winograd(G, U, np.zeros(C), d, dx, np.empty((2, 16, tw, F)), np.empty((2, 16, tw, C)),
                        flip=True)
    numeric = numerical_grad(forward, x, G, eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("d", [1, 3])
def test_flip_reads_the_rotated_bank_from_the_forward_transform(rng, d):
    """conv with ``flip`` (U[FLIPPED_XI[ξ]]ᵀ) = conv with the rotated bank's own transform."""
    N, H, W, C, F = 2, 7, 9, 3, 5
    w, dout = rng.standard_normal((3, 3, C, F)), rng.standard_normal((N, H, W, F))
    tw = conv_ops.winograd_tiles(W, d)
    U = np.empty((16, C, F))
    cpu.winograd_weights(w, U)
    flipped_bank = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))     # rotated, swapped
    Uf = ref.winograd_weights(flipped_bank).reshape(16, F, C)              # its own transform
    np.testing.assert_allclose(Uf, U[cpu_winograd.FLIPPED_XI].transpose(0, 2, 1), rtol=1e-13, atol=1e-14)
    flipped, direct = np.empty((N, H, W, C)), np.empty((N, H, W, C))
    work = (np.empty((1, 16, tw * H, F)), np.empty((1, 16, tw * H, C)))
    cpu.conv2d_winograd(dout, U, np.zeros(C), d, flipped, *work, flip=True)
    cpu.conv2d_winograd(dout, Uf, np.zeros(C), d, direct, *work)
    np.testing.assert_allclose(flipped, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d,workers", [(1, 1), (2, 2), (12, 3)])
def test_winograd_dw_finite_differences(rng, d, workers):
    """dw by the transform-domain kernels (float64, several workers) against central differences."""
    N, H, W, C, F, eps = 2, 5, 4, 2, 3, 1e-6
    x, w, b = rng.standard_normal((N, H, W, C)), rng.standard_normal((3, 3, C, F)), rng.standard_normal(F)
    tw = conv_ops.winograd_tiles(W, d)

    def forward():
        out = np.empty((N, H, W, F))
        cpu.conv2d_forward(x, w, b, out, np.empty((H * W, 9 * C)), d)      # im2col, one block
        return out

    G = rng.standard_normal((N, H, W, F))
    dU = np.empty((workers, 16, C, F))
    cpu.winograd_weight_grad(x, G, d, dU, np.empty((workers, 16, tw, C)), np.empty((workers, 16, tw, F)),
                             np.empty((workers, C, F)))
    dw = np.empty_like(w)
    cpu.winograd_filter_grad(dU, dw)
    numeric = numerical_grad(forward, w, G, eps)
    np.testing.assert_allclose(dw, numeric, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("d", [1, 2, 12])
def test_winograd_equals_torch_on_a_vgg_like_layer(rng, d):
    require("torch")
    from torch_nets import assert_conv2d_equals_torch

    x, w, b = rand(rng, 1, 15, 13, 32), rand(rng, 3, 3, 32, 24) * 0.1, rand(rng, 24)
    assert_conv2d_equals_torch(rng, x, w, b, d, dw_atol=2e-4)      # 3×3 at any d: auto picks Winograd


# ----------------------------------------------------------------------------- CUDA twin
@pytest.mark.cuda
@pytest.mark.parametrize("N,H,W,C,F,d", [(1, 3, 5, 2, 3, 1), (2, 4, 3, 2, 2, 2), (1, 3, 2, 1, 2, 12)])
def test_cuda_winograd_matches_cpu(rng, N, H, W, C, F, d):
    gpu = get_backend("cuda")
    x, w, b = rand(rng, N, H, W, C), rand(rng, 3, 3, C, F), rand(rng, F)
    out, cache = ops.conv2d_forward(x, w, b, dilation=d, algorithm="winograd")
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b), dilation=d,
                                       algorithm="winograd")
    np.testing.assert_allclose(gpu.to_numpy(dout_), out, rtol=1e-5, atol=1e-5)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        np.testing.assert_allclose(gpu.to_numpy(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_cuda_one_block_matches_cpu(rng):
    """The CUDA backend's ``conv2d_winograd_one_block`` (V, M holding every tile) equals the CPU's."""
    gpu = get_backend("cuda")
    N, H, W, C, F, d = 2, 5, 4, 2, 3, 1
    x, w, b = rand(rng, N, H, W, C), rand(rng, 3, 3, C, F), rand(rng, F)
    U = np.empty((16, C, F), np.float32)
    cpu.winograd_weights(w, U)
    tiles = N * conv_ops.winograd_tiles(H, d) * conv_ops.winograd_tiles(W, d)
    want = np.empty((N, H, W, F), np.float32)
    cpu.conv2d_winograd_one_block(x, U, b, d, want, np.empty((1, 16, tiles, C), np.float32),
                                  np.empty((1, 16, tiles, F), np.float32))
    out = gpu.empty((N, H, W, F), np.float32)
    gpu.conv2d_winograd_one_block(gpu.asarray(x), gpu.asarray(U), gpu.asarray(b), d, out,
                                  gpu.empty((1, 16, tiles, C), np.float32), gpu.empty((1, 16, tiles, F), np.float32))
    np.testing.assert_allclose(gpu.to_numpy(out), want, rtol=1e-5, atol=1e-5)
