"""``ops.conv_algorithm``: which algorithm ``"auto"`` means inside a block (the demo's first run).

The demo trains 30 iterations at width 0.25 from scratch; Winograd's kernels would cost more to
compile on a first run (about 13 CPU-seconds, ``benchmarks/first_run.py``) than they save, so it
runs every convolution by im2col. These tests check that the switch really changes the path, that
it is undone afterwards, and that the demo calls no Winograd kernel.
"""
import numpy as np
import pytest

import tinyseg.ops.conv as conv_op
from tinyseg import ops
from tinyseg.cli import main


def _conv_inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 9, 11, 16), dtype=np.float32)
    w = rng.standard_normal((3, 3, 16, 16), dtype=np.float32)
    b = rng.standard_normal(16, dtype=np.float32)
    return x, w, b


def test_inside_the_block_auto_is_im2col_and_afterwards_winograd_again():
    x, w, b = _conv_inputs()
    im2col, _ = ops.conv2d_forward(x, w, b, algorithm="im2col")
    winograd, _ = ops.conv2d_forward(x, w, b, algorithm="winograd")
    assert not np.array_equal(im2col, winograd)          # the two round differently here
    with ops.conv_algorithm("im2col"):
        inside, cache = ops.conv2d_forward(x, w, b)
        dx, dw, db = ops.conv2d_backward(np.ones_like(inside), cache)
    np.testing.assert_array_equal(inside, im2col)
    ref_dx, ref_dw, _ = ops.conv2d_backward(np.ones_like(inside), ops.conv2d_forward(x, w, b, algorithm="im2col")[1])
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(dw, ref_dw)
    after, _ = ops.conv2d_forward(x, w, b)
    np.testing.assert_array_equal(after, winograd)


def test_the_setting_is_restored_after_an_error_and_bad_names_are_refused():
    with pytest.raises(RuntimeError):
        with ops.conv_algorithm("im2col"):
            raise RuntimeError("boom")
    assert conv_op._use_winograd("auto", (3, 3, 16, 16))
    with pytest.raises(ValueError, match="name"):
        with ops.conv_algorithm("winograd"):
            pass


def test_the_demo_from_scratch_calls_no_winograd_kernel(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo called a Winograd kernel")
    monkeypatch.setattr(conv_op, "_winograd", refuse)
    monkeypatch.setattr(conv_op, "_winograd_weight_grad", refuse)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--width", "0.125", "--iterations", "2",
                 "--no-progress"]) == 0


def test_large_weights_are_not_split_into_worker_blocks():
    """fc6 on a small map (7×7×512→4096 on 12×16): its weights (411 MB) outweigh the whole im2col
    (19 MB), so the forward keeps one block with the BLAS's threads: worker blocks would each
    read all the weights again. An ordinary layer is split among the workers."""
    from tinyseg.ops.conv import _rows_per_worker_block

    budget = 64 << 20
    assert _rows_per_worker_block((1, 12, 16, 512), (7, 7, 512, 4096), budget, 2) is None
    rows = _rows_per_worker_block((1, 94, 125, 256), (3, 3, 256, 256), budget, 2)
    assert rows is not None and 1 <= rows <= -(-94 // 8)


@pytest.mark.parametrize("N,H,W", [(1, 9, 11), (2, 20, 30)])
def test_auto_takes_im2cols_weight_gradient_on_small_maps_only(N, H, W):
    """Under "auto" a Winograd layer's dw comes from im2col below WINOGRAD_GRAD_MIN_PIXELS pixels
    (9×11: 99) and from the transform domain above (2×20×30: 1200); dx is Winograd's either way."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, H, W, 16), dtype=np.float32)
    w = rng.standard_normal((3, 3, 16, 16), dtype=np.float32)
    b = rng.standard_normal(16, dtype=np.float32)
    dout = rng.standard_normal((N, H, W, 16), dtype=np.float32)
    small = N * H * W < conv_op.WINOGRAD_GRAD_MIN_PIXELS
    auto = ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b)[1])
    win = ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b, algorithm="winograd")[1])
    im2col = ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b, algorithm="im2col")[1],
                                 need_dx=False)                # im2col's dw alone
    np.testing.assert_array_equal(auto[0], win[0])
    assert not np.array_equal(win[1], im2col[1])            # the two round differently here
    np.testing.assert_array_equal(auto[1], (im2col if small else win)[1])
    np.testing.assert_array_equal(auto[2], (im2col if small else win)[2])
    # and without dx, the same weight gradient
    _, dw_alone, _ = ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b)[1], need_dx=False)
    np.testing.assert_array_equal(dw_alone, auto[1])
