"""Softmax cross-entropy over classes, per pixel, with an ignore label.

For a pixel with logits ``z (C,)`` and label ``t``:

    loss = log Σ_c exp(z_c) − z_t = (m + log Σ_c exp(z_c − m)) − z_t,   m = max_c z_c
    ∂loss/∂z_c = softmax(z)_c − [c = t]

Subtracting the maximum keeps every ``exp`` in (0, 1], so logits of ±1e4 are safe. Pixels whose
label equals ``ignore_label`` get zero loss and zero gradient. ``scale`` multiplies the gradient
(1 for the summed loss, 1/count for the mean).
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _exp_shifted_row(logits2, p, out2):
    """out2[p, c] = exp(logits2[p, c] − m) with m = max_c logits2[p, c]; returns (m, Σ_c out2[p, c])."""
    C = logits2.shape[1]
    m = logits2[p, 0]
    for c in range(1, C):
        if logits2[p, c] > m:
            m = logits2[p, c]
    s = 0.0
    for c in range(C):
        e = np.exp(logits2[p, c] - m)
        out2[p, c] = e
        s += e
    return m, s


@njit(parallel=True, cache=True)
def softmax_cross_entropy(logits2, labels1, ignore_label, scale, losses, dlogits2):
    """logits2 (M, C), labels1 (M,) -> losses (M,), dlogits2 (M, C) (may alias nothing)."""
    M, C = logits2.shape
    for p in prange(M):
        t = labels1[p]
        if t == ignore_label:
            losses[p] = 0.0
            for c in range(C):
                dlogits2[p, c] = 0.0
            continue
        m, s = _exp_shifted_row(logits2, p, dlogits2)
        losses[p] = (m - logits2[p, t]) + np.log(s)
        inv = scale / s
        for c in range(C):
            dlogits2[p, c] = dlogits2[p, c] * inv
        dlogits2[p, t] -= scale


@njit(parallel=True, cache=True)
def softmax(logits2, probs2):
    """probs2 = softmax(logits2) along the last axis, for (M, C) matrices."""
    M, C = logits2.shape
    for p in prange(M):
        _, s = _exp_shifted_row(logits2, p, probs2)
        for c in range(C):
            probs2[p, c] = probs2[p, c] / s
