"""Optimizers and learning-rate schedules: the papers' recipes.

* :class:`Adam` — the seed's: TensorFlow's formulation (see :func:`tinyseg.ops.adam_update`).
* :class:`SGD` — FCN's: momentum 0.99, weight decay 5e-4, on a loss summed over pixels;
  PyTorch's formulation (see :mod:`tinyseg.backend.cpu.sgd`).
* :class:`LRSchedule` — constant, or DeepLab's "poly" ``lr·(1 − t/T)^0.9``, with an optional
  linear warm-up.

An optimizer's ``step(params, grads, lr, grad_scale)`` updates every parameter in place, once,
fused, with the gradient ``grad_scale · grads`` (so a gradient summed over a batch can be turned
into a mean inside the update). Its state is ``{"m": {...}, "v": {...}, "step": t}`` (SGD keeps
its velocity in ``m`` and nothing in ``v``), which is what checkpoints store.

The element-wise passes over gradient buffers (:func:`copy_into`, :func:`add_into`,
:func:`scale_into`) live here too; each public function validates, then calls the backend's
kernel, and has a NumPy twin (``*_naive``) that the tests compare it with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..backend import backend_for

__all__ = ["AdamConfig", "Adam", "SGDConfig", "SGD", "LRSchedule", "make_optimizer", "sgd_update",
           "sgd_update_naive", "copy_into", "add_into", "scale_into", "add_into_naive"]


# ----------------------------------------------------------------------------- kernels' wrappers
def _check_update_arrays(**arrays):
    first_name, first = next(iter(arrays.items()))
    for name, a in arrays.items():
        ops.check_array(name, a)
        if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
            raise ValueError(f"`{name}` must be C-contiguous: it is updated in place")
        if tuple(a.shape) != tuple(first.shape):
            raise ValueError(f"`{name}` has shape {tuple(a.shape)} but `{first_name}` has shape "
                             f"{tuple(first.shape)}: they must match")


def sgd_update(param, grad, velocity, lr: float, momentum: float = 0.99, weight_decay: float = 5e-4,
               grad_scale: float = 1.0):
    """One SGD step in place: ``d = s·g + λθ; u = μu + d; θ -= lr·u`` (``velocity`` is ``u``)."""
    _check_update_arrays(param=param, grad=grad, velocity=velocity)
    for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                    ("grad_scale", grad_scale)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"`{name}` must be a finite number >= 0, got {v}")
    backend_for(param).sgd_update(param, grad, velocity, np.float32(lr), np.float32(momentum),
                                  np.float32(weight_decay), np.float32(grad_scale))


def sgd_update_naive(param, grad, velocity, lr, momentum=0.99, weight_decay=5e-4, grad_scale=1.0):
    """NumPy twin of :func:`sgd_update` (float32 throughout, in place)."""
    f = np.float32
    d = f(grad_scale) * grad + f(weight_decay) * param
    velocity *= f(momentum)
    velocity += d
    param -= f(lr) * velocity


def copy_into(dst, src):
    """``dst ← src`` (same shape, float32, C-contiguous ``dst``)."""
    _check_update_arrays(dst=dst, src=src)
    backend_for(dst).copy_into(dst, src)


def add_into(acc, x):
    """``acc ← acc + x``: accumulate a gradient into a buffer."""
    _check_update_arrays(acc=acc, x=x)
    backend_for(acc).add_into(acc, x)


def add_into_naive(acc, x):
    """NumPy twin of :func:`add_into`."""
    acc += x


def scale_into(x, s: float):
    """``x ← s·x`` in place."""
    _check_update_arrays(x=x)
    backend_for(x).scale_into(x, np.float32(s))


# ----------------------------------------------------------------------------- optimizers
@dataclass
class AdamConfig:
    lr: float = 1e-4        # the seed's learning rate (TensorFlow's default is 1e-3)
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


class _Optimizer:
    """Shared bookkeeping: step count ``t`` and a check that every parameter has a gradient."""

    def __init__(self):
        self.t = 0
        self.lr_scale: dict = {}    # per-parameter rate multipliers (Caffe's lr_mult), e.g. a CRF's

    def _begin(self, params, grads):
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"no gradient for parameter(s) {sorted(missing)}")
        self.t += 1


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
        self._begin(params, grads)
        c = self.config
        lr = c.lr if lr is None else lr
        for name, p in params.items():
            if name not in self.m:
                be = backend_for(p)
                self.m[name] = be.zeros(p.shape, np.float32)
                self.v[name] = be.zeros(p.shape, np.float32)
            g = grads[name]
            if grad_scale != 1.0:
                scale_into(g, grad_scale)
            ops.adam_update(p, g, self.m[name], self.v[name], self.t,
                            lr=lr * self.lr_scale.get(name, 1.0), beta1=c.beta1, beta2=c.beta2,
                            eps=c.eps)

    def state(self) -> dict:
        """``{"m": {...}, "v": {...}, "step": t}`` with host arrays, for checkpoints."""
        return {"m": _host(self.m), "v": _host(self.v), "step": self.t}

    def load_state(self, state: dict, backend) -> None:
        self.m = {k: backend.asarray(np.asarray(a, np.float32)) for k, a in state["m"].items()}
        self.v = {k: backend.asarray(np.asarray(a, np.float32)) for k, a in state["v"].items()}
        self.t = int(state["step"])


class SGD(_Optimizer):
    """SGD with momentum and weight decay; its velocity ``u`` per parameter is kept in ``m``."""

    name = "sgd"

    def __init__(self, config: SGDConfig | None = None):
        super().__init__()
        self.config = config or SGDConfig()
        self.m: dict = {}

    def step(self, params: dict, grads: dict, lr: float | None = None, grad_scale: float = 1.0) -> None:
        self._begin(params, grads)
        c = self.config
        lr = c.lr if lr is None else lr
        for name, p in params.items():
            if name not in self.m:
                self.m[name] = backend_for(p).zeros(p.shape, np.float32)
            sgd_update(p, grads[name], self.m[name], lr * self.lr_scale.get(name, 1.0), c.momentum,
                       c.weight_decay, grad_scale)

    def state(self) -> dict:
        return {"m": _host(self.m), "v": {}, "step": self.t}

    def load_state(self, state: dict, backend) -> None:
        self.m = {k: backend.asarray(np.asarray(a, np.float32)) for k, a in state["m"].items()}
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
