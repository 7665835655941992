"""CPU kernels of CRF-as-RNN: the mean-field recurrence's element-wise steps and their backward.

The filtering itself is the filter objects' business (``apply``, ``apply_transpose``); these
kernels do everything around it, one pass over the pixels each, in parallel over pixels (or over
chunks of pixels for the parameter gradients, each chunk writing its own partial sums). They
write into preallocated outputs, never validate, allocate or raise; their NumPy twins are the
``*_reference`` functions of :mod:`tinyseg.crf.rnn.reference` (same arguments, returning the
outputs), and :mod:`tinyseg.crf.cuda.rnn` has the CUDA twins with the same arguments.

Notation as in :mod:`tinyseg.crf.rnn.reference`: ``z`` the logits (N, C), ``messages`` the
``K̃_k Q`` of one iteration (K, N, C), ``weights`` (K, C), ``compat`` the energy ``mu`` (C, C),
``pre``/``post`` the normalisation ``D^-1/2`` of each kernel (K, N) and ``k1 = K̃ 1`` (K, N).
The filters see ``C - 1`` channels only, forward and backward:

* forward, the rows of ``Q`` sum to one, so ``K̃Q[:, C-1] = K̃1 - sum_{l<C-1} K̃Q[:, l]``;
* backward, softmax's backward ignores a per-pixel constant in ``dQ``, so ``dQ - dQ[:, C-1]``
  suffices: ``K̃^T`` applied to the differences ``dM[:, l] - dM[:, C-1]``.

Arrays are float32 (the layer) or float64 (the finite-difference checks); reductions over the
labels run in float64. In float32 the exponential is :func:`~tinyseg.crf.mean_field_kernels.exp32`
(vectorised, relative error < 2e-7), in float64 NumPy's.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ...backend.cpu.loss import softmax  # q = softmax(z) row-wise: the one row-softmax kernel
from ..mean_field_kernels import exp32

__all__ = ["BLOCK", "partials", "pairwise_scratch_shape", "device_filter", "copy", "combine",
           "scale_columns", "complete", "pairwise_backward", "gather_adjoint", "softmax_backward",
           "softmax"]


#: Pixels per block of :func:`pairwise_backward`: the length of its vectorised inner loops.
BLOCK = 64


def partials(n_points: int) -> int:
    """How many chunks (and partial sums) :func:`pairwise_backward` splits the pixels into."""
    return max(1, min(int(n_points), numba.get_num_threads()))


def pairwise_scratch_shape(n_points: int, n_labels: int) -> tuple:
    """The shape of :func:`pairwise_backward`'s ``scratch``: each chunk's block of ``A`` and ``dA``."""
    return (partials(n_points), 2, int(n_labels), BLOCK)


def _exp(x):
    """``exp`` for the kernels: :func:`exp32` on float32 (it vectorises), ``np.exp`` otherwise."""
    return np.exp(x)


@overload(_exp)
def _exp_overload(x):
    if x == types.float32:
        return lambda x: exp32(x)
    return lambda x: np.exp(x)


def device_filter(filt):
    """The filter that runs on this backend: a CPU filter is used as it is."""
    return filt


@njit(parallel=True, cache=True)
def copy(src, dst):
    """dst = src; (N, C) arrays."""
    n, c = src.shape
    for i in prange(n):
        for l in range(c):
            dst[i, l] = src[i, l]


@njit(parallel=True, cache=True)
def combine(z, messages, weights, compat_t, logits, q):
    """One update after the filtering: weighting, compatibility, unary, softmax.

    ``A[i, l'] = sum_k weights[k, l'] messages[k, i, l']``;
    ``logits[i, l] = z[i, l] - sum_l' compat[l, l'] A[i, l']``; ``q = softmax(logits)``.
    ``compat_t`` is ``compat.T`` (contiguous), so that every inner loop runs along a row (an axpy
    over the labels, which vectorises). The row ``q[i]`` holds ``A[i]`` until the softmax
    overwrites it (no scratch memory).
    """
    n, c = z.shape
    n_k = messages.shape[0]
    for i in prange(n):
        a = q[i]
        out = logits[i]
        for lp in range(c):
            a[lp] = 0.0
            out[lp] = z[i, lp]
        for k in range(n_k):
            for lp in range(c):
                a[lp] += weights[k, lp] * messages[k, i, lp]
        for lp in range(c):
            s = a[lp]
            for l in range(c):
                out[l] -= compat_t[lp, l] * s
        mx = out[0]
        for l in range(1, c):
            mx = max(mx, out[l])
        for l in range(c):
            a[l] = _exp(out[l] - mx)
        tot = 0.0
        for l in range(c):
            tot += a[l]
        inv = 1.0 / tot
        for l in range(c):
            a[l] *= inv


@njit(parallel=True, cache=True)
def scale_columns(q, pre, out):
    """out[i, l] = pre[i] * q[i, l] for the first ``out.shape[1]`` (C-1) channels."""
    n, m = out.shape
    for i in prange(n):
        s = pre[i]
        for l in range(m):
            out[i, l] = s * q[i, l]


@njit(parallel=True, cache=True)
def complete(filtered, post, k1, out):
    """The message ``K̃Q`` (N, C) from the filtered C-1 channels (N, C-1).

    out[i, l] = post[i] * filtered[i, l] (l < C-1); out[i, C-1] = k1[i] - sum of those.
    """
    n, c = out.shape
    for i in prange(n):
        s = 0.0
        for l in range(c - 1):
            x = post[i] * filtered[i, l]
            out[i, l] = x
            s += x
        out[i, c - 1] = k1[i] - s


@njit(parallel=True, cache=True)
def pairwise_backward(g, messages, weights, compat, post, scratch, v, dcompat_part, dweights_part):
    """Backward of weighting + compatibility for one iteration, up to the filters' adjoint.

    g (N, C) = dloss/dlogits of the iteration; messages (K, N, C) its input messages.
    With ``dA = -g compat`` and ``A`` as in :func:`combine`, per chunk ``p`` of pixels:

    * ``dcompat_part[p] = -sum_i g[i]^T A[i]``              (C, C), float64
    * ``dweights_part[p, k] = sum_i dA[i] * messages[k, i]`` (K, C), float64
    * ``v[k, i, l] = post[k, i] (w[k, l] dA[i, l] - w[k, C-1] dA[i, C-1])``, l < C-1: what the
      transposed filter of kernel k sees.

    Each chunk walks its pixels in blocks of ``BLOCK``; ``scratch`` (P, 2, C, BLOCK) holds the
    block's ``A`` and ``dA`` label-major, so that every inner loop runs along the block's pixels
    (it vectorises however few labels there are) and the sums over pixels stay in registers.
    """
    n, c = g.shape
    n_k = messages.shape[0]
    n_parts = dcompat_part.shape[0]
    for p in prange(n_parts):
        dmu = dcompat_part[p]
        dw = dweights_part[p]
        a = scratch[p, 0]
        da = scratch[p, 1]
        dmu[:, :] = 0.0
        dw[:, :] = 0.0
        end = (n * (p + 1)) // n_parts
        for start in range((n * p) // n_parts, end, BLOCK):
            m = min(BLOCK, end - start)
            for lp in range(c):                                     # A of the block
                for j in range(m):
                    a[lp, j] = 0.0
                    da[lp, j] = 0.0
                for k in range(n_k):
                    wk = weights[k, lp]
                    for j in range(m):
                        a[lp, j] += wk * messages[k, start + j, lp]
            for l in range(c):                                      # dA and dcompat
                for lp in range(c):
                    mu = compat[l, lp]
                    acc = 0.0
                    for j in range(m):
                        gl = g[start + j, l]
                        da[lp, j] -= gl * mu
                        acc += gl * a[lp, j]
                    dmu[l, lp] -= acc
            for k in range(n_k):                                    # dweights and v
                for lp in range(c):
                    acc = 0.0
                    for j in range(m):
                        acc += da[lp, j] * messages[k, start + j, lp]
                    dw[k, lp] += acc
                last = weights[k, c - 1]
                for lp in range(c - 1):
                    wk = weights[k, lp]
                    for j in range(m):
                        v[k, start + j, lp] = post[k, start + j] * (wk * da[lp, j]
                                                                    - last * da[c - 1, j])


@njit(parallel=True, cache=True)
def gather_adjoint(filtered, pre, accumulate, dq):
    """dq[:, :C-1] (+)= pre * filtered; without ``accumulate`` also dq[:, C-1] = 0.

    filtered (N, C-1) = ``K^T v[k]`` for one kernel; ``dq`` (N, C) collects ``sum_k K̃_k^T dM_k``
    up to a per-pixel constant.
    """
    n, c = dq.shape
    for i in prange(n):
        s = pre[i]
        if accumulate:
            for l in range(c - 1):
                dq[i, l] += s * filtered[i, l]
        else:
            for l in range(c - 1):
                dq[i, l] = s * filtered[i, l]
            dq[i, c - 1] = 0.0


@njit(parallel=True, cache=True)
def softmax_backward(q, dq, g, dz):
    """g = q * (dq - <q, dq>) row-wise (the logits' gradient); dz += g. All (N, C)."""
    n, c = q.shape
    for i in prange(n):
        s = 0.0
        for l in range(c):
            s += q[i, l] * dq[i, l]
        for l in range(c):
            x = q[i, l] * (dq[i, l] - s)
            g[i, l] = x
            dz[i, l] += x
