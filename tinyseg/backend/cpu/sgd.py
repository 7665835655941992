"""SGD with momentum and weight decay (PyTorch's formulation), as one fused in-place pass.

With the raw gradient ``g`` (e.g. summed over a batch and over ranks) and ``grad_scale`` ``s``
(1, or 1/pixels for a mean loss):

    d ← s·g + λ·θ            (weight decay λ: the gradient of λ/2·‖θ‖²)
    u ← μ·u + d              (momentum μ; u starts at 0, so the first step is u = d)
    θ ← θ − lr·u

which is ``torch.optim.SGD(lr, momentum=μ, weight_decay=λ, dampening=0, nesterov=False)``.
Caffe (the FCN recipe) folds lr into u instead (u ← μ·u + lr·d, θ ← θ − u); the two agree
while lr is constant. Each element is read and written once: four arrays in, two out.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def sgd_update(param, grad, velocity, lr, momentum, weight_decay, grad_scale):
    pf = param.reshape(param.size)
    gf = grad.reshape(grad.size)
    uf = velocity.reshape(velocity.size)
    rate = np.float32(lr)
    mu = np.float32(momentum)
    wd = np.float32(weight_decay)
    s = np.float32(grad_scale)
    for i in prange(pf.size):
        d = s * gf[i] + wd * pf[i]
        u = mu * uf[i] + d
        uf[i] = u
        pf[i] -= rate * u
