"""The first run (cold Numba cache): a notice; the helper process compiles the CRF's kernels, only
those (never a kernel the training compiles at the same time: that corrupts Numba's cache), and the
main process then loads them instead of compiling them. One cold compilation of the
CRF's kernels (a few CPU-seconds) in a private, empty NUMBA_CACHE_DIR."""
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORD = """
import numba.core.event as ev
compiled = []
class Listener(ev.Listener):
    def on_start(self, event):
        f = event.data["dispatcher"].py_func
        compiled.append(f"{f.__module__}.{f.__qualname__}")
    def on_end(self, event):
        pass
ev.register("numba:compile", Listener())
"""

HELPER = RECORD + """
from tinyseg import warmup
print("cached before:", warmup.kernels_cached(warmup.PARTS["crf"]))
warmup.main(["crf"])
print("compiled:", sorted({c for c in compiled if c.startswith("tinyseg.")}))
"""

MAIN = RECORD + """
import numpy as np
from tinyseg import warmup
from tinyseg.data import chelsea
from tinyseg.predict import refine
print("cached:", warmup.kernels_cached(warmup.PARTS["crf"]))
print("notice:", warmup.first_run_notice(warmup.PARTS["train"], say=lambda m: print("said:", m)))
image, _ = chelsea()
p = np.random.default_rng(1).random(image.shape[:2] + (2,), dtype=np.float32)
refine(image, p / p.sum(-1, keepdims=True))           # the demo's CRF, on the demo's image
print("compiled:", sorted({c for c in compiled if c.startswith("tinyseg.")}))
"""


def run(code, cache_dir):
    env = {**os.environ, "PYTHONPATH": ROOT, "NUMBA_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_helper_compiles_only_crf_kernels_and_the_main_process_then_loads_them(tmp_path):
    helper = run(HELPER, tmp_path)
    assert "cached before: False" in helper and "start crf" in helper
    compiled = eval(helper.split("compiled: ")[1])
    assert compiled and all(name.startswith("tinyseg.crf.") for name in compiled), compiled
    main = run(MAIN, tmp_path)
    assert "cached: True" in main
    assert "notice: True" in main and "said: tinyseg: first run" in main    # training: still cold
    assert "compiled: []" in main                     # every CRF kernel came from the cache


def test_no_helper_on_a_warm_cache_or_when_switched_off(monkeypatch):
    from tinyseg.cli import warmup

    monkeypatch.setattr(warmup, "kernels_cached", lambda modules: True)
    with warmup.compile_in_background(["crf"]) as helper:
        assert helper.process is None
    monkeypatch.setattr(warmup, "kernels_cached", lambda modules: False)
    monkeypatch.setenv("TINYSEG_NO_BACKGROUND_COMPILE", "1")
    assert warmup.compile_in_background(["crf"]).process is None
    monkeypatch.delenv("TINYSEG_NO_BACKGROUND_COMPILE")
    assert warmup.compile_in_background(["crf"], device="cuda").process is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")                # one helper per rank: no
    assert warmup.compile_in_background(["crf"]).process is None
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    with pytest.raises(ValueError, match="unknown part"):
        warmup.compile_in_background(["train"])              # training kernels: never in a helper


def test_waiting_stops_a_helper_that_has_not_reached_the_part_and_waits_for_one_that_has():
    from tinyseg.cli.warmup import BackgroundCompile

    behind = BackgroundCompile([])
    behind.parts, behind.current = ["crf"], None              # still starting up
    behind.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    behind.wait("crf")
    assert behind.process.poll() is not None and time.monotonic() - t0 < 10

    on_it = BackgroundCompile([])
    on_it.parts, on_it.current = ["crf"], "crf"
    on_it.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    on_it.wait("crf")
    assert on_it.process.returncode == 0                       # waited for it to finish
