"""The im2col convolution by kernel rows (``conv2d_*_by_kernel_rows``): a layer whose weights
outweigh its im2col (FCN's fc6 on a small map) multiplies each kernel row only over the output
rows it reaches. It must equal the readable tap-by-tap twin (``tinyseg.reference``) and the
ordinary one-block im2col, forward and backward, for several images, dilations, and kernels
taller than the image (rows that reach no output row at all)."""
import numpy as np
import pytest

from tinyseg import backend, ops, reference
from tinyseg.ops.conv import by_kernel_rows
from helpers import rand


def test_fc6_on_a_small_map_goes_by_kernel_rows_and_ordinary_layers_do_not():
    assert by_kernel_rows((1, 12, 16, 512), (7, 7, 512, 4096))           # FCN fc6 at 375×500
    assert not by_kernel_rows((1, 94, 125, 256), (3, 3, 256, 256))       # conv3_2
    assert not by_kernel_rows((1, 12, 16, 4096), (1, 1, 4096, 4096))     # fc7: no im2col at all
    assert not by_kernel_rows((1, 47, 63, 3), (3, 3, 3, 64))


def one_block_im2col(x, w, b, dilation):
    """The ordinary im2col forward, the whole image in one block (the path fc6 took before)."""
    cpu = backend.get_backend("cpu")
    N, H, W, C = x.shape
    kh, kw, _, F = w.shape
    out = np.empty((N, H, W, F), np.float32)
    col = np.empty((H * W, kh * kw * C), np.float32)
    cpu.conv2d_forward(x, w, b, out, col, dilation)
    return out


@pytest.mark.parametrize("N,H,W,k,dilation", [(1, 4, 5, 5, 1), (2, 3, 4, 3, 1), (2, 4, 3, 5, 2),
                                               (1, 2, 3, 7, 1), (1, 3, 3, 3, 3)])
def test_forward_and_backward_equal_the_tap_by_tap_twin(rng, N, H, W, k, dilation):
    C, F = 3, max(H * W, 4) + 1
    x, w, b = rand(rng, N, H, W, C), rand(rng, k, k, C, F), rand(rng, F)
    assert by_kernel_rows(x.shape, w.shape)
    out, cache = ops.conv2d_forward(x, w, b, dilation)
    want, want_cache = reference.conv2d_forward(x, w, b, dilation)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out, one_block_im2col(x, w, b, dilation), rtol=1e-5, atol=1e-5)

    dout = rand(rng, *out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    want_dx, want_dw, want_db = reference.conv2d_backward(dout, want_cache)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, want_db, rtol=1e-4, atol=1e-4)


def test_kernel_rows_that_reach_no_output_row_get_zero_weight_gradients(rng):
    """A 5-row kernel dilated by 2 spans 9 rows: on a 2-row map its outer rows see only padding."""
    x, w, b = rand(rng, 1, 2, 3, 2), rand(rng, 5, 5, 2, 7), rand(rng, 7)
    out, cache = ops.conv2d_forward(x, w, b, 2)
    dw_given = np.full(w.shape, np.nan, np.float32)           # stale values must be overwritten
    _, dw, _ = ops.conv2d_backward(rand(rng, *out.shape), cache, dw=dw_given)
    assert dw is dw_given
    np.testing.assert_array_equal(dw[0], 0.0)
    np.testing.assert_array_equal(dw[4], 0.0)
    assert np.all(np.isfinite(dw)) and np.any(dw[2] != 0.0)


def test_backward_without_dx_gives_the_same_weight_gradient(rng):
    x, w, b = rand(rng, 2, 3, 3, 2), rand(rng, 3, 3, 2, 10), rand(rng, 10)
    out, cache = ops.conv2d_forward(x, w, b)
    dout = rand(rng, *out.shape)
    _, dw_full, db_full = ops.conv2d_backward(dout, cache)
    dx, dw, db = ops.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)


def test_workspace_is_one_kernel_row_of_im2col_and_one_product():
    from tinyseg.ops.conv import conv2d_workspace_bytes

    assert conv2d_workspace_bytes((1, 12, 16, 512), (7, 7, 512, 4096)) == 4 * 192 * (7 * 512 + 4096)
