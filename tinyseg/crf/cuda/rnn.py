"""CUDA twins of the CRF-as-RNN kernels (:mod:`tinyseg.crf.rnn.kernels`): same names and arguments.

Each public function is a host wrapper that launches ``@cuda.jit`` kernels on device arrays; the
kernels only compute. Element-wise steps run one thread per pixel (a pixel's C labels are a short
loop, as on the CPU). The parameter gradients of :func:`pairwise_backward` are sums over all
pixels: one thread per partial-sum entry ``(chunk, l, l')`` loops over its chunk of pixels, and
the host adds the chunks (``partials(N)`` of them), so no atomics are needed and the result does
not depend on the launch order. Sums inside a pixel run in float32 (these kernels serve the
float32 layer; the float64 checks run on the CPU), the partial sums in float64.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ...backend.cuda._launch import launch_1d
from ...backend.cuda.loss import softmax  # q = softmax(z) row-wise: the backend's kernel
from .convert import to_cuda_filter

__all__ = ["partials", "pairwise_scratch_shape", "device_filter", "copy", "softmax", "combine",
           "scale_columns", "complete", "pairwise_backward", "gather_adjoint", "softmax_backward"]

_CHUNKS = 256   # partial sums of the parameter gradients (at most; one per pixel on tiny images)


def partials(n_points: int) -> int:
    """How many chunks (and partial sums) :func:`pairwise_backward` splits the pixels into."""
    return max(1, min(int(n_points), _CHUNKS))


def pairwise_scratch_shape(n_points: int, n_labels: int) -> tuple:
    """The shape of :func:`pairwise_backward`'s ``scratch``, which the GPU does not use."""
    return (1,)


def device_filter(filt):
    """The CUDA twin of a CPU filter (:func:`tinyseg.crf.cuda.convert.to_cuda_filter`)."""
    return to_cuda_filter(filt)


@cuda.jit
def _copy_kernel(src, dst):
    i = cuda.grid(1)
    if i < src.shape[0]:
        for l in range(src.shape[1]):
            dst[i, l] = src[i, l]


def copy(src, dst):
    """dst = src; (N, C) arrays."""
    launch_1d(_copy_kernel, src.shape[0], src, dst)


@cuda.jit
def _combine_kernel(z, messages, weights, compat_t, logits, q):
    """Pixel i: A = sum_k w_k M_k, logits = z - A compat^T, q = softmax(logits) (q[i] holds A first)."""
    i = cuda.grid(1)
    n, c = z.shape
    if i < n:
        for lp in range(c):
            s = np.float32(0.0)
            for k in range(messages.shape[0]):
                s += weights[k, lp] * messages[k, i, lp]
            q[i, lp] = s
        mx = np.float32(-np.inf)
        for l in range(c):
            e = np.float32(0.0)
            for lp in range(c):
                e += compat_t[lp, l] * q[i, lp]
            x = z[i, l] - e
            logits[i, l] = x
            if x > mx:
                mx = x
        tot = np.float32(0.0)
        for l in range(c):
            e = math.exp(logits[i, l] - mx)
            q[i, l] = e
            tot += e
        inv = np.float32(1.0) / tot
        for l in range(c):
            q[i, l] *= inv


def combine(z, messages, weights, compat_t, logits, q):
    """See :func:`tinyseg.crf.rnn.kernels.combine` (``compat_t`` = compat^T)."""
    launch_1d(_combine_kernel, z.shape[0], z, messages, weights, compat_t, logits, q)


@cuda.jit
def _scale_columns_kernel(q, pre, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        for l in range(out.shape[1]):
            out[i, l] = pre[i] * q[i, l]


def scale_columns(q, pre, out):
    """out[i, l] = pre[i] q[i, l] for the first ``out.shape[1]`` channels."""
    launch_1d(_scale_columns_kernel, out.shape[0], q, pre, out)


@cuda.jit
def _complete_kernel(filtered, post, k1, out):
    """Pixel i: out[i, l] = post[i] filtered[i, l] for l < C-1, out[i, C-1] = k1[i] - the sum of
    those (the message K̃Q from the C-1 filtered channels)."""
    i = cuda.grid(1)
    n, c = out.shape
    if i < n:
        s = np.float32(0.0)
        for l in range(c - 1):
            x = post[i] * filtered[i, l]
            out[i, l] = x
            s += x
        out[i, c - 1] = k1[i] - s


def complete(filtered, post, k1, out):
    """See :func:`tinyseg.crf.rnn.kernels.complete`."""
    launch_1d(_complete_kernel, out.shape[0], filtered, post, k1, out)


@cuda.jit
def _pairwise_v_kernel(g, weights, compat, post, v):
    """Pixel i: v[k, i, l] = post[k, i] (w[k, l] dA[l] - w[k, C-1] dA[C-1]), dA = -g[i] compat."""
    i = cuda.grid(1)
    n, c = g.shape
    if i < n:
        da_last = np.float32(0.0)
        for l in range(c):
            da_last -= g[i, l] * compat[l, c - 1]
        for lp in range(c - 1):
            da = np.float32(0.0)
            for l in range(c):
                da -= g[i, l] * compat[l, lp]
            for k in range(v.shape[0]):
                v[k, i, lp] = post[k, i] * (weights[k, lp] * da - weights[k, c - 1] * da_last)


@cuda.jit
def _pairwise_partials_kernel(g, messages, weights, compat, dcompat_part, dweights_part):
    """One thread per entry of the partial sums of chunk p (see the CPU kernel's docstring)."""
    e = cuda.grid(1)
    n, c = g.shape
    n_k = messages.shape[0]
    n_parts = dcompat_part.shape[0]
    per = c * c + n_k * c
    if e < n_parts * per:
        p = e // per
        r = e % per
        acc = 0.0                                    # float64
        if r < c * c:                                # dcompat[l, lp] = -sum_i g[i, l] A[i, lp]
            l = r // c
            lp = r % c
            for i in range((n * p) // n_parts, (n * (p + 1)) // n_parts):
                a = np.float32(0.0)
                for k in range(n_k):
                    a += weights[k, lp] * messages[k, i, lp]
                acc -= g[i, l] * a
            dcompat_part[p, l, lp] = acc
        else:                                        # dweights[k, lp] = sum_i dA[i, lp] M[k, i, lp]
            k = (r - c * c) // c
            lp = (r - c * c) % c
            for i in range((n * p) // n_parts, (n * (p + 1)) // n_parts):
                da = np.float32(0.0)
                for l in range(c):
                    da -= g[i, l] * compat[l, lp]
                acc += da * messages[k, i, lp]
            dweights_part[p, k, lp] = acc


def pairwise_backward(g, messages, weights, compat, post, scratch, v, dcompat_part, dweights_part):
    """See :func:`tinyseg.crf.rnn.kernels.pairwise_backward` (two launches: ``v``, then the
    partials; ``scratch`` is not needed here: each thread keeps its sums in registers)."""
    launch_1d(_pairwise_v_kernel, g.shape[0], g, weights, compat, post, v)
    c = g.shape[1]
    n_entries = dcompat_part.shape[0] * (c * c + messages.shape[0] * c)
    launch_1d(_pairwise_partials_kernel, n_entries, g, messages, weights, compat, dcompat_part,
              dweights_part)


@cuda.jit
def _gather_adjoint_kernel(filtered, pre, accumulate, dq):
    i = cuda.grid(1)
    n, c = dq.shape
    if i < n:
        s = pre[i]
        if accumulate:
            for l in range(c - 1):
                dq[i, l] += s * filtered[i, l]
        else:
            for l in range(c - 1):
                dq[i, l] = s * filtered[i, l]
            dq[i, c - 1] = 0.0


def gather_adjoint(filtered, pre, accumulate, dq):
    """See :func:`tinyseg.crf.rnn.kernels.gather_adjoint`."""
    launch_1d(_gather_adjoint_kernel, dq.shape[0], filtered, pre, bool(accumulate), dq)


@cuda.jit
def _softmax_backward_kernel(q, dq, g, dz):
    """Pixel i: g[i] = q[i] (dq[i] - <q[i], dq[i]>), the logits' gradient; dz[i] += g[i]."""
    i = cuda.grid(1)
    n, c = q.shape
    if i < n:
        s = np.float32(0.0)
        for l in range(c):
            s += q[i, l] * dq[i, l]
        for l in range(c):
            x = q[i, l] * (dq[i, l] - s)
            g[i, l] = x
            dz[i, l] += x


def softmax_backward(q, dq, g, dz):
    """g = q (dq - <q, dq>) row-wise; dz += g."""
    launch_1d(_softmax_backward_kernel, q.shape[0], q, dq, g, dz)
