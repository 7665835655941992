"""Top-left crops of NHWC arrays and their adjoint (the CUDA backend's ``cropping.py`` on NumPy)."""
import numpy as np


def crop(x, H, W):
    """A contiguous copy of the top-left ``H × W`` of an ``(N, H', W', C)`` array."""
    return np.ascontiguousarray(x[:, :H, :W, :])


def uncrop(dout, dx):
    """Write ``dout (N, H, W, C)`` into the top-left of the zeroed ``dx (N, H', W', C)``."""
    dx[:, :dout.shape[1], :dout.shape[2], :] = dout
