"""The dense CRF's mean field on a backend, picked by the backend's name.

The CRF owns its kernels: on the CPU :class:`~tinyseg.crf.inference.MeanField` (over
:mod:`tinyseg.crf.mean_field_kernels`), on the GPU :mod:`tinyseg.crf.cuda`; CRF-as-RNN picks its
own the same way (:func:`tinyseg.crf.rnn.engine.rnn_kernels`). The backend registry
(:mod:`tinyseg.backend`) knows nothing of the CRF.
"""
from __future__ import annotations

from ..backend import get_backend

__all__ = ["mean_field"]


def mean_field(device: str, unary, terms, iterations: int, callback=None):
    """The dense CRF's mean field on ``device``: unary (N, C), pairwise terms -> Q (N, C) host float32.

    ``callback(i)``, if given, runs after iteration ``i`` (progress, Ctrl-C).
    """
    get_backend(device)                     # an unknown or unavailable device fails here, clearly
    if device == "cuda":
        from .cuda import mean_field as run

        return run(unary, terms, iterations, callback=callback)
    from .inference import MeanField

    return MeanField(unary, terms).run(iterations, callback=callback)
