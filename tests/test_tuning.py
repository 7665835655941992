"""``import tinyseg`` leaves the process alone; :func:`tinyseg.tuning.tune_process` (called by the
command line and the trainer, or opted into with ``TINYSEG_TUNE=1``) raises glibc's malloc
thresholds and sets ``OMP_WAIT_POLICY`` and ``OPENBLAS_THREAD_TIMEOUT``.

Each case runs in a fresh interpreter and measures glibc's behaviour itself: the bytes held in
mmapped blocks while a 64 MB array is alive (``mallinfo2().hblkhd``) are >= 64 MB with glibc's
default thresholds and ~0 once they are raised.
"""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

BIG = 64 << 20

SCRIPT = """
import ctypes, json, os, sys
import numpy as np
{setup}

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
a = np.ones(16 << 20, np.float32)
print(json.dumps({{"mmapped": libc.mallinfo2().hblkhd, "omp": os.environ.get("OMP_WAIT_POLICY"),
                  "openblas": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}}))
"""


def _run(setup: str, **env) -> dict:
    import json

    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "TINYSEG_TUNE", "TINYSEG_SYSTEM_MALLOC",
                         "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], env={**base, **env},
                         text=True, capture_output=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(autouse=True, scope="module")
def _glibc():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("no glibc mallinfo2 (glibc < 2.33)")


def test_the_measurement_sees_glibcs_default_without_tinyseg():
    assert _run("")["mmapped"] >= BIG


def test_import_tinyseg_leaves_malloc_and_openmp_alone():
    got = _run("import tinyseg, tinyseg.cli, tinyseg.training")
    assert got["mmapped"] >= BIG            # glibc's default: the big array is mmapped
    assert got["omp"] is None and got["openblas"] is None


def test_tune_process_raises_the_thresholds_and_sets_the_wait_policy():
    got = _run("import tinyseg.tuning; tinyseg.tuning.tune_process()")
    assert got["mmapped"] < BIG             # served from the reusable heap
    assert got["omp"] == "PASSIVE" and got["openblas"] == "4"


def test_library_users_opt_in_with_the_environment():
    got = _run("import tinyseg", TINYSEG_TUNE="1")
    assert got["mmapped"] < BIG and got["omp"] == "PASSIVE"


def test_opt_outs_keep_glibcs_malloc_and_the_users_policy():
    got = _run("import tinyseg.tuning; tinyseg.tuning.tune_process()", TINYSEG_SYSTEM_MALLOC="1",
               OMP_WAIT_POLICY="ACTIVE", OPENBLAS_THREAD_TIMEOUT="20")
    assert got["mmapped"] >= BIG and got["omp"] == "ACTIVE" and got["openblas"] == "20"
    got = _run("import tinyseg.tuning; tinyseg.tuning.tune_process(malloc=False, omp=False, openblas=False)")
    assert got["mmapped"] >= BIG and got["omp"] is None and got["openblas"] is None


def test_the_command_line_tunes_before_its_work():
    got = _run("from tinyseg.cli import main; main(['info', '--json'])")
    assert got["mmapped"] < BIG and got["omp"] == "PASSIVE"


def test_the_trainer_tunes_unless_told_not_to():
    setup = """
import numpy as np
from tinyseg.models.small import SmallFCN
from tinyseg.training import TrainConfig, Trainer
sample = (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.int32))
Trainer(SmallFCN(2, width=2, blocks=1), [sample], TrainConfig(iterations=1, progress=False),
        tune={tune})
"""
    got = _run(setup.format(tune=True))
    assert got["mmapped"] < BIG and got["omp"] == "PASSIVE"
    got = _run(setup.format(tune=False))
    assert got["mmapped"] >= BIG and got["omp"] is None


SPIN = """
import os, time
{setup}
import numpy as np
from numba import njit

@njit
def product(a, b, c):
    np.dot(a, b, c)                  # SciPy's OpenBLAS, as in tinyseg's convolutions

a = np.ones((768, 768), np.float32)
c = np.empty_like(a)
product(a, a, c)
spent = []
for _ in range(3):
    product(a, a, c)                 # multi-threaded: its worker threads then wait for work
    cpu = time.process_time()
    time.sleep(0.1)                  # this thread sleeps; what the process spends is the others'
    spent.append(time.process_time() - cpu)
print(min(spent))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS needs 2 cores for its threads")
def test_openblas_threads_stop_spinning_once_tuned():
    """After a 2-thread GEMM, OpenBLAS's idle worker burns CPU while the caller sleeps, unless
    ``tune_process`` set ``OPENBLAS_THREAD_TIMEOUT`` before the library was loaded."""
    def cpu_while_asleep(setup):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT",)}
        env["OPENBLAS_NUM_THREADS"] = "2"
        out = subprocess.run([sys.executable, "-c", SPIN.format(setup=setup)], env=env, text=True,
                             capture_output=True, check=True).stdout
        return float(out.strip().splitlines()[-1])

    assert cpu_while_asleep("") > 0.02                          # OpenBLAS's own spin
    assert cpu_while_asleep("import tinyseg.tuning; tinyseg.tuning.tune_process()") < 0.01
