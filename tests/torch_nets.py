"""Independent PyTorch builds of tinyseg's models (NCHW, float64), for the whole-network tests.

Written from the papers' descriptions with PyTorch's own layers — ``F.conv2d`` (padding,
dilation), ``F.max_pool2d`` (ceil mode for FCN's 2×2, padding 1 for DeepLab's 3×3),
``F.avg_pool2d``, ``F.conv_transpose2d`` then an explicit crop — sharing no code with tinyseg but
the parameter values, which are copied in from tinyseg's layouts. :func:`assert_equals_torch` is
the comparison the model tests run with them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

BLOCKS = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]


def tent(k: int) -> np.ndarray:
    """The 2-D bilinear kernel of size k (the FCN authors' ``upsample_filt``), written out."""
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    t = 1 - np.abs(np.arange(k) - c) / f
    return np.outer(t, t)


class TorchNet:
    """``net.run(x_nhwc) -> logits (N, C, H, W)``; ``net.tp[name].grad`` after ``backward``."""

    def __init__(self, name: str, params: dict):
        self.name = name
        self.tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in params.items()}
        self.deeplab = name == "deeplab-largefov"

    def conv(self, x, layer, dilation=1):
        w = self.tp[f"{layer}.w"].permute(3, 2, 0, 1)             # (kh, kw, ci, co) -> (co, ci, kh, kw)
        k = w.shape[-1]
        return F.conv2d(x, w, self.tp[f"{layer}.b"], padding=dilation * (k // 2), dilation=dilation)

    def fixed_upsample(self, x, f):
        """Bilinear transposed conv ×f per channel, TensorFlow-SAME crop (k − f) // 2."""
        C, h, w = x.shape[1:]
        k = 2 * f - f % 2
        weight = torch.tensor(np.repeat(tent(k)[None, None], C, axis=0))   # (C, 1, k, k)
        full = F.conv_transpose2d(x, weight, stride=f, groups=C)
        p = (k - f) // 2
        return full[:, :, p:p + f * h, p:p + f * w]

    def learnt_upsample(self, x, layer):
        """Trainable ×2 transposed conv (4×4, no bias), TF-SAME crop 1."""
        w = self.tp[f"{layer}.w"].permute(3, 2, 0, 1)             # (k, k, co, ci) -> (ci, co, k, k)
        h, ww = x.shape[2:]
        return F.conv_transpose2d(x, w, stride=2)[:, :, 1:1 + 2 * h, 1:1 + 2 * ww]

    def backbone(self, x):
        taps = {}
        for block, n in BLOCKS:
            dilation = 2 if (self.deeplab and block == 5) else 1
            for i in range(1, n + 1):
                x = F.relu(self.conv(x, f"conv{block}_{i}", dilation))
            if self.deeplab:
                x = F.max_pool2d(x, 3, 2 if block <= 3 else 1, 1)
            else:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            taps[f"pool{block}"] = x
        if self.deeplab:
            x = F.avg_pool2d(x, 3, 1, 1)                            # pool5a, padding counted
        x = F.relu(self.conv(x, "fc6", 12 if self.deeplab else 1))
        x = F.relu(self.conv(x, "fc7"))
        return x, taps

    def run(self, x_nhwc):
        x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).astype(np.float64))
        H, W = x.shape[2:]
        fc7, taps = self.backbone(x)
        score = self.conv(fc7, "fc8")
        if self.name == "fcn32s":
            return self.fixed_upsample(score, 32)[:, :, :H, :W]
        if self.deeplab:
            C = score.shape[1]
            weight = torch.tensor(np.repeat(tent(15)[None, None], C, axis=0))
            return F.conv_transpose2d(score, weight, stride=8, groups=C)[:, :, 7:7 + H, 7:7 + W]
        at_once = self.name == "fcn8s-atonce"
        up = self.learnt_upsample(score, "upscore2")
        s4 = self.conv(taps["pool4"] * (0.01 if at_once else 1.0), "score_pool4")
        fuse = up[:, :, :s4.shape[2], :s4.shape[3]] + s4
        if self.name == "fcn16s":
            return self.fixed_upsample(fuse, 16)[:, :, :H, :W]
        up = self.learnt_upsample(fuse, "upscore_pool4")
        s3 = self.conv(taps["pool3"] * (0.0001 if at_once else 1.0), "score_pool3")
        fuse = up[:, :, :s3.shape[2], :s3.shape[3]] + s3
        return self.fixed_upsample(fuse, 8)[:, :, :H, :W]


def assert_equals_torch(name: str, model, params: dict, rng) -> None:
    """A training-mode forward and backward of ``model`` on a 37×45 input from ``rng`` give the
    logits, the summed cross-entropy and every parameter gradient of ``TorchNet(name, params)``."""
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
