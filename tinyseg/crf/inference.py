"""Mean-field inference of the fully connected CRF (Krähenbühl & Koltun 2011), filter-agnostic.

Energy: ``E(x) = sum_i U_i(x_i) + sum_k sum_{i<j} mu_k(x_i, x_j) K_k[i, j]`` with Gaussian kernels
``K_k``. Mean field keeps a factorised ``Q`` (N, C) and iterates (pydensecrf's update)::

    Q = softmax(-U)
    repeat: Q = softmax(-U - sum_k compat_k(K̃_k Q))

with the normalised kernel ``K̃ = D^-1/2 K D^-1/2``, ``D = K 1`` (symmetric; ``K`` includes the pixel
itself, as pydensecrf's lattice does). The label compatibility is pydensecrf's:

* a number ``w`` (Potts): ``compat(P) = -w P`` -- agreement is rewarded, i.e. the energy form with
  penalty ``w [l != l']`` up to a per-pixel constant;
* a vector ``v`` (C,): ``compat(P) = P * v`` (label-wise);
* a matrix ``M`` (C, C): ``compat(P)[:, l] = sum_l' M[l, l'] P[:, l']``, i.e. ``P @ M.T``: ``M[l, l']``
  is the cost of label ``l`` at a pixel whose neighbour has label ``l'`` (the general, learnable
  compatibility of CRF-as-RNN; Potts ``w`` is ``M = -w I``, or ``w (1 - I)`` up to a per-pixel
  constant). pydensecrf's ``MatrixCompatibility`` uses ``(M + M^T) / 2``; its compatible API
  (:mod:`tinyseg.crf.compat`) symmetrises before it gets here.

Inference knows nothing of filtering: a term holds any object with ``apply(values (N, M)) -> K
values`` (see :mod:`tinyseg.crf.filters`). Because the rows of ``Q`` sum to one,
``K̃ Q[:, C-1] = K̃ 1 - sum_{l<C-1} K̃ Q[:, l]``: the filters only see ``C - 1`` channels (for two labels
that halves the filtering), and ``K̃ 1`` comes for free from the first iteration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Number

import numpy as np
from numba import njit, prange

__all__ = [
    "NORMALIZATIONS",
    "PairwiseTerm",
    "MeanField",
    "mean_field",
    "mean_field_reference",
    "softmax",
    "softmax_reference",
]

#: Normalisations, with pydensecrf's meaning: "symmetric" ``D^-1/2 K D^-1/2``, "before" ``K D^-1``,
#: "after" ``D^-1 K``, "none" ``K`` as is.
NORMALIZATIONS = ("symmetric", "before", "after", "none")
_EPS = 1e-20   # added to D before dividing, as pydensecrf does


def softmax_reference(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 NumPy, stabilised by the row maximum: (N, C) -> (N, C)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@njit(parallel=True, cache=True)
def _softmax_kernel(logits, out):
    """out[i] = exp(logits[i] - max) / sum(exp(logits[i] - max)), row by row; (N, C) float32.

    Two labels: with ``e = exp(min(l1 - l0, 80))``, ``out = (1 / (1 + e), e / (1 + e))``: one
    exponential, no maximum, branch-free so that it vectorises (the cap keeps ``e`` finite in
    float32; beyond it ``out[0] < 2e-35`` anyway).
    """
    n, c = logits.shape
    one = np.float32(1.0)
    if c == 2:
        cap = np.float32(80.0)
        for i in prange(n):
            e = np.exp(min(logits[i, 1] - logits[i, 0], cap))
            q0 = one / (one + e)
            out[i, 0] = q0
            out[i, 1] = e * q0
        return
    for i in prange(n):
        mx = logits[i, 0]
        for l in range(1, c):
            mx = max(mx, logits[i, l])
        s = np.float32(0.0)
        for l in range(c):
            e = np.exp(logits[i, l] - mx)
            out[i, l] = e
            s += e
        inv = one / s
        for l in range(c):
            out[i, l] *= inv


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise stable softmax, float32: (N, C) -> (N, C)."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    out = np.empty_like(logits)
    _softmax_kernel(logits, out)
    return out


@njit(cache=True)
def _scale_columns_kernel(q, scale, n_cols, out):
    """out[i, l] = scale[i] * q[i, l] for l < n_cols; q (N, C), out (N, n_cols)."""
    for i in range(q.shape[0]):
        s = scale[i]
        for l in range(n_cols):
            out[i, l] = s * q[i, l]


@njit(cache=True)
def _complete_kernel(filtered, scale, k1, out):
    """out[:, l] = scale * filtered[:, l] (l < C-1); out[:, C-1] = k1 - sum of the others.

    filtered (N, C-1) = K (pre * Q[:, :C-1]); scale = post; k1 = K̃ 1 (N,); out (N, C) = K̃ Q.
    """
    n, c = out.shape
    for i in range(n):
        s = 0.0
        for l in range(c - 1):
            v = scale[i] * filtered[i, l]
            out[i, l] = v
            s += v
        out[i, c - 1] = k1[i] - s


@njit(cache=True)
def _rows_sum_to_one(q, tol):
    """Whether every row of q (N, C) sums to 1 within tol (the C-1 channel identity needs it)."""
    for i in range(q.shape[0]):
        s = 0.0
        for l in range(q.shape[1]):
            s += q[i, l]
        if abs(s - 1.0) > tol:
            return False
    return True


@njit(cache=True)
def _post_scale_kernel(filtered, scale, out, row_sums):
    """out = scale[:, None] * filtered and row_sums = out.sum(1); filtered, out (N, C)."""
    n, c = out.shape
    for i in range(n):
        s = 0.0
        for l in range(c):
            v = scale[i] * filtered[i, l]
            out[i, l] = v
            s += v
        row_sums[i] = s


@njit(cache=True)
def _add_potts_completed_kernel(filtered, scale, k1, weight, logits):
    """logits += weight * K̃Q, K̃Q completed as in :func:`_complete_kernel` (fused, Potts case)."""
    n, c = logits.shape
    for i in range(n):
        s = 0.0
        for l in range(c - 1):
            v = scale[i] * filtered[i, l]
            logits[i, l] += weight * v
            s += v
        logits[i, c - 1] += weight * (k1[i] - s)


@njit(cache=True)
def _add_potts_kernel(kq, weight, logits):
    """logits += weight * kq (Potts: compat(P) = -w P, subtracted)."""
    n, c = kq.shape
    for i in range(n):
        for l in range(c):
            logits[i, l] += weight * kq[i, l]


def _as_compat(compat, n_labels: int):
    """The label compatibility as ('potts', w) or ('matrix', M (C, C) float32), see the module."""
    if isinstance(compat, Number) and not isinstance(compat, bool):
        w = float(compat)
        if not np.isfinite(w):
            raise ValueError(f"`compat` must be finite, got {compat}")
        return "potts", np.float32(w)
    m = np.asarray(compat, dtype=np.float64)
    if m.ndim == 0:
        return _as_compat(float(m), n_labels)
    if not np.all(np.isfinite(m)):
        raise ValueError("`compat` contains NaN or infinite values")
    if m.ndim == 1:
        if m.shape[0] != n_labels:
            raise ValueError(f"`compat` vector has {m.shape[0]} entries but there are {n_labels} labels")
        return "matrix", np.diag(m).astype(np.float32)
    if m.ndim == 2:
        if m.shape != (n_labels, n_labels):
            raise ValueError(f"`compat` matrix has shape {m.shape} but there are {n_labels} labels: "
                             f"it must be ({n_labels}, {n_labels})")
        return "matrix", m.astype(np.float32)
    raise ValueError(f"`compat` must be a number, a vector or a matrix, got shape {m.shape}")


@dataclass
class PairwiseTerm:
    """One pairwise potential: a filter (``apply(values) -> K values``), a label compatibility and
    a normalisation (one of :data:`NORMALIZATIONS`)."""

    filter: object
    compat: object = 1.0
    normalization: str = "symmetric"
    # Set up by MeanField: pre/post scalings of K, K̃ 1, compat in canonical form.
    _pre: np.ndarray | None = field(default=None, repr=False)
    _post: np.ndarray | None = field(default=None, repr=False)
    _k1: np.ndarray | None = field(default=None, repr=False)
    _kind: str = field(default="", repr=False)
    _compat: object = field(default=None, repr=False)


class MeanField:
    """Mean-field inference over any filters; pydensecrf's ``inference``/``stepInference`` in one.

    Parameters
    ----------
    unary : (N, C) float32, the unary energies ``U = -log p`` (pixel-major).
    terms : the pairwise potentials.

    The set-up filters ``1`` once per term (``D = K 1``); ``K̃ 1`` is taken from the first iteration.
    """

    def __init__(self, unary: np.ndarray, terms: list[PairwiseTerm]):
        unary = np.asarray(unary)
        if unary.ndim != 2 or unary.shape[1] < 1:
            raise ValueError(f"`unary` must be (N, C), got shape {unary.shape}")
        self.unary = np.ascontiguousarray(unary, dtype=np.float32)
        self.n_points, self.n_labels = self.unary.shape
        self.neg_unary = -self.unary
        self.terms = list(terms)
        ones = np.ones((self.n_points, 1), dtype=np.float32)
        for term in self.terms:
            if term.normalization not in NORMALIZATIONS:
                raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}, "
                                 f"got {term.normalization!r}")
            if getattr(term.filter, "n_points", self.n_points) != self.n_points:
                raise ValueError(f"a pairwise filter covers {term.filter.n_points} points but the "
                                 f"unary has {self.n_points}")
            term._kind, term._compat = _as_compat(term.compat, self.n_labels)
            d = term.filter.apply(ones)[:, 0].astype(np.float64) + _EPS      # D = K 1, (N,)
            one = np.ones(self.n_points, dtype=np.float32)
            if term.normalization == "symmetric":
                term._pre = term._post = (1.0 / np.sqrt(d)).astype(np.float32)
            elif term.normalization == "before":
                term._pre, term._post = (1.0 / d).astype(np.float32), one
            elif term.normalization == "after":
                term._pre, term._post = one, (1.0 / d).astype(np.float32)
            else:
                term._pre = term._post = one
            term._k1 = None

    def start(self) -> np.ndarray:
        """The initial ``Q = softmax(-U)``, (N, C) float32."""
        return softmax(self.neg_unary)

    def pairwise_logits(self, q: np.ndarray) -> np.ndarray:
        """``-sum_k compat_k(K̃_k Q)``: what the pairwise terms add to ``-U``; (N, C) float32."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        return self._add_pairwise(q, np.zeros(q.shape, dtype=np.float32))

    def _add_pairwise(self, q: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """logits -= sum_k compat_k(K̃_k Q), in place; returns logits."""
        n, c = q.shape
        kq = None
        normalised = _rows_sum_to_one(q, 1e-4)
        for term in self.terms:
            if term._kind == "potts" and term._k1 is not None and c > 1 and normalised:
                # fused: filter C-1 channels, complete the last, add w * K̃Q
                scaled = np.empty((n, c - 1), dtype=np.float32)
                _scale_columns_kernel(q, term._pre, c - 1, scaled)
                _add_potts_completed_kernel(term.filter.apply(scaled), term._post, term._k1,
                                            term._compat, logits)
                continue
            if kq is None:
                kq = np.empty((n, c), dtype=np.float32)
            self._filtered(term, q, kq, normalised)                         # kq = K̃ Q
            if term._kind == "potts":
                _add_potts_kernel(kq, term._compat, logits)
            else:
                logits -= kq @ term._compat.T                               # (N, C) @ (C, C)
        return logits

    def _filtered(self, term: PairwiseTerm, q: np.ndarray, out: np.ndarray,
                  normalised: bool | None = None) -> None:
        """out = K̃ Q = post * K(pre * Q), filtering C-1 channels once K̃ 1 is known.

        The shortcut needs rows of Q that sum to 1 (``normalised``; checked when None), as mean
        field's do; any other Q is filtered channel by channel.
        """
        n, c = q.shape
        if normalised is None:
            normalised = _rows_sum_to_one(q, 1e-4)
        if term._k1 is None or c == 1 or not normalised:
            scaled = np.empty((n, c), dtype=np.float32)
            _scale_columns_kernel(q, term._pre, c, scaled)
            row_sums = np.empty(n, dtype=np.float32)
            _post_scale_kernel(term.filter.apply(scaled), term._post, out, row_sums)
            if normalised and c > 1:
                term._k1 = row_sums                                          # K̃ 1 = K̃ Q 1
            return
        scaled = np.empty((n, c - 1), dtype=np.float32)                     # (N, C-1)
        _scale_columns_kernel(q, term._pre, c - 1, scaled)
        filtered = term.filter.apply(scaled)
        _complete_kernel(filtered, term._post, term._k1, out)

    def step(self, q: np.ndarray) -> np.ndarray:
        """One mean-field update: ``softmax(-U + pairwise_logits(Q))``."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        logits = self._add_pairwise(q, self.neg_unary.copy())
        _softmax_kernel(logits, logits)                                     # in place, row-wise
        return logits

    def run(self, iterations: int) -> np.ndarray:
        """``iterations`` updates from :meth:`start`; returns Q (N, C) float32."""
        q = self.start()
        for _ in range(int(iterations)):
            q = self.step(q)
        return q

    def kl_divergence(self, q: np.ndarray) -> float:
        """KL(Q || P) up to log Z: ``sum Q log Q + sum U Q - sum Q pairwise_logits(Q)``.

        Mean field's objective (pydensecrf's ``klDivergence``); it falls as the iterations go.
        """
        q = np.asarray(q, dtype=np.float64)
        entropy = np.sum(q * np.log(np.maximum(q, 1e-20)))
        return float(entropy + np.sum(self.unary * q)
                     - np.sum(q * self.pairwise_logits(q.astype(np.float32))))


def mean_field(unary: np.ndarray, terms: list[PairwiseTerm], iterations: int = 5) -> np.ndarray:
    """Run mean field: unary (N, C) float32, terms -> Q (N, C) float32."""
    return MeanField(unary, terms).run(iterations)


def mean_field_reference(unary: np.ndarray, kernels: list[np.ndarray], compats: list,
                         iterations: int = 5) -> np.ndarray:
    """Plain float64 NumPy mean field with dense kernel matrices (tiny N only).

    unary (N, C); kernels: (N, N) matrices ``K_k`` including the diagonal; compats: a Potts
    weight ``w`` or a (C, C) matrix ``M`` per kernel.
    ``Q = softmax(-U)``; ``Q = softmax(-U + sum_k w_k K̃_k Q)`` (Potts) or ``-U - sum_k K̃_k Q M_k^T``,
    with ``K̃ = D^-1/2 K D^-1/2``.
    """
    u = np.asarray(unary, dtype=np.float64)
    normalised = []
    for k in kernels:
        s = 1.0 / np.sqrt(k.sum(axis=1))
        normalised.append(s[:, None] * k * s[None, :])                       # D^-1/2 K D^-1/2
    q = softmax_reference(-u)
    for _ in range(iterations):
        logits = -u
        for kn, c in zip(normalised, compats):
            if np.ndim(c) == 0:
                logits = logits + c * (kn @ q)
            else:
                logits = logits - (kn @ q) @ np.asarray(c, dtype=np.float64).T
        q = softmax_reference(logits)
    return q
