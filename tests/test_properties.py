"""Properties over random sizes (hypothesis): every model's logits have the input's size and its
gradients the parameters' shapes for any H × W; the score grids sit where documented for random
grid multiples; pooling, crop-and-add and interp equal their NumPy twins on random shapes; the
pydensecrf-compatible API accepts exactly the arguments pydensecrf accepts.

Examples are few (the models are tiny, but each example is a forward and backward) and drawn
afresh each run; a failure prints the falsifying sizes.
"""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyseg import ops, reference
from tinyseg.models import MODELS, build_model
from conftest import require
from helpers import assert_maxpool3x3_equals_twin, load_mirror_symmetric_params

FCN_NAMES = ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"]
few = settings(max_examples=6, deadline=None)
some = settings(max_examples=25, deadline=None)


@functools.lru_cache(maxsize=None)
def tiny(name):
    """One tiny model per name (width 1/32: 2..16 channels), shared by the examples."""
    return build_model(name, n_classes=2, width=1 / 32, dropout=0.0)


@functools.lru_cache(maxsize=None)
def mirror_symmetric(name):
    """A tiny model whose every kernel is symmetric under vertical and horizontal flips."""
    model = build_model(name, n_classes=2, width=1 / 32)
    load_mirror_symmetric_params(model, np.random.default_rng(0))
    return model


def flip_mismatch(model, x, axis) -> float:
    """max |net(flip(x)) flipped back − net(x)|, relative to max |net(x)|."""
    a = model.forward(x)
    b = np.flip(model.forward(np.ascontiguousarray(np.flip(x, axis))), axis)
    return float(np.abs(b - a).max() / np.abs(a).max())


def test_every_registered_model_is_covered():
    assert sorted(MODELS) == sorted(FCN_NAMES + ["deeplab-largefov"])


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", FCN_NAMES + ["deeplab-largefov"])
@few
@given(H=st.integers(1, 72), W=st.integers(1, 72), seed=st.integers(0, 2 ** 16))
def test_logits_have_the_input_size_and_gradients_the_parameter_shapes(name, H, W, seed):
    model = tiny(name)
    x = np.random.default_rng(seed).standard_normal((1, H, W, 3)).astype(np.float32)
    logits = model.forward(x, train=True)
    assert logits.shape == (1, H, W, 2)
    model.backward(np.ones_like(logits))
    assert {k: g.shape for k, g in model.grads.items()} == model.shapes


@pytest.mark.parametrize("name", FCN_NAMES)
@few
@given(k=st.integers(1, 3), m=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_fcn_scores_are_centred_on_their_blocks_for_any_multiple_of_32(name, k, m, seed):
    """Scores at ``32i + 15.5`` (skips at ``s·i + (s − 1)/2``): a symmetric grid on 32k × 32m."""
    model = mirror_symmetric(name)
    x = np.random.default_rng(seed).standard_normal((1, 32 * k, 32 * m, 3)).astype(np.float32)
    assert flip_mismatch(model, x, 1) < 1e-4
    assert flip_mismatch(model, x, 2) < 1e-4


@pytest.mark.parametrize("name", FCN_NAMES)
@few
@given(k=st.integers(1, 3), d=st.integers(1, 31), seed=st.integers(0, 2 ** 16))
def test_fcn_grid_is_off_centre_on_every_other_height(name, k, d, seed):
    """The same check fails for every height that is not a multiple of 32: it tells offsets apart."""
    model = mirror_symmetric(name)
    x = np.random.default_rng(seed).standard_normal((1, 32 * k + d, 32, 3)).astype(np.float32)
    assert flip_mismatch(model, x, 1) > 1e-3


@few
@given(k=st.integers(1, 8), m=st.integers(1, 8), seed=st.integers(0, 2 ** 16))
def test_deeplab_scores_sit_on_pixels_8i_for_any_8k_plus_1_size(k, m, seed):
    model = mirror_symmetric("deeplab-largefov")
    x = np.random.default_rng(seed).standard_normal((1, 8 * k + 1, 8 * m + 1, 3)).astype(np.float32)
    assert flip_mismatch(model, x, 1) < 1e-4
    assert flip_mismatch(model, x, 2) < 1e-4


# ----------------------------------------------------------------------------- pooling, crops
sizes = st.integers(1, 13)


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@some
@given(N=st.integers(1, 2), H=sizes, W=sizes, C=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_maxpool2x2_has_ceil_half_size_and_equals_its_twin(N, H, W, C, seed):
    x = rand(seed, N, H, W, C)
    out, cache = ops.maxpool_forward(x)
    want, want_cache = reference.maxpool_forward(x)
    assert out.shape == (N, -(-H // 2), -(-W // 2), C)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cache[1], want_cache[1])
    dout = rand(seed + 1, *out.shape)
    np.testing.assert_array_equal(ops.maxpool_backward(dout, cache),
                                  reference.maxpool_backward(dout, want_cache))


@some
@given(N=st.integers(1, 2), H=sizes, W=sizes, C=st.integers(1, 3), stride=st.sampled_from([1, 2]),
       seed=st.integers(0, 2 ** 16))
def test_maxpool3x3_has_ceil_size_and_equals_its_twin(N, H, W, C, stride, seed):
    assert_maxpool3x3_equals_twin(rand(seed, N, H, W, C), stride, lambda shape: rand(seed + 1, *shape))


@some
@given(h=sizes, w=sizes, dh=st.integers(0, 5), dw=st.integers(0, 5), C=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_crop_add_takes_the_top_left_of_any_bigger_map(h, w, dh, dw, C, seed):
    big, small = rand(seed, 2, h + dh, w + dw, C), rand(seed + 1, 2, h, w, C)
    out, cache = ops.crop_add_forward(big, small)
    np.testing.assert_array_equal(out, reference.crop_add_forward(big, small)[0])
    dbig, _ = ops.crop_add_backward(out, cache)
    np.testing.assert_array_equal(dbig, reference.crop_add_backward(out, cache)[0])
    if dh or dw:
        with pytest.raises(ValueError, match="`big`"):
            ops.crop_add_forward(small, big)


@some
@given(data=st.data(), factor=st.integers(1, 8), h=st.integers(1, 5), w=st.integers(1, 5),
       seed=st.integers(0, 2 ** 16))
def test_interp_equals_its_twin_for_any_size_the_map_covers(data, factor, h, w, seed):
    H = data.draw(st.integers(1, factor * h), label="H")
    W = data.draw(st.integers(1, factor * w), label="W")
    x = rand(seed, 1, h, w, 2)
    out, cache = ops.interp_forward(x, factor, (H, W))
    assert out.shape == (1, H, W, 2)
    np.testing.assert_allclose(out, reference.interp_forward(x, factor, (H, W))[0],
                               rtol=1e-5, atol=1e-6)
    dout = rand(seed + 1, *out.shape)
    np.testing.assert_allclose(ops.interp_backward(dout, cache),
                               reference.interp_backward(dout, cache), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`size`"):
        ops.interp_forward(x, factor, (factor * h + 1, W))


# ----------------------------------------------------------------------------- the compat API
def accepts(call) -> bool:
    try:
        call()
    except ValueError:
        return False
    return True


unary_arrays = st.tuples(st.integers(1, 4), st.integers(1, 30), st.sampled_from(["float32", "float64"]),
                         st.booleans(), st.integers(1, 3))


@some
@given(w=st.integers(1, 6), h=st.integers(1, 5), n=st.integers(1, 4), unary=unary_arrays)
def test_compat_accepts_exactly_the_unaries_pydensecrf_accepts(w, h, n, unary):
    """Shape ``(nlabels, w·h)``, float32, C-contiguous, 2-D: pydensecrf's rules, checked by both."""
    peer = require("pydensecrf.densecrf")
    import tinyseg.crf.compat as ours

    rows, cols, dtype, contiguous, ndim = unary
    u = np.zeros((rows, cols), dtype) if contiguous else np.zeros((cols, rows), dtype).T
    u = u.reshape(-1) if ndim == 1 else (u[None] if ndim == 3 else u)
    theirs_ok = accepts(lambda: peer.DenseCRF2D(w, h, n).setUnaryEnergy(u))
    ours_ok = accepts(lambda: ours.DenseCRF2D(w, h, n).setUnaryEnergy(u))
    assert ours_ok == theirs_ok
    assert ours_ok == (u.shape == (n, w * h) and u.dtype == np.float32 and u.flags.c_contiguous)


@some
@given(n=st.integers(1, 4), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       number=st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.just(np.float32(3))))
def test_compat_takes_a_number_a_label_vector_or_a_label_matrix(n, shape, number):
    """(pydensecrf takes any shape here and reads past the end of a short one.)"""
    import tinyseg.crf.compat as ours

    crf = ours.DenseCRF2D(4, 3, n)
    ok = accepts(lambda: crf.addPairwiseGaussian(sxy=3, compat=np.ones(shape, np.float32)))
    assert ok == (tuple(shape) in {(n,), (n, n)})
    assert accepts(lambda: crf.addPairwiseGaussian(sxy=3, compat=number))


@some
@given(w=st.integers(1, 6), h=st.integers(1, 5), d=st.integers(1, 5), extra=st.integers(-2, 2))
def test_compat_accepts_exactly_the_features_pydensecrf_accepts(w, h, d, extra):
    peer = require("pydensecrf.densecrf")
    import tinyseg.crf.compat as ours

    feats = np.random.default_rng(d).random((d, max(1, w * h + extra))).astype(np.float32)
    theirs_ok = accepts(lambda: peer.DenseCRF2D(w, h, 2).addPairwiseEnergy(feats, compat=3))
    ours_ok = accepts(lambda: ours.DenseCRF2D(w, h, 2).addPairwiseEnergy(feats, compat=3))
    assert ours_ok == theirs_ok == (feats.shape[1] == w * h)
