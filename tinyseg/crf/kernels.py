"""The CRF's kernels for a backend, picked by the backend's name.

The CRF owns its kernels: the CPU ones are :class:`~tinyseg.crf.inference.MeanField` (over
:mod:`tinyseg.crf.mean_field_kernels`) and :mod:`tinyseg.crf.rnn.kernels`; the CUDA ones are in
:mod:`tinyseg.crf.cuda`. The backend registry (:mod:`tinyseg.backend`) knows nothing of the CRF.
"""
from __future__ import annotations

from ..backend import get_backend

__all__ = ["mean_field", "rnn_kernels"]


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


def rnn_kernels(device: str):
    """The CRF-as-RNN kernels of ``device`` (a module; the CPU's and the GPU's have the same names)."""
    get_backend(device)
    if device == "cuda":
        from .cuda import rnn

        return rnn
    from .rnn import kernels

    return kernels
