"""Checks of command-line values, shared by the subcommands.

Two kinds, both ending in one line that names the option:

* argparse ``type=`` functions (``positive_int``, ``positive_float``, ``probability``, …): a bad
  value makes argparse print ``tinyseg CMD: error: argument --lr: must be a positive finite number,
  got 'nan'`` and exit with code 2, before anything runs;
* checks run at the start of a command, before any work (``existing_file``,
  ``writable_file``, ``output_folder``, ``device_available``, ``module_available``): they raise
  ``ValueError``/``FileNotFoundError``/``RuntimeError``, which ``tinyseg``'s ``main`` prints as
  one line with exit code 1.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import tempfile

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float",
           "probability", "dropout_rate", "existing_file", "writable_file", "output_folder",
           "device_available", "module_available"]


# ----------------------------------------------------------------------------- argparse types
def _number(text, kind, name):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {name}, got {text!r}") from None


def positive_int(text) -> int:
    """An integer ≥ 1 (``--iterations``)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text) -> int:
    """An integer ≥ 0."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


#: The largest float32: the kernels compute in float32, so a larger option would overflow to inf.
FLOAT32_MAX = 3.4028234663852886e38


def _fits_float32(value, text) -> float:
    if value > FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {FLOAT32_MAX:.4g} (the largest float32, "
                                         f"which the kernels compute in), got {text!r}")
    return value


def positive_float(text) -> float:
    """A finite number > 0 that float32 can hold (``--lr``, ``--width``): rejects 0, negatives,
    inf, nan and values above :data:`FLOAT32_MAX`."""
    value = _number(text, float, "a positive finite number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return _fits_float32(value, text)


def non_negative_float(text) -> float:
    """A finite number ≥ 0 that float32 can hold."""
    value = _number(text, float, "a finite number >= 0")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return _fits_float32(value, text)


def probability(text) -> float:
    """A number in [0, 1]."""
    value = _number(text, float, "a probability in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def dropout_rate(text) -> float:
    """A drop probability in [0, 1) (1 would drop everything)."""
    value = _number(text, float, "a drop probability in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a drop probability in [0, 1), got {text!r}")
    return value


# ----------------------------------------------------------------------------- checks before work
def existing_file(path, option: str) -> None:
    """``path`` is an existing file (not a folder)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{option}: file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{option}: {path} is a folder, expected a file")


def writable_file(path, option: str) -> None:
    """A file can be written at ``path``: its folder exists and is writable, ``path`` is no folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option}: {path} is a folder, expected a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{option}: the folder of {path} does not exist ({folder}); create it first")
    # Try it: os.access answers yes to root even on a read-only mount. The probe is named as
    # tinyseg's temporary files are, so a kill right now leaves nothing that is not cleaned up.
    from .._atomic import temp_prefix

    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise PermissionError(f"{option}: cannot write {path}: {exc.strerror or exc} "
                              f"(in folder {folder})") from None
    os.close(fd)
    os.remove(probe)


def output_folder(path, option: str) -> None:
    """``path`` is an existing writable folder or can be created (its parent is writable)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{option}: {path} exists and is a file, not a folder; "
                              f"give a folder name")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise FileExistsError(f"{option}: cannot create folder {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option}: cannot write into {path}: {existing} is not writable")


def device_available(device: str) -> None:
    """The backend ``device`` can run here (``--device cuda`` without a GPU fails now, not later)."""
    from ..backend import get_backend

    get_backend(device)


def module_available(module: str, option: str, extra: str) -> None:
    """``module`` can be imported; otherwise say which tinyseg extra installs it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise RuntimeError(f"{option} needs {module}, which is not installed: "
                           f"pip install 'tinyseg[{extra}]'")
