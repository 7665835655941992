"""The first run: compiling the kernels, said out loud and partly overlapped with the work.

Numba compiles each ``@njit`` kernel for each argument signature the first time it is called and
keeps the machine code in its cache (``cache=True``: ``__pycache__`` beside the source, or
``NUMBA_CACHE_DIR``), so only the first run after an install, or after a kernel's source changed,
pays: for ``tinyseg demo`` about 13.5 CPU-seconds for the training's kernels (it runs im2col
only; Winograd's would add 15) and 7 for the CRF's (``benchmarks/first_run.py`` lists each
kernel's share). Two measures keep that first run shorter and not mysterious:

* :func:`first_run_notice` says, once, that kernels are being compiled, so a slow first
  iteration is not taken for a hang;
* :func:`compile_in_background` starts a helper process that compiles the kernels the main
  process needs only at the end (the dense CRF's) by running the CRF on a small image while the
  main process compiles and runs training. Numba compiles one function at
  a time per process (a global compiler lock) and compiling is single-threaded, so a thread would
  not help, but a second process uses the core that a compiling main process leaves idle. Its
  kernels land in the cache and the main process loads them from there.

The helper compiles **only kernels that the main process does not call before it has waited for
the helper, or stopped it**. Numba's cache is not safe when two processes compile the same
function at the same time (per-process symbol ids, numba issues #4807 and #10128): a helper that
also compiled training kernels, which the main process was compiling at the same moment, left a
cache that crashed the next run with a segmentation fault. So the helper never touches training
kernels, and :meth:`BackgroundCompile.wait` is called before the first CRF call: it
waits if the helper is already at work on those kernels and stops it if it is not (on a busy
machine it falls behind, and compiling here is then quicker).
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading

__all__ = ["kernels_cached", "first_run_notice", "compile_in_background", "PARTS", "HELPER_PARTS"]

# Groups of kernels and the packages holding them (for asking whether the cache holds them).
PARTS = {
    "crf": ["tinyseg.crf"],
    "train": ["tinyseg.backend.cpu"],
}
# The parts a helper may compile: kernels the training never calls (see the module docstring).
HELPER_PARTS = ("crf",)


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
            "tinyseg: first run: compiling the kernels for this machine (about half a minute, "
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
                [sys.executable, "-m", "tinyseg.cli.warmup", *self.parts], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self):
        for line in self.process.stdout:    # "start PART" as the helper begins each part
            if line.startswith("start "):
                self.current = line.split()[1]

    def wait(self, part: str, timeout: float = 300.0) -> None:
        """Call before the first use of ``part``'s kernels: afterwards no helper is running.

        If the helper has reached ``part`` it is waited for; if not (a busy machine slowed it
        down), compiling here is quicker than waiting for it, and it is stopped instead.
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

    Nothing is started on a warm cache, for another device than the CPU, under an MPI launcher
    with several ranks (each rank would start a helper, and the helpers would compile the same
    kernels at once), or with ``TINYSEG_NO_BACKGROUND_COMPILE=1`` in the environment.
    """
    from ..training.distributed import world_size_from_env

    if (device != "cpu" or os.environ.get("TINYSEG_NO_BACKGROUND_COMPILE") == "1"
            or world_size_from_env() > 1):
        return BackgroundCompile([])
    unknown = [p for p in parts if p not in HELPER_PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; a helper compiles some of {list(HELPER_PARTS)}")
    return BackgroundCompile([p for p in parts if kernels_cached(PARTS[p]) is not True])


def _compile(part: str) -> None:
    """Call the kernels of ``part`` on tiny inputs of the dtypes and layouts the real work uses."""
    import numpy as np

    rng = np.random.default_rng(0)
    if part == "crf":
        from ..predict import refine
        # The code paths, and so the signatures, depend on the data: the grid splats in parallel
        # chunks from 32768 pixels on, and indexes its cells with uint16 while they are fewer than
        # 65535 (a photo's smooth colours; random colours would take the int32 path).
        rows, cols = np.mgrid[0:192, 0:256]
        image = np.stack([rows, cols, (rows + cols) // 2], -1).astype(np.uint8)   # (192, 256, 3)
        p = rng.random((192, 256, 2), dtype=np.float32)
        refine(image, p / p.sum(-1, keepdims=True))             # the post's CRF, as demo/predict
    else:
        raise ValueError(f"unknown part {part!r}; a helper compiles some of {list(HELPER_PARTS)}")


def main(parts) -> int:
    for part in parts:
        print("start", part, flush=True)
        _compile(part)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
