"""Bilinear upsampling by a transposed convolution, as in the post.

The post builds the weights of a transposed convolution ("deconvolution") so that upsampling a
coarse score map by an integer ``factor`` is exactly bilinear interpolation:

* ``get_kernel_size(f) = 2f - f mod 2``  (4 for f=2, 5 for f=3, 64 for f=32);
* ``upsample_filt(k)[i, j] = (1 - |i - c| / s) (1 - |j - c| / s)`` with ``s = (k + 1) // 2`` and
  centre ``c = s - 1`` (odd k) or ``s - 0.5`` (even k), a separable tent;
* ``bilinear_upsample_weights(f, C)`` puts that tent on the diagonal of a ``(k, k, C, C)`` kernel,
  so every class channel is upsampled independently.

With TensorFlow's ``conv2d_transpose(..., strides=f, padding='SAME')`` and output size ``f·H × f·W``,
output pixel ``y`` receives input pixel ``i`` with weight ``1 - |(y + ½)/f - ½ - i|``: bilinear
interpolation at input coordinate ``(y + ½)/f - ½`` with zeros outside the image. That is exactly
what ``skimage.transform.rescale(x, f, order=1, mode='constant', cval=0)`` computes, and the tests
check it over the whole image for every factor 2..32.
"""
from __future__ import annotations

import numpy as np

__all__ = ["get_kernel_size", "upsample_filt", "bilinear_upsample_weights", "upsample"]


def get_kernel_size(factor: int) -> int:
    """Kernel size of the transposed convolution that upsamples by ``factor``: ``2f - f mod 2``."""
    factor = _check_factor(factor)
    return 2 * factor - factor % 2


def upsample_filt(size: int) -> np.ndarray:
    """The 2-D bilinear (tent) kernel of shape ``(size, size)``, float64, as in the post."""
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"`size` must be a positive integer, got {size!r}")
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


def bilinear_upsample_weights(factor: int, number_of_classes: int) -> np.ndarray:
    """Transposed-convolution weights ``(k, k, C, C)`` float32 with the bilinear tent on the diagonal.

    Layout is TensorFlow's ``conv2d_transpose`` filter layout ``(kh, kw, c_out, c_in)``; with the tent
    on the diagonal the two channel axes are interchangeable.
    """
    if (isinstance(number_of_classes, (bool, np.bool_))
            or not isinstance(number_of_classes, (int, np.integer)) or number_of_classes < 1):
        raise ValueError(f"`number_of_classes` must be a positive integer, got {number_of_classes!r}")
    filter_size = get_kernel_size(factor)
    weights = np.zeros((filter_size, filter_size, number_of_classes, number_of_classes),
                       dtype=np.float32)
    upsample_kernel = upsample_filt(filter_size)
    for i in range(number_of_classes):
        weights[:, :, i, i] = upsample_kernel
    return weights


def upsample(x, factor: int):
    """Upsample an ``N×H×W×C`` float32 array by ``factor`` → ``N×fH×fW×C`` (bilinear, zeros outside).

    This is the post's transposed convolution with ``bilinear_upsample_weights``; because those
    weights are diagonal it runs the per-channel (depthwise) transposed-convolution kernel, which
    gives the same result as the full ``(k, k, C, C)`` kernel at ``1/C`` of the cost.
    """
    from .transposed import conv_transpose2d_depthwise_forward

    factor = _check_factor(factor)
    kernel = upsample_filt(get_kernel_size(factor)).astype(np.float32)
    out, _ = conv_transpose2d_depthwise_forward(x, kernel, factor)
    return out


def _check_factor(factor) -> int:
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, np.integer)):
        raise TypeError(f"`factor` must be an integer, got {type(factor).__name__}")
    if factor < 1:
        raise ValueError(f"`factor` must be a positive integer, got {factor}")
    return int(factor)
