"""Element-wise passes over gradient buffers: copy, add (accumulation over a batch), scale.

    copy_into(dst, src):   dst ← src
    add_into(acc, x):      acc ← acc + x
    scale_into(x, s):      x ← s·x

Used to sum the gradients of the images of a batch into contiguous buffers (the buffers MPI
reduces) and to scale a summed gradient, on any array shape (the arrays are walked flat).
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def copy_into(dst, src):
    df = dst.reshape(dst.size)
    sf = src.reshape(src.size)
    for i in prange(df.size):
        df[i] = sf[i]


@njit(parallel=True, cache=True)
def add_into(acc, x):
    af = acc.reshape(acc.size)
    xf = x.reshape(x.size)
    for i in prange(af.size):
        af[i] += xf[i]


@njit(parallel=True, cache=True)
def scale_into(x, s):
    xf = x.reshape(x.size)
    c = np.float32(s)
    for i in prange(xf.size):
        xf[i] *= c
