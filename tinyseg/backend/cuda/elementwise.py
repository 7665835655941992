"""ReLU and inverted dropout on the GPU: one thread per element of the flattened array.

ReLU:     out = max(x, 0);            dx = dout · [out > 0]
Dropout:  out = x · mask / (1 - p);   dx = dout · mask / (1 - p)

Element ``i`` is kept when ``uniform(seed, i) >= p``, with the same counter-based SplitMix64 hash
as :func:`tinyseg.backend.cpu.elementwise.uniform_from_counter`, so a seed gives a mask bitwise
identical to the CPU's.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, uint64

from ._launch import launch_1d, wrapping_uint64


@cuda.jit(device=True)
def uniform_from_counter(seed, i):
    """SplitMix64 of ``seed·2⁶⁴/φ + i``, top 24 bits as a float in [0, 1) (the CPU's formula)."""
    z = uint64(seed) * uint64(0x9E3779B97F4A7C15) + uint64(i) * uint64(0xBF58476D1CE4E5B9) \
        + uint64(0x94D049BB133111EB)
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    z = z ^ (z >> uint64(31))
    return np.float32(z >> uint64(40)) * np.float32(1.0 / 16777216.0)


@cuda.jit
def _relu_forward_kernel(xf, of):
    i = cuda.grid(1)
    if i < xf.shape[0]:
        v = xf[i]
        of[i] = v if v > 0 else np.float32(0.0)


@cuda.jit
def _relu_backward_kernel(of, gf, df):
    i = cuda.grid(1)
    if i < of.shape[0]:
        df[i] = gf[i] if of[i] > 0 else np.float32(0.0)


@cuda.jit
def _dropout_forward_kernel(xf, p, seed, scale, of, mf):
    i = cuda.grid(1)
    if i < xf.shape[0]:
        keep = uniform_from_counter(seed, i) >= p
        mf[i] = 1 if keep else 0
        of[i] = xf[i] * scale if keep else np.float32(0.0)


@cuda.jit
def _dropout_backward_kernel(gf, mf, scale, df):
    i = cuda.grid(1)
    if i < gf.shape[0]:
        df[i] = gf[i] * scale if mf[i] != 0 else np.float32(0.0)


def _flat(a):
    return a.reshape(a.size)                # any C-contiguous shape -> (size,)


def relu_forward(x, out):
    launch_1d(_relu_forward_kernel, x.size, _flat(x), _flat(out))


def relu_backward(out, dout, dx):
    launch_1d(_relu_backward_kernel, out.size, _flat(out), _flat(dout), _flat(dx))


def dropout_forward(x, p, seed, out, mask):
    scale = np.float32(1.0 / (1.0 - p))
    with wrapping_uint64():
        launch_1d(_dropout_forward_kernel, x.size, _flat(x), np.float32(p), np.uint64(seed),
                  scale, _flat(out), _flat(mask))


def dropout_backward(dout, mask, p, dx):
    scale = np.float32(1.0 / (1.0 - p))
    launch_1d(_dropout_backward_kernel, dout.size, _flat(dout), _flat(mask), scale, _flat(dx))
