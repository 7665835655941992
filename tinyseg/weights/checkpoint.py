"""Training checkpoints: parameters, Adam state, config and extra state in one HDF5 file.

File layout (``format_version`` 1)::

    /                       attrs: format = "tinyseg-checkpoint", format_version = 1,
                                   tinyseg_version, config (JSON text), extra (JSON text)
    /params/<name>          one dataset per parameter, e.g. "conv1_1.w" (kh, kw, c_in, c_out)
    /adam                   attrs: step (int)
    /adam/m/<name>          Adam first moments, same names/shapes as the parameters they follow
    /adam/v/<name>          Adam second moments (empty for SGD, whose velocity is in /adam/m)

Arrays are stored uncompressed with their own dtype, so a save/load round trip is bitwise exact.

Writes are atomic: the file is written under a temporary name in the destination folder, flushed
to disk, then moved over ``path`` with ``os.replace``. A crash or error mid-write leaves the
previous checkpoint at ``path`` untouched (and removes the temporary file); the temporary file
of a process killed mid-write (``.NAME.tinyseg-tmp-PID-XXXXXXXX.tmp``) is removed by the next write
of the same checkpoint (see :mod:`tinyseg._atomic`).
"""
from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from .._atomic import atomic_output
from .._version import __version__

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "read_checkpoint_config", "FORMAT", "FORMAT_VERSION"]

FORMAT = "tinyseg-checkpoint"
FORMAT_VERSION = 1


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns (unpacks as a 5-tuple)."""

    params: dict
    """name -> ndarray, the model parameters."""
    adam_state: dict
    """``{"m": dict, "v": dict, "step": int}``."""
    config: dict
    """The model/training config that was saved (JSON round trip)."""
    extra: dict | None
    """Extra JSON state (e.g. RNG state, data order), or ``None`` if none was saved."""
    version: str
    """The tinyseg version that wrote the file."""


def _json_default(obj):
    # NumPy scalars and arrays (e.g. a bit generator's state) become plain JSON values.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _to_json(value, name):
    try:
        return json.dumps(value, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The parameter `{name}` must be JSON-serialisable: {exc}") from exc


def _check_arrays(arrays, name):
    if not isinstance(arrays, dict):
        raise TypeError(f"The parameter `{name}` must be a dict name -> ndarray; got {type(arrays).__name__}")
    out = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not k or "/" in k or k in (".", ".."):
            raise ValueError(f"The parameter `{name}` has an invalid array name {k!r} (no '/')")
        out[k] = np.asarray(v)
        if out[k].dtype == object:
            raise TypeError(f"The parameter `{name}` entry {k!r} is not a numeric array")
    return out


def _write_arrays(group, arrays):
    """Write name -> array as datasets of ``group`` (one place, so tests can make it fail)."""
    for k, v in arrays.items():
        group.create_dataset(k, data=v)


def save_checkpoint(path, params, adam_state, config, extra=None):
    """Save a training checkpoint atomically to one HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file (its folder must exist). An existing file is replaced only once the
        new one is completely written.
    params : dict of str -> ndarray
        Model parameters (``"conv1_1.w"``, ...).
    adam_state : dict
        ``{"m": dict, "v": dict, "step": int}``: Adam's moment estimates (same keys as each
        other, each a parameter name with that parameter's shape; empty before the first step)
        and the number of steps taken.
    config : dict
        JSON-serialisable model/training configuration (e.g. ``dataclasses.asdict(cfg)``).
    extra : dict, optional
        JSON-serialisable extra state, e.g. ``rng.bit_generator.state`` and the data order;
        NumPy scalars/arrays in it are stored as JSON numbers/lists.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type, keys or shapes; the message names the argument.
    """
    import h5py

    path = os.fspath(path)
    params = _check_arrays(params, "params")
    if not isinstance(adam_state, dict) or not {"m", "v", "step"} <= set(adam_state):
        raise ValueError("The parameter `adam_state` must be a dict with keys 'm', 'v' and 'step'")
    m = _check_arrays(adam_state["m"], "adam_state['m']")
    v = _check_arrays(adam_state["v"], "adam_state['v']")
    if v and set(m) != set(v):          # v is empty for SGD (one buffer, its velocity)
        raise ValueError(
            "The parameter `adam_state` must have the same names in 'm' and 'v'; differing: "
            f"{sorted(set(m) ^ set(v))}"
        )
    for k in m:
        if k not in params:
            raise ValueError(f"The parameter `adam_state` has moments for {k!r}, which is not in `params`")
        for which, arr in (("m", m[k]), ("v", v.get(k, m[k]))):
            if arr.shape != params[k].shape:
                raise ValueError(
                    f"The parameter `adam_state['{which}']` entry {k!r} has shape {arr.shape}, but "
                    f"the parameter has shape {params[k].shape}"
                )
    step = adam_state["step"]
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"The parameter `adam_state['step']` must be an int >= 0; got {step!r}")
    if not isinstance(config, dict):
        raise TypeError(f"The parameter `config` must be a dict; got {type(config).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"The parameter `extra` must be a dict or None; got {type(extra).__name__}")
    config_json = _to_json(config, "config")
    extra_json = _to_json(extra, "extra")

    with atomic_output(path, "checkpoint") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["tinyseg_version"] = __version__
            f.attrs["config"] = config_json
            f.attrs["extra"] = extra_json
            _write_arrays(f.create_group("params"), params)
            adam = f.create_group("adam")
            adam.attrs["step"] = np.int64(step)
            _write_arrays(adam.create_group("m"), m)
            _write_arrays(adam.create_group("v"), v)


def load_checkpoint(path):
    """Load a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Checkpoint
        A named tuple ``(params, adam_state, config, extra, version)``; arrays come back with
        the dtype and bits they were saved with, ``adam_state["step"]`` as an ``int``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not HDF5, not a tinyseg checkpoint, of a newer format, or lacks a group
        or an array; the message names the file and what is missing.
    """
    path = os.fspath(path)
    with _open_checked(path) as f:
        try:
            params = {k: np.asarray(f["params"][k][()]) for k in f["params"]}
            m = {k: np.asarray(f["adam/m"][k][()]) for k in f["adam/m"]}
            v = {k: np.asarray(f["adam/v"][k][()]) for k in f["adam/v"]}
        except (OSError, KeyError) as exc:      # a cut in the arrays' data
            raise ValueError(f"{path!r} is a damaged checkpoint: its arrays cannot be read "
                             f"({exc}); copy it again completely or use another checkpoint") from exc
        for k in (set(m) ^ set(v)) if v else ():
            which = "v" if k in m else "m"
            raise ValueError(f"{path!r} is an incomplete checkpoint: array '/adam/{which}/{k}' is missing")
        for k in m:
            if k not in params:
                raise ValueError(f"{path!r} is an incomplete checkpoint: array '/params/{k}' is missing")
        step = int(f["adam"].attrs["step"])
        config = json.loads(_text(f.attrs["config"]))
        extra = json.loads(_text(f.attrs["extra"]))
        version = _text(f.attrs["tinyseg_version"])
    return Checkpoint(params, {"m": m, "v": v, "step": step}, config, extra, version)


def _open_checked(path):
    """Open ``path`` for reading after checking it is a complete tinyseg checkpoint (its header)."""
    import h5py

    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            raise ValueError(f"{path!r} is not a tinyseg checkpoint (no attribute format={FORMAT!r})")
        fv = int(f.attrs.get("format_version", -1))
        if fv != FORMAT_VERSION:
            raise ValueError(
                f"{path!r} has checkpoint format_version {fv}; this tinyseg reads {FORMAT_VERSION}"
            )
        for group in ("params", "adam", "adam/m", "adam/v"):
            if group not in f:
                raise ValueError(f"{path!r} is an incomplete checkpoint: group '/{group}' is missing")
        for attr in ("config", "extra", "tinyseg_version"):
            if attr not in f.attrs:
                raise ValueError(f"{path!r} is an incomplete checkpoint: attribute {attr!r} is missing")
        if "step" not in f["adam"].attrs:
            raise ValueError(f"{path!r} is an incomplete checkpoint: attribute '/adam' step is missing")
    except BaseException:
        f.close()
        raise
    return f


#: The first bytes of an HDF5 file (its superblock signature, at offset 0 for tinyseg's files).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _unreadable(path, exc) -> ValueError:
    """The error for a file h5py cannot open: a foreign file, or an HDF5 file cut short or damaged
    (a copy or a download that stopped; tinyseg's own writes are atomic)."""
    with open(path, "rb") as f:
        head = f.read(len(_HDF5_SIGNATURE))
    if head != _HDF5_SIGNATURE:
        return ValueError(f"{path!r} is not a tinyseg checkpoint (not an HDF5 file)")
    detail = str(exc).split("(", 1)[-1].rstrip(")") if "(" in str(exc) else str(exc)
    size = os.path.getsize(path)
    what = "truncated" if "truncated" in detail else "damaged"
    return ValueError(f"{path!r} is a {what} checkpoint: an HDF5 file of {size} bytes that cannot "
                      f"be read ({detail}); copy it again completely or use another checkpoint")


def read_checkpoint_config(path):
    """``(config dict, step)`` of a checkpoint, without reading its arrays (cheap, for checks).

    Raises the same errors as :func:`load_checkpoint` for a missing or foreign file.
    """
    path = os.fspath(path)
    with _open_checked(path) as f:
        return json.loads(_text(f.attrs["config"])), int(f["adam"].attrs["step"])


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)
