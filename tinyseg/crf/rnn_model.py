"""A segmentation model with CRF-as-RNN on top, behaving as one model (train, checkpoints, predict).

:class:`NetworkWithCRF` wraps any tinyseg model (``tinyseg.models``) and a
:class:`~tinyseg.crf.CRFasRNN` so that the trainer, the checkpoints and predict/evaluate treat
them as one model::

    logits = network.forward(x, train, step)         # (N, H, W, C)
    out = crf.forward(logits, image, train)          # the CRF's logits, softmax = Q_T

* ``params``/``grads``: the network's names and the CRF's under ``"crf."`` (``"crf.compat"``,
  ``"crf.w_spatial"``, ``"crf.w_bilateral"``), so one optimizer updates both;
* ``lr_scale``: the CRF's learning-rate multiplier per parameter name (Caffe's ``lr_mult``): its
  parameters are O(1)-O(10) numbers, the network's O(0.01); the optimizers multiply their rate by
  it (:attr:`tinyseg.optim.Adam.lr_scale`), and the trainer hands it to them;
* ``config_dict()``: the network's, plus ``"crf_rnn"`` (the CRF's config and ``lr_mult``);
  :func:`model_from_config` rebuilds either kind from a checkpoint's config;
* the image: ``forward(x, ...)`` gets the preprocessed batch, as every model does; the CRF needs
  the RGB image, which is ``x + VGG means`` rounded -- exactly, since ``x = float32(image) -
  mean`` is within 1e-5 of it -- unless ``image=`` is given.
"""
from __future__ import annotations

import inspect

import numpy as np

from .rnn import CRFasRNN

__all__ = ["NetworkWithCRF", "model_from_config", "is_crf_rnn", "predict_with_crf_rnn",
           "CRF_PREFIX", "default_crf_lr"]

CRF_PREFIX = "crf."


def default_crf_lr(optimizer: str, lr: float) -> float:
    """The CRF's learning rate when none is given: 0.05 with Adam (its steps do not depend on the
    gradient's scale; the study's runs used 0.1), ``1000 lr`` with SGD (a summed loss's gradient
    scale, as Caffe's CRF-RNN gave its layer a large ``lr_mult``)."""
    return 0.05 if optimizer == "adam" else 1000.0 * lr


def _image_from_input(x) -> np.ndarray:
    """The uint8 RGB batch a preprocessed batch came from: ``round(x + VGG means)``."""
    from ..data.io import VGG_MEAN_RGB

    host = np.asarray(x if isinstance(x, np.ndarray) else x.copy_to_host(), np.float32)
    return np.clip(np.rint(host + np.asarray(VGG_MEAN_RGB, np.float32)), 0, 255).astype(np.uint8)


class NetworkWithCRF:
    """``network`` followed by ``crf`` (a :class:`CRFasRNN`), with the model interface.

    Parameters
    ----------
    network : a tinyseg model (``forward``, ``backward``, ``params``, ``grads``, ``config``...).
    crf : the CRF-as-RNN layer, on the network's backend, for its number of classes.
    lr_mult : the CRF parameters' learning-rate multiplier (see the module).
    """

    def __init__(self, network, crf: CRFasRNN, lr_mult: float = 1.0):
        n_classes = network.config.n_classes
        if crf.config.n_labels != n_classes:
            raise ValueError(f"the CRF has {crf.config.n_labels} labels but the network "
                             f"{n_classes} classes")
        if not (np.isfinite(lr_mult) and lr_mult > 0):
            raise ValueError(f"`lr_mult` must be a positive number, got {lr_mult}")
        self.network = network
        self.crf = crf
        self.lr_mult = float(lr_mult)
        self.backend = network.backend
        self.config = network.config
        self.name = f"{getattr(network, 'name', 'network')}+crf-rnn"
        self._announces = "grad_ready" in inspect.signature(network.backward).parameters

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> dict:
        return {**self.network.params, **{CRF_PREFIX + k: v for k, v in self.crf.params.items()}}

    @property
    def grads(self) -> dict:
        return {**self.network.grads, **{CRF_PREFIX + k: v for k, v in self.crf.grads.items()}}

    @property
    def shapes(self) -> dict:
        crf = {CRF_PREFIX + k: tuple(v.shape) for k, v in self.crf.params.items()}
        return {**getattr(self.network, "shapes", {}), **crf}

    @property
    def lr_scale(self) -> dict:
        """``{"crf.compat": lr_mult, ...}``: the optimizers' per-parameter rate multipliers."""
        return {CRF_PREFIX + k: self.lr_mult for k in self.crf.params}

    def load_params(self, params: dict) -> None:
        """Set both parts from one dict (the CRF's entries under ``"crf."``)."""
        crf = {k[len(CRF_PREFIX):]: v for k, v in params.items() if k.startswith(CRF_PREFIX)}
        self.network.load_params({k: v for k, v in params.items() if not k.startswith(CRF_PREFIX)})
        self.crf.load_params(crf)

    def host_params(self) -> dict:
        return {**self.network.host_params(),
                **{CRF_PREFIX + k: v for k, v in self.crf.host_params().items()}}

    def config_dict(self) -> dict:
        return {**self.network.config_dict(),
                "crf_rnn": {**self.crf.config_dict(), "lr_mult": self.lr_mult}}

    # ------------------------------------------------------------------ compute
    def forward(self, x, train: bool = False, step: int = 0, image=None):
        """``(N, H, W, 3)`` preprocessed batch -> the CRF's ``(N, H, W, C)`` logits."""
        logits = self.network.forward(x, train=train, step=step)
        image = _image_from_input(x) if image is None else np.asarray(image)
        return self.crf.forward(logits, image, train=train)

    def backward(self, dlogits, grad_ready=None):
        """Through the CRF, then the network; ``grad_ready`` hears of the CRF's gradients first."""
        d = self.crf.backward(dlogits)
        if grad_ready is not None:
            grad_ready([CRF_PREFIX + k for k in self.crf.grads])
        if self._announces:
            return self.network.backward(d, grad_ready=grad_ready)
        return self.network.backward(d)

    def clear(self) -> None:
        self.network.clear()
        self.crf.clear()

    def describe(self) -> str:
        inner = self.network.describe() if hasattr(self.network, "describe") else repr(self.network)
        return f"{inner}\n{self.crf!r}"


def model_from_config(config: dict, backend: str = "cpu", params=None):
    """A checkpoint's model: the network of ``config`` and, if it has ``"crf_rnn"``, the CRF."""
    from ..models import model_from_config as network_from_config

    values = dict(config)
    crf_config = values.pop("crf_rnn", None)
    if crf_config is None:
        return network_from_config(values, backend=backend, params=params)
    net_params = None if params is None else \
        {k: v for k, v in params.items() if not k.startswith(CRF_PREFIX)}
    network = network_from_config(values, backend=backend, params=net_params)
    crf_values = dict(crf_config)
    lr_mult = crf_values.pop("lr_mult", 1.0)
    n_labels = crf_values.pop("n_labels")
    crf = CRFasRNN(n_labels, backend=backend, **crf_values)
    model = NetworkWithCRF(network, crf, lr_mult)
    if params is not None:
        model.crf.load_params({k[len(CRF_PREFIX):]: v for k, v in params.items()
                               if k.startswith(CRF_PREFIX)})
    return model


def is_crf_rnn(model) -> bool:
    return isinstance(model, NetworkWithCRF)


def predict_with_crf_rnn(model: NetworkWithCRF, image: np.ndarray):
    """One image through the network, then the CRF (test mode): ``(network labels, network
    probabilities, CRF-as-RNN labels, Q)``, (H, W) int32 and (H, W, C) float32 host arrays."""
    from .. import ops
    from ..data import preprocess

    be = model.backend
    logits = model.network.forward(be.asarray(preprocess(image)[None]), train=False)
    probs = be.to_numpy(ops.softmax(logits))[0]
    labels, q = model.crf.predict(logits, image[None])
    model.clear()
    return probs.argmax(-1).astype(np.int32), probs, labels[0], q[0]

