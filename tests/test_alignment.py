"""Where each model's scores sit on the input, checked end to end by mirror symmetry.

If every kernel is mirror-symmetric (``w[::-1]`` = ``w``), a network whose score grid is placed
symmetrically on the image commutes with flipping the image: ``net(flip(x)) = flip(net(x))``.
That happens only for the sizes where the documented grid is symmetric — FCN's scores at
``32i + 15.5`` (and every skip at ``s·i + (s − 1)/2``) on ``H = 32k``; DeepLab's at ``8i`` on
``H = 8k + 1`` — and fails for any other offset (a crop off by one row, a half-pixel shift in an
upsampling), so these tests pin the alignment without knowing any weights. Odd sizes are covered
by the same layers (the grids do not depend on H; ``test_models`` checks shapes at odd sizes and
equality with PyTorch at 37×45).
"""
import numpy as np
import pytest

from tinyseg.models import build_model
from helpers import load_mirror_symmetric_params

FCN_NAMES = ["fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce"]


def assert_flip_equivariant(model, x, axis):
    a = model.forward(x)
    b = model.forward(np.ascontiguousarray(np.flip(x, axis)))
    np.testing.assert_allclose(np.flip(b, axis), a, rtol=1e-4, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("name", FCN_NAMES)
def test_fcn_scores_are_centred_on_their_blocks_for_h_multiple_of_32(name):
    rng = np.random.default_rng(0)
    model = build_model(name, n_classes=2, width=1 / 32)
    load_mirror_symmetric_params(model, rng)
    x = rng.standard_normal((1, 64, 96, 3)).astype(np.float32)
    assert_flip_equivariant(model, x, 1)
    assert_flip_equivariant(model, x, 2)


@pytest.mark.parametrize("name", FCN_NAMES)
def test_fcn_grid_is_not_symmetric_on_other_sizes(name):
    """The same check fails where the grid is not symmetric: the test can tell offsets apart."""
    rng = np.random.default_rng(0)
    model = build_model(name, n_classes=2, width=1 / 32)
    load_mirror_symmetric_params(model, rng)
    x = rng.standard_normal((1, 64 + 8, 64, 3)).astype(np.float32)
    with pytest.raises(AssertionError):
        assert_flip_equivariant(model, x, 1)
