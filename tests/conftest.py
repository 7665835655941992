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

# Numba's OpenMP workers spin after each parallel loop unless OMP_WAIT_POLICY=PASSIVE is set before
# they start. The command line and the Trainer set it (tinyseg.tuning), but in the test process
# an earlier test has started the workers by then: set it here, as a tuned process has it. Without
# it a Trainer or command-line test costs tens of times its CPU time on 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


@pytest.fixture(scope="module")
def gpu():
    """The CUDA backend (raises if neither a GPU nor the simulator is present)."""
    from tinyseg.backend import get_backend

    return get_backend("cuda")


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


# ----------------------------------------------------------------------------- the quick subset
# `python -m pytest -m "not slow"` is the edit-test loop's subset. Besides the tests marked slow
# in their modules (trainings that measure accuracy), these each cost about 2 CPU-seconds or
# more (finite differences in float64, subprocesses, MPI jobs, the CUDA simulator); they are
# marked here, by function (every parametrisation), so their modules stay as they are.
SLOW = {
    "test_walkthrough_crf_rnn.py": {"test_crf_rnn_walkthrough_checks_its_derivation_and_writes_the_figure"},
    "test_walkthrough.py": {"test_walkthrough_runs_at_a_tiny_width_and_writes_its_figures"},
    "test_winograd.py": {"test_winograd_dw_finite_differences", "test_winograd_dx_finite_differences",
                         "test_cuda_winograd_matches_cpu", "test_cuda_one_block_matches_cpu"},
    "test_cuda_compiles.py": {"test_every_cuda_kernel_compiles_for_sm90"},
    "test_trainable_crf.py": {"test_fast_kernels_in_float64_match_finite_differences"},
    "test_cuda_backend.py": {"test_fcn32s_training_step_on_cuda_matches_cpu"},
    "test_mpi.py": {"test_two_rank_evaluation_equals_serial_exactly",
                    "test_two_ranks_end_with_the_parameters_of_one_process",
                    "test_killing_one_rank_ends_the_job_with_a_clear_error_and_the_checkpoint_loads"},
    "test_distributed.py": {"test_two_ranks_sum_buckets_and_agree_on_errors"},
    "test_crf_sparse_filters.py": {"test_kdtree_finds_exactly_the_neighbours",
                                   "test_cluster_filter_matches_its_numpy_twin"},
    "test_dilated_conv.py": {"test_dilated_conv_kernel_backward_finite_differences",
                             "test_cuda_dilated_conv_matches_cpu"},
    "test_gradients.py": {"test_conv_transpose2d_backward_finite_differences",
                          "test_depthwise_conv_transpose2d_backward_finite_differences",
                          "test_maxpool_backward_finite_differences"},
    "test_cuda_trainable_crf.py": {"test_cuda_recurrence_matches_cpu"},
    "test_cuda_crf.py": {"test_dense_crf_on_the_cuda_device_matches_the_cpu",
                         "test_cuda_grid_filter_from_its_layout_and_its_transpose"},
    "test_crf_rnn_recipe.py": {"test_warmup_freezes_the_network_exactly_then_releases_it"},
    "test_crf_search.py": {"test_crf_search_in_parallel_equals_serial"},
    "test_signals.py": {"test_a_signal_finishes_the_step_writes_the_checkpoint_and_exits"},
    "test_crf_inference.py": {"test_label_compatibility_forms_agree"},
    "test_pool3x3.py": {"test_pool3x3_backward_finite_differences"},
    "test_model_ops.py": {"test_interp_backward_finite_differences"},
    "test_conv_algorithm.py": {"test_the_demo_from_scratch_calls_no_winograd_kernel"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if getattr(item, "originalname", item.name) in SLOW.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)
