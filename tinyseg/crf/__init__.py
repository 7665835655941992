"""Fully connected CRF (Krähenbühl & Koltun 2011) with permutohedral-free filtering.

* :func:`dense_crf` -- one call: ``labels, Q = dense_crf(image, probabilities)``.
* :mod:`tinyseg.crf.compat` -- pydensecrf's API (``import tinyseg.crf.compat as dcrf``).
* :mod:`tinyseg.crf.inference` -- mean field over any filter objects.
* :mod:`tinyseg.crf.filters` -- one module per filter family (exact brute force, exact separable
  spatial Gaussian, sparse bilateral grid); all with ``apply(values (N, M)) -> K values`` and
  the adjoint ``apply_transpose``.
* :class:`CRFasRNN` -- the CRF as a trainable recurrent layer (Zheng et al. 2015), see
  :mod:`tinyseg.crf.rnn.layer` and the math in :mod:`tinyseg.crf.rnn.reference`.
* :mod:`tinyseg.crf.features` -- pydensecrf's feature scaling (``sdims``, ``schan``).
"""
from .features import bilateral_features, spatial_features
from .filters import ExactFilter, GridFilter, SeparableGaussianFilter
from .inference import MeanField, PairwiseTerm, mean_field
from .refine import POST_CRF, PROBABILITY_CLIP, bilateral_filter, dense_crf, spatial_filter
from .rnn import CRFasRNN, CRFasRNNConfig

__all__ = [
    "dense_crf",
    "MeanField",
    "PairwiseTerm",
    "mean_field",
    "ExactFilter",
    "SeparableGaussianFilter",
    "GridFilter",
    "spatial_features",
    "bilateral_features",
    "spatial_filter",
    "bilateral_filter",
    "PROBABILITY_CLIP",
    "POST_CRF",
    "CRFasRNN",
    "CRFasRNNConfig",
]


from .._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)
