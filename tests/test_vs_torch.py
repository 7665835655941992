"""Layers against PyTorch (an independent implementation), forward and backward; skipped without
torch, failed under CI=true."""
import numpy as np
import pytest

from tinyseg import ops
from conftest import require

torch = require("torch")
F = torch.nn.functional


def nchw(a):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_conv2d_equals_torch(rng, k):
    x = rng.standard_normal((2, 9, 6, 3)).astype(np.float32)
    w = rng.standard_normal((k, k, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out, cache = ops.conv2d_forward(x, w, b)
    xt = nchw(x)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)   # (F, C, kh, kw)
    bt = torch.tensor(b.astype(np.float64), requires_grad=True)
    ot = F.conv2d(xt, wt, bt, padding=k // 2)
    np.testing.assert_allclose(out, nhwc(ot), rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2).astype(np.float64)))
    dx, dw, db = ops.conv2d_backward(dout, cache)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_maxpool_equals_torch_ceil_mode(rng):
    x = rng.standard_normal((2, 7, 5, 3)).astype(np.float32)
    out, cache = ops.maxpool_forward(x)
    xt = nchw(x)
    ot = F.max_pool2d(xt, 2, 2, ceil_mode=True)
    np.testing.assert_array_equal(out, nhwc(ot).astype(np.float32))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2).astype(np.float64)))
    np.testing.assert_allclose(ops.maxpool_backward(dout, cache), nhwc(xt.grad), rtol=1e-6)


@pytest.mark.parametrize("factor", [2, 3, 32])
def test_conv_transpose2d_equals_torch_with_tf_same_crop(rng, factor):
    """torch's conv_transpose2d gives the uncropped (H−1)f + k canvas; TF SAME crops pad=(k−f)//2."""
    k = 2 * factor - factor % 2
    x = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    w = rng.standard_normal((k, k, 3, 2)).astype(np.float32)         # (k, k, Co, Ci)
    out, cache = ops.conv_transpose2d_forward(x, w, factor)
    xt = nchw(x)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)  # (Ci, Co, k, k)
    pad = (k - factor) // 2
    full = F.conv_transpose2d(xt, wt, stride=factor)
    ot = full[:, :, pad:pad + 3 * factor, pad:pad + 2 * factor]
    np.testing.assert_allclose(out, nhwc(ot), rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2).astype(np.float64)))
    dx, dw = ops.conv_transpose2d_backward(dout, cache)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-4)


def test_softmax_cross_entropy_equals_torch(rng):
    logits = rng.standard_normal((2, 4, 5, 3)).astype(np.float32) * 4
    labels = rng.integers(0, 3, size=(2, 4, 5)).astype(np.int32)
    labels[1, 2] = 255
    lt = nchw(logits)
    for reduction in ("sum", "mean"):
        loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction=reduction)
        lt.grad = None
        ref = F.cross_entropy(lt, torch.tensor(labels, dtype=torch.long), ignore_index=255, reduction=reduction)
        ref.backward()
        assert loss == pytest.approx(ref.item(), rel=1e-5)
        np.testing.assert_allclose(dlogits, nhwc(lt.grad), rtol=1e-4, atol=1e-6)
