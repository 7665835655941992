"""Small helpers several test modules share: random float32 arrays, the one-line-error check of
the command line, a synthetic image/annotation pair and CRF inputs written to files, and mirror-symmetric model parameters."""
from __future__ import annotations

import numpy as np
from PIL import Image


def rand(rng, *shape):
    """Standard-normal float32 values of ``shape`` from ``rng``."""
    return rng.standard_normal(shape).astype(np.float32)


def one_line_error(capsys, *needles):
    """The captured stderr is one line, no traceback, containing every needle; returns it."""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def save_image_and_annotation(tmp_path, shape, box, colour=None):
    """``img.png`` (random uint8 RGB from seed 0, shape ``(H, W)``) and ``ann.png`` (class 1 in
    ``box = (y0, y1, x0, x1)``, 0 elsewhere) under ``tmp_path``; the box painted ``colour`` in the
    image when given. Returns the two paths as strings."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    annotation = np.zeros(shape, np.uint8)
    y0, y1, x0, x1 = box
    annotation[y0:y1, x0:x1] = 1
    if colour is not None:
        image[annotation == 1] = colour
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(annotation).save(tmp_path / "ann.png")
    return str(tmp_path / "img.png"), str(tmp_path / "ann.png")


def assert_maxpool3x3_equals_twin(x, stride: int, make_dout) -> None:
    """The 3×3/pad-1 max pool of ``x`` has the ceil size ``⌈H/s⌉ × ⌈W/s⌉``, its output and argmax
    cache equal the NumPy twin's exactly, and its backward of ``make_dout(out.shape)`` the twin's."""
    from tinyseg import ops, reference

    N, H, W, C = x.shape
    out, cache = ops.maxpool3x3_forward(x, stride)
    want, want_cache = reference.maxpool3x3_forward(x, stride)
    assert out.shape == (N, -(-H // stride), -(-W // stride), C)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cache[1], want_cache[1])
    dout = make_dout(out.shape)
    np.testing.assert_allclose(ops.maxpool3x3_backward(dout, cache),
                               reference.maxpool3x3_backward(dout, want_cache), rtol=1e-6, atol=1e-6)


def save_crf_inputs(tmp_path):
    """``img.png`` (12×16, its right half coloured) and ``p.npy``: two-class probabilities
    ``(12, 16, 2)``, 0.5 but for a confident left (0.8, 0.2) and right (0.3, 0.7) band. Returns p."""
    img = np.zeros((12, 16, 3), np.uint8)
    img[:, 8:] = (220, 200, 40)
    Image.fromarray(img).save(tmp_path / "img.png")
    p = np.full((12, 16, 2), 0.5, np.float32)
    p[:, :6] = (0.8, 0.2)
    p[:, 10:] = (0.3, 0.7)
    np.save(tmp_path / "p.npy", p)
    return p


def load_mirror_symmetric_params(model, rng) -> None:
    """Random He-scaled parameters into ``model``, every 4-D kernel made symmetric under vertical
    and horizontal flips (``(a + a[::-1] + a[:, ::-1] + a[::-1, ::-1]) / 4``); a learnt ×2
    upsampling (``upscore*``) becomes its bilinear start plus symmetric noise."""
    params = {}
    for k, v in model.host_params().items():
        a = rng.standard_normal(v.shape) * np.sqrt(2.0 / max(1, np.prod(v.shape[:-1])))
        if a.ndim == 4:
            a = (a + a[::-1] + a[:, ::-1] + a[::-1, ::-1]) / 4
        if k.startswith("upscore"):
            a = np.abs(a) + v                  # learnt ×2 kernels: bilinear plus symmetric noise
        params[k] = a.astype(np.float32)
    model.load_params(params)
