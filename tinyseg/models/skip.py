"""FCN's skip stage: the coarser scores upsampled ×2 and fused with a finer tap's own scores.

::

    coarse (N, h, w, C) ─ upscore (×2, learnt, bilinear init)  → (N, 2h, 2w, C)
    tap (N, h', w', c) ─ [scale (fixed)] ─ score_<tap> (1×1, C) → (N, h', w', C)
    fuse_<tap> = upscore cropped to the top-left h' × w' + score_<tap>   → (N, h', w', C)

FCN-16s has one (pool4), FCN-8s two (pool4, then pool3); ``h' = ⌈H/16⌉ ≤ 2h`` (resp. ``⌈H/8⌉``),
at most one row/column less, and the grids coincide at the top-left (DESIGN.md's alignment
rule), so the fuse is a crop and an add. Its layers keep the FCN paper's names — ``upscore2``,
``score_pool4``, ``fuse_pool4``, … — which are the parameter names checkpoints store, and the
model's layer list holds them in this order: upscore, [scale], score, fuse.
"""
from __future__ import annotations

from ..layers import Conv2D, CropAdd, Scale, TransposedConv2D
from .base import announce

UPSCORE = 2                       # each skip doubles the coarser map's resolution
UPSCORE_KERNEL = 4                # get_kernel_size(2): (4, 4, C, C) transposed-conv kernel


class SkipStage:
    """``forward(coarse, tap) = crop(upscore(coarse)) + score(scale(tap))``; backward: both grads.

    Parameters
    ----------
    tap : the backbone tap it scores, e.g. ``"pool4"`` (its layers: ``score_pool4``, ``fuse_pool4``)
    upscore : the name of its ×2 transposed convolution (``"upscore2"``, ``"upscore_pool4"``)
    scale : a fixed factor applied to the tap before scoring (``scale_<tap>``; FCN-8s at-once),
        or None for none
    """

    def __init__(self, tap: str, upscore: str, scale: float | None = None):
        self.upscore = TransposedConv2D(upscore, None, UPSCORE)
        self.scale = Scale(f"scale_{tap}", scale) if scale is not None else None
        self.score = Conv2D(f"score_{tap}", None, None)
        self.fuse = CropAdd(f"fuse_{tap}")
        layers = (self.upscore, self.scale, self.score, self.fuse)
        self.layers = [l for l in layers if l is not None]      # in forward order

    @staticmethod
    def param_shapes(tap: str, upscore: str, tap_channels: int, n_classes: int) -> dict:
        """``{upscore.w: (4, 4, C, C), score_<tap>.w: (1, 1, c, C), score_<tap>.b: (C,)}``."""
        C, k = n_classes, UPSCORE_KERNEL
        return {f"{upscore}.w": (k, k, C, C),
                f"score_{tap}.w": (1, 1, tap_channels, C), f"score_{tap}.b": (C,)}

    def forward(self, coarse, tap, train: bool = False):
        """Fused scores ``(N, h', w', C)`` of ``coarse (N, h, w, C)`` and ``tap (N, h', w', c)``."""
        up = self.upscore.forward(coarse, train)                # (N, 2h, 2w, C)
        if self.scale is not None:
            tap = self.scale.forward(tap, train)
        score = self.score.forward(tap, train)                  # (N, h', w', C)
        return self.fuse.forward(up, score, train)              # (N, h', w', C)

    def backward(self, dout, grad_ready=None):
        """``(∂loss/∂coarse, ∂loss/∂tap)`` from ``∂loss/∂fuse``.

        ``grad_ready`` hears of score's gradients, then of upscore's, as each becomes final.
        """
        d_up, d_score = self.fuse.backward(dout)
        d_tap = self.score.backward(d_score)
        announce(self.score, grad_ready)
        if self.scale is not None:
            d_tap = self.scale.backward(d_tap)
        d_coarse = self.upscore.backward(d_up)
        announce(self.upscore, grad_ready)
        return d_coarse, d_tap
