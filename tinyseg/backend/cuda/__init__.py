"""The CUDA backend: ``numba.cuda`` kernels on device arrays, behind the same seam as the CPU's.

Same names, arguments and semantics as :mod:`tinyseg.backend.cpu`; each function here is a host
wrapper that computes a launch grid and launches ``@cuda.jit`` kernels that only compute (no
validation, allocation or raising inside kernels). Arrays are ``numba.cuda`` device arrays, so
data stays on the GPU between layers; :func:`asarray` / :func:`to_numpy` cross to and from the host.

Convolutions are an im2col kernel, a hand-written shared-memory tiled GEMM
(:mod:`tinyseg.backend.cuda.matmul`) and a col2im kernel; everything else is one thread per
output element. The dense CRF's CUDA kernels belong to the CRF (:mod:`tinyseg.crf.cuda`).

The module imports without a GPU; :func:`check_available` (called by
:func:`tinyseg.backend.get_backend`) says what is missing. Under ``NUMBA_ENABLE_CUDASIM=1`` the
whole backend runs in numba's CUDA simulator (slowly, for tests).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from ._launch import SIMULATOR
from .accumulate import add_into, copy_into, scale_into
from .adam import adam_update
from .conv import (column_sums, conv2d_backward, conv2d_backward_by_kernel_rows, conv2d_forward,
                   conv2d_forward_blocks, conv2d_forward_by_kernel_rows, conv2d_weight_grad_blocks,
                   fill)
from .cropping import crop, uncrop
from .elementwise import dropout_backward, dropout_forward, relu_backward, relu_forward
from .fuse import box3x3, crop_add, interp, interp_backward, scale
from .loss import softmax, softmax_cross_entropy
from .pooling import (maxpool2x2_backward, maxpool2x2_forward, maxpool3x3_backward,
                      maxpool3x3_forward)
from .sgd import sgd_update
from .matmul import gemm
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

name = "cuda"

# The class of this backend's arrays: the simulator's stand-ins, or numba's device arrays (not
# any object with ``__cuda_array_interface__``: a torch tensor is not ours to reshape).
if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _DEVICE_ARRAY_TYPE
else:
    from numba.cuda.cudadrv.devicearray import DeviceNDArrayBase as _DEVICE_ARRAY_TYPE

# Bytes of the im2col block buffer a convolution may use (ops sizes ``col`` from it). Larger than
# the CPU's: GPU memory is plentiful and bigger blocks mean fewer, fuller GEMM launches. At
# 375×500 conv1_2 needs 432 MB for the whole image, so it runs in two blocks.
CONV_WORKSPACE_BYTES = 256 * 2**20

__all__ = [
    "name", "CONV_WORKSPACE_BYTES", "empty", "zeros", "asarray", "to_numpy", "owns",
    "synchronize", "check_available", "is_simulator", "gemm", "crop", "uncrop",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_blocks", "conv2d_weight_grad_blocks",
    "conv2d_forward_by_kernel_rows", "conv2d_backward_by_kernel_rows",
    "maxpool2x2_forward", "maxpool2x2_backward",
    "maxpool3x3_forward", "maxpool3x3_backward", "winograd_weights", "conv2d_winograd", "conv2d_winograd_one_block",
    "parallel_workers", "WINOGRAD_BLOCK_BYTES", "winograd_weight_grad", "winograd_filter_grad", "column_sums",
    "relu_forward", "relu_backward", "dropout_forward", "dropout_backward",
    "conv_transpose2d_forward", "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weights", "conv_transpose2d_depthwise_forward",
    "conv_transpose2d_depthwise_backward_input", "softmax", "softmax_cross_entropy",
    "adam_update", "sgd_update", "copy_into", "add_into", "scale_into",
    "crop_add", "scale", "box3x3", "interp", "interp_backward",
]


def is_simulator() -> bool:
    """True when numba's CUDA simulator stands in for a GPU (``NUMBA_ENABLE_CUDASIM=1``)."""
    return bool(numba.config.ENABLE_CUDASIM)


def check_available() -> None:
    """Raise ``RuntimeError`` unless a CUDA GPU (or the simulator) can run the kernels.

    ``numba.cuda.is_available()`` is true under the simulator, so the simulator is detected
    explicitly: with it, nothing is checked; without it, a usable GPU and driver are required.
    """
    if is_simulator():
        return
    try:
        ok = cuda.is_available()
    except Exception:  # a broken driver install can raise instead of answering
        ok = False
    if not ok:
        raise RuntimeError(
            "the 'cuda' backend needs an NVIDIA GPU with a working CUDA driver, and numba found "
            "none (numba.cuda.is_available() is False). Use the 'cpu' backend (--device cpu), or "
            "set NUMBA_ENABLE_CUDASIM=1 before starting Python to run the CUDA kernels in numba's "
            "(slow) simulator.")
    try:
        from numba.cuda.cudadrv import nvvm
        compiler = nvvm.is_available()
    except Exception:
        compiler = False
    if not compiler:
        raise RuntimeError(
            "the 'cuda' backend found a GPU but not libNVVM, the CUDA toolkit's compiler that numba "
            "needs to build the kernels: install it (e.g. `pip install numba-cuda[cu12]`, or the "
            "CUDA toolkit with CUDA_HOME set); `numba -s` shows what numba finds.")


def empty(shape, dtype=np.float32):
    """An uninitialised device array."""
    return cuda.device_array(shape, dtype)


def zeros(shape, dtype=np.float32):
    """A device array of zeros."""
    out = cuda.device_array(shape, dtype)
    if out.size:
        fill(out, 0)
    return out


def asarray(array):
    """A device array: a device array is returned as is, a host array is copied to the GPU."""
    if owns(array):
        return array
    return cuda.to_device(np.ascontiguousarray(array))


def to_numpy(array):
    """A host NumPy copy of a device array (a NumPy array is returned as is)."""
    if owns(array):
        return array.copy_to_host()
    return np.asarray(array)


def owns(array) -> bool:
    """Is ``array`` a numba.cuda device array (the simulator's fake device arrays included)?"""
    return isinstance(array, _DEVICE_ARRAY_TYPE)


def synchronize() -> None:
    """Wait until every launched kernel has finished (for timing)."""
    cuda.synchronize()


from ..._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # names that moved to the CRF (see tinyseg._moved)
