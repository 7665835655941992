"""Independent PyTorch builds of tinyseg's models (NCHW), for the whole-network tests and the
training benchmarks' peer networks.

Written from the papers' descriptions with PyTorch's own layers — ``F.conv2d`` (padding,
dilation), ``F.max_pool2d`` (ceil mode for FCN's 2×2, padding 1 for DeepLab's 3×3),
``F.avg_pool2d`` (pool5a, padding counted), fc6 7×7 (FCN) or 3×3 dilation 12 (DeepLab), optional
dropout after fc6/fc7 in training, and the heads: FCN's fixed bilinear
``conv_transpose2d(groups=C)`` ×32/×16/×8 with the TF-SAME crop ``(k − f) // 2``, the learnt ×2
transposed convolutions (4×4, no bias, crop 1) and crop-and-add fusions, DeepLab's ×8
interpolation as a depthwise transposed convolution with the 15×15 tent cropped by 7. No code is
shared with tinyseg.

- :func:`make_net` is the network over parameters already in PyTorch's layouts;
- :class:`TorchNet` (float64) takes parameter values copied from tinyseg's layouts, and
  :func:`assert_equals_torch` is the comparison the model tests run with it;
- :func:`build` gives a float32 network with He-initialised parameters of tinyseg's shapes, for
  the benchmarks (values differ from tinyseg's; speed does not depend on them).

Imports only torch and numpy at module level (``tinyseg`` and ``pytest`` only inside
:func:`assert_equals_torch`), so a benchmark worker process carries neither Numba nor tinyseg.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

BLOCKS = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]


def tent(k: int) -> np.ndarray:
    """The 2-D bilinear kernel of size k (the FCN authors' ``upsample_filt``), written out."""
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    t = 1 - np.abs(np.arange(k) - c) / f
    return np.outer(t, t)


def to_torch_layout(key: str, v):
    """A tinyseg parameter in PyTorch's layout: conv ``(kh, kw, ci, co) -> (co, ci, kh, kw)``,
    learnt upsampling ``(k, k, co, ci) -> (ci, co, k, k)`` (both ``permute(3, 2, 0, 1)``), bias as is."""
    return v if key.endswith(".b") else v.permute(3, 2, 0, 1)


def make_net(name: str, p: dict, n_classes: int, dtype=torch.float32, device="cpu", dropout: float = 0.0):
    """``net(x (N, 3, H, W), train) -> logits (N, C, H, W)`` over ``p`` (name -> tensor, PyTorch
    layouts); ``dropout`` is applied after fc6 and fc7 when ``train``."""
    deeplab = name == "deeplab-largefov"
    C = n_classes

    def depthwise(k):
        return torch.tensor(np.repeat(tent(k)[None, None], C, axis=0), dtype=dtype, device=device)

    fixed = {f: depthwise(2 * f - f % 2) for f in (8, 16, 32)}     # (C, 1, k, k)
    interp = depthwise(15)

    def conv(x, layer, dilation=1):
        w = p[f"{layer}.w"]
        return F.conv2d(x, w, p[f"{layer}.b"], padding=dilation * (w.shape[-1] // 2), dilation=dilation)

    def up_fixed(x, f):
        """Bilinear transposed conv ×f per channel, TensorFlow-SAME crop (k − f) // 2."""
        k, h, w = 2 * f - f % 2, x.shape[2], x.shape[3]
        pad = (k - f) // 2
        return F.conv_transpose2d(x, fixed[f], stride=f, groups=C)[:, :, pad:pad + f * h, pad:pad + f * w]

    def up_learnt(x, layer):
        """Trainable ×2 transposed conv (4×4, no bias), TF-SAME crop 1."""
        h, w = x.shape[2:]
        return F.conv_transpose2d(x, p[f"{layer}.w"], stride=2)[:, :, 1:1 + 2 * h, 1:1 + 2 * w]

    def net(x, train):
        H, W = x.shape[2:]
        taps = {}
        for block, n in BLOCKS:
            for i in range(1, n + 1):
                x = F.relu(conv(x, f"conv{block}_{i}", 2 if deeplab and block == 5 else 1))
            x = F.max_pool2d(x, 3, 2 if block <= 3 else 1, 1) if deeplab else F.max_pool2d(x, 2, 2, ceil_mode=True)
            taps[block] = x
        if deeplab:
            x = F.avg_pool2d(x, 3, 1, 1)                            # pool5a, padding counted
        x = F.relu(conv(x, "fc6", 12 if deeplab else 1))
        if dropout:
            x = F.dropout(x, dropout, training=train)
        x = F.relu(conv(x, "fc7"))
        if dropout:
            x = F.dropout(x, dropout, training=train)
        score = conv(x, "fc8")
        if deeplab:
            return F.conv_transpose2d(score, interp, stride=8, groups=C)[:, :, 7:7 + H, 7:7 + W]
        if name == "fcn32s":
            return up_fixed(score, 32)[:, :, :H, :W]
        at_once = name == "fcn8s-atonce"
        s4 = conv(taps[4] * 0.01 if at_once else taps[4], "score_pool4")
        fuse = up_learnt(score, "upscore2")[:, :, :s4.shape[2], :s4.shape[3]] + s4
        if name == "fcn16s":
            return up_fixed(fuse, 16)[:, :, :H, :W]
        s3 = conv(taps[3] * 0.0001 if at_once else taps[3], "score_pool3")
        fuse = up_learnt(fuse, "upscore_pool4")[:, :, :s3.shape[2], :s3.shape[3]] + s3
        return up_fixed(fuse, 8)[:, :, :H, :W]

    return net


class TorchNet:
    """``net.run(x_nhwc) -> logits (N, C, H, W)`` in float64; ``net.tp[name].grad`` (tinyseg's
    layout) after ``backward``."""

    def __init__(self, name: str, params: dict):
        self.name = name
        self.tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in params.items()}

    def run(self, x_nhwc):
        x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).astype(np.float64))
        p = {k: to_torch_layout(k, v) for k, v in self.tp.items()}
        n_classes = p["fc8.w"].shape[0]
        return make_net(self.name, p, n_classes, dtype=torch.float64)(x, train=True)


def build(name: str, shapes: dict, n_classes: int, device: str = "cpu", dropout: float = 0.5):
    """``(parameters, net)`` in float32 on ``device``: He-initialised convs (seed 0), zero biases,
    learnt upsamplings started at the bilinear tent; ``shapes`` are tinyseg's (name -> shape)."""
    torch.manual_seed(0)
    p = {}
    for key, shape in shapes.items():
        if key.endswith(".b"):
            p[key] = torch.zeros(shape[0], device=device, requires_grad=True)
        elif key.split(".")[0].startswith("upscore"):                 # (k, k, co, ci) -> (ci, co, k, k)
            k = shape[0]
            w = np.zeros((shape[3], shape[2], k, k), np.float32)
            w[range(shape[3]), range(shape[2])] = tent(k)
            p[key] = torch.tensor(w, device=device, requires_grad=True)
        else:                                                          # (kh, kw, ci, co) -> (co, ci, kh, kw)
            kh, kw, ci, co = shape
            w = torch.randn(co, ci, kh, kw, device=device) * (2.0 / (kh * kw * ci)) ** 0.5
            p[key] = w.requires_grad_()
    return list(p.values()), make_net(name, p, n_classes, device=device, dropout=dropout)


def assert_conv2d_equals_torch(rng, x, w, b, dilation: int, dw_atol: float = 1e-4) -> None:
    """tinyseg's conv2d (SAME, ``dilation``) of NHWC ``x`` with HWIO ``w`` and its backward for a
    random ``dout`` from ``rng`` equal ``F.conv2d`` in float64 (rtol 1e-4, atol 1e-4; ``dw_atol`` for dw)."""
    from tinyseg import ops

    k = w.shape[0]
    out, cache = ops.conv2d_forward(x, w, b, dilation=dilation)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)  # (F, C, kh, kw)
    bt = torch.tensor(b.astype(np.float64), requires_grad=True)
    ot = F.conv2d(xt, wt, bt, padding=dilation * (k - 1) // 2, dilation=dilation)
    np.testing.assert_allclose(out, ot.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ot.backward(torch.tensor(dout.transpose(0, 3, 1, 2).astype(np.float64)))
    dx, dw, db = ops.conv2d_backward(dout, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=dw_atol)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def assert_equals_torch(name: str, model, params: dict, rng) -> None:
    """A training-mode forward and backward of ``model`` on a 37×45 input from ``rng`` give the
    logits, the summed cross-entropy and every parameter gradient of ``TorchNet(name, params)``."""
    import pytest

    from tinyseg import ops

    x = (rng.standard_normal((1, 37, 45, 3)) * 50).astype(np.float32)
    labels = rng.integers(0, 3, size=(1, 37, 45)).astype(np.int32)
    net = TorchNet(name, params)
    logits = model.forward(x, train=True)
    ref = net.run(x)
    want = ref.detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(logits, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    ref_loss = F.cross_entropy(ref, torch.tensor(labels, dtype=torch.long), reduction="sum")
    ref_loss.backward()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-4)
    assert set(model.grads) == set(net.tp)
    for k, g in model.grads.items():
        want = net.tp[k].grad.numpy()
        scale = np.abs(want).max() + 1e-12
        np.testing.assert_allclose(g / scale, want / scale, atol=3e-4, err_msg=k)
