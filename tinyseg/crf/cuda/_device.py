"""Host/device plumbing shared by the CUDA filters: accept host or device values, answer in kind."""
from __future__ import annotations

import numpy as np
from numba import cuda


def _on_device(values):
    """(device (N, M) float32 values, whether the caller gave a host array)."""
    if isinstance(values, np.ndarray) or not hasattr(values, "copy_to_host"):
        v = np.asarray(values, dtype=np.float32)
        if v.ndim == 1:
            v = v[:, None]
        return cuda.to_device(np.ascontiguousarray(v)), True
    return values, False


def _result(out, was_host):
    return out.copy_to_host() if was_host else out


def _check_n(values, n_points):
    if len(values.shape) != 2 or values.shape[0] != n_points:
        raise ValueError(f"`values` must be (N, M) with N = {n_points}, got shape "
                         f"{tuple(values.shape)}")
