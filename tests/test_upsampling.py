"""The post's upsampling helpers and ``upsample`` against scikit-image's bilinear ``rescale``."""
import numpy as np
import pytest
from skimage.transform import rescale

import tinyseg
from tinyseg import ops


def test_get_kernel_size_is_two_f_minus_f_mod_2():
    assert [tinyseg.get_kernel_size(f) for f in (1, 2, 3, 4, 5, 32)] == [1, 4, 5, 8, 9, 64]


def test_upsample_filt_is_the_bilinear_tent():
    tent4 = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(tinyseg.upsample_filt(4), np.outer(tent4, tent4))
    tent5 = np.array([1, 2, 3, 2, 1]) / 3
    np.testing.assert_allclose(tinyseg.upsample_filt(5), np.outer(tent5, tent5))


def test_bilinear_upsample_weights_puts_the_tent_on_the_diagonal():
    w = tinyseg.bilinear_upsample_weights(3, 4)
    assert w.shape == (5, 5, 4, 4) and w.dtype == np.float32
    for i in range(4):
        for j in range(4):
            expected = tinyseg.upsample_filt(5) if i == j else 0
            np.testing.assert_allclose(w[:, :, i, j], expected)


def skimage_bilinear(x, factor):
    return rescale(x, factor, order=1, mode="constant", cval=0, clip=False,
                   anti_aliasing=False, channel_axis=-1)


@pytest.mark.parametrize("factor", range(2, 33))
def test_upsample_equals_skimage_rescale_over_the_whole_image(rng, factor):
    for (H, W, C) in [(1, 2, 1), (3, 5, 2), (4, 3, 3)]:
        x = rng.standard_normal((1, H, W, C)).astype(np.float32)
        got = tinyseg.upsample(x, factor)
        want = skimage_bilinear(x[0].astype(np.float64), factor)
        assert got.shape == (1,) + want.shape
        np.testing.assert_allclose(got[0], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("factor", [2, 3, 4, 7])
def test_upsample_equals_the_posts_transposed_conv_with_full_weights(rng, factor):
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    full, _ = ops.conv_transpose2d_forward(x, tinyseg.bilinear_upsample_weights(factor, 3), factor)
    np.testing.assert_allclose(tinyseg.upsample(x, factor), full, rtol=1e-6, atol=1e-6)


def test_upsample_float64_exactness_against_skimage(rng):
    """The equality is exact up to rounding: in float64 the kernel math reproduces rescale to 1e-12."""
    from tinyseg.backend import get_backend

    x = rng.standard_normal((1, 3, 4, 2))
    for factor in (2, 5, 32):
        k = tinyseg.get_kernel_size(factor)
        out = np.empty((1, 3 * factor, 4 * factor, 2))
        get_backend("cpu").conv_transpose2d_depthwise_forward(x, tinyseg.upsample_filt(k), factor, out)
        np.testing.assert_allclose(out[0], skimage_bilinear(x[0], factor), atol=1e-12)
