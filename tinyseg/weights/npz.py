"""Parameters as plain ``.npz`` files: read tinyseg- or Keras-named arrays, write tinyseg ones.

The companion of :mod:`tinyseg.weights.keras` (the Keras HDF5 importer, whose docstring gives the
naming and the two conversions a Keras file needs: fc1/fc2 to convolutions and conv1_1's
BGR -> RGB input channels). :func:`tinyseg.weights.load_params` picks this reader for ``.npz``.
"""
from __future__ import annotations

import os
import re

import numpy as np

from .._atomic import atomic_output
from .keras import _CONV_LAYERS, KERAS_TO_TINYSEG, VGG16_LAYERS, _check_chain, _fc1_to_conv

__all__ = ["load_params_npz", "save_params_npz"]


# Keras-style array names: "block1_conv1_W_1:0", "block1_conv1/kernel:0",
# "block1_conv1/block1_conv1/kernel:0", "fc1_b", ...
_KERAS_KEY = re.compile(
    r"^(?P<layer>block\d_conv\d|fc1|fc2|predictions)(?:/(?P=layer))?[/_]"
    r"(?P<kind>W|b|kernel|bias)(?:_\d+)?(?::\d+)?$"
)


def load_params_npz(path, *, strict_shapes=True):
    """Load parameters from a plain ``.npz`` of named arrays.

    Two namings are accepted (not mixed in one file):

    * **tinyseg names** (``"conv1_1.w"``, ``"fc6.b"``, ..., any ``"<layer>.w"``/``"<layer>.b"``
      pair, fc8 included): taken as they are, already in tinyseg layout and RGB order (this is
      what :func:`save_params_npz` writes).
    * **Keras names** (``"block1_conv1_W_1:0"``, ``"block1_conv1/kernel:0"``, ``"fc1_b_1:0"``,
      ...; ``predictions`` is skipped): the raw Keras/Caffe arrays; they get the same two
      conversions as :func:`load_vgg16_keras` (fc1/fc2 to convs, conv1_1 BGR -> RGB).

    Parameters
    ----------
    path : str or os.PathLike
    strict_shapes : bool, optional
        Require VGG-16's exact sizes for the VGG layers present (see :func:`load_vgg16_keras`).

    Returns
    -------
    params : dict of str -> ndarray of float32
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{path!r} is not a readable .npz file: {exc}") from exc
    if not hasattr(npz, "files"):
        raise ValueError(f"{path!r} is a single .npy array, expected an .npz of named arrays")
    with npz:
        keys = list(npz.files)
        if not keys:
            raise ValueError(f"{path!r} holds no arrays")
        keras = {k: _KERAS_KEY.match(k) for k in keys}
        if all(keras.values()):
            params = _params_from_keras_npz(npz, keras, path)
        elif not any(keras.values()):
            params = {}
            for k in keys:
                if not re.fullmatch(r"[A-Za-z0-9_]+\.[wb]", k):
                    raise ValueError(
                        f"{path!r}: array name {k!r} is neither a tinyseg name '<layer>.w' / "
                        "'<layer>.b' nor a Keras name such as 'block1_conv1_W_1:0'"
                    )
                params[k] = np.ascontiguousarray(npz[k], dtype=np.float32)
        else:
            raise ValueError(f"{path!r} mixes Keras and tinyseg array names: {sorted(keys)}")
    for k in list(params):
        layer, kind = k.rsplit(".", 1)
        other = f"{layer}.{'b' if kind == 'w' else 'w'}"
        if other not in params:
            raise ValueError(f"{path!r}: array {k!r} has no matching {other!r}")
        if kind == "w" and params[k].ndim != 4:
            raise ValueError(
                f"{path!r}: array {k!r} has shape {params[k].shape}, expected (kh, kw, c_in, c_out)"
            )
        if kind == "b" and params[k].shape != (params[other].shape[-1],):
            raise ValueError(
                f"{path!r}: array {k!r} has shape {params[k].shape}, expected "
                f"({params[other].shape[-1]},)"
            )
    _check_chain(params, path, strict_shapes)
    return params


def _params_from_keras_npz(npz, matches, path):
    raw = {}
    for key, m in matches.items():
        layer = m.group("layer")
        if layer == "predictions":
            continue
        kind = "w" if m.group("kind") in ("W", "kernel") else "b"
        name = f"{KERAS_TO_TINYSEG[layer]}.{kind}"
        if name in raw:
            raise ValueError(f"{path!r}: two arrays for {layer} {kind}: {key!r} and another")
        raw[name] = np.asarray(npz[key], dtype=np.float32)
    for layer in _CONV_LAYERS:
        for kind in "wb":
            if f"{layer}.{kind}" not in raw:
                raise ValueError(
                    f"{path!r}: no array for Keras layer {VGG16_LAYERS[layer]} "
                    f"({'kernel' if kind == 'w' else 'bias'})"
                )
        if raw[f"{layer}.w"].ndim != 4:
            raise ValueError(
                f"{path!r}: {VGG16_LAYERS[layer]} kernel has shape {raw[f'{layer}.w'].shape}, "
                "expected (kh, kw, in, out)"
            )
    if "fc6.w" in raw:
        raw["fc6.w"] = _fc1_to_conv(raw["fc6.w"], raw, f"{path!r}: fc1 kernel")
    if "fc7.w" in raw:
        w = raw["fc7.w"]
        if w.ndim != 2:
            raise ValueError(f"{path!r}: fc2 kernel has shape {w.shape}, expected (in, out)")
        raw["fc7.w"] = w.reshape(1, 1, *w.shape)  # (in, out) -> (1, 1, in, out)
    raw["conv1_1.w"] = raw["conv1_1.w"][:, :, ::-1, :]  # Caffe BGR -> tinyseg RGB
    return {k: np.ascontiguousarray(v) for k, v in raw.items()}


def save_params_npz(path, params):
    """Write parameters (tinyseg names and layout) to a ``.npz``, atomically.

    The file is written next to ``path`` under a temporary name and moved into place with
    ``os.replace``, so an interrupted write never leaves a half-written file at ``path``.
    :func:`load_params_npz` reads it back unchanged.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written exactly there (no ``.npz`` is appended).
    params : dict of str -> ndarray
        ``"<layer>.w"`` / ``"<layer>.b"`` arrays; stored as float32.
    """
    path = os.fspath(path)
    if not isinstance(params, dict) or not params:
        raise TypeError("The parameter `params` must be a non-empty dict name -> array")
    for k in params:
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z0-9_]+\.[wb]", k):
            raise ValueError(f"The parameter `params` has a key {k!r} that is not '<layer>.w|b'")
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v, dtype=np.float32) for k, v in params.items()})
