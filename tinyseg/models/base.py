"""What every segmentation model shares: named parameters, initialisation, loading, gradients.

A model is a VGG-16 backbone (:mod:`tinyseg.models.vgg`) and a head, each an explicit list of
layers; its file reads top to bottom. Subclasses define ``name`` (the registry key),
``config_class``, ``param_shapes(config)``, ``_build(config) -> layers`` and ``forward`` /
``backward`` (and ``params_from_vgg16`` where a model does not take VGG-16's weights as they
are). Everything else is here:

* parameters are named ``"<layer>.<w|b>"`` (``"conv1_1.w"``, ``"score_pool4.b"``, ``"upscore2.w"``)
  and live in the layers, on the model's backend;
* ``init_params``: He ``N(0, 2/fan_in)`` for convolution kernels (drawn in ``param_shapes`` order
  from ``seed``, so every model with the same seed starts from the same backbone), zero biases,
  zero score layers (``fc8``, ``score_pool*``: the FCN paper's choice — each pixel starts at
  ``p = 1/C`` and a staged model starts with its coarser parent's predictions), and bilinear
  ``upscore*`` kernels (``bilinear_upsample_weights``);
* ``backward(dlogits, grad_ready)`` calls ``grad_ready(names)`` as each parameterised layer's
  gradients become final (:func:`announce`), so a distributed trainer can start reducing them
  while backward goes on.
"""
from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np

from ..backend import backend_for, get_backend
from ..ops.upsampling import bilinear_upsample_weights

# Score layers start at zero (FCN): uniform predictions, and staged models start as their parent.
ZERO_INIT = ("fc8", "score_pool4", "score_pool3")


def announce(layer, grad_ready) -> None:
    """Tell ``grad_ready`` that ``layer``'s parameter gradients are final (if it has any)."""
    if grad_ready is not None and layer.params:
        grad_ready([f"{layer.name}.{k}" for k in layer.params])


def check_common_config(config) -> None:
    """The checks every model config shares; each message names the field."""
    if isinstance(config.n_classes, bool) or not isinstance(config.n_classes, (int, np.integer)) \
            or config.n_classes < 1:
        raise ValueError(f"`n_classes` must be a positive integer, got {config.n_classes!r}")
    if not config.width > 0:
        raise ValueError(f"`width` must be positive, got {config.width}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), got {config.dropout}")


class SegmentationModel:
    """Base class. ``forward(x, train, step) -> logits (N, H, W, C)``; ``backward`` fills ``grads``.

    Parameters
    ----------
    config : the model's config dataclass (default: its defaults)
    backend : "cpu" or "cuda" — where the parameters (and so the computation) live.
    params : optional dict of initial parameters (imported VGG-16 weights, a coarser model's
        checkpoint…); missing entries are initialised as in :meth:`init_params`.
    """

    name = ""
    config_class = None

    def __init__(self, config=None, backend: str = "cpu", params=None):
        self.config = config = config if config is not None else self.config_class()
        self.check_config(config)
        self.backend = get_backend(backend)
        self.shapes = self.param_shapes(config)
        self.layers = self._build(config)
        init = self.init_params(config)
        if params is not None:
            init.update(self._checked(params))
        self.load_params(init)

    # ------------------------------------------------------------------ structure
    @classmethod
    def check_config(cls, config) -> None:
        check_common_config(config)

    @classmethod
    def param_shapes(cls, config) -> dict:
        raise NotImplementedError

    def _build(self, config) -> list:
        raise NotImplementedError

    @staticmethod
    def params_from_vgg16(vgg: dict) -> dict:
        """Imported VGG-16 weights (``tinyseg.weights.load_params``) -> this model's: all but fc8.

        fc8 scores this model's classes, so it starts fresh (zero); every other VGG-16
        parameter keeps its name and shape. A model whose layers differ from VGG's (DeepLab's
        decimated fc6/fc7) overrides this.
        """
        return {k: v for k, v in vgg.items() if not k.startswith("fc8.")}

    @classmethod
    def init_params(cls, config) -> dict:
        """He-initialised kernels, zero biases and score layers, bilinear ``upscore*``; from ``seed``."""
        rng = np.random.default_rng(config.seed)
        params = {}
        for name, shape in cls.param_shapes(config).items():
            layer, kind = name.split(".")
            if layer.startswith("upscore"):                     # (k, k, C, C), k = 2f − f mod 2
                params[name] = bilinear_upsample_weights((shape[0] + 1) // 2, shape[2])
            elif kind == "w" and layer not in ZERO_INIT:
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
                raise ValueError(f"unknown parameter {name!r} for {self.name}; expected names like "
                                 f"{', '.join(repr(k) for k in list(self.shapes)[:2])}")
            a = a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)
            if tuple(a.shape) != self.shapes[name]:
                raise ValueError(f"parameter {name!r} has shape {tuple(a.shape)}, but this {self.name} "
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
            if layer.params:
                layer.params = {k: self.backend.asarray(params[f"{layer.name}.{k}"])
                                for k in layer.params}

    def host_params(self) -> dict:
        """The parameters as NumPy arrays (copies from the device on the cuda backend)."""
        return {k: self.backend.to_numpy(v) for k, v in self.params.items()}

    def n_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))

    # ------------------------------------------------------------------ compute
    def _input(self, x):
        """``x`` checked as a preprocessed ``(N, H, W, 3)`` batch, on the model's backend."""
        if len(getattr(x, "shape", ())) != 4 or x.shape[3] != 3:
            raise ValueError(f"`x` must be a preprocessed (N, H, W, 3) batch, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if not self.backend.owns(x):
            x = self.backend.asarray(np.ascontiguousarray(x, dtype=np.float32))
        return x

    def forward(self, x, train: bool = False, step: int = 0):
        raise NotImplementedError

    def backward(self, dlogits, grad_ready=None):
        raise NotImplementedError

    def clear(self):
        """Free the activations kept for backward."""
        for layer in self.layers:
            layer.clear()

    def describe(self) -> str:
        return "\n".join(repr(l) for l in self.layers)

    def config_dict(self) -> dict:
        """The config as a JSON-able dict, with the registry ``name`` (what checkpoints store)."""
        return {"name": self.name, **asdict(self.config)}

    @classmethod
    def config_from_dict(cls, values: dict):
        """The config dataclass from :meth:`config_dict`'s output (without ``name``)."""
        known = {f.name for f in fields(cls.config_class)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.name} config field(s) {unknown}; known: {sorted(known)}")
        return cls.config_class(**values)


def copy_params_from(model, source: dict, source_name: str) -> list:
    """Staged training (the FCN paper): start ``model`` from a coarser model's parameters.

    Every parameter of ``source`` is copied into ``model`` (same names, same shapes); the model's
    own new layers keep their initialisation (``score_pool*`` zero, ``upscore*`` bilinear), so it
    starts with the coarser model's predictions. ``source`` must hold the whole backbone and
    fc8, and nothing ``model`` lacks (it must be a coarser FCN of the same width and classes).

    Returns the names copied, sorted.
    """
    source = {k: (v.copy_to_host() if hasattr(v, "copy_to_host") else np.asarray(v))
              for k, v in source.items()}
    extra = sorted(set(source) - set(model.shapes))
    if extra:
        raise ValueError(f"{source_name} has parameter(s) {extra} that {model.name} lacks: "
                         f"staged training starts from a coarser FCN")
    needed = [k for k in model.shapes if k.split(".")[0] not in
              ("score_pool4", "score_pool3", "upscore2", "upscore_pool4")]
    missing = [k for k in needed if k not in source]
    if missing:
        raise ValueError(f"{source_name} lacks parameter(s) {missing[:4]}"
                         f"{' …' if len(missing) > 4 else ''} that {model.name} needs")
    for k, v in source.items():
        if tuple(v.shape) != model.shapes[k]:
            raise ValueError(f"{source_name}'s {k!r} has shape {tuple(v.shape)} but this {model.name} "
                             f"(width={model.config.width}, n_classes={model.config.n_classes}) "
                             f"needs {model.shapes[k]}: use the same --width and classes")
    model.load_params({**model.host_params(), **source})
    return sorted(source)


def predict_probabilities(model, x) -> np.ndarray:
    """Softmax probabilities ``(N, H, W, C)`` (host float32) of a preprocessed batch, test mode."""
    from .. import ops

    logits = model.forward(x, train=False)
    probs = ops.softmax(logits)
    del logits
    model.clear()
    return backend_for(probs).to_numpy(probs)
