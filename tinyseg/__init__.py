"""tinyseg: FCN-32s semantic segmentation and a dense CRF, written from scratch in NumPy and Numba.

Importing tinyseg changes nothing in the process; the command line and the trainer tune the
allocator and OpenMP (:func:`tinyseg.tuning.tune_process`, opt in with ``TINYSEG_TUNE=1``).
"""
import os as _os

from ._version import __version__
from . import _moved

_moved.install()        # old module paths (tinyseg.optim, tinyseg.model, ...) still import, with a warning

if _os.environ.get("TINYSEG_TUNE") == "1":      # opt in to the command line's process tuning
    from .tuning import tune_process as _tune_process

    _tune_process()

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
