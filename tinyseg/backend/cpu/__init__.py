"""The CPU backend: Numba ``@njit`` kernels on NumPy arrays.

Every kernel writes into preallocated outputs and trusts its inputs (C-contiguous float32 NHWC
activations, ``(kh, kw, c_in, c_out)`` kernels); the wrappers in :mod:`tinyseg.ops` validate and
allocate. The CUDA backend (:mod:`tinyseg.backend.cuda`) provides the same names with the same
arguments on device arrays.
"""
import numpy as np

from .accumulate import add_into, copy_into, scale_into
from .adam import adam_update
from .conv import (column_sums, conv2d_backward, conv2d_backward_by_kernel_rows, conv2d_forward,
                   conv2d_forward_blocks, conv2d_forward_by_kernel_rows, conv2d_weight_grad_blocks)
from .cropping import crop, uncrop
from .elementwise import dropout_backward, dropout_forward, relu_backward, relu_forward
from .fuse import box3x3, crop_add, interp, interp_backward, scale
from .loss import softmax, softmax_cross_entropy
from .matmul import gemm
from .pooling import (maxpool2x2_backward, maxpool2x2_forward, maxpool3x3_backward,
                      maxpool3x3_forward)
from .sgd import sgd_update
from .transposed import (
    conv_transpose2d_backward_input,
    conv_transpose2d_backward_weights,
    conv_transpose2d_depthwise_backward_input,
    conv_transpose2d_depthwise_forward,
    conv_transpose2d_forward,
)
from .winograd import (WINOGRAD_BLOCK_BYTES, conv2d_winograd, conv2d_winograd_one_block, parallel_workers,
                       winograd_weights)
from .winograd_grad import winograd_filter_grad, winograd_weight_grad

name = "cpu"

__all__ = [
    "name", "CONV_WORKSPACE_BYTES", "empty", "zeros", "asarray", "to_numpy", "owns",
    "synchronize", "check_available", "is_simulator", "gemm", "crop", "uncrop",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_blocks", "conv2d_weight_grad_blocks",
    "conv2d_forward_by_kernel_rows", "conv2d_backward_by_kernel_rows",
    "maxpool2x2_forward", "maxpool2x2_backward", "maxpool3x3_forward", "maxpool3x3_backward",
    "winograd_weights", "conv2d_winograd", "conv2d_winograd_one_block", "parallel_workers", "WINOGRAD_BLOCK_BYTES",
    "winograd_weight_grad", "winograd_filter_grad", "column_sums",
    "relu_forward", "relu_backward", "dropout_forward", "dropout_backward",
    "conv_transpose2d_forward", "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weights", "conv_transpose2d_depthwise_forward",
    "conv_transpose2d_depthwise_backward_input", "softmax", "softmax_cross_entropy",
    "adam_update", "sgd_update", "copy_into", "add_into", "scale_into",
    "crop_add", "scale", "box3x3", "interp", "interp_backward",
]

# Bytes of the im2col block buffer a convolution may use (see tinyseg.backend.cpu.conv).
CONV_WORKSPACE_BYTES = 8 * 2**20


def empty(shape, dtype=np.float32):
    return np.empty(shape, dtype)


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype)


def asarray(array):
    """A C-contiguous NumPy copy/view of ``array`` (a host array)."""
    return np.ascontiguousarray(array)


def to_numpy(array):
    return np.asarray(array)


def owns(array) -> bool:
    return isinstance(array, np.ndarray)


def synchronize():
    """Nothing to wait for on the CPU; the CUDA backend waits for its stream here."""


def is_simulator() -> bool:
    """False: the CPU backend is never numba's CUDA simulator (the CUDA backend's question)."""
    return False


def check_available() -> None:
    """The CPU backend is always available (the CUDA backend raises here without a GPU)."""


from ..._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # names that moved to the CRF (see tinyseg._moved)
