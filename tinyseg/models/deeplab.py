"""DeepLab-LargeFOV (Chen, Papandreou, Kokkinos, Murphy & Yuille, ICLR 2015) on VGG-16.

::

    x (N, H, W, 3)
      conv1 pool1 (3×3/2, pad 1) conv2 pool2 (3×3/2) conv3 pool3 (3×3/2)  → (N, ⌈H/8⌉, ⌈W/8⌉, 256)
      conv4 pool4 (3×3/1)                                                  stride 8 from here on
      conv5 (3×3, dilation 2) pool5 (3×3/1) pool5a (3×3/1 average)
      fc6 (3×3, dilation 12, 1024) relu drop6 fc7 (1×1, 1024) relu drop7
      fc8 (1×1, C)                                       → scores (N, ⌈H/8⌉, ⌈W/8⌉, C)
      interp ×8 (fixed bilinear, score i on pixel 8i)    → logits (N, H, W, C)

**Atrous convolution.** Removing the strides of pool4 and pool5 keeps the map at stride 8 (16×
more positions than FCN-32s's stride 32), and dilating the layers after them keeps what each
filter sees: conv5's 3×3 taps, 16 px apart at stride 16 in VGG, are 2 cells of 8 px apart here
(dilation 2). A k×k kernel with dilation d spans ``k + (k − 1)(d − 1)`` cells; fc6 (3×3,
d = 12) spans 25 cells = 200 px at stride 8 and reaches ±96 px, exactly the ±3 cells × 32 px of
VGG's 7×7 fc6 at stride 32 — the "large field of view". pool5a, a 3×3 stride-1 *average* pool
after pool5, is in the reference net (``pool5a`` in DeepLab-LargeFOV's train.prototxt); we keep
it (it costs one cheap stencil and no parameters).

**Alignment.** A 3×3 window with padding 1 and stride 2 gives output ``i`` the input rows
``2i − 1, 2i, 2i + 1``: it is centred on input ``2i`` — not ``2i + 0.5`` as a 2×2/2 window is.
Stride-1 3×3 pools and SAME (dilated) convolutions are centred on their own pixel. Composing,
after pool1–pool3 score ``i`` sits at input coordinate ``8i`` (not FCN's ``8i + 3.5``), and
``⌈H/8⌉`` scores reach row ``8(⌈H/8⌉ − 1) ≤ H − 1``. The one place that uses it is the final
upsampling, :class:`tinyseg.layers.Interp`: bilinear interpolation that puts score ``i`` on pixel
``8i`` (Caffe's ``Interp`` that DeepLab uses; ``align_corners=True``); past the last score (at
most 7 rows/columns) it fades linearly to 0 as a transposed convolution does, which changes no
argmax. A TF-SAME ×8 transposed convolution would put score ``i`` at ``8i + 3.5``, half a pixel
off any crop — which is why DeepLab needs its own upsampling. (Caffe's ceil-mode pooling gives
even-sized maps one more output than ``⌈H/2⌉``; DeepLab sidesteps that with inputs of size
``8k + 1``; tinyseg's pools give ``⌈H/s⌉`` as PyTorch's ``max_pool2d(x, 3, s, 1)`` does.)

**From VGG-16** (:meth:`DeepLabLargeFOV.params_from_vgg16`): the convolutions are VGG's;
fc6 and fc7 are VGG's fc1/fc2 subsampled "by simple decimation" as DeepLab did — fc6's 7×7
kernel keeps taps 0, 3, 6 in each direction (offsets −3, 0, +3 cells of 32 px = −96, 0, +96 px,
exactly where dilation 12 at stride 8 puts its taps) and every 4th of its 4096 filters; fc7 keeps
every 4th input and output channel (4096 → 1024). DeepLab did not publish which filters it kept;
every 4th is our choice. fc8 is new (zero, as in every tinyseg model).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import Conv2D, Interp
from .base import SegmentationModel, announce
from .vgg import DEEPLAB_VGG, ScaledChannels, VGG16Backbone, vgg16_param_shapes

OUTPUT_STRIDE = 8
FC6_KERNEL = 3
FC6_TAPS = slice(0, 7, 3)         # VGG fc6's taps 0, 3, 6 of 7
FC_DECIMATION = 4                 # 4096 -> 1024 channels


@dataclass
class DeepLabConfig(ScaledChannels):
    n_classes: int = 2         # background (0) and object (1), as the post
    width: float = 1.0         # channel multiplier (convs, fc6, fc7; 1.0 is DeepLab's 1024-wide fc6/fc7)
    dropout: float = 0.5       # after fc6 and fc7, training only
    seed: int = 0              # parameter initialisation; dropout masks derive from it and the step


class DeepLabLargeFOV(SegmentationModel):
    """DeepLab-LargeFOV: atrous VGG-16 at output stride 8, bilinear ×8 to the image."""

    name = "deeplab-largefov"
    config_class = DeepLabConfig

    def _build(self, config):
        self.backbone = VGG16Backbone(DEEPLAB_VGG, config.dropout)
        self.fc8 = Conv2D("fc8", None, None)
        self.interp = Interp("interp", OUTPUT_STRIDE)
        return self.backbone.layers + [self.fc8, self.interp]

    def forward(self, x, train: bool = False, step: int = 0):
        """Logits ``(N, H, W, C)`` for a preprocessed batch ``x (N, H, W, 3)``."""
        x = self._input(x)
        size = (x.shape[1], x.shape[2])
        fc7, _ = self.backbone.forward(x, train, step, self.config.seed)
        score = self.fc8.forward(fc7, train)                    # (N, ⌈H/8⌉, ⌈W/8⌉, C)
        return self.interp.forward(score, train, size=size)     # (N, H, W, C)

    def backward(self, dlogits, grad_ready=None):
        """Backpropagate ``∂loss/∂logits`` into ``grads``; ``grad_ready(names)`` as each is final."""
        d = self.interp.backward(dlogits)
        d = self.fc8.backward(d)
        announce(self.fc8, grad_ready)
        return self.backbone.backward(d, grad_ready=grad_ready)

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_shapes(cls, config) -> dict:
        """VGG-16's (fc6 3×3 and fc6/fc7 ``1024·width`` wide) and fc8's, as ``{name: shape}``."""
        return vgg16_param_shapes(config.width, FC6_KERNEL, DEEPLAB_VGG, config.n_classes)

    @staticmethod
    def params_from_vgg16(vgg: dict) -> dict:
        """Imported VGG-16 weights -> DeepLab-LargeFOV's: convs as they are, fc6/fc7 decimated.

        ``fc6.w (7, 7, 512, 4096) -> [::3, ::3, :, ::4] = (3, 3, 512, 1024)``, ``fc6.b[::4]``;
        ``fc7.w (1, 1, 4096, 4096) -> [:, :, ::4, ::4] = (1, 1, 1024, 1024)``, ``fc7.b[::4]``.
        """
        out = {k: v for k, v in vgg.items() if not k.startswith(("fc6.", "fc7.", "fc8."))}
        if "fc6.w" in vgg:
            if tuple(vgg["fc6.w"].shape[:2]) != (7, 7):
                raise ValueError(f"VGG's fc6 kernel must be 7×7 to decimate it to DeepLab's 3×3, "
                                 f"got {tuple(vgg['fc6.w'].shape)}")
            out["fc6.w"] = np.ascontiguousarray(vgg["fc6.w"][FC6_TAPS, FC6_TAPS, :, ::FC_DECIMATION])
            out["fc6.b"] = np.ascontiguousarray(vgg["fc6.b"][::FC_DECIMATION])
        if "fc7.w" in vgg:
            out["fc7.w"] = np.ascontiguousarray(vgg["fc7.w"][:, :, ::FC_DECIMATION, ::FC_DECIMATION])
            out["fc7.b"] = np.ascontiguousarray(vgg["fc7.b"][::FC_DECIMATION])
        return out
