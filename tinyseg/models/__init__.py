"""The segmentation models: FCN-32s, FCN-16s, FCN-8s (staged or at once) and DeepLab-LargeFOV.

One file per model, all over one VGG-16 backbone (:mod:`tinyseg.models.vgg`) that exposes the
taps pool3, pool4 and the fc7 output. Every model has ``forward(x, train=False, step=0) ->
logits (N, H, W, C)``, ``backward(dlogits, grad_ready=None)``, ``params``, ``grads``,
``load_params``, ``host_params``, ``config``, ``config_dict()`` (with ``"name"``) and ``clear()``.

=====================  ============================  =============  ==============================
name                   class                         output stride  upsampling to the image
=====================  ============================  =============  ==============================
``fcn32s``             :class:`FCN32s`               32             ×32 fixed bilinear
``fcn16s``             :class:`FCN16s`               16 (+ pool4)   ×2 learnt, ×16 fixed
``fcn8s``              :class:`FCN8s`                8 (+ pool3)    ×2, ×2 learnt, ×8 fixed
``fcn8s-atonce``       :class:`FCN8sAtOnce`          8              as fcn8s; skips scaled
``deeplab-largefov``   :class:`DeepLabLargeFOV`      8 (atrous)     ×8 fixed bilinear (interp)
=====================  ============================  =============  ==============================

Beside them: :class:`~tinyseg.models.crf_rnn.NetworkWithCRF` (any of these with a trainable
CRF-as-RNN on top) and :class:`~tinyseg.models.small.SmallFCN` (a small network for studies and
tests).
"""
from __future__ import annotations

from .base import SegmentationModel, copy_params_from, predict_probabilities
from .crf_rnn import NetworkWithCRF
from .deeplab import DeepLabConfig, DeepLabLargeFOV
from .fcn8s import FCN8s, FCN8sAtOnce, FCN8sConfig, copy_params_from_fcn16s
from .fcn16s import FCN16s, FCN16sConfig, copy_params_from_fcn32s
from .fcn32s import FCN32s, FCN32sConfig
from .small import SmallFCN

MODELS = {
    "fcn32s": FCN32s,
    "fcn16s": FCN16s,
    "fcn8s": FCN8s,
    "fcn8s-atonce": FCN8sAtOnce,
    "deeplab-largefov": DeepLabLargeFOV,
}

__all__ = [
    "MODELS", "build_model", "model_from_config", "init_from_checkpoint", "SegmentationModel",
    "FCN32s", "FCN32sConfig", "FCN16s", "FCN16sConfig", "FCN8s", "FCN8sAtOnce", "FCN8sConfig",
    "DeepLabLargeFOV", "DeepLabConfig", "copy_params_from", "copy_params_from_fcn32s",
    "copy_params_from_fcn16s", "predict_probabilities", "NetworkWithCRF", "SmallFCN",
]


def model_class(name: str):
    """The class registered under ``name``; a clear error listing the names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def build_model(name: str, n_classes: int, width: float = 1.0, seed: int = 0, weights=None,
                backend: str = "cpu", dropout: float = 0.5, verify_md5: bool = True, **config):
    """A model by registry name, He-initialised or from imported VGG-16 ``weights``.

    Parameters
    ----------
    name : one of :data:`MODELS` ("fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce", "deeplab-largefov")
    n_classes, width, seed, dropout : the config's fields; ``**config`` sets any other (e.g.
        ``fc6_kernel`` of the FCNs)
    weights : path of imported VGG-16 weights (``.npz`` from ``tinyseg import-weights``, or the
        Keras ``.h5``); each model takes what it needs (:meth:`params_from_vgg16`: DeepLab
        decimates fc6/fc7), and fc8 and the skip layers start fresh
    backend : "cpu" or "cuda"
    verify_md5 : check a Keras ``.h5`` ``weights`` file against the published digests
    """
    cls = model_class(name)
    cfg = cls.config_class(n_classes=n_classes, width=width, seed=seed, dropout=dropout, **config)
    params = None
    if weights:
        from ..weights import load_params
        params = cls.params_from_vgg16(load_params(weights, verify_md5=verify_md5))
    return cls(cfg, backend=backend, params=params)


def model_from_config(config: dict, backend: str = "cpu", params=None):
    """Rebuild a model from ``config_dict()`` (a checkpoint's ``config["model"]``).

    A config without ``"name"`` (an older checkpoint's) is FCN-32s; one
    with ``"crf_rnn"`` is a network with a CRF-as-RNN on top (:class:`~.crf_rnn.NetworkWithCRF`).
    """
    values = dict(config)
    if "crf_rnn" in values:
        from .crf_rnn import network_with_crf_from_config

        return network_with_crf_from_config(values, backend=backend, params=params)
    cls = model_class(values.pop("name", "fcn32s"))
    return cls(cls.config_from_dict(values), backend=backend, params=params)


def init_from_checkpoint(model, path: str) -> list:
    """Staged training: copy a coarser FCN's checkpointed parameters into ``model``.

    FCN-16s from FCN-32s, FCN-8s from FCN-16s (or from FCN-32s); see :func:`copy_params_from`.
    Returns the names copied.
    """
    from ..weights.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    source = ckpt.config.get("model", {}).get("name", "fcn32s")
    return copy_params_from(model, ckpt.params, f"checkpoint {path} ({source})")
