"""How much memory a model and one training step (or a forward) need, from the options alone.

Nothing is allocated: the parameter shapes come from the model class's ``param_shapes(config)``
and the feature-map sizes from the backbone's strides, so a ``--width 1000`` can be refused
before its 137 GiB of ``conv5`` kernels are asked for. Everything is float32 (4 bytes).

* **parameters** ``P``: the sum of the products of the parameter shapes (exact).
* **optimizer** (training only): gradients ``P``, Adam's two moments ``2P`` (SGD's momentum
  ``P``), and one more ``P`` for the gradient buckets when a step sums several images or ranks.
* **activations** of one image ``H × W`` (the trainer runs a batch image by image, so ``--batch``
  does not multiply them). In training every 3×3 convolution keeps its output and its ReLU's
  (``2·h·w·c`` floats), every pool its output and its argmax (``2·h'·w'·c``), fc6/fc7 also a
  dropout mask; the head holds ``6·H·W·C`` (scores upsampled, cropped, softmax, their
  gradients), and backward needs room for two of the largest maps at once. A forward in test
  mode keeps only two consecutive maps and ``3·H·W·C``. A CRF-as-RNN adds ``(2T + 6)·H·W·C``
  (``T = 10`` mean-field iterations, kept for backward) and ``64·H·W`` for its filters.

``im2col``/Winograd workspaces are bounded blocks (``tinyseg.backend.cpu``): ``WORKSPACE`` (16
MiB) stands for them. The interpreter and the libraries (a few hundred MB) are left out. Measured peaks (the growth of the
resident set over a training step, FCN-32s/FCN-8s/DeepLab at widths 1/8-1/4 on 96-160 px
images; ``tests/test_memory_check.py``) lie between 0.5 and 1.0 times this estimate: it errs
on the safe side by at most a factor of 2.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["MemoryEstimate", "estimate_memory", "available_memory", "format_bytes"]

FLOAT = 4
WORKSPACE = 16 * 2**20


@dataclass
class MemoryEstimate:
    parameters: int         # bytes of the parameters
    optimizer: int          # gradients, optimizer state, gradient buckets (training only)
    activations: int        # feature maps of one image (and the CRF-as-RNN's)

    @property
    def total(self) -> int:
        return self.parameters + self.optimizer + self.activations


def _variant(name: str):
    from .vgg import DEEPLAB_VGG, FCN_VGG

    return DEEPLAB_VGG if name.startswith("deeplab") else FCN_VGG


def _backbone_maps(shapes: dict, variant, H: int, W: int) -> list:
    """``[(kind, floats)]`` of the backbone's maps in forward order: conv (ReLU'd) and pool outputs."""
    maps, stride_h, stride_w = [], H, W
    strides = variant.pool_strides if variant.pool == "3x3" else (2,) * 5
    for block in range(1, 6):
        i = 1
        while f"conv{block}_{i}.w" in shapes:
            maps.append(("conv", stride_h * stride_w * shapes[f"conv{block}_{i}.w"][-1]))
            i += 1
        stride_h, stride_w = math.ceil(stride_h / strides[block - 1]), math.ceil(stride_w / strides[block - 1])
        maps.append(("pool", stride_h * stride_w * shapes[f"conv{block}_{i - 1}.w"][-1]))
    for layer in ("fc6", "fc7"):
        maps.append(("fc", stride_h * stride_w * shapes[f"{layer}.w"][-1]))
    return maps


def estimate_memory(name: str, n_classes: int, width: float, size, *, train: bool = True,
                    optimizer: str = "adam", batch: int = 1, ranks: int = 1,
                    crf_rnn: bool = False) -> MemoryEstimate:
    """The bytes model ``name`` (a key of :data:`tinyseg.models.MODELS`) needs for an ``H × W`` image.

    ``train``: one training step (else one forward in test mode); ``optimizer``: "adam" or
    "sgd"; ``batch``/``ranks``: a step over several images or ranks adds the gradient buckets.
    """
    from . import MODELS

    cls = MODELS[name]
    config = cls.config_class(n_classes=n_classes, width=width)
    shapes = cls.param_shapes(config)
    P = sum(math.prod(s) for s in shapes.values()) * FLOAT
    H, W = (int(v) for v in size)
    head = H * W * n_classes
    maps = _backbone_maps(shapes, _variant(name), H, W)
    largest = max(f for _, f in maps)
    if train:
        states = {"adam": 3, "sgd": 2}.get(optimizer, 3) + (1 if batch > 1 or ranks > 1 else 0)
        kept = sum(2 * f for _, f in maps) + 2 * largest + 6 * head
        optimizer_bytes = states * P
    else:
        kept = 2 * largest + 3 * head
        optimizer_bytes = 0
    if crf_rnn:
        kept += (2 * 10 + 6) * head + 64 * H * W
    return MemoryEstimate(P, optimizer_bytes, kept * FLOAT + WORKSPACE)


def available_memory() -> int | None:
    """Bytes the system can give this process now: ``MemAvailable`` of /proc/meminfo, else the
    free physical pages (``os.sysconf``); ``None`` when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``137 GiB``, ``3.1 GiB``, ``512 MiB``: two or three significant digits."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size or unit == "MiB":
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover
