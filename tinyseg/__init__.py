"""tinyseg: FCN-32s semantic segmentation and a dense CRF, written from scratch in NumPy and Numba."""
import os as _os

# Numba's OpenMP workers otherwise spin after each parallel loop and fight OpenBLAS's threads for
# the cores while a convolution alternates im2col (Numba) and GEMM (BLAS) block by block; passive
# waiting made the blocked convolution several times faster on 2 cores. Set before Numba starts
# its thread pool; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__  # noqa: E402
from .upsampling import bilinear_upsample_weights, get_kernel_size, upsample, upsample_filt
from . import ops, reference
