"""FCN-32s on VGG-16: an explicit list of layers, forward and backward, no autograd.

::

    x (N, H, W, 3) preprocessed RGB
      conv1_1 relu conv1_2 relu pool1                       → (N, ⌈H/2⌉,  ⌈W/2⌉,  64)
      conv2_1 relu conv2_2 relu pool2                       → (N, ⌈H/4⌉,  ⌈W/4⌉,  128)
      conv3_1 relu conv3_2 relu conv3_3 relu pool3          → (N, ⌈H/8⌉,  ⌈W/8⌉,  256)
      conv4_1 relu conv4_2 relu conv4_3 relu pool4          → (N, ⌈H/16⌉, ⌈W/16⌉, 512)
      conv5_1 relu conv5_2 relu conv5_3 relu pool5          → (N, ⌈H/32⌉, ⌈W/32⌉, 512)
      fc6 (7×7 SAME, 4096) relu dropout fc7 (1×1, 4096) relu dropout fc8 (1×1, C)
      upsample ×32 (fixed bilinear transposed conv)         → (N, 32⌈H/32⌉, 32⌈W/32⌉, C)
      crop to the top-left H × W                            → logits (N, H, W, C)

**Alignment.** Pooling is SAME (ceil), so after five pools score pixel ``i`` summarises input
rows ``[32i, 32i + 32)`` and the ×32 map covers the image (TF-Slim's VALID pooling would leave it
smaller than a 375×500 image). The transposed convolution places score ``i`` at upsampled
coordinate ``32i + 15.5``, the centre of exactly that block, so the upsampled map is aligned with
the input pixel for pixel and only its bottom/right overhang (``32⌈H/32⌉ − H`` rows,
``32⌈W/32⌉ − W`` columns) is cropped away.

``width`` scales every channel count (conv, fc6, fc7; not the classes), for training a narrower
VGG on a CPU. Parameters are He-initialised (``N(0, 2/fan_in)``, zero biases, fc8 zero) from ``seed``, or
loaded from pretrained VGG-16 weights (everything but fc8).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .backend import backend_for, get_backend
from .layers import BilinearUpsample, Conv2D, CropTo, Dropout, MaxPool, ReLU

# (block, number of 3×3 convs, channels at width 1)
VGG16_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
FC_CHANNELS = 4096
UPSAMPLE_FACTOR = 32


@dataclass
class FCN32sConfig:
    n_classes: int = 2         # the seed's binary task: background (0) and object (1)
    width: float = 1.0         # channel multiplier: 1.0 is VGG-16, 0.25 trains 16× faster on a CPU
    dropout: float = 0.5       # after fc6 and fc7, training only
    fc6_kernel: int = 7        # fc6 is VGG's first fully connected layer recast as a 7×7 conv
    seed: int = 0              # parameter initialisation; dropout masks derive from it and the step

    def channels(self, c: int) -> int:
        return max(1, int(round(c * self.width)))


class FCN32s:
    """VGG-16 FCN-32s. ``forward(x, train) -> logits`` and ``backward(dlogits)`` fill ``grads``.

    Parameters
    ----------
    config : FCN32sConfig
    backend : "cpu" or "cuda" — where the parameters (and so the computation) live.
    params : optional dict of initial parameters (e.g. imported VGG-16 weights); missing entries
        (fc8 for pretrained weights) are initialised as in :meth:`init_params`.
    """

    def __init__(self, config: FCN32sConfig | None = None, backend: str = "cpu", params=None):
        self.config = config = config or FCN32sConfig()
        if config.n_classes < 1:
            raise ValueError(f"`n_classes` must be positive, got {config.n_classes}")
        if not config.width > 0:
            raise ValueError(f"`width` must be positive, got {config.width}")
        self.backend = get_backend(backend)
        self.layers = self._build_layers(config)
        self.shapes = self.param_shapes(config)
        init = self.init_params(config)
        if params is not None:
            init.update(self._checked(params))
        self.load_params(init)

    # ------------------------------------------------------------------ structure
    @staticmethod
    def param_shapes(config: FCN32sConfig) -> dict:
        """``{"conv1_1.w": (3, 3, 3, 64), "conv1_1.b": (64,), …, "fc8.b": (C,)}`` for this config."""
        shapes, c_in = {}, 3
        for block, n, c in VGG16_BLOCKS:
            c_out = config.channels(c)
            for i in range(1, n + 1):
                shapes[f"conv{block}_{i}.w"] = (3, 3, c_in, c_out)
                shapes[f"conv{block}_{i}.b"] = (c_out,)
                c_in = c_out
        fc = config.channels(FC_CHANNELS)
        k = config.fc6_kernel
        shapes.update({"fc6.w": (k, k, c_in, fc), "fc6.b": (fc,),
                       "fc7.w": (1, 1, fc, fc), "fc7.b": (fc,),
                       "fc8.w": (1, 1, fc, config.n_classes), "fc8.b": (config.n_classes,)})
        return shapes

    @staticmethod
    def _build_layers(config):
        layers = []
        for block, n, _ in VGG16_BLOCKS:
            for i in range(1, n + 1):
                layers += [Conv2D(f"conv{block}_{i}", None, None), ReLU(f"relu{block}_{i}")]
            layers.append(MaxPool(f"pool{block}"))
        layers += [Conv2D("fc6", None, None), ReLU("relu6"), Dropout("drop6", config.dropout),
                   Conv2D("fc7", None, None), ReLU("relu7"), Dropout("drop7", config.dropout),
                   Conv2D("fc8", None, None),
                   BilinearUpsample("upsample", UPSAMPLE_FACTOR), CropTo("crop")]
        return layers

    @classmethod
    def init_params(cls, config: FCN32sConfig) -> dict:
        """He initialisation ``w ~ N(0, 2 / (kh·kw·c_in))``, ``b = 0``; deterministic in ``seed``.

        fc8, the class-scoring layer, starts at zero as in the FCN paper: every pixel starts at
        ``p = 1/C`` (loss ``log C`` per pixel) instead of at huge random logits, since VGG without
        normalisation passes the ±128-scale pixel values through at that scale.
        """
        rng = np.random.default_rng(config.seed)
        params = {}
        for name, shape in cls.param_shapes(config).items():
            if name.endswith(".w") and not name.startswith("fc8."):
                fan_in = shape[0] * shape[1] * shape[2]
                params[name] = (rng.standard_normal(shape, dtype=np.float32)
                                * np.float32(np.sqrt(2.0 / fan_in)))
            else:
                params[name] = np.zeros(shape, np.float32)
        return params

    def _checked(self, params: dict) -> dict:
        out = {}
        for name, a in params.items():
            if name not in self.shapes:
                raise ValueError(f"unknown parameter {name!r}; expected names like 'conv1_1.w'")
            a = np.asarray(a) if isinstance(a, np.ndarray) or not hasattr(a, "copy_to_host") \
                else a.copy_to_host()
            if tuple(a.shape) != self.shapes[name]:
                raise ValueError(f"parameter {name!r} has shape {tuple(a.shape)}, but this model "
                                 f"(width={self.config.width}, n_classes={self.config.n_classes}) "
                                 f"needs {self.shapes[name]}")
            out[name] = np.ascontiguousarray(a, dtype=np.float32)
        return out

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> dict:
        """``{"conv1_1.w": array, …}``: the live parameter arrays (on the model's backend)."""
        return {f"{l.name}.{k}": v for l in self.layers for k, v in l.params.items()}

    @property
    def grads(self) -> dict:
        """Gradients from the last ``backward``, same names as ``params``.

        The arrays are reused: the next ``backward`` overwrites them (copy them to keep them).
        """
        return {f"{l.name}.{k}": v for l in self.layers for k, v in l.grads.items()}

    def load_params(self, params: dict) -> None:
        """Set parameters from host arrays (all names required), copying them to the backend."""
        params = self._checked(params)
        missing = set(self.shapes) - set(params)
        if missing:
            raise ValueError(f"missing parameter(s) {sorted(missing)}")
        for layer in self.layers:
            if isinstance(layer, Conv2D):
                layer.params = {k: self.backend.asarray(params[f"{layer.name}.{k}"]) for k in ("w", "b")}

    def host_params(self) -> dict:
        """The parameters as NumPy arrays (copies from the device on the cuda backend)."""
        return {k: self.backend.to_numpy(v) for k, v in self.params.items()}

    def n_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))

    # ------------------------------------------------------------------ compute
    def forward(self, x, train: bool = False, step: int = 0):
        """Logits ``(N, H, W, C)`` for a preprocessed batch ``x (N, H, W, 3)`` float32.

        In training, dropout masks are drawn from ``(config.seed, step, layer)``.
        """
        if len(getattr(x, "shape", ())) != 4 or x.shape[3] != 3:
            raise ValueError(f"`x` must be a preprocessed (N, H, W, 3) batch, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if not self.backend.owns(x):
            x = self.backend.asarray(np.ascontiguousarray(x, dtype=np.float32))
        size = (x.shape[1], x.shape[2])
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                layer.seed = (self.config.seed * 1_000_003 + step) * 64 + i
            if isinstance(layer, CropTo):
                x = layer.forward(x, train, size=size)
            else:
                x = layer.forward(x, train)
        return x

    def backward(self, dlogits):
        """Backpropagate ``∂loss/∂logits``; afterwards ``grads`` holds every parameter gradient."""
        d = dlogits
        for layer in reversed(self.layers):
            d = layer.backward(d)
        return d

    def clear(self):
        """Free the activations kept for backward."""
        for layer in self.layers:
            layer.clear()

    def describe(self) -> str:
        return "\n".join(repr(l) for l in self.layers)

    def config_dict(self) -> dict:
        return asdict(self.config)


def predict_probabilities(model: FCN32s, x) -> np.ndarray:
    """Softmax probabilities ``(N, H, W, C)`` (host float32) of a preprocessed batch, test mode."""
    from . import ops

    logits = model.forward(x, train=False)
    probs = ops.softmax(logits)
    model.clear()
    return backend_for(probs).to_numpy(probs)
