"""tinyseg: FCN-32s semantic segmentation and a dense CRF, written from scratch in NumPy and Numba."""
import os as _os

# Numba's OpenMP workers otherwise spin after each parallel loop and fight OpenBLAS's threads for
# the cores while a convolution alternates im2col (Numba) and GEMM (BLAS) block by block; passive
# waiting made the blocked convolution several times faster on 2 cores. Set before Numba starts
# its thread pool; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._malloc import keep_freed_memory as _keep_freed_memory  # noqa: E402

_keep_freed_memory()   # reuse freed activations instead of page-faulting them in each step

from ._version import __version__  # noqa: E402
from . import _moved  # noqa: E402

_moved.install()        # old module paths (tinyseg.optim, tinyseg.model, ...) still import, with a warning

from . import ops, reference  # noqa: E402
from .ops.upsampling import bilinear_upsample_weights, get_kernel_size, upsample, upsample_filt  # noqa: E402
from . import crf, data, layers, metrics, models, training, weights  # noqa: E402
from .crf import dense_crf  # noqa: E402
from .models import DeepLabLargeFOV, FCN8s, FCN16s, FCN32s, FCN32sConfig  # noqa: E402
from .training import Adam, AdamConfig, TrainConfig, Trainer  # noqa: E402

__all__ = [
    "__version__", "get_kernel_size", "upsample_filt", "bilinear_upsample_weights", "upsample",
    "FCN32s", "FCN32sConfig", "FCN16s", "FCN8s", "DeepLabLargeFOV", "models",
    "Adam", "AdamConfig", "Trainer", "TrainConfig", "dense_crf",
    "ops", "reference", "layers", "crf", "data", "metrics", "weights", "training",
]

__getattr__ = _moved.module_getattr(__name__)   # tinyseg.optim, tinyseg.checkpoint, ... (moved)
