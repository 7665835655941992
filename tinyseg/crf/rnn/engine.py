"""Mean-field inference of one image as a recurrent layer: forward, and backward in reverse.

:class:`MeanFieldRNN` runs the recurrence of :mod:`tinyseg.crf.rnn.reference` over filter
objects (anything with ``n_points``, ``apply`` and ``apply_transpose``, see
:mod:`tinyseg.crf.filters`) and the kernels of a backend (:func:`rnn_kernels`:
:mod:`tinyseg.crf.rnn.kernels` on the CPU, :mod:`tinyseg.crf.cuda.rnn` on the GPU). It
knows nothing of how the filters filter, as :class:`~tinyseg.crf.inference.MeanField` does not.

Per iteration the forward pass filters ``C - 1`` channels per kernel (``apply``) and the backward
pass ``C - 1`` channels per kernel (``apply_transpose``); everything else is one pass over the
pixels. The backward pass therefore costs about what the forward pass costs, plus one recomputed
``combine`` per iteration.

Memory. A training-mode forward keeps the messages ``M_k,t = K̃_k Q_t`` of every iteration,
``T K N C`` numbers (375×500, 21 labels, T = 5, K = 2: 158 MB in float32), plus a reference to
the logits ``Z``. ``Q_t`` is not kept: backward recomputes it from ``Z`` and the messages of the
iteration before (``Q_t = softmax(Z - (sum_k M_k,t-1 diag(w_k)) mu^T)``, no filtering), which
gives back exactly the forward's ``Q_t``. Keeping ``Q_t`` instead of the messages would halve the
memory (K = 2) but cost one more filtering per kernel and iteration in backward. A test-mode
forward keeps nothing and reuses one iteration's message buffer.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_backend

__all__ = ["MeanFieldRNN", "NORMALISATION_EPS", "rnn_kernels"]


def rnn_kernels(device: str):
    """The CRF-as-RNN kernels of ``device`` (a module; the CPU's and the GPU's have the same names)."""
    get_backend(device)                     # an unknown or unavailable device fails here, clearly
    if device == "cuda":
        from ..cuda import rnn

        return rnn
    from . import kernels

    return kernels


#: Added to ``D = K 1`` before ``D^-1/2``, as :class:`~tinyseg.crf.inference.MeanField` (and
#: pydensecrf) does.
NORMALISATION_EPS = 1e-20


class MeanFieldRNN:
    """Mean field over K filters of one image, differentiable in the logits, weights and compatibility.

    Parameters
    ----------
    filters : K filter objects over the same N points (CPU filters; the CUDA backend converts
        them with its ``device_filter``).
    device : "cpu" or "cuda", the backend whose kernels run.
    dtype : float32 (the layer) or float64 (finite-difference checks, with float64 filters).
    workspace : a dict that keeps the work arrays (the messages, backward's temporaries) for the
        next engine of the same shape (the layer passes one per image of the batch): fresh large
        arrays cost page faults on every step, as much as the work itself on a loaded machine.
        Returned arrays are always fresh; the messages of a cache stay valid until the next
        forward with the same workspace.

    The set-up filters ``1`` and ``D^-1/2`` once per kernel: ``D = K 1`` gives the symmetric
    normalisation ``scale = D^-1/2`` (``K̃ = diag(scale) K diag(scale)``, so ``K̃^T`` is
    ``diag(scale) K^T diag(scale)``), and ``K̃ 1`` completes the last channel of each message.
    """

    def __init__(self, filters, device: str = "cpu", dtype=np.float32, workspace: dict | None = None):
        if not filters:
            raise ValueError("`filters` is empty: CRF-as-RNN needs at least one kernel")
        self.backend = get_backend(device)
        self.kernels = rnn_kernels(device)
        self.dtype = np.dtype(dtype)
        self.workspace = {} if workspace is None else workspace
        self.filters = [self.kernels.device_filter(f) for f in filters]
        self.n_points = int(filters[0].n_points)
        for f in filters:
            if int(f.n_points) != self.n_points:
                raise ValueError(f"the filters cover {f.n_points} and {self.n_points} points: "
                                 "they must all filter the same image")
        be = self.backend
        scale = np.empty((len(filters), self.n_points))
        k1 = np.empty((len(filters), self.n_points))
        ones = be.asarray(np.ones((self.n_points, 1), self.dtype))
        for k, f in enumerate(self.filters):
            d = be.to_numpy(f.apply(ones))[:, 0].astype(np.float64) + NORMALISATION_EPS
            scale[k] = 1.0 / np.sqrt(d)
            s = be.asarray(scale[k].astype(self.dtype)[:, None])
            k1[k] = scale[k] * be.to_numpy(f.apply(s))[:, 0]          # K̃ 1 = D^-1/2 K D^-1/2 1
        self.scale = be.asarray(np.ascontiguousarray(scale, dtype=self.dtype))   # (K, N)
        self.k1 = be.asarray(np.ascontiguousarray(k1, dtype=self.dtype))         # (K, N)

    @property
    def n_kernels(self) -> int:
        return len(self.filters)

    # ------------------------------------------------------------------ forward
    def forward(self, z, weights, compat, iterations: int, keep: bool = False):
        """T mean-field iterations from ``Q_0 = softmax(z)``.

        Parameters
        ----------
        z : (N, C) logits, the backend's array of this engine's dtype, C >= 2.
        weights : (K, C) kernel weights; compat : (C, C) compatibility (energy), same kind.
        iterations : T >= 0.
        keep : keep what :meth:`backward` needs (training).

        Returns
        -------
        logits : (N, C), whose row-wise softmax is ``Q_T``.
        cache : ``(z, messages (T, K, N, C))`` if ``keep``, else None.
        """
        be, kern = self.backend, self.kernels
        n, c = z.shape
        t_max = int(iterations)
        q = self._work("q_forward", (n, c))
        kern.softmax(z, q)                                              # Q_0
        if t_max == 0:
            logits = be.empty((n, c), self.dtype)
            kern.copy(z, logits)
            return logits, ((z, None) if keep else None)
        messages = self._work("messages" if keep else "messages_test",
                              (t_max if keep else 1, self.n_kernels, n, c))
        scaled = self._work("scaled", (n, c - 1))
        logits = be.empty((n, c), self.dtype)
        compat_t = self._transposed(compat)
        for t in range(t_max):
            m_t = messages[t if keep else 0]                            # (K, N, C)
            for k, f in enumerate(self.filters):
                kern.scale_columns(q, self.scale[k], scaled)            # D^-1/2 Q[:, :C-1]
                kern.complete(f.apply(scaled), self.scale[k], self.k1[k], m_t[k])   # K̃_k Q_t
            kern.combine(z, m_t, weights, compat_t, logits, q)         # L_t+1, Q_t+1
        return logits, ((z, messages) if keep else None)

    # ------------------------------------------------------------------ backward
    def backward(self, dout, cache, weights, compat):
        """Run the recurrence in reverse.

        Parameters
        ----------
        dout : (N, C) dloss/dlogits of the forward's output (not modified).
        cache : what a ``keep=True`` forward returned; weights, compat : the forward's.

        Returns
        -------
        dz : (N, C) the backend's array, dloss/dz.
        dweights : (K, C) float64 host array.
        dcompat : (C, C) float64 host array.
        """
        be, kern = self.backend, self.kernels
        z, messages = cache
        n, c = z.shape
        dz = be.empty((n, c), self.dtype)
        kern.copy(dout, dz)                                             # G_T reaches z directly
        dweights = np.zeros((self.n_kernels, c))
        dcompat = np.zeros((c, c))
        if messages is None:
            return dz, dweights, dcompat
        g = self._work("g", (n, c))
        kern.copy(dout, g)                                              # G_T
        n_parts = kern.partials(n)
        dcompat_part = self._work("dcompat_part", (n_parts, c, c), np.float64)
        dweights_part = self._work("dweights_part", (n_parts, self.n_kernels, c), np.float64)
        work = self._work("pairwise", kern.pairwise_scratch_shape(n, c))
        compat_t = self._transposed(compat)
        v = self._work("v", (self.n_kernels, n, c - 1))
        dq = self._work("dq", (n, c))
        q = self._work("q", (n, c))
        scratch = self._work("scratch", (n, c))
        for t in range(messages.shape[0], 0, -1):
            kern.pairwise_backward(g, messages[t - 1], weights, compat, self.scale, work, v,
                                   dcompat_part, dweights_part)
            dcompat += be.to_numpy(dcompat_part).sum(axis=0)
            dweights += be.to_numpy(dweights_part).sum(axis=0)
            for k, f in enumerate(self.filters):                        # dQ = sum_k K̃_k^T dM_k
                kern.gather_adjoint(f.apply_transpose(v[k]), self.scale[k], k > 0, dq)
            if t == 1:
                kern.softmax(z, q)                                      # Q_0
            else:
                kern.combine(z, messages[t - 2], weights, compat_t, scratch, q)   # Q_t-1 again
            kern.softmax_backward(q, dq, g, dz)                         # G_t-1; dz += G_t-1
        return dz, dweights, dcompat

    def _work(self, name: str, shape: tuple, dtype=None):
        """The work array ``name`` of ``shape`` from the workspace (allocated when absent or resized)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        a = self.workspace.get(name)
        if a is None or tuple(a.shape) != tuple(shape) or np.dtype(a.dtype) != dtype:
            a = self.workspace[name] = self.backend.empty(shape, dtype)
        return a

    def _transposed(self, compat):
        """``compat.T`` as a contiguous array of the backend (what :func:`combine` reads)."""
        be = self.backend
        return be.asarray(np.ascontiguousarray(be.to_numpy(compat).T))
