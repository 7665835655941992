"""Figures: a legend names each colour's class, label overlays, the probability panel aligned."""
import numpy as np
import pytest
from PIL import Image

import tinyseg.figures as figures
from tinyseg.data import voc_colormap


@pytest.fixture
def captured(monkeypatch):
    """The figures the functions would write, kept open instead of saved."""
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, path, dpi=80: figs.append(fig))
    yield figs
    import matplotlib.pyplot as plt
    for fig in figs:
        plt.close(fig)


def toy(h=30, w=40):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.int32)
    labels[5:20, 10:30] = 1
    labels[0, :4] = 255
    probs = np.stack([1 - 0.8 * labels.clip(0, 1), 0.8 * labels.clip(0, 1)], -1).astype(np.float32)
    return image, labels, probs


def legend_entries(fig):
    """``{label text: facecolour}`` of every legend of the figure."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return {t.get_text(): tuple(h.get_facecolor()) for lg in legends
            for t, h in zip(lg.get_texts(), lg.legend_handles)}


def test_label_overlay_tints_classes_and_leaves_the_background():
    image, labels, _ = toy()
    out = figures.label_overlay(image, labels, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[labels == 0], image[labels == 0])
    y, x = 10, 15                                       # class 1: VOC dark red (128, 0, 0)
    expected = np.rint(0.5 * image[y, x].astype(float) + 0.5 * np.array([128, 0, 0]))
    np.testing.assert_array_equal(out[y, x], expected)
    expected = np.rint(0.5 * image[0, 0].astype(float) + 0.5 * voc_colormap(256)[255])
    np.testing.assert_array_equal(out[0, 0], expected)  # ignored: the palette's cream


@pytest.mark.parametrize("draw", ["panel", "prediction", "crf"])
def test_binary_figures_have_a_legend_whose_colours_are_the_ones_drawn(captured, draw):
    image, labels, probs = toy()
    names = ("background", "cat")
    if draw == "panel":
        figures.panel_figure("x.png", image, labels, probs, labels, labels, 0.9, 0.95, class_names=names)
    elif draw == "prediction":
        figures.prediction_figure("x.png", labels, probs, class_names=names)
    else:
        figures.crf_figure("x.png", labels, labels, class_names=names)
    (fig,) = captured
    entries = legend_entries(fig)
    assert {"cat", "background", "ignored (255)"} <= set(entries)
    argmax = next(im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == "bwr")
    for name, value in (("cat", 1), ("background", 0), ("ignored (255)", 255)):
        drawn = argmax.to_rgba(figures._binary_view(np.array([[value]])))[0, 0]
        np.testing.assert_allclose(entries[name], drawn, atol=1e-6, err_msg=name)


def test_the_probability_panel_is_aligned_with_the_others(captured):
    image, labels, probs = toy(60, 90)
    figures.panel_figure("x.png", image, labels, probs, labels, labels)
    (fig,) = captured
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_images() and ax.get_images()[0].get_array().shape[:2] == (60, 90)]
    assert len(panels) == 5
    boxes = [ax.get_window_extent() for ax in panels]
    for box in boxes[1:]:
        assert box.y0 == pytest.approx(boxes[0].y0, abs=1.0)
        assert box.height == pytest.approx(boxes[0].height, abs=1.0)
        assert box.width == pytest.approx(boxes[0].width, abs=1.0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))        # side by side, no overlap


def test_overlay_figure_legend_names_the_classes_present(captured):
    image, labels, _ = toy()
    labels[25:, :5] = 8
    from tinyseg.data import VOC_CLASSES
    figures.overlay_figure("x.png", image, labels, VOC_CLASSES)
    entries = legend_entries(captured[0])
    assert {"aeroplane", "cat", "ignored (255)"} <= set(entries) and "dog" not in entries
    np.testing.assert_allclose(entries["cat"][:3], voc_colormap(256)[8] / 255)


def test_predict_writes_colour_overlays_of_its_label_pngs(tmp_path):
    from tinyseg.cli import main

    image, labels, _ = toy(24, 30)
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(labels.astype(np.uint8)).save(tmp_path / "ann.png")
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", "--image", str(tmp_path / "img.png"), "--annotation", str(tmp_path / "ann.png"),
                 "--width", "0.03125", "--iterations", "1", "--checkpoint", ckpt, "--no-progress"]) == 0
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", ckpt, "--image", str(tmp_path / "img.png"), "--out", str(out),
                 "--crf"]) == 0
    for name in ("labels_overlay.png", "crf_labels_overlay.png"):
        overlay = np.asarray(Image.open(out / name).convert("RGB"))
        assert overlay.shape[0] >= 24 and overlay.std() > 10, name    # an image, not a blank
