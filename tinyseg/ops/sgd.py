"""SGD with momentum and weight decay (FCN's optimizer), in place on the backend that owns the parameters."""
from __future__ import annotations

import math

import numpy as np

from ..backend import backend_for
from ._checks import check_in_place

__all__ = ["sgd_update"]


def sgd_update(param, grad, velocity, lr: float, momentum: float = 0.99, weight_decay: float = 5e-4,
               grad_scale: float = 1.0):
    """One SGD step in place: ``d = s·g + λθ; u = μu + d; θ -= lr·u`` (``velocity`` is ``u``)."""
    check_in_place(param=param, grad=grad, velocity=velocity)
    for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                    ("grad_scale", grad_scale)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"`{name}` must be a finite number >= 0, got {v}")
    backend_for(param).sgd_update(param, grad, velocity, np.float32(lr), np.float32(momentum),
                                  np.float32(weight_decay), np.float32(grad_scale))
