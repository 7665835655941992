"""The CUDA twin of a CPU filter object: what the device mean field and CRF-as-RNN run."""
from __future__ import annotations

from ..filters import (ClusterFilter, ExactFilter, GridFilter, RecursiveGaussianFilter,
                       SeparableGaussianFilter, SpatialGridFilter)
from .filters import CudaExactFilter, CudaGridFilter, CudaSeparableGaussianFilter
from .sparse import CudaClusterFilter, CudaRecursiveGaussianFilter

__all__ = ["to_cuda_filter"]


def to_cuda_filter(filt):
    """The CUDA twin of a CPU CRF filter (a CUDA filter is returned as is)."""
    if isinstance(filt, (CudaExactFilter, CudaSeparableGaussianFilter, CudaGridFilter,
                         CudaRecursiveGaussianFilter, CudaClusterFilter)):
        return filt
    if isinstance(filt, ExactFilter):
        return CudaExactFilter(filt.features)
    if isinstance(filt, SeparableGaussianFilter):
        return CudaSeparableGaussianFilter(filt.shape, filt.sdims, truncate=filt.truncate)
    if isinstance(filt, RecursiveGaussianFilter):
        return CudaRecursiveGaussianFilter(filt.shape, filt.sdims)
    if isinstance(filt, GridFilter):
        return CudaGridFilter(filt)
    if isinstance(filt, SpatialGridFilter):              # the same grid, described generally
        return CudaGridFilter(filt.describe())
    if isinstance(filt, ClusterFilter):
        return CudaClusterFilter(filt)
    raise TypeError(f"no CUDA version of the filter {type(filt).__name__}")
