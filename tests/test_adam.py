"""Adam against TensorFlow's update written out in scalar Python, and against torch.optim.Adam."""
import math

import numpy as np
import pytest

from tinyseg import ops
from conftest import require


def tf_adam_scalar(theta, grad_fn, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """TensorFlow's AdamOptimizer on one scalar, step by step, in float64."""
    m = v = 0.0
    for t in range(1, steps + 1):
        g = grad_fn(theta)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        theta = theta - lr_t * m / (math.sqrt(v) + eps)
    return theta


def test_adam_on_a_quadratic_follows_the_tensorflow_update_for_100_steps():
    a = np.array([0.5, 1.0, 3.0, 10.0], np.float32)          # f = Σ a θ² / 2,  ∇f = a θ
    theta = np.array([1.0, -2.0, 0.3, 5.0], np.float32)
    start = theta.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for step in range(1, 101):
        ops.adam_update(theta, a * theta, m, v, step, lr=0.01)
    expected = [tf_adam_scalar(float(s), lambda t, ai=float(ai): ai * t, 100, 0.01) for s, ai in zip(start, a)]
    np.testing.assert_allclose(theta, expected, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(theta) < np.abs(start))             # and it did descend


def test_adam_defaults_are_tensorflows():
    import inspect

    sig = inspect.signature(ops.adam_update).parameters
    assert (sig["lr"].default, sig["beta1"].default, sig["beta2"].default, sig["eps"].default) == \
        (1e-4, 0.9, 0.999, 1e-8)


@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_adam_equals_torch_adam(rng, eps):
    """torch adds ε to sqrt(v̂) = sqrt(v)/sqrt(1−β2ᵗ); TF adds it to sqrt(v). Setting torch's
    ε_t = ε / sqrt(1 − β2ᵗ) at every step makes the two formulas identical."""
    torch = require("torch")
    shape = (3, 3, 4, 5)
    theta = rng.standard_normal(shape).astype(np.float32)
    p_torch = torch.nn.Parameter(torch.tensor(theta.copy()))
    opt = torch.optim.Adam([p_torch], lr=1e-2, betas=(0.9, 0.999), eps=eps)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for step in range(1, 21):
        g = rng.standard_normal(shape).astype(np.float32)
        ops.adam_update(theta, g, m, v, step, lr=1e-2, eps=eps)
        opt.param_groups[0]["eps"] = eps / math.sqrt(1 - 0.999 ** step)
        p_torch.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(theta, p_torch.detach().numpy(), rtol=1e-5, atol=1e-6)
