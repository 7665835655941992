"""Per-pixel kernels of mean-field inference, each beside its NumPy twin.

One iteration of :class:`tinyseg.crf.inference.MeanField` is, per pixel ``i`` (rows of (N, C)
arrays, labels contiguous so that the label loops vectorise, pixels in parallel):

1. ``logits = -U``, then for every pairwise term ``k`` with filter output ``F_k = K_k (pre_k Q)``
   over the first ``C - 1`` labels: complete ``K̃Q = post_k F_k`` with its last label
   ``K̃1 - sum`` (rows of ``Q`` sum to one) and add the compatibility's share
   (:func:`accumulate_potts`, :func:`accumulate_matrix`);
2. ``Q = softmax(logits)`` and, for every term, the next filter input ``pre_k Q[:, :C-1]``
   (:func:`softmax_and_scale`).

The exponential is :func:`exp32`, a branch-free float32 ``exp`` (Cody-Waite range reduction and a
degree-5 polynomial, relative error < 2e-7) that LLVM vectorises, where ``math.exp`` would be a
scalar library call per element. ``exp32(-inf) = 0`` exactly, so an infinite unary (a probability
of exactly 0) keeps its label out for good.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from ..tuning import FAST_FLOATS
from numba.extending import intrinsic

__all__ = ["exp32", "exp32_reference", "softmax", "softmax_reference", "softmax_and_scale",
           "softmax_and_scale_reference", "accumulate_potts", "accumulate_matrix",
           "accumulate_reference", "potts_update", "potts_update_reference", "potts_scratch",
           "UPDATE_BLOCK", "TRANSPOSE_BLOCK", "transpose", "transpose_reference", "energy_check",
           "energy_check_reference", "probability_check", "probability_check_reference"]


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (no conversion): how ``2^n`` is built."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return sig, codegen


_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)          # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI exact in 9 bits
_LN2_LO = np.float32(-2.12194440e-4)
_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                   4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_LOWEST = np.float32(-87.0)                # exp(-87) ≈ 1.6e-38, still a normal float32


@njit(inline="always")
def exp32(x):
    """float32 ``exp(x)`` for ``x <= 88``: ``2^n p(g)`` with ``x = n ln2 + g``, ``|g| <= ln2 / 2``.

    Below -87 the result is 0 (``exp32(-inf) = 0``): denormals are not worth their cost here.
    """
    xc = max(x, _LOWEST)
    n = np.floor(xc * _LOG2E + np.float32(0.5))
    g = xc - n * _LN2_HI - n * _LN2_LO
    p = _P[0]
    for c in _P[1:]:
        p = p * g + c
    p = p * g * g + g + np.float32(1.0)
    two_n = _float32_from_bits((np.int32(n) + np.int32(127)) << 23)        # 2^n, n in [-126, 127]
    return p * two_n if x >= _LOWEST else np.float32(0.0)


def exp32_reference(x: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`exp32` (float64 ``exp``, zero below -87)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(under="ignore"):
        return np.where(x >= -87.0, np.exp(np.maximum(x, -87.0)), 0.0)


def softmax_reference(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 NumPy, stabilised by the row maximum: (N, C) -> (N, C)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@njit(inline="always")
def _softmax_row(logits, out):
    """out = softmax(logits) for one row (1-D float32 arrays; out may be logits itself).

    Two labels take one exponential: with ``d = l1 - l0`` and ``t = exp(-|d|) <= 1``, the larger
    probability is ``1 / (1 + t)`` and the smaller ``t / (1 + t)`` (exactly 0 for ``d = ±inf``).
    """
    c = logits.shape[0]
    if c == 2:
        d = logits[1] - logits[0]
        t = exp32(-abs(d))
        big = np.float32(1.0) / (np.float32(1.0) + t)
        small = t * big
        out[0] = small if d >= 0 else big
        out[1] = big if d >= 0 else small
        return
    mx = logits[0]
    for l in range(1, c):
        mx = max(mx, logits[l])
    for l in range(c):                 # a loop of its own, without the sum, so that it vectorises
        out[l] = exp32(logits[l] - mx)
    s = np.float32(0.0)
    for l in range(c):
        s += out[l]
    inv = np.float32(1.0) / s
    for l in range(c):
        out[l] *= inv


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def _softmax_kernel(logits, out):
    """out[i] = softmax(logits[i]) row by row; (N, C) float32 (out may be logits)."""
    for i in prange(logits.shape[0]):
        _softmax_row(logits[i], out[i])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise stable softmax, float32: (N, C) -> (N, C); ``-inf`` logits give exact zeros."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    out = np.empty_like(logits)
    _softmax_kernel(logits, out)
    return out


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def softmax_and_scale(logits, q, pre, scaled):
    """q[i] = softmax(logits[i]); scaled[t, i, l] = pre[t, i] q[i, l] for l < scaled.shape[2].

    logits, q (N, C) float32; pre (T, N); scaled (T, N, L) with L = C - 1 (or C): the inputs of
    the T pairwise terms' filters for the next iteration.
    """
    n_terms, _, n_cols = scaled.shape
    for i in prange(logits.shape[0]):
        row = q[i]
        _softmax_row(logits[i], row)
        for t in range(n_terms):
            s = pre[t, i]
            dst = scaled[t, i]
            for l in range(n_cols):
                dst[l] = s * row[l]


def softmax_and_scale_reference(logits, pre, n_cols):
    """NumPy twin of :func:`softmax_and_scale`: returns (q (N, C), scaled (T, N, n_cols))."""
    q = softmax_reference(logits)
    return q, np.asarray(pre, np.float64)[:, :, None] * q[None, :, :n_cols]


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def accumulate_potts(filtered, post, k1, weight, logits):
    """logits += weight * K̃Q (Potts: ``-compat(P) = w P``), K̃Q completed from C-1 channels.

    filtered (N, C-1) = K (pre Q[:, :C-1]); post, k1 (N,): ``K̃Q[:, l] = post F[:, l]`` and
    ``K̃Q[:, C-1] = k1 - sum_l K̃Q[:, l]`` with ``k1 = K̃ 1``; logits (N, C).
    """
    for i in prange(logits.shape[0]):
        _add_potts_row(filtered[i], post[i], k1[i], weight, logits[i])


@njit(inline="always")
def _add_potts_row(f, p, k1, weight, row):
    """One pixel of :func:`accumulate_potts`: row (C,) += weight * K̃Q of f (C-1,), p, k1."""
    c = row.shape[0]
    s = np.float32(0.0)
    for l in range(c - 1):
        v = p * f[l]
        row[l] += weight * v
        s += v
    row[c - 1] += weight * (k1 - s)


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def accumulate_matrix(filtered, post, k1, a, kq, logits):
    """logits += K̃Q @ a for a (C, C) matrix (``a = -M^T`` for a compatibility M); kq (N, C) is
    scratch that receives K̃Q (completed as in :func:`accumulate_potts`)."""
    n, c = logits.shape
    for i in prange(n):
        p = post[i]
        row = kq[i]
        s = np.float32(0.0)
        for l in range(c - 1):
            v = p * filtered[i, l]
            row[l] = v
            s += v
        row[c - 1] = k1[i] - s
        lg = logits[i]
        for m in range(c):
            v = row[m]
            am = a[m]
            for l in range(c):
                lg[l] += v * am[l]


def accumulate_reference(filtered, post, k1, a, logits):
    """NumPy twin of both accumulate kernels: ``logits + K̃Q @ a`` (Potts: ``a = w I``)."""
    kq = np.asarray(post, np.float64)[:, None] * np.asarray(filtered, np.float64)   # (N, C-1)
    kq = np.concatenate([kq, (np.asarray(k1, np.float64) - kq.sum(1))[:, None]], axis=1)
    return np.asarray(logits, np.float64) + kq @ np.asarray(a, np.float64)


#: Pixels per block of :func:`potts_update`: its rows stay in the L1 cache between its steps.
UPDATE_BLOCK = 64


def potts_scratch(n_labels: int) -> np.ndarray:
    """:func:`potts_update`'s work space: one (UPDATE_BLOCK, C) block of rows per thread."""
    return np.empty((numba.config.NUMBA_NUM_THREADS, UPDATE_BLOCK, int(n_labels)), np.float32)


@njit(parallel=True, cache=True, nogil=True, fastmath=FAST_FLOATS)
def potts_update(neg_unary, filtered, post, k1, weights, pre, scaled, scratch, q):
    """One whole mean-field update for Potts terms: accumulate, softmax and scale, fused.

    ``logits[i] = -U[i] + sum_t weights[t] K̃_t Q[i]`` (each ``K̃_t Q`` completed from its C-1
    filtered channels as in :func:`accumulate_potts`), ``Q[i] = softmax(logits[i])`` and
    ``scaled[s, i] = pre[s, i] Q[i, :L]``, the next filter inputs.

    neg_unary (N, C); filtered (T, N, C-1), may be ``scaled`` itself (each block reads its rows
    before it writes them); post, k1 (T, N); weights (T,); pre (S, N), scaled (S, N, L);
    scratch (threads, UPDATE_BLOCK, C) from :func:`potts_scratch`; q (N, C) receives ``Q``, or
    is (0, C): then ``Q`` is not kept (the iterations before the last need only ``scaled``,
    and an (N, C) array less is 22 MB less at 512×512 with 21 labels). T = 0 gives
    ``Q_0 = softmax(-U)``.

    It does in one sweep what ``copy, accumulate_potts × T, softmax_and_scale`` do in T + 2:
    pixels go in blocks of :data:`UPDATE_BLOCK`, each step of a block runs over its rows while
    they are in the L1 cache, and the (N, C) arrays cross the memory bus once each. With 21
    labels at 512×512 that is 45% less time per iteration than the separate kernels.
    """
    n, c = neg_unary.shape
    n_terms = filtered.shape[0]
    n_scaled, _, n_cols = scaled.shape
    keep = q.shape[0] == n
    for b in prange((n + UPDATE_BLOCK - 1) // UPDATE_BLOCK):
        lo = b * UPDATE_BLOCK
        hi = min(n, lo + UPDATE_BLOCK)
        rows = scratch[numba.get_thread_id()]              # this block's logits, then Q
        for i in range(lo, hi):
            for l in range(c):
                rows[i - lo, l] = neg_unary[i, l]
        for t in range(n_terms):
            for i in range(lo, hi):
                _add_potts_row(filtered[t, i], post[t, i], k1[t, i], weights[t], rows[i - lo])
        for i in range(lo, hi):
            _softmax_row(rows[i - lo], rows[i - lo])
        for t in range(n_scaled):
            for i in range(lo, hi):
                sc = pre[t, i]
                for l in range(n_cols):
                    scaled[t, i, l] = sc * rows[i - lo, l]
        if keep:
            for i in range(lo, hi):
                for l in range(c):
                    q[i, l] = rows[i - lo, l]


def potts_update_reference(neg_unary, filtered, post, k1, weights, pre, n_cols):
    """NumPy twin of :func:`potts_update`: returns (q (N, C), scaled (T, N, n_cols)), float64."""
    logits = np.asarray(neg_unary, np.float64)
    for t in range(len(weights)):
        logits = accumulate_reference(filtered[t], post[t], k1[t],
                                      float(weights[t]) * np.eye(logits.shape[1]), logits)
    return softmax_and_scale_reference(logits, pre, n_cols)


#: Pixels per block of :func:`transpose` (a block's rows of both arrays stay in the L1 cache).
TRANSPOSE_BLOCK = 64


@njit(parallel=True, cache=True, nogil=True)
def _transpose_tall_kernel(src, sign, dst):
    """dst[j, i] = sign * src[i, j] for a tall src (A, B), A >= B: per block of src rows, each
    dst row written as one contiguous run (B short runs, not A strided ones)."""
    a, b = src.shape
    for t in prange((a + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK):
        i0 = t * TRANSPOSE_BLOCK
        i1 = min(a, i0 + TRANSPOSE_BLOCK)
        for j in range(b):
            d = dst[j]
            for i in range(i0, i1):
                d[i] = sign * src[i, j]


@njit(parallel=True, cache=True, nogil=True)
def _transpose_wide_kernel(src, sign, dst):
    """dst[j, i] = sign * src[i, j] for a wide src (A, B), A < B: dst row by dst row (each a
    short contiguous run), blocks of them per task."""
    a, b = src.shape
    for t in prange((b + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK):
        j0 = t * TRANSPOSE_BLOCK
        for j in range(j0, min(b, j0 + TRANSPOSE_BLOCK)):
            d = dst[j]
            for i in range(a):
                d[i] = sign * src[i, j]


def transpose(array: np.ndarray, negate: bool = False) -> np.ndarray:
    """``array.T`` (``-array.T`` with ``negate``) as a new C-contiguous float32 array, in one
    parallel pass: pydensecrf's label-major (C, N) arrays to the pixel-major (N, C) ones of the
    mean field and back. The loop order follows the shape: on one core, (21, 187500) both ways
    takes 2-3 ms (NumPy's ``ascontiguousarray(a.T)``: 2-4 ms, and one thread only)."""
    src = np.ascontiguousarray(array, dtype=np.float32)
    dst = np.empty(src.shape[::-1], dtype=np.float32)
    kernel = _transpose_tall_kernel if src.shape[0] >= src.shape[1] else _transpose_wide_kernel
    kernel(src, np.float32(-1.0 if negate else 1.0), dst)
    return dst


def transpose_reference(array: np.ndarray, negate: bool = False) -> np.ndarray:
    """NumPy twin of :func:`transpose`."""
    out = np.asarray(array, np.float32).T
    return np.ascontiguousarray(-out if negate else out)


@njit(parallel=True, cache=True, nogil=True)
def _energy_check_kernel(e, sign, bad_rows, stuck_rows):
    """Per row of ``E = sign · e``: any NaN or −inf energy (bad), every energy +inf (stuck)."""
    n, c = e.shape
    for i in prange(n):
        bad = False
        stuck = True
        for j in range(c):
            v = sign * e[i, j]
            if v != v or v == -np.inf:
                bad = True
            if v != np.inf:
                stuck = False
        bad_rows[i] = bad
        stuck_rows[i] = stuck


def energy_check(energies: np.ndarray, negated: bool = False):
    """``(bad, stuck)``: whether any energy is NaN or −inf, and the rows whose energies are all
    +inf (no label possible), as an int64 array. ``negated``: the array holds ``−E``.

    One parallel pass instead of NumPy's three passes and temporaries (set-up time of a CRF).
    """
    e = np.ascontiguousarray(energies, dtype=np.float32)
    bad_rows = np.empty(e.shape[0], np.bool_)
    stuck_rows = np.empty(e.shape[0], np.bool_)
    _energy_check_kernel(e, np.float32(-1.0 if negated else 1.0), bad_rows, stuck_rows)
    return bool(bad_rows.any()), np.flatnonzero(stuck_rows)


def energy_check_reference(energies: np.ndarray, negated: bool = False):
    """NumPy twin of :func:`energy_check`."""
    e = -np.asarray(energies, np.float32) if negated else np.asarray(energies, np.float32)
    bad = bool(np.isnan(e).any() or np.isneginf(e).any())
    return bad, np.flatnonzero(np.isposinf(e).all(axis=1))


@njit(parallel=True, cache=True, nogil=True)
def _probability_check_kernel(p, row_min, row_max, row_bad):
    """Per row of ``p`` (N, C): its minimum and maximum, and whether it holds NaN or ±inf."""
    n, c = p.shape
    for i in prange(n):
        lo = p[i, 0]
        hi = p[i, 0]
        bad = False
        for j in range(c):
            v = p[i, j]
            if not np.isfinite(v):
                bad = True
            lo = min(lo, v)
            hi = max(hi, v)
        row_min[i] = lo
        row_max[i] = hi
        row_bad[i] = bad


def probability_check(probabilities: np.ndarray):
    """``(bad, smallest, empty)`` of probabilities (..., C): whether any is NaN or infinite, the
    smallest value, and whether some pixel's largest probability is <= 0 (no possible class).

    One parallel pass instead of NumPy's four (``isfinite``, ``min``, ``max`` along the classes,
    the comparison) and their temporaries: part of a CRF's set-up.
    """
    p = np.asarray(probabilities)
    p = np.ascontiguousarray(p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1))
    if p.size == 0:
        return False, 0.0, False
    row_min = np.empty(p.shape[0], p.dtype)
    row_max = np.empty(p.shape[0], p.dtype)
    row_bad = np.empty(p.shape[0], np.bool_)
    _probability_check_kernel(p, row_min, row_max, row_bad)
    bad = bool(row_bad.any())
    return bad, float(row_min.min()), bool((row_max <= 0).any())


def probability_check_reference(probabilities: np.ndarray):
    """NumPy twin of :func:`probability_check`."""
    p = np.asarray(probabilities)
    if p.size == 0:
        return False, 0.0, False
    p = p.reshape(-1, p.shape[-1])
    return (bool(not np.all(np.isfinite(p))), float(np.min(p)),
            bool(np.any(p.max(axis=-1) <= 0)))
