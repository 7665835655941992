"""ReLU and inverted dropout: one pass over the flattened array, in parallel.

ReLU:     out = max(x, 0);            dx = dout · [out > 0]
Dropout:  out = x · mask / (1 - p);   dx = dout · mask / (1 - p)

The dropout mask is drawn from a counter-based generator: element ``i`` is kept when
``uniform(seed, i) >= p``, where ``uniform`` hashes the pair with SplitMix64 (see
:func:`uniform_from_counter`). No generator state is carried from call to call, so the same
``seed`` gives the same mask on any backend and in any thread order.
"""
import numpy as np
from numba import njit, prange, uint64


@njit(cache=True, inline="always")
def uniform_from_counter(seed, i):
    """SplitMix64 of ``seed·2⁶⁴/φ + i``, top 24 bits as a float in [0, 1)."""
    z = uint64(seed) * uint64(0x9E3779B97F4A7C15) + uint64(i) * uint64(0xBF58476D1CE4E5B9) \
        + uint64(0x94D049BB133111EB)
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    z = z ^ (z >> uint64(31))
    return np.float32(z >> uint64(40)) * np.float32(1.0 / 16777216.0)


@njit(parallel=True, cache=True)
def relu_forward(x, out):
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    for i in prange(xf.size):
        v = xf[i]
        of[i] = np.float32(0.0) if v < 0 else v      # NaN passes through, as in np.maximum


@njit(parallel=True, cache=True)
def relu_backward(out, dout, dx):
    of = out.reshape(out.size)
    gf = dout.reshape(dout.size)
    df = dx.reshape(dx.size)
    for i in prange(of.size):
        df[i] = gf[i] if of[i] > 0 else np.float32(0.0)


@njit(parallel=True, cache=True)
def dropout_forward(x, p, seed, out, mask):
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    mf = mask.reshape(mask.size)
    scale = np.float32(1.0 / (1.0 - p))
    for i in prange(xf.size):
        keep = uniform_from_counter(seed, i) >= p
        mf[i] = 1 if keep else 0
        of[i] = xf[i] * scale if keep else np.float32(0.0)


@njit(parallel=True, cache=True)
def dropout_backward(dout, mask, p, dx):
    gf = dout.reshape(dout.size)
    mf = mask.reshape(mask.size)
    df = dx.reshape(dx.size)
    scale = np.float32(1.0 / (1.0 - p))
    for i in prange(gf.size):
        df[i] = gf[i] * scale if mf[i] != 0 else np.float32(0.0)
