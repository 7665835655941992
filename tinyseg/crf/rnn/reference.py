"""CRF-as-RNN (Zheng et al. 2015) in plain float64 NumPy: the readable twin of the trainable CRF.

Mean-field inference of the dense CRF is a short recurrence of differentiable steps, so it can sit
on top of a network as a recurrent layer and be trained with it. For one image:

====================  ======================================================================
``N, C, K, T``        pixels, labels, Gaussian kernels (spatial, bilateral), iterations
``Z`` (N, C)          the network's logits; CRF-as-RNN reads them as a negative unary, ``U = -Z``
``K̃_k`` (N, N)        a normalised kernel ``D_k^-1/2 K_k D_k^-1/2``, ``D_k = K_k 1`` (symmetric)
``w`` (K, C)          kernel weights: ``w[k, l']`` scales kernel ``k``'s message about label ``l'``
``mu`` (C, C)         the label compatibility, an *energy*: ``mu[l, l']`` is the cost of label
                      ``l`` at a pixel whose neighbours have label ``l'``; Potts is ``1 - I``
====================  ======================================================================

Forward (the recurrence; each line is one step of Zheng et al.'s Algorithm 1)::

    Q_0 = softmax(Z)                                   initialisation
    for t = 0 .. T-1:
        M_k,t = K̃_k Q_t                 (N, C) each     message passing (filtering)
        A_t   = sum_k M_k,t diag(w_k)   (N, C)          weighting the filter outputs
        E_t   = A_t mu^T                (N, C)          compatibility transform
        L_t+1 = Z - E_t                 (N, C)          adding the unary
        Q_t+1 = softmax(L_t+1)                          normalising
    output: L_T, the logits whose softmax is Q_T (Z itself when T = 0)

Signs. pydensecrf's Potts ``compat=w`` *rewards* agreement: it adds ``+w K̃Q`` to the logits, and
its matrix form ``M`` subtracts ``K̃Q M^T``, so its Potts matrix is ``-w I``. Here ``mu`` is the
energy of the paper (a penalty), and Potts is ``mu = 1 - I`` with the weight ``w`` in ``w``:
``E[i, l] = w (sum_l' K̃Q[i, l'] - K̃Q[i, l])``. The first term is the same for every label of
pixel ``i``, and softmax ignores a per-pixel constant, so ``mu = 1 - I`` and ``mu = -I`` give the
same ``Q`` -- and the same gradient: adding a constant to a column of ``mu`` changes no ``Q_t``,
so for any loss of ``Q_T`` (cross-entropy: the rows of ``dout`` sum to zero) ``d mu`` has columns
that sum to zero. With ``w = (3, 10)`` (spatial, bilateral) and Potts
``mu`` the recurrence is the post's dense CRF (:func:`tinyseg.crf.dense_crf`).

Backward. With ``G_t = dloss/dL_t`` and ``G_T = dout`` (the gradient of the output logits)::

    dZ = 0
    for t = T .. 1:
        dZ    += G_t                                   L_t = Z - E_t-1
        dmu   -= G_t^T A_t-1                           E = A mu^T:  dmu[l, l'] = sum_i dE[i, l] A[i, l']
        dA     = -G_t mu                               dA[i, l'] = sum_l dE[i, l] mu[l, l']
        dw[k] += sum_i dA[i, :] * M_k,t-1[i, :]        per label l'
        dQ     = sum_k K̃_k^T (dA diag(w_k))             the filter's adjoint (K̃ is symmetric)
        G_t-1  = Q_t-1 * (dQ - <Q_t-1, dQ>_row)         softmax Jacobian diag(q) - q q^T
    dZ += G_0                                          Q_0 = softmax(Z)

Backward needs, per iteration, ``Q_t`` and the messages ``M_k,t`` (this twin keeps both; the
fast version keeps only the messages and recomputes ``Q_t`` from them, see
:mod:`tinyseg.crf.rnn.engine`).

The functions ``*_reference`` below the full forward/backward are the NumPy twins of the fast
kernels (:mod:`tinyseg.crf.rnn.kernels`), same arguments and meaning, returning their outputs.
"""
from __future__ import annotations

import numpy as np

from ..inference import softmax_reference

__all__ = ["normalised_kernel", "crf_rnn_forward_reference", "crf_rnn_backward_reference",
           "potts_compat", "combine_reference", "scale_columns_reference", "complete_reference",
           "pairwise_backward_reference", "gather_adjoint_reference", "softmax_backward_reference"]


def potts_compat(n_labels: int) -> np.ndarray:
    """The Potts compatibility ``mu = 1 - I`` (C, C) float64: cost 1 when labels differ."""
    return 1.0 - np.eye(n_labels)


def normalised_kernel(kernel: np.ndarray) -> np.ndarray:
    """``K̃ = D^-1/2 K D^-1/2`` with ``D = K 1``: (N, N) -> (N, N) float64."""
    k = np.asarray(kernel, dtype=np.float64)
    s = 1.0 / np.sqrt(k.sum(axis=1))
    return s[:, None] * k * s[None, :]


def crf_rnn_forward_reference(z, kernels, weights, compat, iterations):
    """The recurrence of the module docstring with dense kernels, float64.

    Parameters
    ----------
    z : (N, C) logits (the negative unary).
    kernels : K dense (N, N) Gaussian kernel matrices ``K_k`` (diagonal included), normalised here.
    weights : (K, C) kernel weights.
    compat : (C, C) label compatibility (energy).
    iterations : T >= 0.

    Returns
    -------
    logits : (N, C), softmax of which is ``Q_T``.
    cache : what :func:`crf_rnn_backward_reference` needs.
    """
    z = np.asarray(z, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    mu = np.asarray(compat, dtype=np.float64)
    kn = [normalised_kernel(k) for k in kernels]
    qs = [softmax_reference(z)]                       # Q_0 .. Q_T-1 (and Q_T, unused)
    messages = []                                     # [t][k] = M_k,t (N, C)
    logits = z.copy()
    for _ in range(int(iterations)):
        m = [k @ qs[-1] for k in kn]                  # message passing
        a = sum(mk * w[k] for k, mk in enumerate(m))  # weighting: (N, C) * (C,)
        logits = z - a @ mu.T                         # compatibility transform + unary
        messages.append(m)
        qs.append(softmax_reference(logits))
    return logits, (z, kn, w, mu, qs, messages)


def crf_rnn_backward_reference(dout, cache):
    """Gradients of the recurrence: ``dout`` (N, C) = dloss/dlogits_T -> (dz, dweights, dcompat)."""
    z, kn, w, mu, qs, messages = cache
    g = np.asarray(dout, dtype=np.float64)             # G_T
    dz = np.zeros_like(z)
    dw = np.zeros_like(w)
    dmu = np.zeros_like(mu)
    for t in range(len(messages), 0, -1):
        m = messages[t - 1]
        a = sum(mk * w[k] for k, mk in enumerate(m))  # A_t-1
        dz += g
        dmu -= g.T @ a
        da = -g @ mu
        dq = np.zeros_like(z)
        for k, mk in enumerate(m):
            dw[k] += np.sum(da * mk, axis=0)
            dq += kn[k].T @ (da * w[k])               # the adjoint of message passing
        q = qs[t - 1]
        g = q * (dq - np.sum(q * dq, axis=1, keepdims=True))
    dz += g
    return dz, dw, dmu


# ----------------------------------------------------------------------------- kernel twins
def combine_reference(z, messages, weights, compat_t):
    """``logits = z - (sum_k messages[k] diag(weights[k])) compat^T``, ``q = softmax(logits)``.

    z (N, C), messages (K, N, C), weights (K, C), compat_t = compat^T (C, C) -> (logits, q).
    """
    a = np.einsum("knc,kc->nc", np.asarray(messages, np.float64), np.asarray(weights, np.float64))
    logits = np.asarray(z, np.float64) - a @ np.asarray(compat_t, np.float64)
    return logits, softmax_reference(logits)


def scale_columns_reference(q, pre, n_cols):
    """``pre[:, None] * q[:, :n_cols]``: what the filter sees (the first C-1 channels, scaled)."""
    return np.asarray(pre, np.float64)[:, None] * np.asarray(q, np.float64)[:, :n_cols]


def complete_reference(filtered, post, k1):
    """The message ``K̃ Q`` (N, C) from ``K (pre Q[:, :C-1])`` (N, C-1): rows of ``K̃ Q`` sum to ``K̃ 1``."""
    head = np.asarray(post, np.float64)[:, None] * np.asarray(filtered, np.float64)
    return np.concatenate([head, (np.asarray(k1, np.float64) - head.sum(axis=1))[:, None]], axis=1)


def pairwise_backward_reference(g, messages, weights, compat, post):
    """One iteration's backward up to the filters' adjoint.

    g (N, C) = G_t, messages (K, N, C) = M_t-1, weights (K, C), compat (C, C), post (K, N)
    (the kernel also takes a work space, which a twin does not need). Returns ``v`` (K, N, C-1), ``dcompat`` (C, C), ``dweights`` (K, C), with ``dA = -g compat``:

    * ``dcompat = -g^T A``, ``A = sum_k messages[k] diag(weights[k])``;
    * ``dweights[k] = sum_i dA * messages[k]``;
    * ``v[k] = post[k] * (dM_k[:, :C-1] - dM_k[:, C-1:])`` with ``dM_k = dA diag(weights[k])``: the
      adjoint only needs ``dQ`` up to a per-pixel constant (softmax's backward removes it), and the
      differences to the last channel give it with C-1 filtered channels.
    """
    g = np.asarray(g, np.float64)
    m = np.asarray(messages, np.float64)
    w = np.asarray(weights, np.float64)
    mu = np.asarray(compat, np.float64)
    a = np.einsum("knc,kc->nc", m, w)
    da = -g @ mu
    dmu = -g.T @ a
    dw = np.einsum("nc,knc->kc", da, m)
    dm = da[None, :, :] * w[:, None, :]                                   # (K, N, C)
    v = np.asarray(post, np.float64)[:, :, None] * (dm[:, :, :-1] - dm[:, :, -1:])
    return v, dmu, dw


def gather_adjoint_reference(filtered, pre, dq=None):
    """Add one kernel's adjoint to ``dQ`` (known up to a per-pixel constant): ``dq[:, :C-1] += pre * filtered``.

    filtered (N, C-1) = ``K^T v``, pre (N,), dq (N, C) or None (start from zeros: the last channel
    stays 0, the reference point of the differences). Returns the new dq.
    """
    head = np.asarray(pre, np.float64)[:, None] * np.asarray(filtered, np.float64)
    out = (np.zeros((head.shape[0], head.shape[1] + 1)) if dq is None
           else np.array(dq, dtype=np.float64))
    out[:, :-1] += head
    return out


def softmax_backward_reference(q, dq):
    """``q * (dq - sum(q * dq))`` row-wise: the gradient of the logits whose softmax is ``q``."""
    q = np.asarray(q, np.float64)
    dq = np.asarray(dq, np.float64)
    return q * (dq - np.sum(q * dq, axis=1, keepdims=True))
