"""Adam, TensorFlow's formulation, as one fused in-place pass.

With step ``t`` (1-based) and ``lr_t = lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ)`` (computed by the caller):

    m ← β1·m + (1 − β1)·g
    v ← β2·v + (1 − β2)·g²
    θ ← θ − lr_t · m / (sqrt(v) + ε)

Each element is read and written once: four arrays in, three out.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    pf = param.reshape(param.size)
    gf = grad.reshape(grad.size)
    mf = m.reshape(m.size)
    vf = v.reshape(v.size)
    b1 = np.float32(beta1)
    b2 = np.float32(beta2)
    one_b1 = np.float32(1.0 - beta1)
    one_b2 = np.float32(1.0 - beta2)
    lr = np.float32(lr_t)
    e = np.float32(eps)
    for i in prange(pf.size):
        g = gf[i]
        mi = b1 * mf[i] + one_b1 * g
        vi = b2 * vf[i] + one_b2 * (g * g)
        mf[i] = mi
        vf[i] = vi
        pf[i] -= lr * mi / (np.sqrt(vi) + e)
