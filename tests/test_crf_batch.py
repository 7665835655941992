"""refine_many spreads images over worker threads (or processes), one core each; its results
must be exactly those of dense_crf called on one image at a time in this process."""
import numpy as np
import pytest

from tinyseg.crf import dense_crf
from tinyseg.crf.batch import refine_many

PARAMS = dict(sdims=(20, 20), schan=(13, 13, 13), compat=4.0, gaussian_sdims=(3, 3),
              gaussian_compat=3.0, iterations=5)


def _items(n=3, h=37, w=45, c=3):
    rng = np.random.default_rng(7)
    items = []
    for k in range(n):
        image = rng.integers(0, 256, (h + k, w, 3)).astype(np.uint8)
        image[:, : w // 2] //= 3                               # an edge for the bilateral kernel
        logits = rng.normal(0, 1.5, (h + k, w, c))
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        items.append((image, p.astype(np.float32)))
    return items


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_pool_equals_one_image_at_a_time(kind):
    items = _items()
    expected = [dense_crf(im, p, **PARAMS) for im, p in items]
    got = refine_many(items, PARAMS, workers=2, with_q=True, kind=kind)
    assert len(got) == len(items)
    for (labels, q), (want_labels, want_q) in zip(got, expected):
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_array_equal(q, want_q)                # bit for bit


def test_in_process_path_and_order():
    items = _items(n=3)
    got = refine_many(items, PARAMS, workers=1)
    shapes = [labels.shape for labels in got]
    assert shapes == [im.shape[:2] for im, _ in items]          # input order kept
    for labels, (im, p) in zip(got, items):
        np.testing.assert_array_equal(labels, dense_crf(im, p, **PARAMS)[0])


def test_paths_are_read_by_the_worker(tmp_path):
    from tinyseg.data import save_label_png  # noqa: F401  (same package: I/O available)
    from skimage import io

    items = _items(n=2)
    path_items = []
    for k, (im, p) in enumerate(items):
        io.imsave(tmp_path / f"{k}.png", im, check_contrast=False)
        np.save(tmp_path / f"{k}.npy", p)
        path_items.append((str(tmp_path / f"{k}.png"), str(tmp_path / f"{k}.npy")))
    got = refine_many(path_items, PARAMS, workers=2)
    for labels, (im, p) in zip(got, items):
        np.testing.assert_array_equal(labels, dense_crf(im, p, **PARAMS)[0])


def test_bad_workers():
    with pytest.raises(ValueError, match="workers"):
        refine_many(_items(n=2), PARAMS, workers=0)
    with pytest.raises(ValueError, match="kind"):
        refine_many(_items(n=2), PARAMS, workers=2, kind="fibres")


def test_the_crf_kernels_release_the_gil():
    """Worker threads run side by side only if every compiled kernel of the CRF's CPU path lets
    go of the GIL (``nogil=True``)."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import tinyseg.crf.filters as filters

    modules = ["tinyseg.crf.mean_field_kernels", "tinyseg.crf.features"] + [
        f"tinyseg.crf.filters.{m.name}" for m in pkgutil.iter_modules(filters.__path__)]
    kernels = []
    for name in modules:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, CPUDispatcher) and value.targetoptions.get("inline") != "always":
                kernels.append((name, value.py_func.__name__, value.targetoptions.get("nogil")))
    assert len(kernels) > 40
    assert [k for k in kernels if not k[2]] == []


def test_evaluate_with_crf_workers_equals_one_image_at_a_time():
    from tinyseg.models import build_model
    from tinyseg.predict import evaluate

    model = build_model("fcn32s", 3, width=0.03125, seed=0)
    rng = np.random.default_rng(1)
    samples = [(im, rng.integers(0, 3, im.shape[:2])) for im, _ in _items(n=3)]
    pooled = evaluate(model, samples, 3, crf_workers=2, trimap=(1, 2), **PARAMS)
    serial = evaluate(model, samples, 3, crf_workers=1, trimap=(1, 2), **PARAMS)
    np.testing.assert_array_equal(pooled["crf"].matrix, serial["crf"].matrix)
    np.testing.assert_array_equal(pooled["fcn"].matrix, serial["fcn"].matrix)
    assert pooled["crf"].matrix.sum() == sum(s[1].size for s in samples)
