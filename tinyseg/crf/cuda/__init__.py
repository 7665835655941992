"""The dense CRF on the GPU: CUDA twins of the CRF's filters, its mean field and CRF-as-RNN kernels.

The CRF package picks these by the backend's name (:mod:`tinyseg.crf.kernels`); they use the CUDA
backend's launch helpers and kernels (:mod:`tinyseg.backend.cuda`), never the other way round.

* :mod:`~tinyseg.crf.cuda.filters` -- exact, separable Gaussian and bilateral-grid filters;
  :mod:`~tinyseg.crf.cuda.sparse` -- the recursive Gaussian and the cluster filter;
  :mod:`~tinyseg.crf.cuda.convert` -- :func:`to_cuda_filter`, a CPU filter's CUDA twin.
* :mod:`~tinyseg.crf.cuda.inference` -- :class:`CudaMeanField` and :func:`mean_field`.
* :mod:`~tinyseg.crf.cuda.rnn` -- the CRF-as-RNN kernels, same names as
  :mod:`tinyseg.crf.rnn.kernels`.

:class:`CudaMeanField` is :class:`~tinyseg.crf.inference.MeanField`'s update on device arrays:

    Q = softmax(−U);  repeat:  Q = softmax(−U − Σ_k compat_k(K̃_k Q)),  K̃ = D^-½ K D^-½ (or the
    term's other normalisation),  D = K 1

with every compatibility (Potts ``w``, vector, matrix) written as a ``(C, C)`` matrix ``A`` so one
kernel applies ``logits[i] −= (post_i · (K (pre · Q))_i) @ A``; Potts is ``A = −w I``. Unlike the
CPU version it filters all ``C`` channels (no ``K̃ 1`` completion trick).
"""
from .convert import to_cuda_filter
from .filters import CudaExactFilter, CudaGridFilter, CudaSeparableGaussianFilter
from .inference import CudaMeanField, mean_field
from .sparse import CudaClusterFilter, CudaRecursiveGaussianFilter

__all__ = ["CudaExactFilter", "CudaSeparableGaussianFilter", "CudaGridFilter",
           "CudaRecursiveGaussianFilter", "CudaClusterFilter", "CudaMeanField", "to_cuda_filter",
           "mean_field"]
