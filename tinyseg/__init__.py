"""tinyseg: FCN-32s semantic segmentation and a dense CRF, written from scratch in NumPy and Numba."""
from ._version import __version__
from .upsampling import bilinear_upsample_weights, get_kernel_size, upsample, upsample_filt
from . import ops, reference
