"""Element-wise ops with a backward: ReLU and inverted dropout."""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array, check_same_shape


def relu_forward(x):
    """``out = max(x, 0)``, any shape."""
    x = check_array("x", x)
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    be.relu_forward(x, out)
    return out, out


def relu_backward(dout, cache):
    """``dx = dout · [out > 0]``."""
    out = cache
    dout = check_array("dout", dout)
    check_same_shape("dout", dout, "the ReLU output", out)
    be = backend_for(out)
    dx = be.empty(out.shape, np.float32)
    be.relu_backward(out, dout, dx)
    return dx


def dropout_forward(x, p: float, seed: int):
    """Inverted dropout: keep each element with probability ``1 - p`` and scale it by ``1/(1 - p)``.

    The mask is a pure function of ``(seed, element index)`` (a counter-based hash), so a given
    seed reproduces the same mask on every backend; use a new seed for every training step.
    """
    x = check_array("x", x)
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"`p` must be in [0, 1), got {p}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    mask = be.empty(x.shape, np.uint8)
    be.dropout_forward(x, np.float32(p), np.uint64(seed), out, mask)
    return out, (mask, float(p))


def dropout_backward(dout, cache):
    """``dx = dout · mask / (1 - p)`` with the forward's mask."""
    mask, p = cache
    dout = check_array("dout", dout)
    check_same_shape("dout", dout, "the dropout mask", mask)
    be = backend_for(dout)
    dx = be.empty(dout.shape, np.float32)
    be.dropout_backward(dout, mask, np.float32(p), dx)
    return dx


