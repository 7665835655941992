"""Adam over a model's parameter dict (TensorFlow's formulation, see :func:`tinyseg.ops.adam_update`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ops
from .backend import backend_for


@dataclass
class AdamConfig:
    lr: float = 1e-4        # the seed's learning rate (TensorFlow's default is 1e-3)
    beta1: float = 0.9      # decay of the first-moment (mean) estimate
    beta2: float = 0.999    # decay of the second-moment (uncentred variance) estimate
    eps: float = 1e-8       # added to sqrt(v), TensorFlow's placement (PyTorch adds it to sqrt(v̂))


class Adam:
    """Adam with per-parameter moments ``m``, ``v`` (same names as the params) and a step count.

    ``step(params, grads)`` updates every array of ``params`` in place, once, fused.
    """

    def __init__(self, config: AdamConfig | None = None):
        self.config = config or AdamConfig()
        self.m: dict = {}
        self.v: dict = {}
        self.t = 0

    def step(self, params: dict, grads: dict) -> None:
        missing = set(params) - set(grads)
        if missing:
            raise ValueError(f"no gradient for parameter(s) {sorted(missing)}")
        self.t += 1
        c = self.config
        for name, p in params.items():
            if name not in self.m:
                be = backend_for(p)
                self.m[name] = be.zeros(p.shape, np.float32)
                self.v[name] = be.zeros(p.shape, np.float32)
            ops.adam_update(p, grads[name], self.m[name], self.v[name], self.t,
                            lr=c.lr, beta1=c.beta1, beta2=c.beta2, eps=c.eps)

    def state(self) -> dict:
        """``{"m": {...}, "v": {...}, "step": t}`` with host arrays, for checkpoints."""
        def host(d):
            return {k: backend_for(a).to_numpy(a) for k, a in d.items()}
        return {"m": host(self.m), "v": host(self.v), "step": self.t}

    def load_state(self, state: dict, backend) -> None:
        self.m = {k: backend.asarray(np.asarray(a, np.float32)) for k, a in state["m"].items()}
        self.v = {k: backend.asarray(np.asarray(a, np.float32)) for k, a in state["v"].items()}
        self.t = int(state["step"])
