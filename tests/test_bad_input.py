"""Bad input to the public ops raises ValueError/TypeError naming the argument, not a kernel traceback."""
import numpy as np
import pytest

import tinyseg
from tinyseg import ops

f32 = np.float32


def x4(*shape):
    return np.zeros(shape, f32)


@pytest.mark.parametrize("call,exc,name", [
    (lambda: ops.conv2d_forward(x4(2, 3, 3), x4(3, 3, 3, 2), x4(2)), ValueError, "`x`"),
    (lambda: ops.conv2d_forward(np.zeros((1, 3, 3, 3)), x4(3, 3, 3, 2), x4(2)), TypeError, "`x`"),
    (lambda: ops.conv2d_forward(x4(1, 3, 3, 3), x4(3, 3, 4, 2), x4(2)), ValueError, "`w`"),
    (lambda: ops.conv2d_forward(x4(1, 3, 3, 3), x4(2, 2, 3, 2), x4(2)), ValueError, "odd"),
    (lambda: ops.conv2d_forward(x4(1, 3, 3, 3), x4(3, 3, 3, 2), x4(3)), ValueError, "`b`"),
    (lambda: ops.conv2d_forward(x4(1, 3, 3, 3).tolist(), x4(3, 3, 3, 2), x4(2)), TypeError, "`x`"),
    (lambda: ops.maxpool_forward(x4(3, 3)), ValueError, "`x`"),
    (lambda: ops.relu_forward(np.zeros(3, np.int32)), TypeError, "`x`"),
    (lambda: ops.dropout_forward(x4(1, 2, 2, 1), 1.0, 0), ValueError, "`p`"),
    (lambda: ops.dropout_forward(x4(1, 2, 2, 1), 0.5, -1), ValueError, "`seed`"),
    (lambda: ops.conv_transpose2d_forward(x4(1, 2, 2, 2), x4(4, 4, 2, 2), -2), ValueError, "`factor`"),
    (lambda: ops.conv_transpose2d_forward(x4(1, 2, 2, 2), x4(4, 4, 2, 2), 3), ValueError, "`w`"),
    (lambda: ops.conv_transpose2d_forward(x4(1, 2, 2, 2), x4(4, 4, 2, 2), 2.0), TypeError, "`factor`"),
    (lambda: tinyseg.upsample(x4(1, 2, 2, 2), 0), ValueError, "`factor`"),
    (lambda: tinyseg.upsample(x4(2, 2, 2), 2), ValueError, "`x`"),
    (lambda: tinyseg.get_kernel_size(-3), ValueError, "`factor`"),
    (lambda: tinyseg.bilinear_upsample_weights(2, 0), ValueError, "`number_of_classes`"),
    (lambda: ops.softmax_cross_entropy(x4(1, 2, 2, 3), np.zeros((1, 2, 3), np.int32)), ValueError, "`labels`"),
    (lambda: ops.softmax_cross_entropy(x4(1, 2, 2, 3), np.zeros((1, 2, 2), f32)), TypeError, "`labels`"),
    (lambda: ops.softmax_cross_entropy(x4(1, 2, 2, 3), np.full((1, 2, 2), 7, np.int32)), ValueError, "value 7"),
    (lambda: ops.softmax_cross_entropy(x4(1, 2, 2, 3), np.zeros((1, 2, 2), np.int32), "avg"), ValueError, "`reduction`"),
    (lambda: ops.adam_update(x4(3), x4(4), x4(3), x4(3), 1), ValueError, "`grad`"),
    (lambda: ops.adam_update(x4(3), x4(3), x4(3), x4(3), 0), ValueError, "`step`"),
    (lambda: ops.adam_update(x4(3, 2).T, x4(2, 3), x4(2, 3), x4(2, 3), 1), ValueError, "`param`"),
])
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_backward_rejects_a_dout_of_the_wrong_shape():
    out, cache = ops.conv2d_forward(x4(1, 3, 3, 2), x4(3, 3, 2, 4), x4(4))
    with pytest.raises(ValueError, match="`dout`"):
        ops.conv2d_backward(x4(1, 3, 3, 2), cache)


def test_non_contiguous_input_is_accepted_and_gives_the_same_result(rng):
    x = rng.standard_normal((1, 6, 5, 4)).astype(f32)
    w, b = rng.standard_normal((3, 3, 2, 3)).astype(f32), np.zeros(3, f32)
    strided = x[..., ::2]
    np.testing.assert_allclose(ops.conv2d_forward(strided, w, b)[0],
                               ops.conv2d_forward(np.ascontiguousarray(strided), w, b)[0])


def test_conv2d_backward_writes_into_given_gradient_buffers_and_checks_them(rng):
    x, w, b = (rng.standard_normal(s).astype(f32) for s in ((1, 4, 5, 2), (3, 3, 2, 3), (3,)))
    out, cache = ops.conv2d_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(f32)
    dw, db = np.empty_like(w), np.empty_like(b)
    _, dw2, db2 = ops.conv2d_backward(dout, cache, dw, db)
    assert dw2 is dw and db2 is db
    np.testing.assert_array_equal(dw, ops.conv2d_backward(dout, cache)[1])
    with pytest.raises(ValueError, match="`dw`"):
        ops.conv2d_backward(dout, cache, np.empty((3, 3, 2, 4), f32), db)
