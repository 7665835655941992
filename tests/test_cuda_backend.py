"""The numba.cuda backend equals the CPU backend, kernel by kernel, on tiny shapes.

Without a GPU these run in numba's CUDA simulator (tests/conftest.py switches it on), where every
CUDA thread is a Python thread: shapes are a few pixels and a few channels on purpose. On a
machine with a GPU the same tests run on the device. Every test goes through the public ops with
device arrays in and compares ``to_numpy`` of the result with the CPU backend on the same input.
"""
import numba
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.backend import backend_for, get_backend
from helpers import rand

pytestmark = pytest.mark.cuda


def host(gpu, a):
    assert gpu.owns(a), f"expected a device array, got {type(a).__name__}"
    return gpu.to_numpy(a)


def assert_close(gpu, got, want, tol=1e-5):
    np.testing.assert_allclose(host(gpu, got), want, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- seam
def test_check_available_passes_in_simulator_or_on_gpu(gpu):
    gpu.check_available()  # does not raise: either a GPU or the simulator is here


def test_check_available_error_names_the_fixes(gpu, monkeypatch):
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)
    monkeypatch.setattr(numba.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"needs an NVIDIA GPU.*--device cpu.*NUMBA_ENABLE_CUDASIM=1"):
        gpu.check_available()


def test_check_available_error_when_gpu_but_no_nvvm(gpu, monkeypatch):
    from numba.cuda.cudadrv import nvvm

    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)
    monkeypatch.setattr(numba.cuda, "is_available", lambda: True)
    monkeypatch.setattr(nvvm, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"found a GPU but not libNVVM.*numba-cuda"):
        gpu.check_available()


def test_get_backend_cuda_raises_without_gpu_or_simulator(monkeypatch):
    import tinyseg.backend as registry

    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)
    monkeypatch.setattr(numba.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU"):
        get_backend("cuda")


def test_get_backend_cuda_error_in_a_fresh_process_without_gpu_or_simulator():
    """The real path, nothing patched: a new interpreter with the simulator off and no GPU."""
    import glob
    import os
    import shutil
    import subprocess
    import sys

    if glob.glob("/dev/nvidia[0-9]*") or shutil.which("nvidia-smi"):
        pytest.skip("a GPU is present: the no-GPU error cannot happen here")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", "from tinyseg.backend import get_backend; "
                           "get_backend('cuda')"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "RuntimeError: the 'cuda' backend needs an NVIDIA GPU" in proc.stderr
    assert "NUMBA_ENABLE_CUDASIM=1" in proc.stderr


def test_backend_for_routes_device_arrays_to_cuda_and_numpy_to_cpu(gpu, rng):
    x = rand(rng, 1, 2, 2, 1)
    assert backend_for(gpu.asarray(x)) is gpu
    assert backend_for(x) is get_backend("cpu")
    assert not gpu.owns(x)


def test_ops_keep_results_on_the_device(gpu, rng):
    out, _ = ops.relu_forward(gpu.asarray(rand(rng, 1, 2, 3, 2)))
    assert gpu.owns(out)


def test_asarray_to_numpy_round_trip_and_zeros(gpu, rng):
    x = rand(rng, 2, 3, 4)
    np.testing.assert_array_equal(gpu.to_numpy(gpu.asarray(x)), x)
    np.testing.assert_array_equal(gpu.to_numpy(gpu.zeros((3, 5), np.float32)), np.zeros((3, 5)))
    gpu.synchronize()


# ----------------------------------------------------------------------------- GEMM
GEMM_CASES = [  # (M, N, K): none a multiple of the 8×8×4 simulator tile
    (1, 1, 1), (13, 11, 9), (7, 5, 17), (9, 3, 2),
]


@pytest.mark.parametrize("M,N,K", GEMM_CASES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy_dot_on_odd_sizes(gpu, rng, M, N, K, trans_a, trans_b):
    a = rand(rng, *((K, M) if trans_a else (M, K)))
    b = rand(rng, *((N, K) if trans_b else (K, N)))
    c = gpu.empty((M, N), np.float32)
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c, trans_a=trans_a, trans_b=trans_b)
    want = np.dot(a.T if trans_a else a, b.T if trans_b else b)
    assert_close(gpu, c, want)


def test_gemm_accumulates_with_beta_one_and_adds_bias(gpu, rng):
    a, b, c0, bias = rand(rng, 10, 7), rand(rng, 7, 9), rand(rng, 10, 9), rand(rng, 9)
    c = gpu.asarray(c0)
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c, beta=1.0, bias=gpu.asarray(bias))
    assert_close(gpu, c, c0 + a @ b + bias)


def test_gemm_beta_zero_overwrites_garbage(gpu, rng):
    a, b = rand(rng, 5, 6), rand(rng, 6, 3)
    c = gpu.asarray(np.full((5, 3), np.nan, np.float32))
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c)
    assert_close(gpu, c, a @ b)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_split_k_equals_unsplit(gpu, rng, beta):
    """Three K slices summed by the second kernel, with accumulation and bias applied once."""
    a, b, c0, bias = rand(rng, 21, 6), rand(rng, 21, 5), rand(rng, 6, 5), rand(rng, 5)
    c = gpu.asarray(c0)
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c, trans_a=True, beta=beta, bias=gpu.asarray(bias),
             split_k=3)
    assert_close(gpu, c, a.T @ b + beta * c0 + bias)


@pytest.mark.parametrize("config,trans_a,trans_b", [("SMALL", False, False), ("LARGE", True, True)])
def test_gemm_gpu_tile_configs_match_numpy(gpu, rng, config, trans_a, trans_b):
    """The GPU's 64×64 (4×4 per thread) and 128×64 (8×4 per thread) tiles, 256 threads, ragged."""
    from tinyseg.backend.cuda import matmul as tiled_gemm

    cfg = getattr(tiled_gemm, config)
    M, N, K = 130, 9, 11
    a = rand(rng, *((K, M) if trans_a else (M, K)))
    b = rand(rng, *((N, K) if trans_b else (K, N)))
    c = gpu.empty((M, N), np.float32)
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c, trans_a=trans_a, trans_b=trans_b, config=cfg)
    assert_close(gpu, c, np.dot(a.T if trans_a else a, b.T if trans_b else b))


# ----------------------------------------------------------------------------- convolution
@pytest.mark.parametrize("N,H,W", [(1, 1, 1), (1, 3, 4), (2, 2, 3)])
@pytest.mark.parametrize("k", [1, 3])
def test_conv2d_matches_cpu(gpu, rng, N, H, W, k):
    C, F = 2, 3
    check_conv2d(gpu, rng, rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F))


def test_conv2d_5x5_kernel_wider_than_image_matches_cpu(gpu, rng):
    check_conv2d(gpu, rng, rand(rng, 1, 2, 3, 1), rand(rng, 5, 5, 1, 2), rand(rng, 2))


def check_conv2d(gpu, rng, x, w, b):
    """conv2d forward and backward on the device equal the CPU's."""
    out, cache = ops.conv2d_forward(x, w, b)
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b))
    assert_close(gpu, dout_, out)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        assert_close(gpu, got, want)


def test_conv2d_blocked_im2col_matches_cpu(gpu, rng, monkeypatch):
    """A two-row workspace: several im2col blocks per image and dw accumulated across them."""
    x, w, b = rand(rng, 2, 5, 3, 2), rand(rng, 3, 3, 2, 2), rand(rng, 2)
    monkeypatch.setattr(gpu, "CONV_WORKSPACE_BYTES", 2 * 3 * 3 * 3 * 2 * 4)
    out, cache = ops.conv2d_forward(x, w, b)
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b))
    assert dcache is not None and ops.conv_rows_per_block(x.shape, w.shape, gpu.CONV_WORKSPACE_BYTES) == 2
    assert_close(gpu, dout_, out)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        assert_close(gpu, got, want)


@pytest.mark.parametrize("N,k,dilation", [(2, 3, 1), (1, 5, 2)])
def test_conv2d_by_kernel_rows_matches_cpu(gpu, rng, N, k, dilation):
    """Weights that outweigh the im2col (as fc6's on a small map) go by kernel rows on both."""
    x, w, b = rand(rng, N, 2, 3, 2), rand(rng, k, k, 2, 7), rand(rng, 7)
    assert ops.conv.by_kernel_rows(x.shape, w.shape)
    out, cache = ops.conv2d_forward(x, w, b, dilation)
    dout_, dcache = ops.conv2d_forward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(b), dilation)
    assert_close(gpu, dout_, out)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(gpu.asarray(g), dcache), ops.conv2d_backward(g, cache)):
        assert_close(gpu, got, want)


# ----------------------------------------------------------------------------- pooling, ReLU
@pytest.mark.parametrize("H,W", [(1, 1), (3, 5), (4, 2)])
def test_maxpool_matches_cpu_including_argmax(gpu, rng, H, W):
    x = rand(rng, 2, H, W, 2)
    out, cache = ops.maxpool_forward(x)
    dout_, dcache = ops.maxpool_forward(gpu.asarray(x))
    np.testing.assert_array_equal(host(gpu, dout_), out)
    np.testing.assert_array_equal(host(gpu, dcache[1]), cache[1])
    g = rand(rng, *out.shape)
    np.testing.assert_array_equal(host(gpu, ops.maxpool_backward(gpu.asarray(g), dcache)),
                                  ops.maxpool_backward(g, cache))


def test_maxpool_ties_route_to_first_pixel(gpu):
    out, cache = ops.maxpool_forward(gpu.asarray(np.ones((1, 2, 2, 1), np.float32)))
    dx = ops.maxpool_backward(gpu.asarray(np.full((1, 1, 1, 1), 3.0, np.float32)), cache)
    np.testing.assert_array_equal(host(gpu, dx)[0, :, :, 0], [[3, 0], [0, 0]])


def test_relu_matches_cpu(gpu, rng):
    x = rand(rng, 2, 3, 5, 2)
    x[0, 0, 0, 0] = 0.0
    out, cache = ops.relu_forward(x)
    dout_, dcache = ops.relu_forward(gpu.asarray(x))
    np.testing.assert_array_equal(host(gpu, dout_), out)
    g = rand(rng, *x.shape)
    np.testing.assert_array_equal(host(gpu, ops.relu_backward(gpu.asarray(g), dcache)),
                                  ops.relu_backward(g, cache))


# ----------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("p,seed", [(0.3, 0), (0.5, 7), (0.9, 2**40 + 3)])
def test_dropout_mask_is_bitwise_equal_to_cpu(gpu, rng, p, seed):
    x = rand(rng, 2, 5, 7, 3)
    out, cache = ops.dropout_forward(x, p, seed)
    dout_, dcache = ops.dropout_forward(gpu.asarray(x), p, seed)
    np.testing.assert_array_equal(host(gpu, dcache[0]), cache[0])
    np.testing.assert_array_equal(host(gpu, dout_), out)
    g = rand(rng, *x.shape)
    np.testing.assert_array_equal(host(gpu, ops.dropout_backward(gpu.asarray(g), dcache)),
                                  ops.dropout_backward(g, cache))


def test_dropout_different_seeds_give_different_masks(gpu, rng):
    x = gpu.asarray(rand(rng, 1, 4, 4, 4))
    m1 = host(gpu, ops.dropout_forward(x, 0.5, 1)[1][0])
    m2 = host(gpu, ops.dropout_forward(x, 0.5, 2)[1][0])
    assert (m1 != m2).any()


# ----------------------------------------------------------------------------- transposed conv
@pytest.mark.parametrize("factor,H,W", [(2, 2, 3), (3, 1, 2)])
def test_conv_transpose2d_matches_cpu(gpu, rng, factor, H, W):
    k = 2 * factor - factor % 2
    x, w = rand(rng, 1, H, W, 2), rand(rng, k, k, 3, 2)
    out, cache = ops.conv_transpose2d_forward(x, w, factor)
    dout_, dcache = ops.conv_transpose2d_forward(gpu.asarray(x), gpu.asarray(w), factor)
    assert_close(gpu, dout_, out)
    g = rand(rng, *out.shape)
    for got, want in zip(ops.conv_transpose2d_backward(gpu.asarray(g), dcache),
                         ops.conv_transpose2d_backward(g, cache)):
        assert_close(gpu, got, want)


@pytest.mark.parametrize("factor,H,W", [(2, 2, 3), (3, 1, 2)])
def test_conv_transpose2d_depthwise_matches_cpu(gpu, rng, factor, H, W):
    k = 2 * factor - factor % 2
    x, kernel = rand(rng, 2, H, W, 2), rand(rng, k, k)
    out, cache = ops.conv_transpose2d_depthwise_forward(x, kernel, factor)
    dout_, dcache = ops.conv_transpose2d_depthwise_forward(gpu.asarray(x), gpu.asarray(kernel), factor)
    assert_close(gpu, dout_, out)
    g = rand(rng, *out.shape)
    assert_close(gpu, ops.conv_transpose2d_depthwise_backward(gpu.asarray(g), dcache),
                 ops.conv_transpose2d_depthwise_backward(g, cache))


# ----------------------------------------------------------------------------- softmax, loss
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_softmax_cross_entropy_matches_cpu_with_ignored_pixels(gpu, rng, reduction):
    logits = rand(rng, 2, 2, 3, 4)
    labels = rng.integers(0, 4, size=(2, 2, 3)).astype(np.int32)
    labels[0, 1, 2] = labels[1, 0, 0] = 255
    loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction)
    dloss, ddlogits = ops.softmax_cross_entropy(gpu.asarray(logits), gpu.asarray(labels), reduction)
    assert dloss == pytest.approx(loss, rel=1e-5)
    assert_close(gpu, ddlogits, dlogits)
    assert not host(gpu, ddlogits)[0, 1, 2].any()


def test_softmax_cross_entropy_is_stable_for_huge_logits(gpu):
    logits = np.array([[[[1e4, -1e4, 0.0]]]], np.float32)
    labels = np.array([[[1]]], np.int32)
    loss, dlogits = ops.softmax_cross_entropy(gpu.asarray(logits), gpu.asarray(labels))
    assert loss == pytest.approx(2e4)
    assert_close(gpu, dlogits, [[[[1.0, -1.0, 0.0]]]])


def test_softmax_matches_cpu(gpu, rng):
    logits = rand(rng, 1, 3, 2, 5)
    assert_close(gpu, ops.softmax(gpu.asarray(logits)), ops.softmax(logits))


# ----------------------------------------------------------------------------- Adam
def test_adam_update_matches_cpu_over_three_steps(gpu, rng):
    param, m, v = rand(rng, 3, 1, 2, 5), np.zeros((3, 1, 2, 5), np.float32), np.zeros((3, 1, 2, 5), np.float32)
    dparam, dm, dv = gpu.asarray(param), gpu.asarray(m), gpu.asarray(v)
    for step in (1, 2, 3):
        grad = rand(rng, *param.shape)
        ops.adam_update(param, grad, m, v, step, lr=1e-2)
        ops.adam_update(dparam, gpu.asarray(grad), dm, dv, step, lr=1e-2)
    assert_close(gpu, dparam, param, tol=1e-6)
    assert_close(gpu, dm, m, tol=1e-6)
    assert_close(gpu, dv, v, tol=1e-6)


# ----------------------------------------------------------------------------- crop
def test_crop_and_uncrop_match_cpu(gpu, rng):
    cpu = get_backend("cpu")
    x = rand(rng, 2, 5, 4, 3)
    np.testing.assert_array_equal(host(gpu, gpu.crop(gpu.asarray(x), 3, 2)), cpu.crop(x, 3, 2))
    d = rand(rng, 2, 3, 2, 3)
    want = np.zeros_like(x)
    cpu.uncrop(d, want)
    dx = gpu.zeros(x.shape, np.float32)
    gpu.uncrop(gpu.asarray(d), dx)
    np.testing.assert_array_equal(host(gpu, dx), want)


# ----------------------------------------------------------------------------- model
def test_fcn32s_training_step_on_cuda_matches_cpu(gpu, rng):
    """A very narrow FCN-32s on a 5×6 image: forward, loss, backward and Adam on both backends."""
    from tinyseg.models import FCN32s, FCN32sConfig
    from tinyseg.training.optim import Adam

    config = FCN32sConfig(n_classes=2, width=1 / 128, dropout=0.5, fc6_kernel=1, seed=3)
    x = rand(rng, 1, 5, 6, 3)
    labels = rng.integers(0, 2, size=(1, 5, 6)).astype(np.int32)
    labels[0, :1] = 255
    results = []
    for backend in ("cpu", "cuda"):
        model = FCN32s(config, backend=backend)
        be = model.backend
        logits = model.forward(x, train=True, step=1)
        loss, dlogits = ops.softmax_cross_entropy(logits, be.asarray(labels))
        model.backward(dlogits)
        grads = {k: be.to_numpy(g) for k, g in model.grads.items()}
        Adam().step(model.params, model.grads)
        results.append((be.to_numpy(logits), loss, grads, model.host_params()))
    (l_cpu, loss_cpu, g_cpu, p_cpu), (l_gpu, loss_gpu, g_gpu, p_gpu) = results
    np.testing.assert_allclose(l_gpu, l_cpu, rtol=1e-4, atol=1e-4)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
    for k in g_cpu:
        np.testing.assert_allclose(g_gpu[k], g_cpu[k], rtol=1e-3, atol=1e-3, err_msg=k)
        np.testing.assert_allclose(p_gpu[k], p_cpu[k], rtol=1e-4, atol=1e-5, err_msg=k)
