"""CRF-as-RNN (Zheng et al. 2015): the dense CRF's mean field as a trainable recurrent layer.

* :mod:`~tinyseg.crf.rnn.layer` -- :class:`CRFasRNN` and its config: parameters, forward, backward.
* :mod:`~tinyseg.crf.rnn.engine` -- :class:`MeanFieldRNN`: the recurrence and its reverse pass over
  any backend's kernels.
* :mod:`~tinyseg.crf.rnn.kernels` -- the CPU kernels (the CUDA ones, same names, are
  :mod:`tinyseg.crf.cuda.rnn`).
* :mod:`~tinyseg.crf.rnn.reference` -- the NumPy twin with the math of the backward pass.
"""
from .engine import MeanFieldRNN
from .layer import KERNELS, CRFasRNN, CRFasRNNConfig

__all__ = ["CRFasRNN", "CRFasRNNConfig", "KERNELS", "MeanFieldRNN"]
