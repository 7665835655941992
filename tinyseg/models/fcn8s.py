"""FCN-8s: FCN-16s plus a second skip, from pool3 (Long, Shelhamer & Darrell, 2015).

::

    x ─ VGG-16 ─┬─ fc7 ─ fc8 ─ upscore2 (×2, learnt)           → (N, 2⌈H/32⌉, 2⌈W/32⌉, C)
                ├─ pool4 ─ [× 0.01] ─ score_pool4 (1×1, C)     → (N, ⌈H/16⌉, ⌈W/16⌉, C)
                │     fuse_pool4 = crop(upscore2) + score_pool4
                │     upscore_pool4 (×2, learnt)              → (N, 2⌈H/16⌉, 2⌈W/16⌉, C)
                └─ pool3 ─ [× 0.0001] ─ score_pool3 (1×1, C)   → (N, ⌈H/8⌉, ⌈W/8⌉, C)
                      fuse_pool3 = crop(upscore_pool4) + score_pool3
      upscore8 (×8, fixed bilinear)                           → (N, 8⌈H/8⌉, 8⌈W/8⌉, C)
      crop to the top-left H × W                              → logits (N, H, W, C)

    Each skip (upscore, [scale], score, fuse) is one :class:`~tinyseg.models.skip.SkipStage`.

**Alignment** (DESIGN.md's rule, as in :mod:`tinyseg.models.fcn16s`): with SAME 2×2 pooling a
stride-``s`` map has pixel ``i`` at input coordinate ``s·i + (s − 1)/2``, and a TF-SAME bilinear
transposed convolution by ``f`` turns a stride-``s`` grid into the stride-``s/f`` grid of the same
rule: upscore2 lands exactly on pool4's grid (``16j + 7.5``), upscore_pool4 on pool3's
(``8k + 3.5``), upscore8 on the image's pixels. Every fusion is therefore a top-left crop of the
upsampled map (at most one row/column: ``2⌈H/32⌉ − ⌈H/16⌉ ≤ 1``) plus an add — one kernel,
:func:`tinyseg.ops.fuse.crop_add_forward` — and the logits a top-left crop. (Caffe's FCN-8s,
with its 100-pixel input padding, crops at offsets 5, 9 and 31 instead.)

**Two ways to train it.**

* *Staged* (``fcn8s``, the paper): from a trained FCN-16s (:func:`copy_params_from_fcn16s`,
  ``tinyseg train --model fcn8s --init-from fcn16s.h5``); ``score_pool3`` starts at zero, so
  the net starts with FCN-16s's scores, unmodified by pool3 (upsampled ×2 then ×8 instead of
  ×16). Trained from scratch it is the same net, every layer learnt together.
* *At once* (``fcn8s-atonce``, fcn.berkeleyvision.org's ``voc-fcn8s-atonce``): from VGG-16 in
  one run, with pool4 scaled by 0.01 and pool3 by 0.0001 before they are scored (fixed ``Scale``
  layers), so the skips — whose activations are far larger than fc7's — start as small
  corrections and do not swamp the coarse prediction while it is learnt.

``upscore2`` and ``upscore_pool4`` are learnt, initialised bilinear; ``upscore8`` is fixed
bilinear, as in the FCN paper.
"""
from __future__ import annotations

from ..layers import BilinearUpsample, Conv2D, CropTo
from .base import SegmentationModel, announce, copy_params_from
from .fcn32s import FCN32sConfig
from .skip import SkipStage
from .vgg import FCN_VGG, VGG16Backbone, vgg16_param_shapes

FCN8sConfig = FCN32sConfig       # the same options as FCN-32s

# The reference FCN-8s at-once's fixed scales of the skips (voc-fcn8s-atonce/net.py).
SCALE_POOL4 = 0.01
SCALE_POOL3 = 0.0001


class FCN8s(SegmentationModel):
    """VGG-16 FCN-8s: fc8 scores ×2 + pool4 scores, ×2 + pool3 scores, then ×8 (fixed)."""

    name = "fcn8s"
    config_class = FCN8sConfig
    at_once = False               # FCN8sAtOnce: scale pool4 and pool3 before scoring

    @classmethod
    def param_shapes(cls, config) -> dict:
        shapes = vgg16_param_shapes(config.width, config.fc6_kernel, FCN_VGG, config.n_classes)
        c4, c3 = shapes["conv4_3.b"][0], shapes["conv3_3.b"][0]    # pool4's, pool3's channels
        shapes.update(SkipStage.param_shapes("pool4", "upscore2", c4, config.n_classes))
        shapes.update(SkipStage.param_shapes("pool3", "upscore_pool4", c3, config.n_classes))
        return shapes

    def _build(self, config):
        scale4, scale3 = (SCALE_POOL4, SCALE_POOL3) if self.at_once else (None, None)
        self.backbone = VGG16Backbone(FCN_VGG, config.dropout)
        self.fc8 = Conv2D("fc8", None, None)
        self.skip_pool4 = SkipStage("pool4", "upscore2", scale4)        # upscore2 … fuse_pool4
        self.skip_pool3 = SkipStage("pool3", "upscore_pool4", scale3)   # upscore_pool4 … fuse_pool3
        self.upscore8 = BilinearUpsample("upscore8", 8)
        self.crop = CropTo("crop")
        return (self.backbone.layers + [self.fc8] + self.skip_pool4.layers + self.skip_pool3.layers
                + [self.upscore8, self.crop])

    def forward(self, x, train: bool = False, step: int = 0):
        """Logits ``(N, H, W, C)`` for a preprocessed batch ``x (N, H, W, 3)``."""
        x = self._input(x)
        size = (x.shape[1], x.shape[2])
        fc7, taps = self.backbone.forward(x, train, step, self.config.seed, taps=("pool3", "pool4"))
        score_fr = self.fc8.forward(fc7, train)                               # (N, h32, w32, C)
        fuse_pool4 = self.skip_pool4.forward(score_fr, taps.pop("pool4"), train)  # (N, h16, w16, C)
        fuse_pool3 = self.skip_pool3.forward(fuse_pool4, taps.pop("pool3"), train)  # (N, h8, w8, C)
        # upscore8: (N, 8·h8, 8·w8, C); its top-left H × W: the logits (N, H, W, C)
        return self.crop.forward(self.upscore8.forward(fuse_pool3, train), train, size=size)

    def backward(self, dlogits, grad_ready=None):
        """Backpropagate ``∂loss/∂logits`` into ``grads``; ``grad_ready(names)`` as each is final."""
        d = self.upscore8.backward(self.crop.backward(dlogits))
        d_fuse_pool4, d_pool3 = self.skip_pool3.backward(d, grad_ready)
        d_score_fr, d_pool4 = self.skip_pool4.backward(d_fuse_pool4, grad_ready)
        d = self.fc8.backward(d_score_fr)
        announce(self.fc8, grad_ready)
        return self.backbone.backward(d, {"pool4": d_pool4, "pool3": d_pool3}, grad_ready)


class FCN8sAtOnce(FCN8s):
    """FCN-8s trained at once from VGG-16: pool4 × 0.01 and pool3 × 0.0001 before scoring."""

    name = "fcn8s-atonce"
    at_once = True


def copy_params_from_fcn16s(fcn8s: FCN8s, fcn16s_params: dict) -> list:
    """Staged training: load a trained FCN-16s's parameters into ``fcn8s``; return their names.

    The backbone, fc8, upscore2 and score_pool4 are copied; ``upscore_pool4`` stays bilinear and
    ``score_pool3`` zero, so FCN-8s starts with FCN-16s's predictions. (An FCN-32s checkpoint
    works too: then ``upscore2`` and ``score_pool4`` also keep their initialisation.)
    """
    return copy_params_from(fcn8s, fcn16s_params, "FCN-16s")
