"""Softmax and softmax cross-entropy on the GPU: one thread per pixel (row of ``(M, C)``).

    loss = (m + log Σ_c exp(z_c − m)) − z_t,   m = max_c z_c
    ∂loss/∂z_c = scale · (softmax(z)_c − [c = t])

Pixels labelled ``ignore_label`` get zero loss and gradient. The sum of exponentials is kept in
float64, as on the CPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ._launch import launch_1d


@cuda.jit(device=True)
def _exp_shifted_row(logits2, p, out2):
    """``out2[p, c] = exp(logits2[p, c] − m)``, ``m`` the row's maximum.

    Returns ``(m, s)`` with ``s = Σ_c out2[p, c]``: the softmax row is ``out2[p] / s``.
    """
    C = logits2.shape[1]
    m = logits2[p, 0]
    for c in range(1, C):
        if logits2[p, c] > m:
            m = logits2[p, c]
    s = 0.0
    for c in range(C):
        e = math.exp(logits2[p, c] - m)
        out2[p, c] = e
        s += e
    return m, s


@cuda.jit
def _softmax_ce_kernel(logits2, labels1, ignore_label, scale, losses, dlogits2):
    p = cuda.grid(1)
    M, C = logits2.shape
    if p < M:
        t = labels1[p]
        if t == ignore_label:
            losses[p] = np.float32(0.0)
            for c in range(C):
                dlogits2[p, c] = np.float32(0.0)
        else:
            m, s = _exp_shifted_row(logits2, p, dlogits2)
            losses[p] = (m - logits2[p, t]) + math.log(s)
            inv = scale / s
            for c in range(C):
                dlogits2[p, c] = dlogits2[p, c] * inv
            dlogits2[p, t] -= scale


@cuda.jit
def _softmax_kernel(logits2, probs2):
    p = cuda.grid(1)
    M, C = logits2.shape
    if p < M:
        m, s = _exp_shifted_row(logits2, p, probs2)
        for c in range(C):
            probs2[p, c] = probs2[p, c] / s


def softmax_cross_entropy(logits2, labels1, ignore_label, scale, losses, dlogits2):
    """logits2 (M, C), labels1 (M,) int32 -> losses (M,), dlogits2 (M, C)."""
    launch_1d(_softmax_ce_kernel, logits2.shape[0], logits2, labels1, np.int32(ignore_label),
              np.float32(scale), losses, dlogits2)


def softmax(logits2, probs2):
    """probs2 = softmax(logits2) along the last axis, for (M, C) matrices."""
    launch_1d(_softmax_kernel, logits2.shape[0], logits2, probs2)
