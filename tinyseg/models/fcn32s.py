"""FCN-32s on VGG-16 (the post's network): one ×32 bilinear upsampling of the fc8 scores.

::

    x (N, H, W, 3) ─ VGG-16 backbone (2×2/2 SAME pools) ─ fc7 (N, ⌈H/32⌉, ⌈W/32⌉, 4096)
      fc8 (1×1, C)                                      → scores (N, ⌈H/32⌉, ⌈W/32⌉, C)
      upsample ×32 (fixed bilinear transposed conv)     → (N, 32⌈H/32⌉, 32⌈W/32⌉, C)
      crop to the top-left H × W                        → logits (N, H, W, C)

**Alignment.** Pooling is SAME (ceil), so after five pools score pixel ``i`` summarises input
rows ``[32i, 32i + 32)`` and the ×32 map covers the image (TF-Slim's VALID pooling would leave it
smaller than a 375×500 image). The transposed convolution places score ``i`` at upsampled
coordinate ``32i + 15.5``, the centre of exactly that block, so the upsampled map is aligned with
the input pixel for pixel and only its bottom/right overhang (``32⌈H/32⌉ − H`` rows,
``32⌈W/32⌉ − W`` columns) is cropped away.

``width`` scales every channel count (conv, fc6, fc7; not the classes), for training a narrower
VGG on a CPU. Parameters are He-initialised (``N(0, 2/fan_in)``, zero biases, fc8 zero) from
``seed``, or loaded from pretrained VGG-16 weights (everything but fc8:
:meth:`~tinyseg.models.base.SegmentationModel.params_from_vgg16`). The ×32 upsampling is
fixed, as in the post and the FCN paper.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..layers import BilinearUpsample, Conv2D, CropTo
from .base import SegmentationModel, announce
from .vgg import FCN_VGG, ScaledChannels, VGG16Backbone, vgg16_param_shapes

UPSAMPLE_FACTOR = 32


@dataclass
class FCN32sConfig(ScaledChannels):
    n_classes: int = 2         # the post's binary task: background (0) and object (1)
    width: float = 1.0         # channel multiplier: 1.0 is VGG-16, 0.25 trains 16× faster on a CPU
    dropout: float = 0.5       # after fc6 and fc7, training only
    fc6_kernel: int = 7        # fc6 is VGG's first fully connected layer recast as a 7×7 conv
    seed: int = 0              # parameter initialisation; dropout masks derive from it and the step


class FCN32s(SegmentationModel):
    """VGG-16 FCN-32s. ``forward(x, train) -> logits`` and ``backward(dlogits)`` fill ``grads``."""

    name = "fcn32s"
    config_class = FCN32sConfig

    @classmethod
    def param_shapes(cls, config) -> dict:
        """``{"conv1_1.w": (3, 3, 3, 64), "conv1_1.b": (64,), …, "fc8.b": (C,)}`` for this config."""
        return vgg16_param_shapes(config.width, config.fc6_kernel, FCN_VGG, config.n_classes)

    def _build(self, config):
        self.backbone = VGG16Backbone(FCN_VGG, config.dropout)
        self.fc8 = Conv2D("fc8", None, None)
        self.upsample = BilinearUpsample("upsample", UPSAMPLE_FACTOR)
        self.crop = CropTo("crop")
        return self.backbone.layers + [self.fc8, self.upsample, self.crop]

    def forward(self, x, train: bool = False, step: int = 0):
        """Logits ``(N, H, W, C)`` for a preprocessed batch ``x (N, H, W, 3)`` float32.

        In training, dropout masks are drawn from ``(config.seed, step, layer)``.
        """
        x = self._input(x)
        size = (x.shape[1], x.shape[2])
        fc7, _ = self.backbone.forward(x, train, step, self.config.seed)
        score = self.fc8.forward(fc7, train)                    # (N, ⌈H/32⌉, ⌈W/32⌉, C)
        up = self.upsample.forward(score, train)                # (N, 32⌈H/32⌉, 32⌈W/32⌉, C)
        return self.crop.forward(up, train, size=size)          # (N, H, W, C)

    def backward(self, dlogits, grad_ready=None):
        """Backpropagate ``∂loss/∂logits``; afterwards ``grads`` holds every parameter gradient."""
        d = self.crop.backward(dlogits)
        d = self.upsample.backward(d)
        d = self.fc8.backward(d)
        announce(self.fc8, grad_ready)
        return self.backbone.backward(d, grad_ready=grad_ready)
