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
  it (:attr:`tinyseg.training.optim.Adam.lr_scale`), and the trainer hands it to them;
* ``config_dict()``: the network's, plus ``"crf_rnn"`` (the CRF's config and ``lr_mult``);
  :func:`tinyseg.models.model_from_config` rebuilds either kind from a checkpoint's config;
* the study's fine-tuning recipe (:mod:`tinyseg.studies.crf_rnn`), both off by default:
  ``crf_warmup`` -- iterations ``t < crf_warmup`` train the CRF alone (the trainer calls
  ``begin_iteration(t)``; the network's backward is skipped, its gradients read as zeros and
  ``trainable_params`` leaves it out of the optimizer step, so it stays bit-identical even with
  SGD's weight decay); ``aux_weight`` -- deep supervision, the loss ``CE(CRF output) + aux_weight
  CE(network logits)`` (the trainer adds :meth:`NetworkWithCRF.auxiliary_loss`, not during the
  warm-up). With Adam, the network's moments start at the first iteration it trains, but the bias
  correction counts every iteration, so its first steps after a warm-up are 0.7-1.6 times those
  of a fresh Adam (constant gradient);
* the image: ``forward(x, ...)`` gets the preprocessed batch, as every model does; the CRF needs
  the RGB image, which is ``x + VGG means`` rounded -- exactly, since ``x = float32(image) -
  mean`` is within 1e-5 of it -- unless ``image=`` is given.
"""
from __future__ import annotations

import inspect

import numpy as np

from .. import ops
from ..ops import add_into, scale_into
from ..crf.rnn.layer import CRFasRNN

__all__ = ["NetworkWithCRF", "network_with_crf_from_config", "is_crf_rnn", "predict_with_crf_rnn",
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
    crf_warmup : iterations at the start of training during which the network is frozen.
    aux_weight : weight of the auxiliary loss on the network's logits (0: none).
    """

    def __init__(self, network, crf: CRFasRNN, lr_mult: float = 1.0, crf_warmup: int = 0,
                 aux_weight: float = 0.0):
        n_classes = network.config.n_classes
        if crf.config.n_labels != n_classes:
            raise ValueError(f"the CRF has {crf.config.n_labels} labels but the network "
                             f"{n_classes} classes")
        if not (np.isfinite(lr_mult) and lr_mult > 0):
            raise ValueError(f"`lr_mult` must be a positive number, got {lr_mult}")
        self.network = network
        self.crf = crf
        if int(crf_warmup) != crf_warmup or crf_warmup < 0:
            raise ValueError(f"`crf_warmup` must be an integer >= 0, got {crf_warmup}")
        if not (np.isfinite(aux_weight) and aux_weight >= 0):
            raise ValueError(f"`aux_weight` must be a finite number >= 0, got {aux_weight}")
        self.lr_mult = float(lr_mult)
        self.crf_warmup = int(crf_warmup)
        self.aux_weight = float(aux_weight)
        self.frozen_network = False     # set by begin_iteration: t < crf_warmup
        self._zero_grads = None         # the frozen network's gradients (zeros, allocated once)
        self._logits = None             # the network's logits of the last forward (aux loss only)
        self._daux = None               # aux_weight · scale · dCE(logits), added in backward
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
        """Both parts' gradients; the network's are zeros while it is frozen."""
        network = self.network.grads
        if self.frozen_network:
            if self._zero_grads is None:
                self._zero_grads = {k: self.backend.zeros(v.shape, np.float32)
                                    for k, v in self.network.params.items()}
            network = self._zero_grads
        return {**network, **{CRF_PREFIX + k: v for k, v in self.crf.grads.items()}}

    @property
    def trainable_params(self) -> dict:
        """The parameters the optimizer steps: the CRF's alone while the network is frozen."""
        if self.frozen_network:
            return {CRF_PREFIX + k: v for k, v in self.crf.params.items()}
        return self.params

    def begin_iteration(self, t: int) -> None:
        """Called by the trainer before training iteration ``t`` (0-based, over the whole run)."""
        self.frozen_network = t < self.crf_warmup
        if not self.frozen_network:
            self._zero_grads = None

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
        recipe = {"crf_warmup": self.crf_warmup} if self.crf_warmup else {}
        if self.aux_weight:              # both left out at 0: older checkpoints' configs match
            recipe["aux_weight"] = self.aux_weight
        return {**self.network.config_dict(),
                "crf_rnn": {**self.crf.config_dict(), "lr_mult": self.lr_mult, **recipe}}

    # ------------------------------------------------------------------ compute
    def forward(self, x, train: bool = False, step: int = 0, image=None):
        """``(N, H, W, 3)`` preprocessed batch -> the CRF's ``(N, H, W, C)`` logits."""
        logits = self.network.forward(x, train=train, step=step)
        image = _image_from_input(x) if image is None else np.asarray(image)
        self._logits = logits if train and self.aux_weight and not self.frozen_network else None
        return self.crf.forward(logits, image, train=train)

    def auxiliary_loss(self, labels, scale: float = 1.0) -> float:
        """``aux_weight · CE(network logits)`` of the last training forward, summed over pixels.

        Its gradient, times ``scale`` (the trainer's factor of the main loss's gradient), is kept
        and added to the gradient the CRF passes to the network in :meth:`backward`. Returns 0
        (and keeps nothing) without ``aux_weight``, outside training or while the network is frozen.

        labels : (N, H, W) int, as given to the main loss.
        """
        self._daux = None
        if self._logits is None:
            return 0.0
        loss, d = ops.softmax_cross_entropy(self._logits, labels, reduction="sum")
        scale_into(d, self.aux_weight * scale)
        self._daux = d
        return self.aux_weight * float(loss)

    def backward(self, dlogits, grad_ready=None):
        """Through the CRF, then the network; ``grad_ready`` hears of the CRF's gradients first.

        The network's gradient is the CRF's plus the auxiliary loss's (if one was computed); a
        frozen network gets no backward at all.
        """
        d = self.crf.backward(dlogits)
        if grad_ready is not None:
            grad_ready([CRF_PREFIX + k for k in self.crf.grads])
        if self.frozen_network:
            return None
        if self._daux is not None:
            add_into(self._daux, d)
            d, self._daux = self._daux, None
        if self._announces:
            return self.network.backward(d, grad_ready=grad_ready)
        return self.network.backward(d)

    def clear(self) -> None:
        self._logits = self._daux = None
        self.network.clear()
        self.crf.clear()

    def describe(self) -> str:
        inner = self.network.describe() if hasattr(self.network, "describe") else repr(self.network)
        return f"{inner}\n{self.crf!r}"


def network_with_crf_from_config(config: dict, backend: str = "cpu", params=None):
    """A :class:`NetworkWithCRF` from its ``config_dict()`` (the network's config plus ``"crf_rnn"``).

    :func:`tinyseg.models.model_from_config` calls this for a config with ``"crf_rnn"``.
    """
    from . import model_from_config as network_from_config

    values = dict(config)
    crf_config = values.pop("crf_rnn")
    net_params = None if params is None else \
        {k: v for k, v in params.items() if not k.startswith(CRF_PREFIX)}
    network = network_from_config(values, backend=backend, params=net_params)
    crf_values = dict(crf_config)
    lr_mult = crf_values.pop("lr_mult", 1.0)
    recipe = {k: crf_values.pop(k) for k in ("crf_warmup", "aux_weight") if k in crf_values}
    n_labels = crf_values.pop("n_labels")
    crf = CRFasRNN(n_labels, backend=backend, **crf_values)
    model = NetworkWithCRF(network, crf, lr_mult, **recipe)
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


from .._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)
