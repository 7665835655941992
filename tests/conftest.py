import glob
import os
import shutil

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# ----------------------------------------------------------------------------- CUDA simulator
# The CUDA backend's tests (marker `cuda`) run everywhere: without a GPU they use numba's CUDA
# simulator, which must be switched on before numba.cuda is first imported (numba reads
# NUMBA_ENABLE_CUDASIM once). conftest.py is imported before any test module, so this is the place.
# A value the user set (0 or 1) is kept; on a machine with an NVIDIA GPU the real device is used.
def _nvidia_gpu_present() -> bool:
    """A device node or the driver's nvidia-smi: cheap signs of a GPU, without importing numba."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _nvidia_gpu_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
