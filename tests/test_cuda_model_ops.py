"""The model heads' CUDA kernels equal the CPU's on tiny shapes (numba's simulator without a GPU)."""
import numpy as np
import pytest

from tinyseg import ops
from helpers import rand

pytestmark = pytest.mark.cuda


def close(gpu, got, want):
    assert gpu.owns(got)
    np.testing.assert_allclose(gpu.to_numpy(got), want, rtol=1e-5, atol=1e-6)


def test_crop_add_and_its_backward_match_cpu(gpu, rng):
    big, small = rand(rng, 1, 4, 5, 2), rand(rng, 1, 3, 4, 2)
    out, cache = ops.crop_add_forward(gpu.asarray(big), gpu.asarray(small))
    want, cpu_cache = ops.crop_add_forward(big, small)
    close(gpu, out, want)
    dout = rand(rng, *want.shape)
    dbig, _ = ops.crop_add_backward(gpu.asarray(dout), cache)
    close(gpu, dbig, ops.crop_add_backward(dout, cpu_cache)[0])


def test_accumulate_and_scale_match_cpu(gpu, rng):
    a, b = rand(rng, 1, 2, 3, 2), rand(rng, 1, 2, 3, 2)
    acc = gpu.asarray(a)
    ops.add_into(acc, gpu.asarray(b))
    close(gpu, acc, a + b)
    close(gpu, ops.scale_forward(gpu.asarray(a), 1e-4)[0], ops.scale_forward(a, 1e-4)[0])


def test_avgpool3x3_matches_cpu(gpu, rng):
    x = rand(rng, 1, 3, 4, 2)
    close(gpu, ops.avgpool3x3_forward(gpu.asarray(x))[0], ops.avgpool3x3_forward(x)[0])


@pytest.mark.parametrize("factor,h,w,H,W", [(4, 2, 2, 6, 7), (3, 2, 3, 5, 9)])
def test_interp_and_its_backward_match_cpu(gpu, rng, factor, h, w, H, W):
    x = rand(rng, 1, h, w, 2)
    out, cache = ops.interp_forward(gpu.asarray(x), factor, (H, W))
    want, cpu_cache = ops.interp_forward(x, factor, (H, W))
    close(gpu, out, want)
    dout = rand(rng, 1, H, W, 2)
    close(gpu, ops.interp_backward(gpu.asarray(dout), cache), ops.interp_backward(dout, cpu_cache))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn8s-atonce", "deeplab-largefov"])
def test_whole_model_forward_and_backward_on_cuda_match_cpu(gpu, rng, name):
    """A very narrow model on a 9×10 image: every head layer and the taps run on the device."""
    from tinyseg import ops
    from tinyseg.models import build_model

    extra = {"fc6_kernel": 1} if name.startswith("fcn") else {}
    x = rand(rng, 1, 9, 10, 3)
    labels = rng.integers(0, 2, size=(1, 9, 10)).astype(np.int32)
    results = []
    for backend in ("cpu", "cuda"):
        model = build_model(name, 2, width=1 / 128, seed=3, dropout=0.0, backend=backend, **extra)
        params = {k: (np.random.default_rng(1).standard_normal(v.shape) * 0.5).astype(np.float32)
                  for k, v in model.host_params().items()}
        model.load_params(params)
        be = model.backend
        logits = model.forward(x, train=True)
        _, dlogits = ops.softmax_cross_entropy(logits, be.asarray(labels))
        model.backward(dlogits)
        results.append((be.to_numpy(logits), {k: be.to_numpy(g) for k, g in model.grads.items()}))
    (l_cpu, g_cpu), (l_gpu, g_gpu) = results
    np.testing.assert_allclose(l_gpu, l_cpu, rtol=1e-4, atol=1e-4)
    for k in g_cpu:
        scale = np.abs(g_cpu[k]).max() + 1e-6
        np.testing.assert_allclose(g_gpu[k] / scale, g_cpu[k] / scale, atol=1e-3, err_msg=k)
