"""Adam, TensorFlow's formula, in place on the backend that owns the parameters."""
from __future__ import annotations

import math

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_positive_int, check_same_shape


def adam_lr_t(lr: float, beta1: float, beta2: float, step: int) -> float:
    """TensorFlow's bias-corrected step size ``lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ)`` for step ``t >= 1``."""
    return lr * math.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)


def adam_update(param, grad, m, v, step: int, lr: float = 1e-4, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8):
    """One Adam step (TensorFlow's formula) on ``param`` in place; ``m`` and ``v`` updated in place.

    ``step`` is the 1-based index of this update. See :mod:`tinyseg.backend.cpu.adam` for the math.
    """
    for name, a in (("param", param), ("grad", grad), ("m", m), ("v", v)):
        check_array(name, a)
        if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
            raise ValueError(f"`{name}` must be C-contiguous: Adam updates it in place")
    for name, a in (("grad", grad), ("m", m), ("v", v)):
        check_same_shape(name, a, "param", param)
    step = check_positive_int("step", step)
    be = backend_for(param)
    be.adam_update(param, grad, m, v, np.float32(adam_lr_t(lr, beta1, beta2, step)),
                   np.float32(beta1), np.float32(beta2), np.float32(eps))
