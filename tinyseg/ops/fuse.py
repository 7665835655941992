"""Ops of the model heads — FCN's skip fusion and DeepLab's pool5a and upsampling.

Same conventions as :mod:`tinyseg.ops`: public functions validate (messages name the argument),
allocate and run the kernel of the backend that owns the input; each forward returns
``(out, cache)`` and each backward takes ``(dout, cache)``. Readable NumPy twins with the same
signatures live in :mod:`tinyseg.reference`; the kernels in
``tinyseg/backend/{cpu,cuda}/fuse.py``.

Layouts: ``(N, H, W, C)`` float32.
"""
from __future__ import annotations

import numpy as np

from ..backend import backend_for
from ._checks import check_array

__all__ = [
    "crop_add_forward", "crop_add_backward", "scale_forward", "scale_backward",
    "avgpool3x3_forward", "avgpool3x3_backward", "interp_forward", "interp_backward",
]


def crop_add_forward(big, small):
    """FCN's fuse: ``out = big[:, :h, :w, :] + small`` with ``(h, w)`` = small's size.

    Parameters
    ----------
    big : (N, H', W', C) float32, ``H' >= h`` and ``W' >= w`` (the upsampled coarser scores)
    small : (N, h, w, C) float32 (the finer scores, e.g. ``score_pool4``)

    Returns
    -------
    out : (N, h, w, C) float32
    cache : ``big.shape`` for :func:`crop_add_backward`
    """
    big = check_array("big", big, 4)
    small = check_array("small", small, 4)
    N, h, w, C = small.shape
    if big.shape[0] != N or big.shape[3] != C or big.shape[1] < h or big.shape[2] < w:
        raise ValueError(f"`big` has shape {tuple(big.shape)}: it must cover `small` "
                         f"{tuple(small.shape)} (same N and C, at least {h}×{w})")
    be = backend_for(small)
    out = be.empty(small.shape, np.float32)
    be.crop_add(big, small, out)
    return out, tuple(big.shape)


def crop_add_backward(dout, cache):
    """Gradients of :func:`crop_add_forward`: ``(dbig, dsmall)``.

    ``dbig`` is ``dout`` zero-padded at the bottom/right to ``big``'s shape; ``dsmall`` *is*
    ``dout`` (not a copy: the caller must not modify it).
    """
    big_shape = cache
    dout = check_array("dout", dout, 4)
    be = backend_for(dout)
    dbig = be.zeros(big_shape, np.float32)
    be.uncrop(dout, dbig)
    return dbig, dout


def scale_forward(x, s: float):
    """``out = s · x`` with a fixed ``s`` (FCN-8s at-once's ``scale_pool4``/``scale_pool3``)."""
    x = check_array("x", x)
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    be.scale(x, np.float32(s), out)
    return out, float(s)


def scale_backward(dout, cache):
    """``dx = s · dout``."""
    return scale_forward(dout, cache)[0]


def avgpool3x3_forward(x):
    """3×3 average pooling, stride 1, padding 1, dividing by 9 everywhere (Caffe's AVE, and
    ``torch.nn.functional.avg_pool2d(x, 3, 1, 1)``): DeepLab-LargeFOV's ``pool5a``.

    Returns ``(out (N, H, W, C), None)``: backward needs nothing, the box filter with zero
    padding is symmetric, hence its own adjoint.
    """
    x = check_array("x", x, 4)
    be = backend_for(x)
    out = be.empty(x.shape, np.float32)
    be.box3x3(x, out)
    return out, None


def avgpool3x3_backward(dout, cache=None):
    """``dx = box3x3(dout)`` (see :func:`avgpool3x3_forward`)."""
    return avgpool3x3_forward(dout)[0]


def interp_forward(x, factor: int, size):
    """DeepLab's bilinear ×``factor`` upsampling, score ``i`` on output row ``factor·i``.

    ``out[n, y, x, c] = Σ_{i, j} x[n, i, j, c] · t(y − f·i) · t(x − f·j)``, ``t(d) = max(0, 1 − |d|/f)``:
    between two scores it interpolates linearly (Caffe's ``Interp``, ``align_corners=True``);
    past the last score it fades to 0 over ``f`` pixels, as a transposed convolution does.
    It equals the depthwise transposed convolution with the odd tent ``upsample_filt(2f − 1)``
    and a top-left crop of ``f − 1``.

    Parameters
    ----------
    x : (N, h, w, C) float32
    factor : int >= 1
    size : (H, W), the output size (the image's), each at most ``factor·h`` and ``factor·w``

    Returns
    -------
    out : (N, H, W, C) float32
    cache : ``(x.shape, factor)``
    """
    x = check_array("x", x, 4)
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"`factor` must be a positive integer, got {factor!r}")
    H, W = (int(v) for v in size)
    N, h, w, C = x.shape
    if not (1 <= H <= factor * h and 1 <= W <= factor * w):
        raise ValueError(f"`size` {(H, W)} must be within 1..{factor * h} × 1..{factor * w} "
                         f"for a {h}×{w} map upsampled ×{factor}")
    be = backend_for(x)
    out = be.empty((N, H, W, C), np.float32)
    be.interp(x, int(factor), out)
    return out, (tuple(x.shape), int(factor))


def interp_backward(dout, cache):
    """Input gradient of :func:`interp_forward` (the weights are fixed)."""
    x_shape, factor = cache
    dout = check_array("dout", dout, 4)
    if dout.shape[0] != x_shape[0] or dout.shape[3] != x_shape[3]:
        raise ValueError(f"`dout` has shape {tuple(dout.shape)}, expected (N, H, W, C) = "
                         f"({x_shape[0]}, H, W, {x_shape[3]})")
    be = backend_for(dout)
    dx = be.empty(x_shape, np.float32)
    be.interp_backward(dout, factor, dx)
    return dx
