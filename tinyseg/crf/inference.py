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
that halves the filtering); ``K̃ 1`` is filtered once at set-up.

An infinite unary (``U = +inf``, a probability of exactly 0) is a hard constraint: that label's
``Q`` is exactly 0 at that pixel in every iteration (as in pydensecrf). A pixel needs at least one
finite unary; NaN and ``-inf`` are errors. The per-pixel work of an iteration is fused into two
kernels (:mod:`tinyseg.crf.mean_field_kernels`) on preallocated buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Number

import numpy as np

from .mean_field_kernels import (accumulate_matrix, accumulate_potts, energy_check, potts_scratch,
                                 potts_update, softmax, softmax_and_scale, softmax_reference)

__all__ = [
    "NORMALIZATIONS",
    "PairwiseTerm",
    "MeanField",
    "mean_field",
    "mean_field_reference",
    "softmax",
    "softmax_reference",
    "check_unary",
]

#: Normalisations, with pydensecrf's meaning: "symmetric" ``D^-1/2 K D^-1/2``, "before" ``K D^-1``,
#: "after" ``D^-1 K``, "none" ``K`` as is.
NORMALIZATIONS = ("symmetric", "before", "after", "none")
_EPS = 1e-20   # added to D before dividing, as pydensecrf does


def check_unary(unary, negated: bool = False) -> np.ndarray:
    """``unary`` as a C-contiguous (N, C) float32 array of energies; ``+inf`` allowed, as a hard
    constraint, as long as every pixel keeps one finite energy. ``negated``: ``unary`` holds
    ``-U`` (checked as such, returned as it is)."""
    unary = np.asarray(unary)
    if unary.ndim != 2 or unary.shape[1] < 1:
        raise ValueError(f"`unary` must be (N, C), got shape {unary.shape}")
    unary = np.ascontiguousarray(unary, dtype=np.float32)
    bad, stuck = energy_check(unary, negated=negated)
    if bad:
        raise ValueError("`unary` contains NaN or -inf energies")
    if stuck.size:
        raise ValueError(f"`unary` is +inf for every label at {stuck.size} pixel(s) (first: "
                         f"{int(stuck[0])}): each pixel needs a label with a non-zero probability")
    return unary


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


def _apply(filt, values, out):
    """``filt.apply(values)`` into ``out`` when the filter takes ``out=`` (the CPU filters do)."""
    try:
        return filt.apply(values, out=out)
    except TypeError:
        out[...] = filt.apply(values)
        return out


class MeanField:
    """Mean-field inference over any filters; pydensecrf's ``inference``/``stepInference`` in one.

    Parameters
    ----------
    unary : (N, C) float32, the unary energies ``U = -log p`` (pixel-major); ``+inf`` is a hard
        constraint (see the module).
    terms : the pairwise potentials.
    negated : ``unary`` is ``-U`` already (C-contiguous float32), and is used without a copy.

    The set-up filters ``1`` and ``pre`` once per term (``D = K 1``, ``K̃ 1 = post K pre``).
    """

    def __init__(self, unary: np.ndarray, terms: list[PairwiseTerm], *, negated: bool = False):
        if negated:                  # the caller hands over -U (float32, C-contiguous): no copy
            neg = np.asarray(unary)
            if neg.ndim != 2 or neg.dtype != np.float32 or not neg.flags.c_contiguous:
                raise ValueError("with negated=True, `unary` must be a C-contiguous (N, C) float32 -U")
            self.neg_unary = check_unary(neg, negated=True)    # one pass, no copy
        else:
            self.neg_unary = np.negative(check_unary(unary))   # the only copy kept (memory)
        self.n_points, self.n_labels = self.neg_unary.shape
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
            d = np.asarray(term.filter.apply(ones))[:, 0].astype(np.float64) + _EPS   # D = K 1
            one = np.ones(self.n_points, dtype=np.float32)
            if term.normalization == "symmetric":
                term._pre = term._post = (1.0 / np.sqrt(d)).astype(np.float32)
            elif term.normalization == "before":
                term._pre, term._post = (1.0 / d).astype(np.float32), one
            elif term.normalization == "after":
                term._pre, term._post = one, (1.0 / d).astype(np.float32)
            else:
                term._pre = term._post = one
            if term.normalization in ("symmetric", "before"):              # pre is not constant
                k_pre = np.asarray(term.filter.apply(term._pre[:, None]))[:, 0]
            else:
                k_pre = d - _EPS                                           # pre = 1: K 1 = D
            term._k1 = (term._post * k_pre).astype(np.float32)            # K̃ 1 = post K pre

    @property
    def unary(self) -> np.ndarray:
        """The unary energies ``U`` (N, C) float32 (a new array: only ``-U`` is stored)."""
        return np.negative(self.neg_unary)

    # -- the pieces -----------------------------------------------------------------------------
    def start(self) -> np.ndarray:
        """The initial ``Q = softmax(-U)``, (N, C) float32."""
        return softmax(self.neg_unary)

    def pairwise_logits(self, q: np.ndarray) -> np.ndarray:
        """``-sum_k compat_k(K̃_k Q)``: what the pairwise terms add to ``-U``; (N, C) float32."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        logits = np.zeros(q.shape, dtype=np.float32)
        kq = np.empty(q.shape, dtype=np.float32)
        for term in self.terms:
            self._filtered(term, q, kq)                                    # kq = K̃ Q
            if term._kind == "potts":
                logits += term._compat * kq
            else:
                logits -= kq @ term._compat.T                              # (N, C) @ (C, C)
        return logits

    def _filtered(self, term: PairwiseTerm, q: np.ndarray, out: np.ndarray) -> None:
        """out = K̃ Q = post * K(pre * Q) (N, C); C-1 channels filtered when the rows of Q sum to
        1 (as mean field's do), all C otherwise."""
        n, c = q.shape
        normalised = c > 1 and np.allclose(q.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=1e-4)
        cols = c - 1 if normalised else c
        scaled = np.ascontiguousarray(term._pre[:, None] * q[:, :cols])    # (N, cols)
        filtered = np.asarray(term.filter.apply(scaled))
        out[:, :cols] = term._post[:, None] * filtered
        if normalised:
            out[:, c - 1] = term._k1 - out[:, :cols].sum(axis=1)

    def step(self, q: np.ndarray) -> np.ndarray:
        """One mean-field update: ``softmax(-U + pairwise_logits(Q))``."""
        return softmax(self.neg_unary + self.pairwise_logits(q))

    # -- the fast loop --------------------------------------------------------------------------
    def run(self, iterations: int, callback=None) -> np.ndarray:
        """``iterations`` updates from :meth:`start`; returns Q (N, C) float32.

        The fused loop: per iteration each term filters ``pre Q[:, :C-1]`` into a preallocated
        buffer; with Potts terms only, :func:`~.mean_field_kernels.potts_update` then makes the
        next filter inputs (and, after the last iteration, ``Q``) in one sweep; otherwise
        :func:`~.mean_field_kernels.accumulate_potts` (or ``_matrix``) adds each term's share to
        ``-U`` and :func:`~.mean_field_kernels.softmax_and_scale` does the rest. ``callback(i)``,
        if given, is called after iteration ``i`` (progress bars; Python handles Ctrl-C there too).
        """
        n, c = self.n_points, self.n_labels
        n_terms, cols = len(self.terms), c - 1
        iterations = int(iterations)
        pre = np.stack([t._pre for t in self.terms]) if n_terms else np.zeros((0, n), np.float32)
        # Buffers, reused in place to keep the memory low: each filter writes its output over
        # its input (the filters allow ``out=values``).
        scaled = np.empty((n_terms, n, cols), dtype=np.float32)           # filter in- and outputs
        filtered = scaled
        potts = all(t._kind == "potts" for t in self.terms)
        if potts:
            post = np.stack([t._post for t in self.terms]) if n_terms else pre
            k1 = np.stack([t._k1 for t in self.terms]) if n_terms else pre
            weights = np.array([t._compat for t in self.terms], dtype=np.float32)
            scratch = potts_scratch(c)
            # Q itself is kept only when it is the answer: the iterations need only ``scaled``
            no_q = np.empty((0, c), np.float32)
            q = np.empty((n, c), np.float32) if iterations == 0 else no_q
            potts_update(self.neg_unary, filtered[:0], post[:0], k1[:0], weights[:0], pre,
                         scaled, scratch, q)                               # Q_0's filter inputs
        else:
            q = np.empty((n, c), dtype=np.float32)
            logits = q                                                     # built in q's buffer
            kq = np.empty((n, c), dtype=np.float32)
            softmax_and_scale(self.neg_unary, q, pre, scaled)
        for it in range(iterations):
            if cols:
                for k, term in enumerate(self.terms):
                    _apply(term.filter, scaled[k], filtered[k])
            if potts:
                q = np.empty((n, c), np.float32) if it == iterations - 1 else no_q
                potts_update(self.neg_unary, filtered, post, k1, weights, pre, scaled, scratch, q)
            else:
                np.copyto(logits, self.neg_unary)
                for k, term in enumerate(self.terms):
                    if term._kind == "potts":
                        accumulate_potts(filtered[k], term._post, term._k1, term._compat, logits)
                    else:
                        accumulate_matrix(filtered[k], term._post, term._k1,
                                          np.ascontiguousarray(-term._compat.T), kq, logits)
                softmax_and_scale(logits, q, pre, scaled)
            if callback is not None:
                callback(it)
        return q

    def kl_divergence(self, q: np.ndarray) -> float:
        """KL(Q || P) up to log Z: ``sum Q log Q + sum U Q - sum Q pairwise_logits(Q)``.

        Mean field's objective (pydensecrf's ``klDivergence``); it falls as the iterations go.
        Terms with ``Q = 0`` count 0 (also where ``U = +inf``).
        """
        q = np.asarray(q, dtype=np.float64)
        entropy = np.sum(q * np.log(np.maximum(q, 1e-20)))
        unary = np.sum(np.where(q > 0, self.unary * q, 0.0))
        return float(entropy + unary - np.sum(q * self.pairwise_logits(q.astype(np.float32))))


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
