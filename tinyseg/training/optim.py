"""Optimizers and learning-rate schedules: the papers' recipes.

* :class:`Adam` — the post's: TensorFlow's formulation (see :func:`tinyseg.ops.adam_update`).
* :class:`SGD` — FCN's: momentum 0.99, weight decay 5e-4, on a loss summed over pixels;
  PyTorch's formulation (see :func:`tinyseg.ops.sgd_update`).
* :class:`LRSchedule` — constant, or DeepLab's "poly" ``lr·(1 − t/T)^0.9``, with an optional
  linear warm-up.

An optimizer's ``step(params, grads, lr, grad_scale)`` updates every parameter in place, once,
fused, with the gradient ``grad_scale · grads`` (so a gradient summed over a batch can be turned
into a mean inside the update). Its state is ``{"m": {...}, "v": {...}, "step": t}`` (SGD keeps
its velocity in ``m`` and nothing in ``v``), which is what checkpoints store.

The update kernels are ops (:func:`tinyseg.ops.adam_update`, :func:`tinyseg.ops.sgd_update`,
:func:`tinyseg.ops.scale_into`), each with its NumPy twin in :mod:`tinyseg.reference`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..backend import backend_for

__all__ = ["AdamConfig", "Adam", "SGDConfig", "SGD", "LRSchedule", "make_optimizer"]


# ----------------------------------------------------------------------------- optimizers
@dataclass
class AdamConfig:
    lr: float = 1e-4        # the post's learning rate (TensorFlow's default is 1e-3)
    beta1: float = 0.9      # decay of the first-moment (mean) estimate
    beta2: float = 0.999    # decay of the second-moment (uncentred variance) estimate
    eps: float = 1e-8       # added to sqrt(v), TensorFlow's placement (PyTorch adds it to sqrt(v̂))


@dataclass
class SGDConfig:
    lr: float = 1e-10           # FCN's rate for a loss summed over ~500×500 pixels (Caffe, unnormalised)
    momentum: float = 0.99      # FCN's "high momentum" for batch 1
    weight_decay: float = 5e-4  # FCN's (and VGG's) L2 penalty λ, applied as λ·θ in the gradient


def _host(d):
    return {k: backend_for(a).to_numpy(a) for k, a in d.items()}


def _device(d, backend):
    return {k: backend.asarray(np.asarray(a, np.float32)) for k, a in d.items()}


class _Optimizer:
    """Shared bookkeeping: step count ``t`` and a check that every parameter has a gradient."""

    def __init__(self):
        self.t = 0
        self.lr_scale: dict = {}    # per-parameter rate multipliers (Caffe's lr_mult), e.g. a CRF's

    def _begin(self, params, grads, lr):
        """Check the gradients, count the step; the rate to use (``lr``, else the config's)."""
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"no gradient for parameter(s) {sorted(missing)}")
        self.t += 1
        return self.config.lr if lr is None else lr

    @staticmethod
    def _slot(store: dict, name: str, p):
        """``store[name]``, created as float32 zeros of ``p``'s shape on ``p``'s backend."""
        if name not in store:
            store[name] = backend_for(p).zeros(p.shape, np.float32)
        return store[name]


class Adam(_Optimizer):
    """Adam with per-parameter moments ``m``, ``v`` (same names as the params) and a step count.

    ``step(params, grads, lr=None, grad_scale=1)`` updates every array of ``params`` in place,
    once, fused (``lr`` defaults to the config's; a ``grad_scale`` other than 1 scales the
    gradient buffers in place first).
    """

    name = "adam"

    def __init__(self, config: AdamConfig | None = None):
        super().__init__()
        self.config = config or AdamConfig()
        self.m: dict = {}
        self.v: dict = {}

    def step(self, params: dict, grads: dict, lr: float | None = None, grad_scale: float = 1.0) -> None:
        lr = self._begin(params, grads, lr)
        c = self.config
        for name, p in params.items():
            g = grads[name]
            if grad_scale != 1.0:
                ops.scale_into(g, grad_scale)
            ops.adam_update(p, g, self._slot(self.m, name, p), self._slot(self.v, name, p), self.t,
                            lr=lr * self.lr_scale.get(name, 1.0), beta1=c.beta1, beta2=c.beta2,
                            eps=c.eps)

    def state(self) -> dict:
        """``{"m": {...}, "v": {...}, "step": t}`` with host arrays, for checkpoints."""
        return {"m": _host(self.m), "v": _host(self.v), "step": self.t}

    def load_state(self, state: dict, backend) -> None:
        self.m = _device(state["m"], backend)
        self.v = _device(state["v"], backend)
        self.t = int(state["step"])


class SGD(_Optimizer):
    """SGD with momentum and weight decay; its velocity ``u`` per parameter is kept in ``m``."""

    name = "sgd"

    def __init__(self, config: SGDConfig | None = None):
        super().__init__()
        self.config = config or SGDConfig()
        self.m: dict = {}

    def step(self, params: dict, grads: dict, lr: float | None = None, grad_scale: float = 1.0) -> None:
        lr = self._begin(params, grads, lr)
        c = self.config
        for name, p in params.items():
            ops.sgd_update(p, grads[name], self._slot(self.m, name, p), lr * self.lr_scale.get(name, 1.0), c.momentum,
                       c.weight_decay, grad_scale)

    def state(self) -> dict:
        return {"m": _host(self.m), "v": {}, "step": self.t}

    def load_state(self, state: dict, backend) -> None:
        self.m = _device(state["m"], backend)
        self.t = int(state["step"])


def make_optimizer(name: str, lr: float, **options):
    """``Adam`` or ``SGD`` by name (``"adam"``/``"sgd"``) with learning rate ``lr``."""
    if name == "adam":
        return Adam(AdamConfig(lr=lr, **options))
    if name == "sgd":
        return SGD(SGDConfig(lr=lr, **options))
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")


# ----------------------------------------------------------------------------- schedules
@dataclass
class LRSchedule:
    """The learning rate of step ``t`` (0-based) of ``total``.

    During the first ``warmup`` steps the rate ramps up linearly, ``lr·(t + 1)/warmup``. After
    it, ``constant`` keeps ``lr`` and ``poly`` (DeepLab) decays it to 0 at ``total``:
    ``lr·(1 − (t − warmup)/(total − warmup))^power`` (with ``warmup = 0``: DeepLab's and
    ``torch.optim.lr_scheduler.PolynomialLR``'s ``lr·(1 − t/total)^power``). The warm-up never
    depends on ``total``, so ``total`` may be fixed after it (see ``TrainConfig.iterations``).
    """

    lr: float                   # the base learning rate
    kind: str = "constant"      # "constant" or "poly"
    total: int = 1              # the number of steps poly decays over (the run's iterations)
    power: float = 0.9          # DeepLab's poly exponent
    warmup: int = 0             # steps of linear warm-up (0: none)

    def __post_init__(self):
        if self.kind not in ("constant", "poly"):
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}; expected 'poly' or 'constant'")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the learning rate must be a finite number > 0, got {self.lr}")
        if self.total < 1 or self.warmup < 0:
            raise ValueError(f"`total` must be >= 1 and `warmup` >= 0, got {self.total}, {self.warmup}")

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return self.lr * (t + 1) / self.warmup
        if self.kind == "poly":
            span = max(self.total - self.warmup, 1)
            return self.lr * max(0.0, 1.0 - (t - self.warmup) / span) ** self.power
        return self.lr
