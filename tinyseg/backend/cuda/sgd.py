"""SGD with momentum and weight decay (PyTorch's formulation) on the GPU, one thread per element.

    d ← s·g + λ·θ,   u ← μ·u + d,   θ ← θ − lr·u

(see :mod:`tinyseg.backend.cpu.sgd`).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import launch_1d


@cuda.jit
def _sgd_kernel(pf, gf, uf, rate, mu, wd, s):
    i = cuda.grid(1)
    if i < pf.shape[0]:
        d = s * gf[i] + wd * pf[i]
        u = mu * uf[i] + d
        uf[i] = u
        pf[i] -= rate * u


def sgd_update(param, grad, velocity, lr, momentum, weight_decay, grad_scale):
    flat = [a.reshape(a.size) for a in (param, grad, velocity)]   # any shape -> (size,)
    launch_1d(_sgd_kernel, param.size, *flat, np.float32(lr), np.float32(momentum),
              np.float32(weight_decay), np.float32(grad_scale))
