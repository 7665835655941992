"""What every CRF filter is: a linear map ``values -> K @ values`` with a known adjoint.

The interface (mean-field inference, its backward pass and the CUDA twins rely on nothing else)::

    filt.n_points                        # N
    filt.symmetric                       # True when K == K^T (exactly, up to float rounding)
    filt.apply(values, out=None)         # (N, M) -> (N, M) float32:  K @ values (into out,
                                         #   which may be values itself)
    filt.apply_transpose(values)         # (N, M) -> (N, M) float32:  K^T @ values

``values`` may also be a vector (N,), read as (N, 1). ``K`` includes the point itself
(``K[i, i] ≈ 1``); normalisation (``D = K 1``) is inference's business, not the filter's.
"""
from __future__ import annotations

import numpy as np

from ...tuning import FAST_FLOATS  # noqa: F401 (the filters' kernels import it from here)

__all__ = ["Filter", "check_values", "check_features", "FAST_FLOATS"]



def check_values(values: np.ndarray, n_points: int) -> np.ndarray:
    """``values`` as a C-contiguous (N, M) float32 array; a vector (N,) becomes (N, 1)."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != n_points:
        raise ValueError(f"`values` must be (N, M) with N = {n_points}, got shape {values.shape}")
    return np.ascontiguousarray(values, dtype=np.float32)


def check_features(features: np.ndarray) -> np.ndarray:
    """``features`` checked to be a finite (N, D) array with N, D >= 1."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"`features` must be (N, D) with N, D >= 1, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("`features` contains NaN or infinite values")
    return features


class Filter:
    """Base class of the CRF's Gaussian filters ``K[i, j] ≈ exp(-|f_i - f_j|^2 / 2)``.

    Subclasses set ``n_points`` and implement :meth:`apply`. A symmetric filter (``symmetric =
    True``: the exact and separable filters) is its own adjoint, so :meth:`apply_transpose`
    defaults to :meth:`apply`; a filter whose matrix is a product of non-symmetric factors (the
    grid's ``S^T B S``) overrides it with the factors transposed in reverse order.
    """

    name = "filter"
    symmetric = True
    n_points: int

    def apply(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``K @ values``: (N, M) -> (N, M) float32."""
        raise NotImplementedError

    def apply_transpose(self, values: np.ndarray) -> np.ndarray:
        """``K^T @ values``: (N, M) -> (N, M) float32 (equal to :meth:`apply` when symmetric)."""
        if not self.symmetric:  # pragma: no cover - subclasses that are not symmetric override
            raise NotImplementedError(f"{type(self).__name__} must implement apply_transpose")
        return self.apply(values)

    def matrix(self) -> np.ndarray:
        """The dense (N, N) float32 matrix ``K``, column by column (tiny N only: tests, study)."""
        return self.apply(np.eye(self.n_points, dtype=np.float32))
