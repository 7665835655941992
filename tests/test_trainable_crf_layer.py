"""The CRFasRNN layer: its contract (shapes, params/grads, modes, iterations), optimizers, batches
and bad input."""
import numpy as np
import pytest

from tinyseg import ops
from tinyseg.crf import CRFasRNN, dense_crf
from tinyseg.crf.features import bilateral_features, spatial_features
from tinyseg.crf.filters import exact_filter_reference
from tinyseg.crf.rnn.reference import crf_rnn_backward_reference, crf_rnn_forward_reference
from tinyseg.training.optim import SGD, Adam, AdamConfig, SGDConfig

KW = dict(sdims=(3, 3), schan=(30, 30, 30), gaussian_sdims=(1.5, 1.5))


def batch(rng, n=2, h=6, w=7, c=3):
    images = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    logits = rng.standard_normal((n, h, w, c)).astype(np.float32)
    labels = rng.integers(0, c, (n, h, w)).astype(np.int32)
    return logits, images, labels


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_contract_shapes_params_and_grads(rng):
    crf = CRFasRNN(3, **KW)
    assert set(crf.params) == {"compat", "w_spatial", "w_bilateral"}
    np.testing.assert_array_equal(crf.params["compat"], 1 - np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(crf.params["w_spatial"], [3, 3, 3])
    np.testing.assert_array_equal(crf.params["w_bilateral"], [10, 10, 10])
    logits, images, labels = batch(rng)
    out = crf.forward(logits, images, train=True)
    assert out.shape == logits.shape and out.dtype == np.float32
    _, dout = ops.softmax_cross_entropy(out, labels)
    dlogits = crf.backward(dout)
    assert dlogits.shape == logits.shape and dlogits.dtype == np.float32
    assert set(crf.grads) == set(crf.params)
    for k in crf.params:
        assert crf.grads[k].shape == crf.params[k].shape and crf.grads[k].dtype == np.float32
        assert np.all(np.isfinite(crf.grads[k])) and np.any(crf.grads[k] != 0), k


def test_layer_matches_the_reference_with_exact_filters(rng):
    """The layer (method="exact") against the float64 reference, image by image, summed grads."""
    crf = CRFasRNN(3, method="exact", iterations=3, **KW)
    crf.params["compat"] += rng.standard_normal((3, 3)).astype(np.float32) * 0.3
    logits, images, _ = batch(rng)
    dout = rng.standard_normal(logits.shape).astype(np.float32)
    out = crf.forward(logits, images, train=True)
    dlogits = crf.backward(dout)
    w = crf.kernel_weights().astype(np.float64)
    mu = crf.params["compat"].astype(np.float64)
    dw = np.zeros_like(w)
    dmu = np.zeros_like(mu)
    for b in range(2):
        feats = [spatial_features((6, 7), KW["gaussian_sdims"]),
                 bilateral_features(images[b], KW["sdims"], KW["schan"])]
        kernels = [exact_filter_reference(f, np.eye(42)) for f in feats]
        ref, cache = crf_rnn_forward_reference(logits[b].reshape(42, 3), kernels, w, mu, 3)
        np.testing.assert_allclose(out[b].reshape(42, 3), ref, rtol=1e-4, atol=1e-4)
        dz, dw_b, dmu_b = crf_rnn_backward_reference(dout[b].reshape(42, 3), cache)
        np.testing.assert_allclose(dlogits[b].reshape(42, 3), dz, rtol=1e-3, atol=1e-4)
        dw += dw_b
        dmu += dmu_b
    np.testing.assert_allclose(crf.grads["w_spatial"], dw[0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(crf.grads["w_bilateral"], dw[1], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(crf.grads["compat"], dmu, rtol=1e-3, atol=1e-3)


def test_shared_weights_get_the_summed_gradient(rng):
    logits, images, _ = batch(rng, n=1)
    dout = rng.standard_normal(logits.shape).astype(np.float32)
    per_class, shared = CRFasRNN(3, **KW), CRFasRNN(3, per_class=False, **KW)
    assert shared.params["w_spatial"].shape == (1,)
    np.testing.assert_allclose(shared.forward(logits, images, train=True),
                               per_class.forward(logits, images, train=True), rtol=1e-6)
    per_class.backward(dout)
    shared.backward(dout)
    for name in ("w_spatial", "w_bilateral"):
        np.testing.assert_allclose(shared.grads[name], per_class.grads[name].sum(keepdims=True),
                                   rtol=1e-5)


def test_training_and_test_iterations(rng):
    """train=True runs `iterations` (5), train=False `test_iterations` (10); both overridable."""
    logits, images, _ = batch(rng, n=1)
    crf = CRFasRNN(3, **KW)
    p = softmax(logits[0])
    for train, t in ((True, 5), (False, 10)):
        _, q = dense_crf(images[0], p, iterations=t, clip=1e-30, **KW)
        np.testing.assert_allclose(softmax(crf.forward(logits, images, train=train)[0]), q,
                                   atol=3e-5)
    _, q3 = dense_crf(images[0], p, iterations=3, clip=1e-30, **KW)
    np.testing.assert_allclose(softmax(crf.forward(logits, images, iterations=3)[0]), q3, atol=3e-5)
    labels, q = crf.predict(logits, images)
    assert labels.shape == (1, 6, 7) and q.shape == (1, 6, 7, 3)


def test_a_batch_is_its_images_one_by_one(rng):
    logits, images, _ = batch(rng, n=2)
    dout = rng.standard_normal(logits.shape).astype(np.float32)
    crf = CRFasRNN(3, **KW)
    out = crf.forward(logits, images, train=True)
    dlogits = crf.backward(dout)
    grads = {k: np.zeros_like(v) for k, v in crf.params.items()}
    for b in range(2):
        np.testing.assert_allclose(crf.forward(logits[b:b + 1], images[b:b + 1], train=True)[0],
                                   out[b], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(crf.backward(dout[b:b + 1])[0], dlogits[b], rtol=1e-5, atol=1e-6)
        for k in grads:
            grads[k] += crf.grads[k]
    batched = CRFasRNN(3, **KW)
    batched.forward(logits, images, train=True)
    batched.backward(dout)
    for k in grads:
        np.testing.assert_allclose(batched.grads[k], grads[k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: Adam(AdamConfig(lr=0.1)),
                                  lambda: SGD(SGDConfig(lr=1e-4, momentum=0.9))], ids=["adam", "sgd"])
def test_optimizers_update_it_like_a_model(rng, make):
    """Descending the loss through the optimizers' params/grads interface lowers it."""
    optimizer = make()
    logits, images, labels = batch(rng, n=1)
    crf = CRFasRNN(3, iterations=3, **KW)
    before = {k: v.copy() for k, v in crf.params.items()}
    losses = []
    for _ in range(5):
        loss, dout = ops.softmax_cross_entropy(crf.forward(logits, images, train=True), labels)
        crf.backward(dout)
        optimizer.step(crf.params, crf.grads)
        crf.clear()
        losses.append(loss)
    assert all(np.any(crf.params[k] != before[k]) for k in before)
    assert losses[-1] < losses[0]


def test_test_mode_keeps_nothing_and_backward_says_so(rng):
    logits, images, _ = batch(rng, n=1)
    crf = CRFasRNN(3, **KW)
    crf.forward(logits, images, train=False)
    with pytest.raises(RuntimeError, match="training-mode forward"):
        crf.backward(np.zeros_like(logits))
    crf.forward(logits, images, train=True)
    crf.clear()
    with pytest.raises(RuntimeError, match="training-mode forward"):
        crf.backward(np.zeros_like(logits))


def test_params_round_trip_and_checks(rng):
    crf = CRFasRNN(4, **KW)
    new = {k: v + 1 for k, v in crf.host_params().items()}
    crf.load_params(new)
    for k in new:
        np.testing.assert_array_equal(crf.params[k], new[k])
    with pytest.raises(ValueError, match="'compat' has shape"):
        crf.load_params({**new, "compat": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="'w_spatial' is missing"):
        crf.load_params({"compat": new["compat"], "w_bilateral": new["w_bilateral"]})
    assert crf.config_dict()["n_labels"] == 4 and crf.config_dict()["test_iterations"] == 10


@pytest.mark.parametrize("change, match", [
    (lambda l, i: (l.astype(np.float64), i), "float32"),
    (lambda l, i: (l[..., :2].copy(), i), "n_labels=3"),
    (lambda l, i: (l[0], i), r"\(N, H, W, C\)"),
    (lambda l, i: (l, i.astype(np.float32)), "uint8"),
    (lambda l, i: (l, i[:, :5]), "must match"),
    (lambda l, i: (l, i[..., :2]), "RGB"),
])
def test_bad_input_is_named(rng, change, match):
    logits, images, _ = batch(rng)
    with pytest.raises(ValueError, match=match):
        CRFasRNN(3, **KW).forward(*change(logits, images))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_labels=1), "n_labels"), (dict(n_labels=3, iterations=-1), "iterations"),
    (dict(n_labels=3, method="lattice"), "method"), (dict(n_labels=3, sdims=0), "sdims"),
    (dict(n_labels=3, w_bilateral=np.nan), "w_bilateral"),
])
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CRFasRNN(**kwargs)
