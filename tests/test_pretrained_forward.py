"""Importing Keras (Caffe) VGG-16 weights gives an FCN-32s whose RGB forward equals Caffe's BGR one.

A Keras-layout file is built with FCN-32s(width=1/32)'s exact shapes; the network with the raw
(BGR) weights on a Caffe-preprocessed BGR image must give the same logits as tinyseg's network
with the imported weights on tinyseg's RGB preprocessing.
"""
import numpy as np

from tinyseg.data import preprocess
from tinyseg.models import FCN32s, FCN32sConfig
from tinyseg.weights import load_vgg16_keras

from test_weights import _write_keras_h5, KERAS_CONVS

CONFIG = FCN32sConfig(width=1 / 32, n_classes=2, seed=0)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def test_imported_weights_on_rgb_equal_caffe_weights_on_bgr(tmp_path):
    rng = np.random.default_rng(0)
    shapes = FCN32s.param_shapes(CONFIG)
    keras = {}
    conv_names = [n[:-2] for n in shapes if n.startswith("conv") and n.endswith(".w")]
    for tiny, kname in zip(conv_names, KERAS_CONVS):
        keras[kname] = (rng.standard_normal(shapes[f"{tiny}.w"]).astype(np.float32) * 0.1,
                        rng.standard_normal(shapes[f"{tiny}.b"]).astype(np.float32) * 0.1)
    fc = shapes["fc6.w"][3]
    keras["fc1"] = (rng.standard_normal((7 * 7 * shapes["fc6.w"][2], fc)).astype(np.float32) * 0.05,
                    rng.standard_normal(fc).astype(np.float32) * 0.1)
    keras["fc2"] = (rng.standard_normal((fc, fc)).astype(np.float32) * 0.1, np.zeros(fc, np.float32))
    keras["predictions"] = (rng.standard_normal((fc, 10)).astype(np.float32), np.zeros(10, np.float32))
    path = tmp_path / "vgg16_tiny.h5"
    _write_keras_h5(path, keras)

    imported = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    fc8 = {"fc8.w": rng.standard_normal(shapes["fc8.w"]).astype(np.float32) * 0.1}
    rgb_model = FCN32s(CONFIG, params={**imported, **fc8})
    caffe = dict(imported, **fc8)
    caffe["conv1_1.w"] = np.ascontiguousarray(imported["conv1_1.w"][:, :, ::-1, :])   # back to BGR
    bgr_model = FCN32s(CONFIG, params=caffe)

    image = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)          # RGB
    x_rgb = preprocess(image)[None]
    x_bgr = (image[..., ::-1].astype(np.float32) - CAFFE_MEAN_BGR)[None]     # Caffe's input
    np.testing.assert_allclose(rgb_model.forward(x_rgb), bgr_model.forward(np.ascontiguousarray(x_bgr)),
                               rtol=1e-4, atol=1e-4)
    assert not np.allclose(rgb_model.forward(x_rgb), bgr_model.forward(x_rgb), atol=1e-3)
