"""The VGG-16 backbone every model shares, with its taps pool3, pool4 and the fc7 output.

::

    x (N, H, W, 3) preprocessed RGB
      conv1_1 relu conv1_2 relu pool1                      64 channels
      conv2_1 relu conv2_2 relu pool2                      128
      conv3_1 relu conv3_2 relu conv3_3 relu pool3   ──▶ tap "pool3" (stride 8)
      conv4_1 relu conv4_2 relu conv4_3 relu pool4   ──▶ tap "pool4" (stride 16 in FCN)
      conv5_1 relu conv5_2 relu conv5_3 relu pool5   [pool5a]
      fc6 relu drop6 fc7 relu drop7                  ──▶ returned: the fc7 output

Two variants (:class:`VGGVariant`):

* **FCN** (the post's VGG-16): 2×2/2 SAME max pools (stride 32 at pool5), fc6 a 7×7 conv with
  4096 channels (VGG's fc1 recast as a convolution), fc7 1×1 4096.
* **DeepLab-LargeFOV**: 3×3 max pools with padding 1, strides 2, 2, 2, 1, 1 (stride 8 at pool5),
  conv5 dilated by 2 (it sees the same input spacing it saw at stride 16), a 3×3 stride-1
  average pool ``pool5a``, fc6 3×3 dilated by 12 with 1024 channels, fc7 1×1 1024.

``width`` scales every channel count (convs, fc6, fc7) for training a narrower net on a CPU.
Dropout masks are drawn from ``(seed, step, layer index)``: layer indices count this list, so
FCN-32s, FCN-16s and FCN-8s on the same seed draw the same masks at every step.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..layers import Conv2D, Dropout, MaxPool, ReLU
from .. import ops
from . import base

# (block, number of 3×3 convs, channels at width 1)
VGG16_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def scaled(c: int, width: float) -> int:
    """Channels of a layer with ``c`` channels in VGG-16, at channel multiplier ``width``."""
    return max(1, int(round(c * width)))


@dataclass(frozen=True)
class VGGVariant:
    """The backbone's architecture (fixed by the model, not a user option)."""

    pool: str = "2x2"                       # "2x2": 2×2/2 SAME max pool; "3x3": 3×3, padding 1
    pool_strides: tuple = (2, 2, 2, 2, 2)   # pool1..pool5 strides (3×3 pools only)
    conv5_dilation: int = 1                 # DeepLab: 2
    pool5a: bool = False                    # DeepLab: 3×3 stride-1 average pool after pool5
    fc6_dilation: int = 1                   # DeepLab-LargeFOV: 12
    fc_channels: int = 4096                 # fc6 and fc7 channels at width 1 (DeepLab: 1024)

    @property
    def stride(self) -> int:
        """Output stride of the fc7 map (32 for FCN, 8 for DeepLab)."""
        s = 1
        for t in (self.pool_strides if self.pool == "3x3" else (2,) * 5):
            s *= t
        return s


FCN_VGG = VGGVariant()
DEEPLAB_VGG = VGGVariant(pool="3x3", pool_strides=(2, 2, 2, 1, 1), conv5_dilation=2, pool5a=True,
                         fc6_dilation=12, fc_channels=1024)


class ScaledChannels:
    """What a model config with a ``width`` field answers: ``channels(c)``, VGG's ``c`` scaled."""

    def channels(self, c: int) -> int:
        return scaled(c, self.width)


def vgg16_param_shapes(width: float, fc6_kernel: int, variant: VGGVariant,
                       n_classes: int | None = None) -> dict:
    """``{"conv1_1.w": (3, 3, 3, 64), "conv1_1.b": (64,), …, "fc7.b": (F,)}`` of the backbone.

    With ``n_classes`` (``C``) also the scores every model puts on it, in this order:
    ``"fc8.w": (1, 1, F, C)``, ``"fc8.b": (C,)`` (``F`` = fc7's channels).
    """
    shapes, c_in = {}, 3
    for block, n, c in VGG16_BLOCKS:
        c_out = scaled(c, width)
        for i in range(1, n + 1):
            shapes[f"conv{block}_{i}.w"] = (3, 3, c_in, c_out)
            shapes[f"conv{block}_{i}.b"] = (c_out,)
            c_in = c_out
    fc = scaled(variant.fc_channels, width)
    shapes.update({"fc6.w": (fc6_kernel, fc6_kernel, c_in, fc), "fc6.b": (fc,),
                   "fc7.w": (1, 1, fc, fc), "fc7.b": (fc,)})
    if n_classes is not None:
        shapes.update({"fc8.w": (1, 1, fc, n_classes), "fc8.b": (n_classes,)})
    return shapes


class VGG16Backbone:
    """The layers from the image to the fc7 output; ``forward`` also returns the requested taps."""

    def __init__(self, variant: VGGVariant, dropout: float):
        self.variant = variant
        layers = []
        for block, n, _ in VGG16_BLOCKS:
            dilation = variant.conv5_dilation if block == 5 else 1
            for i in range(1, n + 1):
                layers += [_conv(f"conv{block}_{i}", dilation), ReLU(f"relu{block}_{i}")]
            layers.append(_pool(variant, block))
        layers[0].need_dx = False      # nobody needs ∂loss/∂image: conv1_1 computes only dw, db
        if variant.pool5a:
            from ..layers import AvgPool3x3
            layers.append(AvgPool3x3("pool5a"))
        layers += [_conv("fc6", variant.fc6_dilation), ReLU("relu6"), Dropout("drop6", dropout),
                   _conv("fc7", 1), ReLU("relu7"), Dropout("drop7", dropout)]
        self.layers = layers

    def forward(self, x, train: bool, step: int, seed: int, taps=()):
        """``(fc7 output, {tap: activation})`` for the layer names in ``taps`` (e.g. "pool4")."""
        kept = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                layer.seed = (seed * 1_000_003 + step) * 64 + i
            x = layer.forward(x, train)
            if layer.name in taps:
                kept[layer.name] = x
        return x, kept

    def backward(self, dout, dtaps=None, grad_ready=None):
        """Backpropagate ``∂loss/∂fc7`` and the heads' ``dtaps`` ({tap: ∂loss/∂tap}) into the grads.

        Returns None: conv1_1 skips the image's gradient (``need_dx=False``), which no one uses.
        """
        d = dout
        for layer in reversed(self.layers):
            if dtaps and layer.name in dtaps:
                # The tap fed both the next block and the head, so its gradient is the sum of
                # both. `d` is the dx that the next block's first convolution just allocated,
                # so adding into it in place overwrites nobody's array.
                d = ops.add_into(d, dtaps[layer.name])
            d = layer.backward(d)
            base.announce(layer, grad_ready)
        return d


def _conv(name, dilation):
    return Conv2D(name, None, None, dilation=dilation)


def _pool(variant, block):
    if variant.pool == "2x2":
        return MaxPool(f"pool{block}")
    from ..layers import MaxPool3x3
    return MaxPool3x3(f"pool{block}", variant.pool_strides[block - 1])
