"""The PyTorch peers of ``bench_train.py``: each tinyseg model built from PyTorch's functional ops.

NCHW float32; the same architecture as the tinyseg model of the same name — 3×3 convs padding 1
(conv5 dilation 2 in DeepLab), ``ceil_mode=True`` 2×2 pools (tinyseg's SAME) or DeepLab's
``max_pool2d(3, s, 1)``, pool5a ``avg_pool2d(3, 1, 1)``, fc6 7×7 (FCN) or 3×3 dilation 12
(DeepLab), dropout 0.5 after fc6/fc7 in training, and the heads: FCN's fixed bilinear
``conv_transpose2d(groups=C)`` ×32/×16/×8 with the TF-SAME crop, the learnt ×2 transposed
convolutions (4×4, C×C) and crop-and-add fusions, DeepLab's ×8 interpolation as a depthwise
transposed convolution with the 15×15 tent cropped by 7. Parameters get He-initialised values
of the shapes tinyseg reports (values differ from tinyseg's; speed does not depend on them).
Imports only torch and numpy, so the worker process carries neither Numba nor tinyseg.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

BLOCKS = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]


def tent(k: int) -> np.ndarray:
    """The bilinear kernel of size k (the post's ``upsample_filt``)."""
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    t = 1 - np.abs(np.arange(k) - c) / f
    return np.outer(t, t)


def build(name: str, shapes: dict, n_classes: int, device: str = "cpu"):
    """``(parameters, net)``: ``net(x (N, 3, H, W), train) -> logits (N, C, H, W)``, on ``device``."""
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
    deeplab = name == "deeplab-largefov"
    C = n_classes
    fixed = {f: torch.tensor(np.repeat(tent(2 * f - f % 2)[None, None], C, axis=0), dtype=torch.float32,
                          device=device)
             for f in (8, 16, 32)}
    interp = torch.tensor(np.repeat(tent(15)[None, None], C, axis=0), dtype=torch.float32, device=device)

    def conv(x, layer, dilation=1):
        w = p[f"{layer}.w"]
        return F.conv2d(x, w, p[f"{layer}.b"], padding=dilation * (w.shape[-1] // 2), dilation=dilation)

    def up_fixed(x, f):
        k, h, w = 2 * f - f % 2, x.shape[2], x.shape[3]
        pad = (k - f) // 2
        return F.conv_transpose2d(x, fixed[f], stride=f, groups=C)[:, :, pad:pad + f * h, pad:pad + f * w]

    def up_learnt(x, layer):
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
            x = F.avg_pool2d(x, 3, 1, 1)
        x = F.dropout(F.relu(conv(x, "fc6", 12 if deeplab else 1)), 0.5, training=train)
        x = F.dropout(F.relu(conv(x, "fc7")), 0.5, training=train)
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

    return list(p.values()), net
