"""The first run: compiling the kernels, said out loud and overlapped with the work.

Numba compiles each ``@njit`` kernel for each argument signature the first time it is called and
keeps the machine code in its cache (``cache=True``: ``__pycache__`` beside the source, or
``NUMBA_CACHE_DIR``), so only the first run after an install, or after a kernel's source changed,
pays: about 20–25 CPU-seconds for the kernels of ``tinyseg demo`` (``benchmarks/first_run.py``
lists each kernel's share). Two measures keep that first run short and not mysterious:

* :func:`first_run_notice` says, once, that kernels are being compiled, so a slow first
  iteration is not taken for a hang;
* :func:`compile_in_background` starts a helper process that compiles kernels the main
  process will only need *later* (the backward pass's, Adam's, the softmax of prediction, the
  dense CRF's) by running them on tiny inputs while the main process compiles its first
  convolutions (the Winograd ones alone take ~6 CPU-seconds) and trains. Numba compiles one
  function at a time per process (a global compiler lock) and compiling is single-threaded, so a
  thread would not help, but a second process uses the core that a compiling main process leaves
  idle. Its kernels land in the cache, and the main process loads them from there when it gets to
  them. Before the CRF it waits for the helper if the helper is already on it, and stops it if
  not (on a busy machine the helper falls behind, and compiling here is then quicker).
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading

__all__ = ["kernels_cached", "first_run_notice", "compile_in_background", "PARTS"]

# What a helper process can compile ahead, and the modules or packages holding those kernels.
PARTS = {
    "crf": ["tinyseg.crf"],
    "softmax": ["tinyseg.backend.cpu.loss"],
    "adam": ["tinyseg.backend.cpu.adam"],
    "train": ["tinyseg.backend.cpu"],
}


def _dispatchers(name):
    """The ``@njit`` kernels of a module, or of every module of a package."""
    import pkgutil

    from numba.core.registry import CPUDispatcher

    module = importlib.import_module(name)
    modules = [module]
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        modules.append(importlib.import_module(info.name))
    return [f for m in modules for f in vars(m).values() if isinstance(f, CPUDispatcher)]


def kernels_cached(modules) -> bool | None:
    """Whether Numba's cache holds machine code for any kernel of ``modules``.

    ``False`` on a fresh install (or after the sources changed), ``None`` if this Numba version
    cannot be asked (its cache index is private API).
    """
    try:
        for name in modules:
            for f in _dispatchers(name):
                cache = getattr(f, "_cache", None)
                if cache is not None and getattr(cache, "_cache_file", None) is not None \
                        and cache._cache_file._load_index():
                    return True
        return False
    except Exception:  # a private API that may change: then we cannot tell
        return None


_noticed = False


def first_run_notice(modules=None, say=None) -> bool:
    """Print once per process that kernels are being compiled, if the cache is cold; return that."""
    global _noticed
    if _noticed:
        return False
    cold = kernels_cached(modules or PARTS["train"]) is False
    if cold:
        _noticed = True
        (say or (lambda m: print(m, file=sys.stderr, flush=True)))(
            "tinyseg: first run: compiling the kernels for this machine (about 20 s of CPU, "
            "once; later runs load them from Numba's cache)")
    return cold


# ----------------------------------------------------------------------------- the helper process
class BackgroundCompile:
    """A helper process compiling some :data:`PARTS`, in order, into the cache (a context manager).

    It reports the part it is on; :meth:`wait` before using a part's kernels. Leaving the
    ``with`` block stops a helper that is still running (its finished kernels stay cached).
    """

    def __init__(self, parts):
        self.parts = list(parts)
        self.process = None
        self.current = None                 # the part the helper is compiling now
        if self.parts:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tinyseg.warmup", *self.parts], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self):
        for line in self.process.stdout:    # "start PART" as the helper begins each part
            if line.startswith("start "):
                self.current = line.split()[1]

    def wait(self, part: str, timeout: float = 300.0) -> None:
        """Before using ``part``'s kernels: wait for the helper if it has reached ``part``.

        If it has not (a busy machine slowed it down), compiling here is quicker than waiting
        for it to get there and through: the helper is stopped instead.
        """
        if self.process is None or part not in self.parts or self.process.poll() is not None:
            return
        current = self.current
        if current is None or self.parts.index(current) < self.parts.index(part):
            self.stop()
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def compile_in_background(parts, device: str = "cpu") -> BackgroundCompile:
    """Start a helper compiling the given :data:`PARTS` whose kernels are not cached yet.

    Nothing is started on a warm cache, for another device than the CPU, or with
    ``TINYSEG_NO_BACKGROUND_COMPILE=1`` in the environment.
    """
    if device != "cpu" or os.environ.get("TINYSEG_NO_BACKGROUND_COMPILE") == "1":
        return BackgroundCompile([])
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; expected some of {list(PARTS)}")
    return BackgroundCompile([p for p in parts if kernels_cached(PARTS[p]) is not True])


def _compile(part: str) -> None:
    """Call the kernels of ``part`` on tiny inputs of the dtypes and layouts the real work uses."""
    import numpy as np

    from . import ops

    rng = np.random.default_rng(0)
    if part == "crf":
        from .predict import refine
        # The code paths, and so the signatures, depend on the data: the grid splats in parallel
        # chunks from 32768 pixels on, and indexes its cells with uint16 while they are fewer than
        # 65535 (a photo's smooth colours; random colours would take the int32 path).
        rows, cols = np.mgrid[0:192, 0:256]
        image = np.stack([rows, cols, (rows + cols) // 2], -1).astype(np.uint8)   # (192, 256, 3)
        p = rng.random((192, 256, 2), dtype=np.float32)
        refine(image, p / p.sum(-1, keepdims=True))             # the seed's CRF, as demo/predict
    elif part == "softmax":
        ops.softmax(np.zeros((1, 4, 4, 2), np.float32))
    elif part == "adam":
        for shape in [(3,), (3, 3, 2, 2)]:                      # biases and kernels
            a = [np.zeros(shape, np.float32) for _ in range(4)]
            ops.adam_update(*a, 1)
    elif part == "train":
        # One step of a model too narrow for Winograd (< 16 channels): every other training
        # kernel (pooling, dropout, upsampling, the loss, the whole backward, Adam), which the
        # main process needs only after its first convolutions, compiles here meanwhile.
        from .model import FCN32s, FCN32sConfig
        from .train import TrainConfig, Trainer
        samples = [(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8),
                    rng.integers(0, 2, (40, 40)).astype(np.int32))]
        Trainer(FCN32s(FCN32sConfig(width=1 / 64)), samples,
                TrainConfig(iterations=1, progress=False, handle_signals=False)).run()


def main(parts) -> int:
    for part in parts:
        print("start", part, flush=True)
        _compile(part)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
