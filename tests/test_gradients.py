"""Every backward kernel passes a central finite-difference check in float64 on tiny shapes.

The Numba kernels are dtype-generic, so they are called here directly on float64 arrays (the
public ops insist on float32); the check is  ⟨G, f(x + εe) − f(x − εe)⟩ / 2ε  vs the analytic
gradient for a random projection G of the output.
"""
import numpy as np
import pytest

from tinyseg import reference as ref
from tinyseg.backend import get_backend
from finite_differences import numerical_grad

cpu = get_backend("cpu")


def assert_close(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k,N,H,W,C,F", [(3, 1, 4, 5, 2, 3), (1, 2, 3, 2, 3, 2), (7, 1, 3, 4, 2, 2)])
@pytest.mark.parametrize("block_rows", [1, 100])
def test_conv2d_backward_finite_differences(rng, k, N, H, W, C, F, block_rows):
    x, w, b = rng.standard_normal((N, H, W, C)), rng.standard_normal((k, k, C, F)), rng.standard_normal(F)
    rows = min(block_rows, H)
    col = np.empty((rows * W, k * k * C))
    out = np.empty((N, H, W, F))

    def forward():
        cpu.conv2d_forward(x, w, b, out, col, 1)
        return out

    G = rng.standard_normal(out.shape)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    cpu.conv2d_backward(x, w, G, dx, dw, db, col, np.empty((k * k * C, F)), 1, True)
    assert_close(dx, numerical_grad(forward, x, G))
    assert_close(dw, numerical_grad(forward, w, G))
    assert_close(db, numerical_grad(forward, b, G))


def test_maxpool_backward_finite_differences(rng):
    x = rng.standard_normal((2, 5, 3, 2))          # distinct values: no ties, differentiable
    out = np.empty((2, 3, 2, 2))
    argmax = np.empty(out.shape, np.int8)

    def forward():
        cpu.maxpool2x2_forward(x, out, argmax)
        return out

    G = rng.standard_normal(out.shape)
    forward()
    dx = np.empty_like(x)
    cpu.maxpool2x2_backward(G, argmax, dx)
    assert_close(dx, numerical_grad(forward, x, G))


def test_relu_backward_finite_differences(rng):
    x = rng.standard_normal((1, 4, 3, 2))
    x[np.abs(x) < 1e-3] = 0.5                       # stay away from the kink
    out = np.empty_like(x)

    def forward():
        cpu.relu_forward(x, out)
        return out

    G = rng.standard_normal(x.shape)
    forward()
    dx = np.empty_like(x)
    cpu.relu_backward(out.copy(), G, dx)
    assert_close(dx, numerical_grad(forward, x, G))


def test_dropout_backward_finite_differences(rng):
    x = rng.standard_normal((1, 4, 3, 5))
    out, mask = np.empty_like(x), np.empty(x.shape, np.uint8)

    def forward():
        cpu.dropout_forward(x, np.float32(0.4), np.uint64(3), out, mask)
        return out

    G = rng.standard_normal(x.shape)
    forward()
    dx = np.empty_like(x)
    cpu.dropout_backward(G, mask, np.float32(0.4), dx)
    assert_close(dx, numerical_grad(forward, x, G))


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_conv_transpose2d_backward_finite_differences(rng, factor):
    k = 2 * factor - factor % 2
    x, w = rng.standard_normal((2, 2, 3, 2)), rng.standard_normal((k, k, 3, 2))
    out = np.empty((2, 2 * factor, 3 * factor, 3))

    def forward():
        cpu.conv_transpose2d_forward(x, w, factor, out)
        return out

    G = rng.standard_normal(out.shape)
    dx, dw = np.empty_like(x), np.empty_like(w)
    cpu.conv_transpose2d_backward_input(G, w, factor, dx)
    cpu.conv_transpose2d_backward_weights(x, G, factor, dw)
    assert_close(dx, numerical_grad(forward, x, G))
    assert_close(dw, numerical_grad(forward, w, G))


def test_depthwise_conv_transpose2d_backward_finite_differences(rng):
    factor, k = 3, 5
    x, kernel = rng.standard_normal((1, 3, 2, 2)), rng.standard_normal((k, k))
    out = np.empty((1, 9, 6, 2))

    def forward():
        cpu.conv_transpose2d_depthwise_forward(x, kernel, factor, out)
        return out

    G = rng.standard_normal(out.shape)
    dx = np.empty_like(x)
    cpu.conv_transpose2d_depthwise_backward_input(G, kernel, factor, dx)
    assert_close(dx, numerical_grad(forward, x, G))


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_softmax_cross_entropy_backward_finite_differences(rng, scale):
    logits = rng.standard_normal((7, 4)) * 2
    labels = np.array([0, 3, 255, 1, 2, 255, 3], np.int32)
    losses, grad = np.empty(7), np.empty_like(logits)

    def loss():
        cpu.softmax_cross_entropy(logits, labels, np.int32(255), scale, losses, np.empty_like(logits))
        return np.array(losses.sum() * scale)

    cpu.softmax_cross_entropy(logits, labels, np.int32(255), scale, losses, grad)
    assert_close(grad, numerical_grad(loss, logits, np.array(1.0)))


def test_reference_conv_backward_finite_differences(rng):
    """The NumPy twin is itself checked, so the twin-vs-kernel tests compare against a known truth."""
    x, w, b = rng.standard_normal((1, 3, 4, 2)), rng.standard_normal((3, 3, 2, 2)), rng.standard_normal(2)
    G = rng.standard_normal((1, 3, 4, 2))
    dx, dw, db = ref.conv2d_backward(G, (x, w, 1))
    assert_close(dx, numerical_grad(lambda: ref.conv2d_forward(x, w, b)[0], x, G))
    assert_close(dw, numerical_grad(lambda: ref.conv2d_forward(x, w, b)[0], w, G))
