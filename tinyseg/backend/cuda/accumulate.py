"""Element-wise passes over gradient buffers on the GPU: copy, add, scale (one thread per element).

    copy_into(dst, src):   dst ← src
    add_into(acc, x):      acc ← acc + x
    scale_into(x, s):      x ← s·x
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import launch_1d


@cuda.jit
def _copy_kernel(df, sf):
    i = cuda.grid(1)
    if i < df.shape[0]:
        df[i] = sf[i]


@cuda.jit
def _add_kernel(af, xf):
    i = cuda.grid(1)
    if i < af.shape[0]:
        af[i] += xf[i]


@cuda.jit
def _scale_kernel(xf, c):
    i = cuda.grid(1)
    if i < xf.shape[0]:
        xf[i] *= c


def copy_into(dst, src):
    launch_1d(_copy_kernel, dst.size, dst.reshape(dst.size), src.reshape(src.size))


def add_into(acc, x):
    launch_1d(_add_kernel, acc.size, acc.reshape(acc.size), x.reshape(x.size))


def scale_into(x, s):
    launch_1d(_scale_kernel, x.size, x.reshape(x.size), np.float32(s))
