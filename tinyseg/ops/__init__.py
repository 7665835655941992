"""The public operations: validate, allocate, run the backend's kernel, return ``(out, cache)``.

Each forward returns its output and a ``cache`` holding what backward needs; each backward takes
``(dout, cache)`` and returns the gradients (CS231n's convention). The backend is the one that
owns the input array (NumPy → ``cpu``, device arrays → ``cuda``), so data stays where it is.
Readable NumPy twins with the same signatures live in :mod:`tinyseg.reference`.

Layouts: activations ``(N, H, W, C)`` float32; conv kernels ``(kh, kw, c_in, c_out)``;
transposed-conv kernels ``(k, k, c_out, c_in)`` (TensorFlow's); biases ``(c_out,)``.

One module per family: :mod:`~tinyseg.ops.conv` (convolution with dilation, by im2col or
Winograd), :mod:`~tinyseg.ops.transposed` (transposed convolutions), :mod:`~tinyseg.ops.pooling` (2×2 and 3×3 max pooling),
:mod:`~tinyseg.ops.activations` (ReLU, dropout), :mod:`~tinyseg.ops.loss` (softmax, cross-entropy),
:mod:`~tinyseg.ops.fuse` (the model heads' crop-and-add, scale, DeepLab's pool5a and interp),
:mod:`~tinyseg.ops.upsampling` (bilinear upsampling by a fixed transposed convolution), the
updates :mod:`~tinyseg.ops.adam`, :mod:`~tinyseg.ops.sgd` and :mod:`~tinyseg.ops.accumulate`
(copy, add, scale buffers in place); all are re-exported here (``from tinyseg import ops;
ops.conv2d_forward(...)``).
"""
from ._checks import check_array
from .accumulate import add_into, copy_into, scale_into
from .activations import dropout_backward, dropout_forward, relu_backward, relu_forward
from .adam import adam_lr_t, adam_update
from .conv import conv2d_backward, conv2d_forward, conv_algorithm, conv_rows_per_block
from .fuse import (avgpool3x3_backward, avgpool3x3_forward, crop_add_backward, crop_add_forward,
                   interp_backward, interp_forward, scale_backward, scale_forward)
from .transposed import (
    conv_transpose2d_backward,
    conv_transpose2d_depthwise_backward,
    conv_transpose2d_depthwise_forward,
    conv_transpose2d_forward,
)
from .loss import softmax, softmax_cross_entropy
from .pooling import maxpool3x3_backward, maxpool3x3_forward, maxpool_backward, maxpool_forward
from .sgd import sgd_update
from .upsampling import bilinear_upsample_weights, get_kernel_size, upsample, upsample_filt

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv_algorithm", "conv_rows_per_block",
    "maxpool_forward", "maxpool_backward", "maxpool3x3_forward", "maxpool3x3_backward",
    "relu_forward", "relu_backward",
    "dropout_forward", "dropout_backward",
    "conv_transpose2d_forward", "conv_transpose2d_backward",
    "conv_transpose2d_depthwise_forward", "conv_transpose2d_depthwise_backward",
    "softmax", "softmax_cross_entropy",
    "crop_add_forward", "crop_add_backward", "scale_forward", "scale_backward",
    "avgpool3x3_forward", "avgpool3x3_backward", "interp_forward", "interp_backward",
    "get_kernel_size", "upsample_filt", "bilinear_upsample_weights", "upsample",
    "adam_update", "adam_lr_t", "sgd_update", "copy_into", "add_into", "scale_into", "check_array",
]
