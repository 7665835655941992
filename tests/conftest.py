import glob
import importlib
import os
import shutil

import numpy as np
import pytest
from hypothesis import settings

# Property tests (tests/test_properties.py): no deadline (the first example compiles kernels), no
# example database written into the working tree, a failure printed with the blob that replays
# it (@reproduce_failure); each test sets its own number of examples.
settings.register_profile("tinyseg", deadline=None, database=None, print_blob=True)
settings.load_profile("tinyseg")


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


# ----------------------------------------------------------------------------- oracles
# PyTorch, pydensecrf, mpi4py with its mpiexec and tensorboardX are the independent
# implementations some tests compare with. Locally a missing one skips those tests; under CI=true
# (set by every CI service) it fails them, so a CI run whose install lost an oracle cannot pass.
def in_ci() -> bool:
    """True when the environment variable CI is set to a true value (``true``, ``1``, ``yes``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_oracle(what: str, install: str):
    """Skip (locally) or fail (under CI=true) the running test: ``what`` is not available.

    Works at module level too (a test module that needs the oracle throughout)."""
    message = f"{what} is not available ({install})"
    if in_ci():
        pytest.fail(f"CI=true: {message}; CI must run every comparison with an oracle",
                    pytrace=False)
    pytest.skip(message, allow_module_level=True)


_INSTALL = {
    "torch": "pip install torch==2.13.0",
    "pydensecrf": "pip install pydensecrf2",
    "mpi4py": "pip install 'tinyseg[mpi]'",
    "tensorboardX": "pip install 'tinyseg[tensorboard]'",
}


def require(module: str, install: str | None = None):
    """Import ``module`` and return it; when it cannot be imported, :func:`missing_oracle`.

    The local-skip/CI-fail twin of ``pytest.importorskip``: ``torch = require("torch")``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        missing_oracle(f"module {module!r}", install or _INSTALL.get(top, f"pip install {top}"))
