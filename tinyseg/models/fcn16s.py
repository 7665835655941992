"""FCN-16s: FCN-32s plus one skip from pool4 (Long, Shelhamer & Darrell, 2015).

::

    x ─ VGG-16 backbone ─┬─ fc7 ─ fc8                            → score_fr  (N, ⌈H/32⌉, ⌈W/32⌉, C)
                         │          upscore2 (×2, trainable)       → (N, 2⌈H/32⌉, 2⌈W/32⌉, C)
                         └─ pool4 ─ score_pool4 (1×1, C)           → (N, ⌈H/16⌉, ⌈W/16⌉, C)
      fuse_pool4 = upscore2 cropped to score_pool4's size + score_pool4
                   (upscore2, score_pool4, fuse_pool4: one SkipStage, tinyseg.models.skip)
      upscore16 (×16, fixed bilinear)                              → (N, 16⌈H/16⌉, 16⌈W/16⌉, C)
      crop to the top-left H × W                                   → logits (N, H, W, C)

**Alignment** (DESIGN.md's rule, which composes). With SAME (ceil) 2×2 pooling a map at stride
``s`` has its pixel ``i`` at input coordinate ``s·i + (s − 1)/2``: pool4's pixel ``j`` at
``16j + 7.5``, score_fr's ``i`` at ``32i + 15.5``. A TF-SAME transposed convolution by 2 with
the bilinear kernel puts its input ``i`` at output ``2i + 0.5``, i.e. at input coordinate
``16(2i + 0.5) + 7.5 = 32i + 15.5``: upscore2's grid *is* pool4's grid, both starting at the
top-left. So the fuse needs no offset, only a bottom/right crop of upscore2
(``2⌈H/32⌉ ≥ ⌈H/16⌉``, at most one row/column more), and upscore16 puts ``j`` at
``16j + 7.5`` again, so the logits need only the final top-left crop. (Caffe's FCN pads the input
by 100 pixels and needs crop offsets 5 and 27; SAME pooling makes them all zero.)

**Upsampling.** ``upscore2`` is learnt, initialised bilinear; ``upscore16`` is fixed bilinear —
the FCN paper's choice ("the final layer deconvolution filters are fixed to bilinear
interpolation, while intermediate upsampling layers are initialized to bilinear upsampling, and
then learned"). **Staged training:** start from a trained FCN-32s
(:func:`copy_params_from_fcn32s`, ``tinyseg train --model fcn16s --init-from fcn32s.h5``);
``score_pool4`` starts at zero, so the net starts with FCN-32s's scores, unmodified by pool4,
upsampled in two bilinear stages (×2 then ×16: equal to ×32 where the scores vary linearly,
slightly smoother within 8 px of each coarse score, where ×32 has its kink).
"""
from __future__ import annotations

from ..layers import BilinearUpsample, Conv2D, CropTo
from .base import SegmentationModel, announce, copy_params_from
from .fcn32s import FCN32sConfig
from .skip import SkipStage
from .vgg import FCN_VGG, VGG16Backbone, vgg16_param_shapes

FCN16sConfig = FCN32sConfig      # the same options as FCN-32s


class FCN16s(SegmentationModel):
    """VGG-16 FCN-16s: fc8 scores ×2 (learnt) + pool4 scores, then ×16 (fixed bilinear)."""

    name = "fcn16s"
    config_class = FCN16sConfig

    @classmethod
    def param_shapes(cls, config) -> dict:
        shapes = vgg16_param_shapes(config.width, config.fc6_kernel, FCN_VGG, config.n_classes)
        c4 = shapes["conv4_3.b"][0]                  # pool4's channels
        shapes.update(SkipStage.param_shapes("pool4", "upscore2", c4, config.n_classes))
        return shapes

    def _build(self, config):
        self.backbone = VGG16Backbone(FCN_VGG, config.dropout)
        self.fc8 = Conv2D("fc8", None, None)
        self.skip_pool4 = SkipStage("pool4", "upscore2")   # upscore2, score_pool4, fuse_pool4
        self.upscore16 = BilinearUpsample("upscore16", 16)
        self.crop = CropTo("crop")
        return (self.backbone.layers + [self.fc8] + self.skip_pool4.layers
                + [self.upscore16, self.crop])

    def forward(self, x, train: bool = False, step: int = 0):
        """Logits ``(N, H, W, C)`` for a preprocessed batch ``x (N, H, W, 3)``."""
        x = self._input(x)
        size = (x.shape[1], x.shape[2])
        fc7, taps = self.backbone.forward(x, train, step, self.config.seed, taps=("pool4",))
        score_fr = self.fc8.forward(fc7, train)                           # (N, h32, w32, C)
        fuse = self.skip_pool4.forward(score_fr, taps.pop("pool4"), train)  # (N, h16, w16, C)
        # upscore16: (N, 16·h16, 16·w16, C); its top-left H × W: the logits (N, H, W, C)
        return self.crop.forward(self.upscore16.forward(fuse, train), train, size=size)

    def backward(self, dlogits, grad_ready=None):
        """Backpropagate ``∂loss/∂logits`` into ``grads``; ``grad_ready(names)`` as each is final."""
        d = self.upscore16.backward(self.crop.backward(dlogits))
        d_score_fr, d_pool4 = self.skip_pool4.backward(d, grad_ready)
        d = self.fc8.backward(d_score_fr)
        announce(self.fc8, grad_ready)
        return self.backbone.backward(d, {"pool4": d_pool4}, grad_ready)


def copy_params_from_fcn32s(fcn16s: FCN16s, fcn32s_params: dict) -> list:
    """Staged training: load a trained FCN-32s's parameters into ``fcn16s``; return their names.

    Every FCN-32s parameter (the backbone and fc8, the paper's ``score_fr``) is copied;
    ``upscore2`` stays bilinear and ``score_pool4`` zero, so FCN-16s starts with FCN-32s's
    predictions and learns how much pool4 should correct them.
    """
    return copy_params_from(fcn16s, fcn32s_params, "FCN-32s")
