"""Pretrained VGG-16 weights: import the Keras HDF5 files (the naming tables are shared with :mod:`.npz`).

tinyseg never downloads anything. The pretrained ImageNet weights are the Keras applications
files ``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` (with the classifier) and
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` (convolutions only), which you fetch
yourself; see ``weights/README.md``.

Parameter naming (tinyseg)
--------------------------
A dict ``name -> float32 ndarray`` with ``"<layer>.w"`` (kernel ``(kh, kw, c_in, c_out)``) and
``"<layer>.b"`` (bias ``(c_out,)``):

=============  ==================  ===========================
tinyseg layer  Keras layer         tinyseg kernel shape
=============  ==================  ===========================
conv1_1        block1_conv1        (3, 3, 3, 64)
conv1_2        block1_conv2        (3, 3, 64, 64)
conv2_1..2_2   block2_conv1..2     (3, 3, 64|128, 128)
conv3_1..3_3   block3_conv1..3     (3, 3, 128|256, 256)
conv4_1..4_3   block4_conv1..3     (3, 3, 256|512, 512)
conv5_1..5_3   block5_conv1..3     (3, 3, 512, 512)
fc6            fc1                 (7, 7, 512, 4096)   from Keras (25088, 4096)
fc7            fc2                 (1, 1, 4096, 4096)  from Keras (4096, 4096)
(fc8)          predictions         not imported: fc8 is re-initialised for C classes
=============  ==================  ===========================

Keras HDF5 layout (``Model.save_weights``, Keras 1/2)
-----------------------------------------------------
The root has the attribute ``layer_names`` (a list of byte strings, every layer of the model,
weightless ones such as ``block1_pool`` or ``flatten`` included); each layer is a group of that
name whose attribute ``weight_names`` lists its datasets in order ``[kernel, bias]``, e.g.
``block1_conv1/block1_conv1_W_1:0`` and ``block1_conv1/block1_conv1_b_1:0`` in these files
(``block1_conv1/block1_conv1/kernel:0`` in files saved by newer Keras; the names are read from
``weight_names``, never guessed). Attributes too large for an HDF5 header are split by Keras
into ``layer_names0``, ``layer_names1``, ...; both forms are read. Whole-model files
(``Model.save``) keep the same layout under a ``model_weights`` group, also accepted.

Two conversions
---------------
1. **fc1 -> fc6 conv.** Keras' ``Flatten`` of the ``(7, 7, 512)`` pool5 map (channels last) puts
   element ``(h, w, c)`` at row ``(h * 7 + w) * 512 + c`` of fc1's ``(25088, 4096)`` kernel, so
   ``W.reshape(7, 7, 512, 4096)`` is the 7x7 convolution kernel that gives the same output at the
   centre of a VALID 7x7 window (and, run SAME over a larger map, the fully convolutional fc6).
   fc2 ``(4096, 4096)`` becomes the 1x1 conv ``(1, 1, 4096, 4096)``.
2. **BGR -> RGB.** These weights were converted from Caffe: the network expects **BGR** input
   minus Caffe's BGR means ``(103.939, 116.779, 123.68)``. tinyseg feeds **RGB** minus the same
   means in RGB order ``(123.68, 116.779, 103.939)``, i.e. ``x_rgb[..., c] = x_bgr[..., 2 - c]``.
   The first convolution is linear in its input channels,
   ``sum_c W[:, :, c, :] x_bgr[c] = sum_c W[:, :, 2 - c, :] x_rgb[c]``, so the importer reverses
   conv1_1's input-channel axis, ``W_rgb = W[:, :, ::-1, :]``, and the network computes exactly
   what Caffe computed (the zero padding of SAME is 0 in both inputs). Nothing else changes.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np


__all__ = [
    "VGG16_LAYERS",
    "KERAS_TO_TINYSEG",
    "VGG16_KERAS_MD5",
    "md5_of_file",
    "check_md5",
    "load_vgg16_keras",
]

#: tinyseg layer -> Keras layer, in network order (fc8/predictions is not imported).
VGG16_LAYERS = {
    "conv1_1": "block1_conv1", "conv1_2": "block1_conv2",
    "conv2_1": "block2_conv1", "conv2_2": "block2_conv2",
    "conv3_1": "block3_conv1", "conv3_2": "block3_conv2", "conv3_3": "block3_conv3",
    "conv4_1": "block4_conv1", "conv4_2": "block4_conv2", "conv4_3": "block4_conv3",
    "conv5_1": "block5_conv1", "conv5_2": "block5_conv2", "conv5_3": "block5_conv3",
    "fc6": "fc1", "fc7": "fc2",
}
#: Keras layer -> tinyseg layer.
KERAS_TO_TINYSEG = {k: t for t, k in VGG16_LAYERS.items()}

_CONV_LAYERS = [t for t in VGG16_LAYERS if t.startswith("conv")]

#: Exact VGG-16 kernel shapes in tinyseg layout.
_VGG16_SHAPES = {
    "conv1_1": (3, 3, 3, 64), "conv1_2": (3, 3, 64, 64),
    "conv2_1": (3, 3, 64, 128), "conv2_2": (3, 3, 128, 128),
    "conv3_1": (3, 3, 128, 256), "conv3_2": (3, 3, 256, 256), "conv3_3": (3, 3, 256, 256),
    "conv4_1": (3, 3, 256, 512), "conv4_2": (3, 3, 512, 512), "conv4_3": (3, 3, 512, 512),
    "conv5_1": (3, 3, 512, 512), "conv5_2": (3, 3, 512, 512), "conv5_3": (3, 3, 512, 512),
    "fc6": (7, 7, 512, 4096), "fc7": (1, 1, 4096, 4096),
}

#: Published MD5 checksums of the Keras applications files, as ``keras_applications/vgg16.py``
#: (keras-team/keras-applications) checks them with ``get_file(..., file_hash=...)``.
VGG16_KERAS_MD5 = {
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5": "64373286793e3c8b2b4e3219cbf3544b",
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": "6d6bbae143d832006294945121d1f1fc",
}


def md5_of_file(path, *, chunk_size=1 << 20):
    """MD5 hex digest of a file, read in chunks (the 528 MB weight file is never held whole).

    Parameters
    ----------
    path : str or os.PathLike
    chunk_size : int, optional
        Bytes read at a time.

    Returns
    -------
    str
        32 lowercase hex digits.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: {path!r}")
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def check_md5(path, expected=None):
    """Check a weight file against its published MD5.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    expected : str or iterable of str, optional
        Accepted digest(s). By default the file is accepted if it is either of the known Keras
        VGG-16 files (:data:`VGG16_KERAS_MD5`), whatever its name.

    Returns
    -------
    str
        The file's MD5 digest.

    Raises
    ------
    ValueError
        If the digest is not an accepted one; the message names the file and both digests.
    """
    if expected is None:
        accepted = set(VGG16_KERAS_MD5.values())
    elif isinstance(expected, str):
        accepted = {expected.lower()}
    else:
        accepted = {e.lower() for e in expected}
    digest = md5_of_file(path)
    if digest not in accepted:
        raise ValueError(
            f"MD5 of {os.fspath(path)!r} is {digest}, expected {' or '.join(sorted(accepted))} "
            "(a truncated or different file; re-fetch it, or skip the check with "
            "verify_md5=False / --no-verify for a file you trust)"
        )
    return digest


def _read_name_list(group, name):
    """Read a Keras string-list attribute, possibly chunked as name0, name1, ..."""
    if name in group.attrs:
        raw = list(group.attrs[name])
    else:
        raw, i = [], 0
        while f"{name}{i}" in group.attrs:
            raw.extend(group.attrs[f"{name}{i}"])
            i += 1
        if i == 0:
            return None
    return [r.decode("utf8") if isinstance(r, bytes) else str(r) for r in raw]


def _check_chain(params, path, strict_shapes):
    """Validate shapes: exact VGG-16 sizes, or (non-strict) a consistent VGG-16 structure."""
    prev_out = 3
    for layer in _CONV_LAYERS + ["fc6", "fc7"]:
        if f"{layer}.w" not in params:
            continue
        w, b = params[f"{layer}.w"], params[f"{layer}.b"]
        if strict_shapes:
            expected = _VGG16_SHAPES[layer]
        else:
            kh = {"fc6": w.shape[0] if w.ndim == 4 else -1, "fc7": 1}.get(layer, 3)
            expected = (kh, kh, prev_out, w.shape[-1] if w.ndim == 4 else -1)
        if w.shape != expected:
            raise ValueError(
                f"{path!r}: layer {layer} ({VGG16_LAYERS[layer]}) has kernel shape {w.shape} "
                f"(tinyseg layout kh, kw, c_in, c_out), expected {expected}"
            )
        if b.shape != (w.shape[-1],):
            raise ValueError(
                f"{path!r}: layer {layer} ({VGG16_LAYERS[layer]}) has bias shape {b.shape}, "
                f"expected ({w.shape[-1]},)"
            )
        prev_out = w.shape[-1]


def load_vgg16_keras(path, *, verify_md5=True, strict_shapes=True):
    """Import the Keras VGG-16 weight file into tinyseg parameters (RGB input, conv layout).

    Reads ``block1_conv1`` ... ``block5_conv3`` and, when present (full file, not ``_notop``),
    ``fc1`` and ``fc2``; ``predictions`` is ignored. See the module docstring for the layout and
    the two conversions (fc1 reshaped to a 7x7 conv; conv1_1's input channels reversed so the
    Caffe BGR weights take tinyseg's RGB-minus-RGB-means input).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file.
    verify_md5 : bool, optional
        Check the file against the published MD5 of the full or the notop file
        (:data:`VGG16_KERAS_MD5`) before reading it.
    strict_shapes : bool, optional
        Require VGG-16's exact sizes (default). ``False`` checks only the structure (3x3 convs
        chained from 3 input channels, fc1 a square ``k x k`` window over conv5_3's channels,
        fc2 square-compatible), for small files in the same layout (tests, narrow VGGs).

    Returns
    -------
    params : dict of str -> ndarray of float32
        ``"conv1_1.w"``, ``"conv1_1.b"``, ... ``"conv5_3.b"`` and, for the full file,
        ``"fc6.w"`` (7, 7, 512, 4096), ``"fc6.b"``, ``"fc7.w"`` (1, 1, 4096, 4096), ``"fc7.b"``.
        C-contiguous copies.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the MD5 does not match, the file is not a Keras weight file, or a layer group, a
        dataset or a shape is missing or wrong; the message names the file and the dataset.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path!r}")
    if verify_md5:
        check_md5(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path!r} is not an HDF5 file: {exc}") from exc
    with f:
        root = f
        if _read_name_list(root, "layer_names") is None and "model_weights" in f:
            root = f["model_weights"]  # a whole-model file (Model.save)
        layer_names = _read_name_list(root, "layer_names")
        if layer_names is None:
            raise ValueError(
                f"{path!r} is not a Keras weight file: no root attribute 'layer_names'"
            )
        wanted = [k for k in VGG16_LAYERS.values() if k.startswith("block")]
        has_fc = "fc1" in layer_names or "fc2" in layer_names
        if has_fc:
            wanted += ["fc1", "fc2"]
        params = {}
        for keras_name in wanted:
            layer = KERAS_TO_TINYSEG[keras_name]
            if keras_name not in layer_names or keras_name not in root:
                raise ValueError(f"{path!r}: layer group {keras_name!r} (tinyseg {layer}) is missing")
            g = root[keras_name]
            weight_names = _read_name_list(g, "weight_names")
            if not weight_names or len(weight_names) != 2:
                raise ValueError(
                    f"{path!r}: layer group {keras_name!r} must list 2 datasets [kernel, bias] "
                    f"in its 'weight_names' attribute; got {weight_names}"
                )
            arrays = []
            for wn in weight_names:
                if wn not in g:
                    raise ValueError(f"{path!r}: dataset {keras_name}/{wn} is missing")
                arrays.append(np.asarray(g[wn][()], dtype=np.float32))
            w, b = arrays
            where = f"{path!r}: dataset {keras_name}/{weight_names[0]}"
            if keras_name == "fc1":
                w = _fc1_to_conv(w, params, where)
            elif keras_name == "fc2":
                if w.ndim != 2:
                    raise ValueError(f"{where} has shape {w.shape}, expected a 2-D (in, out) kernel")
                w = w.reshape(1, 1, *w.shape)  # (in, out) -> (1, 1, in, out)
            elif w.ndim != 4:
                raise ValueError(f"{where} has shape {w.shape}, expected (kh, kw, in, out)")
            if b.ndim != 1:
                raise ValueError(
                    f"{path!r}: dataset {keras_name}/{weight_names[1]} has shape {b.shape}, "
                    "expected a 1-D bias"
                )
            params[f"{layer}.w"] = w
            params[f"{layer}.b"] = b
    _check_chain(params, path, strict_shapes)
    # Caffe BGR -> tinyseg RGB: reverse conv1_1's input-channel axis (see module docstring).
    params["conv1_1.w"] = params["conv1_1.w"][:, :, ::-1, :]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}


def _fc1_to_conv(w, params, where):
    """Keras fc1 (k*k*C, out), flattened in (h, w, c) order -> conv kernel (k, k, C, out)."""
    if w.ndim != 2:
        raise ValueError(f"{where} has shape {w.shape}, expected a 2-D (k*k*C, out) kernel")
    c5 = params["conv5_3.w"].shape[-1]
    k = int(round(np.sqrt(w.shape[0] / c5)))
    if k * k * c5 != w.shape[0]:
        raise ValueError(
            f"{where} has {w.shape[0]} input rows, which is not k*k*{c5} (conv5_3's channels) "
            "for any k"
        )
    return w.reshape(k, k, c5, w.shape[1])  # (k*k*C, out) -> (k, k, C, out), row = (h*k + w)*C + c
