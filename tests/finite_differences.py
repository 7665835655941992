"""Central finite differences, the tests' reference for every hand-written backward."""
import numpy as np

EPS = 1e-6


def numerical_gradient(f, x, eps=EPS):
    """∂f()/∂x for a scalar ``f()`` that reads ``x``, by central differences (x changed in place
    and restored): ``(f(x + eps e_i) - f(x - eps e_i)) / 2 eps`` for every entry ``i``."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def numerical_grad(f, x, G, eps=EPS):
    """∂⟨G, f()⟩/∂x: the gradient a backward pass returns for the upstream gradient ``G``."""
    return numerical_gradient(lambda: np.sum(G * f()), x, eps)
