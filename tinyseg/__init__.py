"""tinyseg: FCN-32s semantic segmentation and a dense CRF, written from scratch in NumPy and Numba."""
from ._version import __version__
