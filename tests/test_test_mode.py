"""Test mode keeps nothing: after ``forward(x, train=False)`` no layer holds an activation, and a
backward then raises an error that says why (instead of silently using stale activations)."""
import numpy as np
import pytest

from tinyseg.layers import (BilinearUpsample, Conv2D, CropTo, Dropout, MaxPool, MaxPool3x3, ReLU)


def layers(rng):
    w = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    return [Conv2D("conv", w, np.zeros(2, np.float32)), Conv2D("atrous", w, np.zeros(2, np.float32), 2),
            ReLU("relu"), MaxPool("pool"), MaxPool3x3("pool3", 1), MaxPool3x3("pool3s2", 2),
            Dropout("drop", 0.5), Dropout("drop0", 0.0), BilinearUpsample("up", 2), CropTo("crop")]


def run(layer, x, train):
    if isinstance(layer, CropTo):
        return layer.forward(x, train, size=(x.shape[1] - 1, x.shape[2] - 1))
    return layer.forward(x, train)


def test_test_mode_forward_keeps_nothing_and_backward_says_so(rng):
    x = rng.standard_normal((1, 5, 6, 2)).astype(np.float32)
    for layer in layers(rng):
        out = run(layer, x, train=False)
        assert layer._cache is None, layer.name
        with pytest.raises(RuntimeError, match=rf"{layer.name}.*train=True"):
            layer.backward(np.ones_like(out))


def test_training_forward_then_backward_still_works(rng):
    x = rng.standard_normal((1, 5, 6, 2)).astype(np.float32)
    for layer in layers(rng):
        out = run(layer, x, train=True)
        dx = layer.backward(np.ones_like(out))
        assert dx.shape == x.shape, layer.name
        out = run(layer, x, train=False)           # a later test-mode forward drops the cache
        with pytest.raises(RuntimeError):
            layer.backward(np.ones_like(out))
