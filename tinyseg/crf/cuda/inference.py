"""The dense CRF's mean field on the GPU (:class:`CudaMeanField`), over the CUDA filters of
:mod:`.filters` and :mod:`.sparse`; see :mod:`tinyseg.crf.cuda` for the update it runs."""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...backend.cuda._index import thread_cell
from ...backend.cuda._launch import launch_1d
from ...backend.cuda.loss import softmax as _softmax_rows
from ..inference import NORMALIZATIONS, _as_compat
from .convert import to_cuda_filter

__all__ = ["CudaMeanField", "mean_field"]

_EPS = 1e-20   # added to D before dividing, as the CPU mean field (and pydensecrf) does


@cuda.jit
def _scale_rows_kernel(q, scale, out):
    """out[i, c] = scale[i] · q[i, c]."""
    e = cuda.grid(1)
    n, m = q.shape
    if e < n * m:
        out[e // m, e % m] = scale[e // m] * q[e // m, e % m]


@cuda.jit
def _add_pairwise_kernel(kq, post, compat, logits):
    """logits[i, c] −= Σ_c' post[i] · kq[i, c'] · compat[c', c] (compat is (C, C))."""
    inside, i, c = thread_cell(logits)
    m = logits.shape[1]
    if inside:
        acc = np.float32(0.0)
        for cc in range(m):
            acc += kq[i, cc] * compat[cc, c]
        logits[i, c] -= post[i] * acc


@cuda.jit
def _copy_kernel(src, dst):
    e = cuda.grid(1)
    n, m = src.shape
    if e < n * m:
        dst[e // m, e % m] = src[e // m, e % m]


class CudaMeanField:
    """Mean-field inference on the GPU; same arguments and result as the CPU ``MeanField``.

    Parameters
    ----------
    unary : (N, C) float32 host array, ``U = −log p``.
    terms : list of :class:`tinyseg.crf.inference.PairwiseTerm`; their filters (CPU or CUDA) are
        converted with :func:`to_cuda_filter`.
    """

    def __init__(self, unary, terms):
        unary = np.asarray(unary)
        if unary.ndim != 2 or unary.shape[1] < 1:
            raise ValueError(f"`unary` must be (N, C), got shape {unary.shape}")
        self.n_points, self.n_labels = unary.shape
        self.neg_unary = cuda.to_device(np.ascontiguousarray(-unary, dtype=np.float32))
        self.terms = []
        ones = cuda.to_device(np.ones((self.n_points, 1), np.float32))
        for term in terms:
            if term.normalization not in NORMALIZATIONS:
                raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}, "
                                 f"got {term.normalization!r}")
            filt = to_cuda_filter(term.filter)
            if filt.n_points != self.n_points:
                raise ValueError(f"a pairwise filter covers {filt.n_points} points but the "
                                 f"unary has {self.n_points}")
            kind, c = _as_compat(term.compat, self.n_labels)
            # logits -= K̃Q @ A with A = -w I (Potts) or M^T (see tinyseg.crf.inference)
            compat = (-np.float32(c) * np.eye(self.n_labels, dtype=np.float32)
                      if kind == "potts" else np.asarray(c, np.float32).T)
            d = filt.apply(ones).copy_to_host()[:, 0].astype(np.float64) + _EPS   # D = K 1
            one = np.ones(self.n_points, np.float32)
            pre, post = {"symmetric": (1 / np.sqrt(d), 1 / np.sqrt(d)), "before": (1 / d, one),
                         "after": (one, 1 / d), "none": (one, one)}[term.normalization]
            self.terms.append((filt, cuda.to_device(np.asarray(pre, np.float32)),
                               cuda.to_device(np.asarray(post, np.float32)),
                               cuda.to_device(np.ascontiguousarray(compat, np.float32))))

    def start(self):
        """Device ``Q = softmax(−U)``, (N, C)."""
        q = cuda.device_array((self.n_points, self.n_labels), np.float32)
        _softmax_rows(self.neg_unary, q)
        return q

    def step(self, q):
        """One update on device arrays: ``softmax(−U − Σ_k compat_k(K̃_k Q))``."""
        n, c = self.n_points, self.n_labels
        logits = cuda.device_array((n, c), np.float32)
        launch_1d(_copy_kernel, n * c, self.neg_unary, logits)
        scaled = cuda.device_array((n, c), np.float32)
        for filt, pre, post, compat in self.terms:
            launch_1d(_scale_rows_kernel, n * c, q, pre, scaled)
            kq = filt.apply(scaled)                                  # K (pre · Q), on the device
            launch_1d(_add_pairwise_kernel, n * c, kq, post, compat, logits)
        _softmax_rows(logits, logits)                                # in place, row by row
        return logits

    def run(self, iterations: int, *, to_host: bool = True, callback=None):
        """``iterations`` updates from :meth:`start`; Q (N, C) float32 (host unless told not).
        ``callback(i)``, if given, runs after iteration ``i``."""
        q = self.start()
        for it in range(int(iterations)):
            q = self.step(q)
            if callback is not None:
                cuda.synchronize()
                callback(it)
        return q.copy_to_host() if to_host else q


def mean_field(unary, terms, iterations: int = 5, callback=None) -> np.ndarray:
    """:func:`tinyseg.crf.inference.mean_field` on the GPU: unary (N, C), terms -> Q (N, C) host."""
    return CudaMeanField(unary, terms).run(iterations, callback=callback)

