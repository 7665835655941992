"""The dense CRF's per-iteration kernels, each against its NumPy twin.

Mean-field kernels (:mod:`tinyseg.crf.mean_field_kernels`): the exponential, softmax, the two
accumulate kernels, softmax-and-scale and the fused Potts update; the grid's channels-last blur
pass (general and unrolled kernels) against the literal gather of its table.
"""
import numpy as np
import pytest
from numba import njit

from tinyseg.crf import mean_field_kernels as mfk
from tinyseg.crf.filters.grid_kernels import _blur_pass_rows_kernel, blur_pass_rows

TOL = dict(rtol=2e-5, atol=2e-6)


def _inputs(rng, n=203, c=5, terms=2):
    """-U (N, C) with a few hard constraints, filter outputs (T, N, C-1), post, k1, pre (T, N)."""
    neg_unary = -rng.uniform(0.0, 6.0, (n, c)).astype(np.float32)
    neg_unary[rng.integers(0, n, 15), rng.integers(0, c - 1, 15)] = -np.inf
    filtered = rng.uniform(0.0, 2.0, (terms, n, c - 1)).astype(np.float32)
    post, k1, pre = (rng.uniform(0.2, 1.0, (terms, n)).astype(np.float32) for _ in range(3))
    return neg_unary, filtered, post, k1, pre


def test_exp32_equals_its_twin_and_keeps_minus_infinity_at_zero():
    x = np.concatenate([np.linspace(-90.0, 88.0, 20001), [-np.inf, -87.0, 0.0]]).astype(np.float32)
    out = np.empty_like(x)
    _exp_all(x, out)
    want = mfk.exp32_reference(x)
    np.testing.assert_allclose(out, want, rtol=3e-7, atol=0)
    assert out[-3] == 0.0 and out[-1] == 1.0


@njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = mfk.exp32(x[i])


@pytest.mark.parametrize("c", [2, 3, 21])
def test_softmax_and_scale_equal_their_twins(rng, c):
    neg_unary, _, _, _, pre = _inputs(rng, c=c)
    np.testing.assert_allclose(mfk.softmax(neg_unary), mfk.softmax_reference(neg_unary), **TOL)
    q = np.empty_like(neg_unary)
    scaled = np.empty((2, neg_unary.shape[0], c - 1), np.float32)
    mfk.softmax_and_scale(neg_unary, q, pre, scaled)
    want_q, want_scaled = mfk.softmax_and_scale_reference(neg_unary, pre, c - 1)
    np.testing.assert_allclose(q, want_q, **TOL)
    np.testing.assert_allclose(scaled, want_scaled, **TOL)
    assert np.all(q[np.isneginf(neg_unary)] == 0.0)                     # hard constraints hold


@pytest.mark.parametrize("c", [2, 21])
def test_accumulate_kernels_equal_their_twin(rng, c):
    neg_unary, filtered, post, k1, _ = _inputs(rng, c=c)
    logits = rng.normal(size=neg_unary.shape).astype(np.float32)
    got = logits.copy()
    mfk.accumulate_potts(filtered[0], post[0], k1[0], np.float32(3.0), got)
    want = mfk.accumulate_reference(filtered[0], post[0], k1[0], 3.0 * np.eye(c), logits)
    np.testing.assert_allclose(got, want, **TOL)
    a = rng.normal(size=(c, c)).astype(np.float32)
    got = logits.copy()
    mfk.accumulate_matrix(filtered[1], post[1], k1[1], a, np.empty_like(logits), got)
    np.testing.assert_allclose(got, mfk.accumulate_reference(filtered[1], post[1], k1[1], a, logits),
                               **TOL)


@pytest.mark.parametrize("c", [1, 2, 3, 21])
@pytest.mark.parametrize("n", [1, 64, 203])
def test_potts_update_equals_its_twin_and_the_separate_kernels(rng, c, n):
    if c == 1:
        neg_unary = -rng.uniform(0.0, 6.0, (n, 1)).astype(np.float32)
        filtered = np.empty((2, n, 0), np.float32)
        post, k1, pre = (rng.uniform(0.2, 1.0, (2, n)).astype(np.float32) for _ in range(3))
    else:
        neg_unary, filtered, post, k1, pre = _inputs(rng, n=n, c=c)
    weights = np.array([3.0, 10.0], np.float32)
    want_q, want_scaled = mfk.potts_update_reference(neg_unary, filtered, post, k1, weights, pre,
                                                     c - 1)
    # the separate kernels, as the general loop runs them
    sep_q = neg_unary.copy()
    for t in range(2):
        mfk.accumulate_potts(filtered[t], post[t], k1[t], weights[t], sep_q)
    sep_scaled = np.empty_like(filtered)
    mfk.softmax_and_scale(sep_q, sep_q, pre, sep_scaled)
    scratch = mfk.potts_scratch(c)
    q = np.full_like(neg_unary, np.nan)
    scaled = filtered.copy()                      # in place: the filter outputs become the inputs
    mfk.potts_update(neg_unary, scaled, post, k1, weights, pre, scaled, scratch, q)
    np.testing.assert_allclose(q, want_q, **TOL)
    np.testing.assert_allclose(scaled, want_scaled, **TOL)
    np.testing.assert_array_equal(q, sep_q)       # same float32 operations in the same order
    np.testing.assert_array_equal(scaled, sep_scaled)
    unkept = filtered.copy()                      # without q: the same filter inputs
    mfk.potts_update(neg_unary, unkept, post, k1, weights, pre, unkept, scratch,
                     np.empty((0, c), np.float32))
    np.testing.assert_array_equal(unkept, scaled)
    start_q, start_scaled = np.empty_like(q), np.empty_like(scaled)    # no terms: Q_0
    mfk.potts_update(neg_unary, filtered[:0], post[:0], k1[:0], weights[:0], pre, start_scaled,
                     scratch, start_q)
    want_q0, want_scaled0 = mfk.softmax_and_scale_reference(neg_unary, pre, c - 1)
    np.testing.assert_allclose(start_q, want_q0, **TOL)
    np.testing.assert_allclose(start_scaled, want_scaled0, **TOL)


def _blur_pass_twin(src, neighbours, taps):
    """NumPy twin of one pass: ``dst[k] = sum_t taps[t] src[neighbours[k, t]]``, then a zero row."""
    dst = np.einsum("t,ktm->km", taps.astype(np.float64), src.astype(np.float64)[neighbours])
    return np.vstack([dst, np.zeros((1, src.shape[1]))])


@pytest.mark.parametrize("n_taps", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("m", [6, 20])
def test_blur_pass_rows_equal_their_twin(rng, n_taps, m):
    n_src, n_out = 150, 170
    src = rng.normal(size=(n_src + 1, m)).astype(np.float32)
    src[-1] = 0.0                                                        # the "empty" cell
    neighbours = rng.integers(0, n_src + 1, (n_out, n_taps)).astype(np.int32)
    neighbours[::7, 0] = n_src                                           # some empty neighbours
    taps = rng.uniform(0.1, 1.0, n_taps).astype(np.float32)
    want = _blur_pass_twin(src, neighbours, taps)
    dst = np.full((n_out + 1, m), np.nan, np.float32)
    blur_pass_rows(src, neighbours, taps, dst)
    np.testing.assert_allclose(dst, want, **TOL)
    general = np.full_like(dst, np.nan)
    _blur_pass_rows_kernel(src, neighbours, taps, general)
    np.testing.assert_array_equal(dst, general)      # the unrolled kernel: same sums, same order


@pytest.mark.parametrize("shape", [(1, 1), (3, 70), (21, 1031), (40, 33), (1031, 21), (130, 3)])
@pytest.mark.parametrize("negate", [False, True])
def test_transpose_equals_its_twin(rng, shape, negate):
    a = rng.normal(size=shape).astype(np.float32)
    a[0, 0] = np.inf                                  # hard constraints keep their sign
    got = mfk.transpose(a, negate=negate)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, mfk.transpose_reference(a, negate=negate))
