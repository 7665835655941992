"""Parameter files: pretrained VGG-16 weights (Keras HDF5, ``.npz``) and tinyseg's checkpoints.

* :mod:`~tinyseg.weights.keras` -- the Keras HDF5 importer and the tinyseg <-> Keras naming.
* :mod:`~tinyseg.weights.npz` -- plain ``.npz`` files of named arrays (tinyseg- or Keras-named).
* :mod:`~tinyseg.weights.checkpoint` -- tinyseg's own HDF5 checkpoint (parameters, optimizer
  state, model config), written atomically.

:func:`load_params` picks the reader by the file extension. The modules import one way only:
``npz`` reads ``keras``'s tables; this package imports both.
"""
from __future__ import annotations

import os

from . import keras
from .keras import (KERAS_TO_TINYSEG, VGG16_KERAS_MD5, VGG16_LAYERS, check_md5, load_vgg16_keras,
                    md5_of_file)
from .npz import load_params_npz, save_params_npz

__all__ = [*keras.__all__, "load_params_npz", "save_params_npz", "load_params"]


def load_params(path, *, verify_md5=True, strict_shapes=True):
    """Load parameters from a Keras ``.h5`` (:func:`load_vgg16_keras`) or an ``.npz``
    (:func:`load_params_npz`), chosen by the file extension.

    ``verify_md5`` applies to ``.h5`` files only.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in (".h5", ".hdf5"):
        return load_vgg16_keras(path, verify_md5=verify_md5, strict_shapes=strict_shapes)
    if ext == ".npz":
        return load_params_npz(path, strict_shapes=strict_shapes)
    raise ValueError(
        f"weight file {os.fspath(path)!r} must end in .h5/.hdf5 (Keras) or .npz; got {ext!r}"
    )
