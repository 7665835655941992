"""Tests of tinyseg.weights: the Keras HDF5 import (layout, fc1 reshape, BGR -> RGB), .npz, MD5."""
import hashlib

import h5py
import numpy as np
import pytest

from tinyseg.data import preprocess
from tinyseg.weights import (
    VGG16_KERAS_MD5,
    VGG16_LAYERS,
    check_md5,
    load_params,
    load_params_npz,
    load_vgg16_keras,
    md5_of_file,
    save_params_npz,
)

# A narrow VGG-16 in the exact Keras layout: channels per conv layer, fc width.
SMALL_CONV = [2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]
SMALL_FC = 8
KERAS_CONVS = [k for k in VGG16_LAYERS.values() if k.startswith("block")]
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def _small_keras_arrays(seed=0, fc=True):
    """Raw Keras arrays {keras layer: (W, b)} for the narrow VGG."""
    rng = np.random.default_rng(seed)
    arrays, c_in = {}, 3
    for name, c_out in zip(KERAS_CONVS, SMALL_CONV):
        arrays[name] = (rng.standard_normal((3, 3, c_in, c_out)), rng.standard_normal(c_out))
        c_in = c_out
    if fc:
        arrays["fc1"] = (rng.standard_normal((7 * 7 * c_in, SMALL_FC)), rng.standard_normal(SMALL_FC))
        arrays["fc2"] = (rng.standard_normal((SMALL_FC, SMALL_FC)), rng.standard_normal(SMALL_FC))
        arrays["predictions"] = (rng.standard_normal((SMALL_FC, 10)), rng.standard_normal(10))
    return {k: (w.astype(np.float32), b.astype(np.float32)) for k, (w, b) in arrays.items()}


def _write_keras_h5(path, arrays, *, drop=None, chunked=False, keras2=False):
    """Write arrays in Keras 1 ``save_weights`` layout, as in the applications files
    (``keras2``: Keras 2 weight names ``<layer>/kernel:0``, nested one group deeper)."""
    layers = ["input_1"]
    for name in arrays:
        layers.append(name)
        if name.endswith("conv2") and name[5] in "12" or name.endswith("conv3"):
            layers.append(name.split("_")[0] + "_pool")
        if name == "block5_conv3":
            layers.append("flatten")
    with h5py.File(path, "w") as f:
        names = np.array([n.encode() for n in layers])
        if chunked:
            f.attrs["layer_names0"] = names[:5]
            f.attrs["layer_names1"] = names[5:]
        else:
            f.attrs["layer_names"] = names
        f.attrs["backend"] = b"tensorflow"
        for layer in layers:
            g = f.create_group(layer)
            if layer not in arrays:
                g.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            w, b = arrays[layer]
            wn = ([f"{layer}/kernel:0", f"{layer}/bias:0"] if keras2
                  else [f"{layer}_W_1:0", f"{layer}_b_1:0"])
            g.attrs["weight_names"] = np.array([n.encode() for n in wn])
            for n, a in zip(wn, (w, b)):
                if drop != f"{layer}/{n}":
                    g.create_dataset(n, data=a)


def _conv_same_naive(x, w, b):
    """Plain SAME convolution (cross-correlation, as TF/Keras): x (H, W, Cin), w (kh, kw, Cin, Cout)."""
    kh, kw = w.shape[:2]
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x.astype(np.float64), ((ph, ph), (pw, pw), (0, 0)))
    H, W = x.shape[:2]
    out = np.zeros((H, W, w.shape[3]))
    for i in range(H):
        for j in range(W):
            patch = xp[i:i + kh, j:j + kw, :]  # (kh, kw, Cin)
            out[i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2])) + b
    return out


@pytest.fixture
def small_h5(tmp_path):
    arrays = _small_keras_arrays()
    path = tmp_path / "vgg16_small.h5"
    _write_keras_h5(path, arrays)
    return path, arrays


def test_keras_import_names_and_shapes(small_h5):
    path, _ = small_h5
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    expected = {f"{t}.{k}" for t in VGG16_LAYERS for k in "wb"}
    assert set(params) == expected  # predictions (fc8) not imported
    assert params["conv1_1.w"].shape == (3, 3, 3, 2)
    assert params["conv5_3.b"].shape == (6,)
    assert params["fc6.w"].shape == (7, 7, 6, SMALL_FC)
    assert params["fc7.w"].shape == (1, 1, SMALL_FC, SMALL_FC)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in params.values())


def test_keras_import_copies_weights_unchanged_except_conv1_1(small_h5):
    path, arrays = small_h5
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    np.testing.assert_array_equal(params["conv3_2.w"], arrays["block3_conv2"][0])
    np.testing.assert_array_equal(params["conv3_2.b"], arrays["block3_conv2"][1])
    np.testing.assert_array_equal(params["conv1_1.w"], arrays["block1_conv1"][0][:, :, ::-1, :])
    np.testing.assert_array_equal(params["fc7.w"][0, 0], arrays["fc2"][0])


def test_fc1_reshape_equals_keras_flatten_dense(small_h5):
    path, arrays = small_h5
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    w1, b1 = arrays["fc1"]
    pool5 = np.random.default_rng(1).standard_normal((7, 7, 6))  # (H, W, C), channels last
    dense = pool5.reshape(-1) @ w1 + b1  # Keras: Flatten (H, W, C order) then Dense
    # 7x7 VALID conv = the SAME conv's output at the centre of the 7x7 map.
    conv = np.einsum("hwc,hwco->o", pool5, params["fc6.w"]) + params["fc6.b"]
    np.testing.assert_allclose(conv, dense, rtol=1e-5, atol=1e-5)
    same = _conv_same_naive(pool5, params["fc6.w"], params["fc6.b"])
    np.testing.assert_allclose(same[3, 3], dense, rtol=1e-5, atol=1e-5)


def test_conv1_1_import_makes_rgb_input_equal_caffe_bgr_input(small_h5):
    path, arrays = small_h5
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    image = np.random.default_rng(2).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)  # RGB
    caffe_x = image[..., ::-1].astype(np.float64) - CAFFE_MEAN_BGR  # BGR minus BGR means
    w, b = arrays["block1_conv1"]
    caffe_out = _conv_same_naive(caffe_x, w, b)
    tinyseg_out = _conv_same_naive(preprocess(image), params["conv1_1.w"], params["conv1_1.b"])
    np.testing.assert_allclose(tinyseg_out, caffe_out, rtol=1e-4, atol=1e-3)
    # ...and without the flip the results differ: the conversion is needed.
    wrong = _conv_same_naive(preprocess(image), w, b)
    assert not np.allclose(wrong, caffe_out, atol=1e-1)


def test_notop_file_imports_convolutions_only(tmp_path):
    path = tmp_path / "notop.h5"
    _write_keras_h5(path, _small_keras_arrays(fc=False))
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    assert "fc6.w" not in params and "conv5_3.w" in params and len(params) == 26


def test_keras2_nested_weight_names_are_read(tmp_path):
    arrays = _small_keras_arrays()
    path = tmp_path / "keras2.h5"
    _write_keras_h5(path, arrays, keras2=True)
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    np.testing.assert_array_equal(params["conv2_1.w"], arrays["block2_conv1"][0])


def test_chunked_layer_names_attribute_is_read(tmp_path):
    path = tmp_path / "chunked.h5"
    _write_keras_h5(path, _small_keras_arrays(), chunked=True)
    assert "fc7.w" in load_vgg16_keras(path, verify_md5=False, strict_shapes=False)


def test_strict_shapes_rejects_non_vgg16_sizes(small_h5):
    path, _ = small_h5
    with pytest.raises(ValueError, match=r"conv1_1 \(block1_conv1\).*\(3, 3, 3, 64\)"):
        load_vgg16_keras(path, verify_md5=False)


def test_missing_dataset_error_names_file_and_dataset(tmp_path):
    path = tmp_path / "broken.h5"
    _write_keras_h5(path, _small_keras_arrays(), drop="block2_conv1/block2_conv1_b_1:0")
    with pytest.raises(ValueError, match=r"broken\.h5.*block2_conv1/block2_conv1_b_1:0"):
        load_vgg16_keras(path, verify_md5=False, strict_shapes=False)


def _assert_load_fails(path, arrays, match):
    """``arrays`` written as a Keras file at ``path`` do not load: a ValueError matching ``match``."""
    _write_keras_h5(path, arrays)
    with pytest.raises(ValueError, match=match):
        load_vgg16_keras(path, verify_md5=False, strict_shapes=False)


def test_missing_layer_group_error_names_layer(tmp_path):
    arrays = _small_keras_arrays()
    del arrays["block4_conv2"]
    _assert_load_fails(tmp_path / "nolayer.h5", arrays, r"nolayer\.h5.*'block4_conv2'")


def test_wrong_channel_chain_error_names_layer(tmp_path):
    arrays = _small_keras_arrays()
    w, b = arrays["block3_conv1"]
    arrays["block3_conv1"] = (w[:, :, :2, :], b)  # 2 input channels instead of 3
    _assert_load_fails(tmp_path / "chain.h5", arrays, r"chain\.h5.*conv3_1 \(block3_conv1\)")


def test_fc1_rows_not_a_square_window_error_names_dataset(tmp_path):
    arrays = _small_keras_arrays()
    w, b = arrays["fc1"]
    arrays["fc1"] = (w[:-1], b)
    _assert_load_fails(tmp_path / "fc1.h5", arrays, r"fc1\.h5.*fc1/fc1_W_1:0")


def test_non_keras_hdf5_error_names_layer_names(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5.*layer_names"):
        load_vgg16_keras(path, verify_md5=False)


def test_not_hdf5_error_names_file(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello")
    with pytest.raises(ValueError, match=r"text\.h5.*not an HDF5 file"):
        load_vgg16_keras(path, verify_md5=False)


def test_missing_weight_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.h5"):
        load_vgg16_keras(tmp_path / "nothere.h5")


def test_md5_of_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(3000)
    path.write_bytes(data)
    assert md5_of_file(path, chunk_size=1000) == hashlib.md5(data).hexdigest()


def test_known_md5_of_full_keras_file():
    assert VGG16_KERAS_MD5["vgg16_weights_tf_dim_ordering_tf_kernels.h5"] == (
        "64373286793e3c8b2b4e3219cbf3544b"
    )


def test_check_md5_mismatch_names_file_and_digests(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match=r"blob\.bin.*900150983cd24fb0d6963f7d28e17f72.*expected 0+"):
        check_md5(path, expected="0" * 32)
    assert check_md5(path, expected="900150983CD24FB0D6963F7D28E17F72") == hashlib.md5(b"abc").hexdigest()


def test_keras_import_verifies_md5_by_default(small_h5):
    path, _ = small_h5
    with pytest.raises(ValueError, match="MD5"):
        load_vgg16_keras(path, strict_shapes=False)


def test_npz_round_trip_in_tinyseg_names(small_h5, tmp_path):
    path, _ = small_h5
    params = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    params["fc8.w"] = np.ones((1, 1, SMALL_FC, 2), np.float32)
    params["fc8.b"] = np.zeros(2, np.float32)
    out = tmp_path / "weights.npz"
    save_params_npz(out, params)
    back = load_params_npz(out, strict_shapes=False)
    assert set(back) == set(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_npz_with_keras_names_converts_like_h5(small_h5, tmp_path):
    path, arrays = small_h5
    npz = tmp_path / "keras_names.npz"
    np.savez(npz, **{n: a for k, (w, b) in arrays.items()
                     for n, a in ((f"{k}_W_1:0", w), (f"{k}_b_1:0", b))})
    from_h5 = load_vgg16_keras(path, verify_md5=False, strict_shapes=False)
    from_npz = load_params_npz(npz, strict_shapes=False)
    assert set(from_npz) == set(from_h5)
    for k in from_h5:
        np.testing.assert_array_equal(from_npz[k], from_h5[k])


def test_npz_unknown_array_name_is_named(tmp_path):
    npz = tmp_path / "bad.npz"
    np.savez(npz, **{"conv1_1.w": np.zeros((3, 3, 3, 2)), "conv1_1.b": np.zeros(2), "junk": np.zeros(1)})
    with pytest.raises(ValueError, match=r"bad\.npz.*'junk'"):
        load_params_npz(npz, strict_shapes=False)


def test_npz_bias_without_kernel_is_named(tmp_path):
    npz = tmp_path / "half.npz"
    np.savez(npz, **{"fc8.b": np.zeros(2)})
    with pytest.raises(ValueError, match=r"half\.npz.*'fc8\.b'.*'fc8\.w'"):
        load_params_npz(npz)


def test_load_params_dispatches_on_extension(small_h5, tmp_path):
    path, _ = small_h5
    assert "fc6.w" in load_params(path, verify_md5=False, strict_shapes=False)
    with pytest.raises(ValueError, match=r"weights\.pt.*\.npz"):
        load_params(tmp_path / "weights.pt")


def test_save_params_npz_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="'conv1_1_w'"):
        save_params_npz(tmp_path / "x.npz", {"conv1_1_w": np.zeros(1)})


def test_strict_shapes_accept_exact_vgg16_sizes():
    from tinyseg.weights.keras import _VGG16_SHAPES, _check_chain

    # Zero-copy stand-ins with VGG-16's real shapes (only shapes are checked).
    params = {}
    for layer, shape in _VGG16_SHAPES.items():
        params[f"{layer}.w"] = np.broadcast_to(np.float32(0), shape)
        params[f"{layer}.b"] = np.broadcast_to(np.float32(0), shape[-1:])
    _check_chain(params, "vgg16.h5", strict_shapes=True)
    # 138,357,544 VGG-16 parameters minus the 4,097,000 of `predictions`.
    assert sum(v.size for v in params.values()) == 134_260_544
