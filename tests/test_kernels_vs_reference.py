"""Every CPU kernel (through its public op) equals its readable NumPy twin, on odd shapes, C = 1..5."""
import numpy as np
import pytest

from tinyseg import ops, reference as ref
from helpers import rand

SHAPES = [(1, 1, 1), (1, 5, 7), (2, 6, 4), (1, 9, 8), (2, 3, 11)]   # (N, H, W)


@pytest.mark.parametrize("N,H,W", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("C,F", [(1, 2), (3, 5), (5, 1)])
def test_conv2d_matches_reference(rng, N, H, W, k, C, F):
    x, w, b = rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F)
    out, cache = ops.conv2d_forward(x, w, b)
    out_ref, cache_ref = ref.conv2d_forward(x, w, b)
    np.testing.assert_allclose(out, out_ref, rtol=1e-4, atol=1e-4)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(dout, cache), ref.conv2d_backward(dout, cache_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv2d_blocked_im2col_matches_reference(rng, monkeypatch):
    """A workspace of a few rows forces many im2col blocks per image (and the dw accumulation)."""
    from tinyseg.backend import get_backend

    monkeypatch.setattr(get_backend("cpu"), "CONV_WORKSPACE_BYTES", 2 * 9 * 3 * 4 * 9)
    x, w, b = rand(rng, 2, 13, 9, 3), rand(rng, 3, 3, 3, 4), rand(rng, 4)
    out, cache = ops.conv2d_forward(x, w, b)
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b)[0], rtol=1e-4, atol=1e-4)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv2d_backward(dout, cache), ref.conv2d_backward(dout, (x, w, 1))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N,H,W", SHAPES)
@pytest.mark.parametrize("C", [1, 2, 5])
def test_maxpool_matches_reference(rng, N, H, W, C):
    x = rand(rng, N, H, W, C)
    out, cache = ops.maxpool_forward(x)
    out_ref, cache_ref = ref.maxpool_forward(x)
    assert out.shape == (N, (H + 1) // 2, (W + 1) // 2, C)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(cache[1], cache_ref[1])
    dout = rand(rng, *out.shape)
    np.testing.assert_array_equal(ops.maxpool_backward(dout, cache), ref.maxpool_backward(dout, cache_ref))


def test_maxpool_ties_route_to_first_pixel():
    x = np.ones((1, 2, 2, 1), np.float32)
    out, cache = ops.maxpool_forward(x)
    dx = ops.maxpool_backward(np.full_like(out, 3.0), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[3, 0], [0, 0]])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 5, 7, 3), (1, 4, 9, 5)])
def test_relu_matches_reference(rng, shape):
    x = rand(rng, *shape)
    out, cache = ops.relu_forward(x)
    np.testing.assert_array_equal(out, ref.relu_forward(x)[0])
    dout = rand(rng, *shape)
    np.testing.assert_array_equal(ops.relu_backward(dout, cache), ref.relu_backward(dout, out))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9])
def test_dropout_matches_reference_and_reuses_mask(rng, p):
    x = rand(rng, 2, 7, 5, 3)
    out, cache = ops.dropout_forward(x, p, seed=7)
    out_ref, cache_ref = ref.dropout_forward(x, p, 7)
    np.testing.assert_array_equal(cache[0], cache_ref[0])
    np.testing.assert_allclose(out, out_ref, rtol=1e-6)
    dout = rand(rng, *x.shape)
    dx = ops.dropout_backward(dout, cache)
    np.testing.assert_allclose(dx, ref.dropout_backward(dout, cache_ref), rtol=1e-6)
    np.testing.assert_array_equal(dx == 0, (cache[0] == 0) | (dout == 0))


def test_dropout_is_seeded_and_keeps_the_right_fraction():
    x = np.ones((1, 100, 100, 10), np.float32)
    a, (mask_a, _) = ops.dropout_forward(x, 0.5, seed=1)
    b, (mask_b, _) = ops.dropout_forward(x, 0.5, seed=1)
    c, (mask_c, _) = ops.dropout_forward(x, 0.5, seed=2)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert (mask_a != mask_c).mean() > 0.4
    assert abs(mask_a.mean() - 0.5) < 0.01          # 100k draws: σ ≈ 0.0016
    assert abs(a.mean() - 1.0) < 0.02               # inverted scaling keeps the expectation


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("N,H,W", [(1, 1, 1), (2, 3, 2), (1, 4, 5)])
@pytest.mark.parametrize("Ci,Co", [(1, 1), (3, 2), (2, 5)])
def test_conv_transpose2d_matches_reference(rng, factor, N, H, W, Ci, Co):
    k = 2 * factor - factor % 2
    x, w = rand(rng, N, H, W, Ci), rand(rng, k, k, Co, Ci)
    out, cache = ops.conv_transpose2d_forward(x, w, factor)
    out_ref, cache_ref = ref.conv_transpose2d_forward(x, w, factor)
    assert out.shape == (N, factor * H, factor * W, Co)
    np.testing.assert_allclose(out, out_ref, rtol=1e-4, atol=1e-5)
    dout = rand(rng, *out.shape)
    for got, want in zip(ops.conv_transpose2d_backward(dout, cache),
                         ref.conv_transpose2d_backward(dout, cache_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("factor", [2, 3, 8])
@pytest.mark.parametrize("C", [1, 4])
def test_depthwise_transposed_conv_matches_full_kernel(rng, factor, C):
    k = 2 * factor - factor % 2
    x, kernel = rand(rng, 2, 3, 4, C), rand(rng, k, k)
    out, cache = ops.conv_transpose2d_depthwise_forward(x, kernel, factor)
    out_ref, cache_ref = ref.conv_transpose2d_depthwise_forward(x, kernel, factor)
    np.testing.assert_allclose(out, out_ref, rtol=1e-4, atol=1e-5)
    dout = rand(rng, *out.shape)
    np.testing.assert_allclose(ops.conv_transpose2d_depthwise_backward(dout, cache),
                               ref.conv_transpose2d_depthwise_backward(dout, cache_ref),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C", [1, 2, 3, 5, 21])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_softmax_cross_entropy_matches_reference(rng, C, reduction):
    logits = rand(rng, 2, 5, 7, C) * 3
    labels = rng.integers(0, C, size=(2, 5, 7)).astype(np.int32)
    labels[0, 0, :3] = 255
    loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction=reduction)
    loss_ref, grad_ref = ref.softmax_cross_entropy(logits.astype(np.float64), labels, reduction)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    np.testing.assert_allclose(dlogits, grad_ref, rtol=1e-4, atol=1e-6)
    assert not dlogits[0, 0, :3].any()


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[[[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4]]]], np.float32)   # (1, 1, 3, 2)
    labels = np.array([[[1, 1, 0]]], np.int32)
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    assert loss == pytest.approx(2e4 + 0 + np.log(2), rel=1e-6)
    np.testing.assert_allclose(dlogits[0, 0], [[1, -1], [0, 0], [-0.5, 0.5]], atol=1e-6)


def test_softmax_cross_entropy_all_ignored_is_zero():
    loss, dlogits = ops.softmax_cross_entropy(np.ones((1, 2, 2, 3), np.float32),
                                              np.full((1, 2, 2), 255, np.uint8), reduction="mean")
    assert loss == 0.0 and not dlogits.any()


def test_softmax_matches_reference(rng):
    logits = rand(rng, 2, 3, 4, 5) * 10
    np.testing.assert_allclose(ops.softmax(logits), ref.softmax(logits), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 3, 2, 5)])
def test_adam_matches_reference(rng, shape):
    p, g, m, v = (rand(rng, *shape) for _ in range(4))
    v = np.abs(v)
    p2, m2, v2 = p.copy().astype(np.float64), m.copy().astype(np.float64), v.copy().astype(np.float64)
    for step in range(1, 4):
        ops.adam_update(p, g, m, v, step, lr=1e-2)
        ref.adam_update(p2, g.astype(np.float64), m2, v2, step, lr=1e-2)
    np.testing.assert_allclose(p, p2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m, m2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, v2, rtol=1e-5, atol=1e-6)
