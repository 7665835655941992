"""A small fully convolutional network for studies and tests (FCN-32s's shape, in miniature)."""
from __future__ import annotations

import numpy as np

from ..layers import BilinearUpsample, Conv2D, CropTo, MaxPool, ReLU

__all__ = ["SmallFCN"]


class SmallFCN:
    """A small fully convolutional network for studies and tests (FCN-32s's shape, in miniature).

    ``blocks`` × (3×3 conv + ReLU + 2×2 max-pool), one more 3×3 conv + ReLU, a 1×1 scoring conv
    (zero-initialised, as FCN's), bilinear upsampling by ``2**blocks`` and a crop to the input:
    ``(N, H, W, 3) -> (N, H, W, C)`` logits at stride ``2**blocks``, coarse as FCN's are.
    He-initialised from ``seed``; ``width`` channels in the first block, ``2 width`` after.
    """

    def __init__(self, n_classes: int, width: int = 16, blocks: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)

        def conv(name, k, c_in, c_out, zero=False):
            he = np.sqrt(2.0 / (k * k * c_in))
            w = (np.zeros((k, k, c_in, c_out), np.float32) if zero else
                 (rng.standard_normal((k, k, c_in, c_out)) * he).astype(np.float32))
            return Conv2D(name, w, np.zeros(c_out, np.float32))

        layers, c_in = [], 3
        for b in range(blocks):
            c_out = width if b == 0 else 2 * width
            layers += [conv(f"conv{b + 1}", 3, c_in, c_out), ReLU(f"relu{b + 1}"),
                       MaxPool(f"pool{b + 1}")]
            c_in = c_out
        layers += [conv("conv_last", 3, c_in, 2 * width), ReLU("relu_last"),
                   conv("score", 1, 2 * width, n_classes, zero=True),
                   BilinearUpsample("upsample", 2 ** blocks), CropTo("crop")]
        self.layers = layers

    @property
    def params(self) -> dict:
        return {f"{l.name}.{k}": v for l in self.layers for k, v in l.params.items()}

    @property
    def grads(self) -> dict:
        return {f"{l.name}.{k}": v for l in self.layers for k, v in l.grads.items()}

    def forward(self, x, train: bool = False, step: int = 0):
        size = (x.shape[1], x.shape[2])
        x = np.ascontiguousarray(x, dtype=np.float32)
        for layer in self.layers:
            x = (layer.forward(x, train, size=size) if layer.name == "crop"
                 else layer.forward(x, train))
        return x

    def backward(self, dlogits):
        d = dlogits
        for layer in reversed(self.layers):
            d = layer.backward(d)
        return d

    def clear(self) -> None:
        for layer in self.layers:
            layer.clear()
