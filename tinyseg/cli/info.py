"""``tinyseg info``: one screen about this installation, for bug reports.

It prints the versions of tinyseg, Python and the libraries it uses (optional ones too), the
backends and whether each can run here, the GPUs numba sees (name, compute capability, memory),
whether libNVVM — the compiler the CUDA backend needs — was found and where, and the folder where
Numba caches tinyseg's compiled kernels. It compiles nothing and never fails: a part that cannot
be determined says why.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys

# (import name, distribution name) of the libraries worth reporting; the optional ones last.
CORE = [("numpy", "numpy"), ("numba", "numba"), ("llvmlite", "llvmlite"), ("scipy", "scipy"),
        ("skimage", "scikit-image"), ("h5py", "h5py"), ("matplotlib", "matplotlib"), ("tqdm", "tqdm")]
OPTIONAL = [("numba_cuda", "numba-cuda"), ("torch", "torch"), ("pydensecrf", "pydensecrf2"),
            ("mpi4py", "mpi4py"), ("tensorboardX", "tensorboardX")]


def _version(module: str, dist: str) -> str | None:
    """The installed version of ``dist`` (``None`` if it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:
        return None


def _mpi_library() -> str | None:
    try:
        from mpi4py import MPI
    except Exception:
        return None
    return MPI.Get_library_version().splitlines()[0].strip()


def _loaded_library_path(fragment: str) -> str | None:
    """The file of an already loaded shared library whose path contains ``fragment`` (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if fragment in os.path.basename(path):
                    return path
    except OSError:
        pass
    return None


def nvvm_info() -> dict:
    """Whether numba finds libNVVM, its version and file."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        return {"found": False, "error": "not checked: the CUDA simulator is on"}
    try:
        from numba.cuda.cudadrv import nvvm

        if not nvvm.is_available():
            return {"found": False}
        version = ".".join(map(str, nvvm.NVVM().get_version()))
        return {"found": True, "version": version, "path": _loaded_library_path("libnvvm")}
    except Exception as exc:  # a broken toolkit install raises instead of answering
        return {"found": False, "error": f"{type(exc).__name__}: {exc}"}


def gpu_info() -> dict:
    """The CUDA backend's state and the GPUs numba sees."""
    import numba

    info = {"simulator": bool(numba.config.ENABLE_CUDASIM), "gpus": []}
    try:
        from numba import cuda

        if info["simulator"]:
            return info
        if not cuda.is_available():
            info["error"] = "numba.cuda.is_available() is False (no GPU or no working driver)"
            return info
        for gpu in cuda.gpus:
            with gpu:
                device = cuda.get_current_device()
                free, total = cuda.current_context().get_memory_info()
                info["gpus"].append({
                    "id": device.id, "name": _text(device.name),
                    "compute_capability": ".".join(map(str, device.compute_capability)),
                    "memory_gib": round(total / 2**30, 1), "free_gib": round(free / 2**30, 1)})
        info["driver"] = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def backends_info() -> dict:
    """Each registered backend: can it run here, and if not, why not."""
    from ..backend import available_backends, get_backend

    out = {}
    for name in available_backends():
        try:
            get_backend(name)
            out[name] = "available"
        except Exception as exc:
            out[name] = f"unavailable: {exc}"
    return out


def cache_info() -> dict:
    """Where Numba keeps tinyseg's compiled kernels, and how much is there."""
    import numba

    from ..backend.cpu import conv

    folder = conv.conv2d_forward._cache._cache_path
    n_files = n_bytes = 0
    root = numba.config.CACHE_DIR or os.path.dirname(os.path.abspath(__file__))
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith((".nbi", ".nbc")):
                n_files += 1
                n_bytes += os.path.getsize(os.path.join(dirpath, f))
    return {"folder": folder, "NUMBA_CACHE_DIR": numba.config.CACHE_DIR or None,
            "cached_files": n_files, "cached_mb": round(n_bytes / 2**20, 1)}


def collect() -> dict:
    """Everything ``tinyseg info`` reports, as a JSON-serialisable dict."""
    import numba

    from .._version import __version__

    return {
        "tinyseg": __version__, "location": os.path.dirname(os.path.abspath(__file__)),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "libraries": {dist: _version(mod, dist) for mod, dist in CORE},
        "optional": {dist: _version(mod, dist) for mod, dist in OPTIONAL},
        "mpi_library": _mpi_library(),
        "backends": backends_info(), "cuda": gpu_info(), "libnvvm": nvvm_info(),
        "numba_cache": cache_info(),
    }


def format_report(info: dict) -> str:
    lines = [f"tinyseg {info['tinyseg']}  ({info['location']})",
             f"python {info['python']} on {info['platform']}; {info['cpu_count']} CPUs, "
             f"numba threads {info['numba_threads']}"]
    lines.append("libraries: " + ", ".join(f"{k} {v}" for k, v in info["libraries"].items()))
    lines.append("optional:  " + ", ".join(f"{k} {v or '-'}" for k, v in info["optional"].items()))
    if info["mpi_library"]:
        lines.append(f"MPI:       {info['mpi_library']}")
    for name, state in info["backends"].items():
        lines.append(f"backend {name}: {state}")
    cuda = info["cuda"]
    if cuda["simulator"]:
        lines.append("GPUs: numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): no GPU is used")
    elif cuda["gpus"]:
        lines.append(f"GPUs (driver {cuda.get('driver', '?')}):")
        lines += [f"  [{g['id']}] {g['name']}, compute capability {g['compute_capability']}, "
                  f"{g['memory_gib']} GiB ({g['free_gib']} free)" for g in cuda["gpus"]]
    else:
        lines.append(f"GPUs: none ({cuda.get('error', 'not found')})")
    nvvm = info["libnvvm"]
    lines.append(f"libNVVM: {'found, version ' + nvvm['version'] + ' at ' + str(nvvm['path'])}"
                 if nvvm["found"] else
                 f"libNVVM: not found{' (' + nvvm['error'] + ')' if 'error' in nvvm else ''}; "
                 "the cuda backend needs it on a GPU: pip install 'tinyseg[cuda]'")
    cache = info["numba_cache"]
    lines.append(f"Numba cache: {cache['folder']} ({cache['cached_files']} files, "
                 f"{cache['cached_mb']} MB; NUMBA_CACHE_DIR={cache['NUMBA_CACHE_DIR'] or 'unset'})")
    return "\n".join(lines)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info", help="versions, backends, GPUs, libNVVM and the Numba cache (for bug reports)",
        description="Print one screen about this installation: versions of tinyseg, Python and "
        "its libraries, which backends can run, the GPUs numba sees, whether libNVVM was found "
        "and where, and where Numba caches the compiled kernels. Paste it into bug reports.")
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0
