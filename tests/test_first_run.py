"""The first run (cold Numba cache): a notice, and kernels compiled by the helper process are the
ones the main process then loads instead of compiling (issue 12). Uses a private, empty
NUMBA_CACHE_DIR and the cheapest part (Adam), so it stays a few seconds."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MAIN_PROCESS = """
import sys
import numba.core.event as ev
import numpy as np
from tinyseg import ops
from tinyseg.warmup import PARTS, first_run_notice, kernels_cached

compiled = []
class Listener(ev.Listener):
    def on_start(self, event):
        compiled.append(event.data["dispatcher"].py_func.__name__)
    def on_end(self, event):
        pass
ev.register("numba:compile", Listener())
print("cached:", kernels_cached(PARTS["adam"]))
print("notice:", first_run_notice(PARTS["adam"], say=lambda m: print("said:", m)))
for shape in [(3,), (3, 3, 2, 2)]:
    a = [np.zeros(shape, np.float32) for _ in range(4)]
    ops.adam_update(*a, 1)
print("compiled:", [c for c in compiled if c == "adam_update"])
"""


def run(code_or_args, cache_dir):
    env = {**os.environ, "PYTHONPATH": ROOT, "NUMBA_CACHE_DIR": str(cache_dir)}
    argv = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs Numba's compiler")
def test_the_helper_compiles_into_the_cache_the_kernels_the_main_process_then_loads(tmp_path):
    cold = run(MAIN_PROCESS, tmp_path / "cold")
    assert "cached: False" in cold and "notice: True" in cold and "first run" in cold
    assert "compiled: ['adam_update', 'adam_update']" in cold        # 1-D and 4-D: compiled here

    said = run(["-m", "tinyseg.warmup", "adam"], tmp_path / "helped")   # the helper, alone
    assert said == "start adam\n"
    helped = run(MAIN_PROCESS, tmp_path / "helped")
    assert "cached: True" in helped and "notice: False" in helped and "said:" not in helped
    assert "compiled: []" in helped                                   # loaded, not compiled


def test_no_helper_on_a_warm_cache_or_when_switched_off(monkeypatch):
    from tinyseg import warmup

    monkeypatch.setattr(warmup, "kernels_cached", lambda modules: True)
    with warmup.compile_in_background(["crf", "adam"]) as helper:
        assert helper.process is None
    monkeypatch.setattr(warmup, "kernels_cached", lambda modules: False)
    monkeypatch.setenv("TINYSEG_NO_BACKGROUND_COMPILE", "1")
    assert warmup.compile_in_background(["crf"]).process is None
    monkeypatch.delenv("TINYSEG_NO_BACKGROUND_COMPILE")
    assert warmup.compile_in_background(["crf"], device="cuda").process is None
    with pytest.raises(ValueError, match="unknown part"):
        warmup.compile_in_background(["nope"])


def test_waiting_for_the_crf_stops_a_helper_that_has_not_reached_it():
    import time

    from tinyseg.warmup import BackgroundCompile

    behind = BackgroundCompile([])
    behind.parts, behind.current = ["train", "crf"], "train"
    behind.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    behind.wait("crf")
    assert behind.process.poll() is not None and time.monotonic() - t0 < 10

    on_it = BackgroundCompile([])
    on_it.parts, on_it.current = ["train", "crf"], "crf"
    on_it.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    on_it.wait("crf")
    assert on_it.process.returncode == 0                   # waited for it to finish
