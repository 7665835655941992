"""Tests of tinyseg.weights.checkpoint: bitwise round trip, atomic writes, clear errors."""
import h5py
import numpy as np
import pytest

import tinyseg.weights.checkpoint as ckpt
from tinyseg import __version__
from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint


def _state(seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "conv1_1.w": rng.standard_normal((3, 3, 3, 4)).astype(np.float32),
        "conv1_1.b": rng.standard_normal(4).astype(np.float32),
        "fc8.w": rng.standard_normal((1, 1, 4, 2)).astype(np.float32),
        "fc8.b": np.array([np.nan, -0.0], np.float32),  # odd values survive bitwise too
    }
    m = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    v = {k: rng.random(v.shape).astype(np.float32) for k, v in params.items()}
    return params, {"m": m, "v": v, "step": 7}


CONFIG = {"n_classes": 2, "width": 0.25, "lr": 1e-4, "layers": ["conv1_1", "fc8"]}


def test_round_trip_is_bitwise(tmp_path):
    params, adam = _state()
    path = tmp_path / "ckpt.h5"
    rng = np.random.default_rng(3)
    extra = {"rng": rng.bit_generator.state, "order": np.arange(4)}
    save_checkpoint(path, params, adam, CONFIG, extra)
    p2, a2, config, extra2, version = load_checkpoint(path)
    for src, dst in ((params, p2), (adam["m"], a2["m"]), (adam["v"], a2["v"])):
        assert set(src) == set(dst)
        for k in src:
            assert dst[k].dtype == src[k].dtype and dst[k].shape == src[k].shape
            assert dst[k].tobytes() == src[k].tobytes()
    assert a2["step"] == 7 and isinstance(a2["step"], int)
    assert config == CONFIG
    assert extra2["order"] == [0, 1, 2, 3]
    assert version == __version__


def test_rng_state_from_extra_restores_the_stream(tmp_path):
    params, adam = _state()
    rng = np.random.default_rng(5)
    rng.random(3)
    save_checkpoint(tmp_path / "c.h5", params, adam, CONFIG, {"rng": rng.bit_generator.state})
    expected = rng.random(4)
    restored = np.random.default_rng()
    restored.bit_generator.state = load_checkpoint(tmp_path / "c.h5").extra["rng"]
    np.testing.assert_array_equal(restored.random(4), expected)


def test_named_fields_and_no_extra(tmp_path):
    params, adam = _state()
    save_checkpoint(tmp_path / "c.h5", params, adam, CONFIG)
    c = load_checkpoint(tmp_path / "c.h5")
    assert c.extra is None and c.config == CONFIG and c.adam_state["step"] == 7


def test_empty_adam_state_before_first_step(tmp_path):
    params, _ = _state()
    save_checkpoint(tmp_path / "c.h5", params, {"m": {}, "v": {}, "step": 0}, CONFIG)
    assert load_checkpoint(tmp_path / "c.h5").adam_state == {"m": {}, "v": {}, "step": 0}


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.h5"
    params, adam = _state(0)
    save_checkpoint(path, params, adam, CONFIG)
    before = path.read_bytes()

    calls = {"n": 0}
    real = ckpt._write_arrays

    def failing(group, arrays):
        calls["n"] += 1
        if calls["n"] == 2:  # params written, crash while writing Adam's moments
            raise RuntimeError("simulated crash mid-write")
        real(group, arrays)

    monkeypatch.setattr(ckpt, "_write_arrays", failing)
    new_params, new_adam = _state(1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_checkpoint(path, new_params, new_adam, CONFIG)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.h5"]  # temp file removed
    np.testing.assert_array_equal(load_checkpoint(path).params["conv1_1.w"], params["conv1_1.w"])


def test_save_replaces_existing_checkpoint(tmp_path):
    path = tmp_path / "ckpt.h5"
    save_checkpoint(path, *_state(0), CONFIG)
    params, adam = _state(1)
    adam["step"] = 8
    save_checkpoint(path, params, adam, CONFIG)
    assert load_checkpoint(path).adam_state["step"] == 8


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_checkpoint(tmp_path / "nope.h5")


def test_not_hdf5_is_named(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.txt.*not a tinyseg checkpoint"):
        load_checkpoint(path)


def test_foreign_hdf5_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "keras.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"fc1"]
    with pytest.raises(ValueError, match=r"keras\.h5.*not a tinyseg checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("member,named", [("adam/v/fc8.w", r"'/adam/v/fc8\.w'"),   # a moment array
                                           ("params", r"'/params'")])              # a whole group
def test_missing_member_is_named(tmp_path, member, named):
    path = tmp_path / "ckpt.h5"
    save_checkpoint(path, *_state(), CONFIG)
    with h5py.File(path, "a") as f:
        del f[member]
    with pytest.raises(ValueError, match=r"ckpt\.h5.*" + named + " is missing"):
        load_checkpoint(path)


def test_moment_shape_mismatch_names_argument(tmp_path):
    params, adam = _state()
    adam["m"]["fc8.b"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"adam_state\['m'\].*'fc8\.b'"):
        save_checkpoint(tmp_path / "c.h5", params, adam, CONFIG)


def test_config_not_json_names_argument(tmp_path):
    with pytest.raises(TypeError, match="`config`"):
        save_checkpoint(tmp_path / "c.h5", *_state(), {"f": object()})


def test_adam_state_without_step_names_argument(tmp_path):
    params, adam = _state()
    del adam["step"]
    with pytest.raises(ValueError, match="`adam_state`"):
        save_checkpoint(tmp_path / "c.h5", params, adam, CONFIG)
