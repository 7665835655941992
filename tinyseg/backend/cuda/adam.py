"""Adam (TensorFlow's formulation) on the GPU: one fused in-place pass, one thread per element.

With ``lr_t = lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ)`` computed by the caller:

    m ← β1·m + (1 − β1)·g
    v ← β2·v + (1 − β2)·g²
    θ ← θ − lr_t · m / (sqrt(v) + ε)
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._launch import launch_1d


@cuda.jit
def _adam_kernel(pf, gf, mf, vf, lr, b1, b2, one_b1, one_b2, e):
    i = cuda.grid(1)
    if i < pf.shape[0]:
        g = gf[i]
        mi = b1 * mf[i] + one_b1 * g
        vi = b2 * vf[i] + one_b2 * (g * g)
        mf[i] = mi
        vf[i] = vi
        pf[i] -= lr * mi / (math.sqrt(vi) + e)


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    flat = [a.reshape(a.size) for a in (param, grad, m, v)]   # any shape -> (size,)
    launch_1d(_adam_kernel, param.size, *flat, np.float32(lr_t), np.float32(beta1),
              np.float32(beta2), np.float32(1.0 - beta1), np.float32(1.0 - beta2), np.float32(eps))
