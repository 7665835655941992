"""The CPU backend: Numba ``@njit`` kernels on NumPy arrays.

Every kernel writes into preallocated outputs and trusts its inputs (C-contiguous float32 NHWC
activations, ``(kh, kw, c_in, c_out)`` kernels); the wrappers in :mod:`tinyseg.ops` validate and
allocate. The CUDA backend (:mod:`tinyseg.backend.cuda`) provides the same names with the same
arguments on device arrays.
"""
import numpy as np

from .accumulate import add_into, copy_into, scale_into
from .adam import adam_update
from .conv import (column_sums, conv2d_backward, conv2d_forward, conv2d_forward_blocks,
                   conv2d_weight_grad_blocks)
from .elementwise import dropout_backward, dropout_forward, relu_backward, relu_forward
from .fuse import box3x3, crop_add, interp, interp_backward, scale
from .loss import softmax, softmax_cross_entropy
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
from .winograd import WINOGRAD_BLOCK_BYTES, conv2d_winograd, parallel_workers, winograd_weights
from .winograd_grad import winograd_filter_grad, winograd_weight_grad

name = "cpu"

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


def crop(x, H, W):
    """A contiguous copy of the top-left ``H × W`` of an ``(N, H', W', C)`` array."""
    return np.ascontiguousarray(x[:, :H, :W, :])


def uncrop(dout, dx):
    """Write ``dout (N, H, W, C)`` into the top-left of the zeroed ``dx (N, H', W', C)``."""
    dx[:, :dout.shape[1], :dout.shape[2], :] = dout


def synchronize():
    """Nothing to wait for on the CPU; the CUDA backend waits for its stream here."""


from ..._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # names that moved to the CRF (see tinyseg._moved)
