"""The comparison study: FCN-32s, FCN-8s and DeepLab-LargeFOV on the same data, before and after
the dense CRF, scored by mean IoU and by boundary accuracy (DeepLab's trimap).

The post ends by naming two cures for FCN-32s's coarse maps: skip connections (FCN-8s) and
atrous convolution with a fully connected CRF (DeepLab). This module trains each model the same
way (same data, initial backbone — the same seed draws the same VGG weights —, iterations and
Adam), predicts, refines with the post's CRF, and measures what each cure buys near object
boundaries: IoU within ±w pixels of the ground-truth boundaries for w = 2 … 20
(:func:`tinyseg.metrics.trimap_band`).

Three datasets:

* ``"chelsea"`` — the bundled image (scikit-image's cat with tinyseg's annotation), binary
  labels, with **held-out rows**: the labels of alternate 30-row strips (rows 0–29, 60–89, …)
  train the network, the other strips are scored. The network sees the whole image but never the
  labels it is scored on;
* ``"chelsea-post"`` — the post's own protocol: trained on and scored on the same labels. It
  measures how well a network memorises its one image: from scratch FCN-8s can fit the cat almost
  exactly, and then no post-processing can improve it — the CRF's colour term moves that near-exact
  boundary a pixel or two off the annotation;
* ``"shapes"`` — :func:`tinyseg.data.synthetic.synthetic_dataset`: textured shapes of 3 classes
  on a textured ground, 128×160, exact ground truth, trained on 16 images and scored on 6 others.
  Every label edge is a strong colour edge there: the CRF's best case;
* ``"camouflage"`` — :func:`tinyseg.data.synthetic.camouflage_dataset`, the same sizes and
  classes, but colour edges are not label edges: a patchwork background and coarsely patterned
  objects in one shared palette.

A test sample is ``(image, labels)`` or ``(image, labels, scored)``: ``scored`` (bool H×W) names
the pixels that count; trimap bands still follow every boundary of ``labels``.

A network trained from scratch on one image depends strongly on its initial weights: at one seed
FCN-8s beats FCN-32s near the boundaries by 0.3 IoU, at another it trails by 0.1. So every model
is trained from several seeds (by default 0–3, each seed the same initial backbone for every
model) and the table reports the **mean over seeds** of each score; ``compare.json`` keeps every
seed's scores.

Run it as ``tinyseg demo --compare --out DIR [--data …]`` or from ``benchmarks/bench_boundary.py``.
Writes ``compare.png`` (image; each model's map; each after the CRF; ground truth),
``trimap.png`` (trimap IoU against w), ``compare.csv`` and ``compare.json``.
"""
from __future__ import annotations

import csv
import json
import os
import time

import numpy as np

from .._moved import new_value

STUDY_MODELS = ("fcn32s", "fcn8s", "deeplab-largefov")
STUDY_WIDTHS = (2, 4, 8, 12, 16, 20)          # trimap band half-widths of the table (pixels)
STUDY_SEEDS = (0, 1, 2, 3)                    # initialisations averaged by the study
STUDY_DATA = ("chelsea", "chelsea-post", "shapes", "camouflage")
HELD_OUT_STRIP = 30                           # rows per strip of chelsea's train / scored split
TITLES = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "fcn8s-atonce": "FCN-8s at once",
          "deeplab-largefov": "DeepLab-LargeFOV"}

# Training settings per dataset, from scratch and with imported VGG-16 weights (--weights).
SETTINGS = {
    "chelsea": {"scratch": dict(width=0.25, iterations=30, lr=1e-4, reduction="sum"),
                "pretrained": dict(width=1.0, iterations=10, lr=1e-4, reduction="sum")},
    "shapes": {"scratch": dict(width=0.125, iterations=300, lr=3e-4, reduction="mean"),
               "pretrained": dict(width=1.0, iterations=100, lr=1e-4, reduction="mean")},
}
SETTINGS["chelsea-post"] = SETTINGS["chelsea"]          # the same training, scored as the post does
SETTINGS["camouflage"] = SETTINGS["shapes"]


def study_data(data: str, shapes_train: int = 16, shapes_test: int = 6):
    """``(train samples, test samples, n_classes)`` of a study dataset (see the module docstring)."""
    data = new_value("--data", data)                    # an old name gives the new (tinyseg._moved)
    if data in ("chelsea", "chelsea-post"):
        from ..data import binary_labels, chelsea
        image, annotation = chelsea()
        labels = binary_labels(annotation)
        if data == "chelsea-post":
            return [(image, labels)], [(image, labels)], 2
        scored = held_out_rows(labels.shape)
        return [(image, np.where(scored, 255, labels).astype(labels.dtype))], [(image, labels, scored)], 2
    if data == "shapes":
        from ..data.synthetic import synthetic_dataset
        return (synthetic_dataset(shapes_train, size=(128, 160), seed=1),
                synthetic_dataset(shapes_test, size=(128, 160), seed=2), 4)
    if data == "camouflage":
        from ..data.synthetic import camouflage_dataset
        return (camouflage_dataset(shapes_train, size=(128, 160), seed=1),
                camouflage_dataset(shapes_test, size=(128, 160), seed=2), 4)
    raise ValueError(f"`data` must be one of {', '.join(STUDY_DATA)}; got {data!r}")


def held_out_rows(shape, strip: int = HELD_OUT_STRIP):
    """``(H, W)`` bool: True on the odd strips of ``strip`` rows (the scored ones), False on the even."""
    rows = (np.arange(shape[0]) // strip) % 2 == 1
    return np.broadcast_to(rows[:, None], shape).copy()


def score_model(model, samples, n_classes: int, widths=STUDY_WIDTHS, device: str = "cpu"):
    """Predict, refine with the post's CRF, and score: ``(scores, maps of the first sample)``.

    ``samples`` hold ``(image, labels)`` or ``(image, labels, scored)`` (see the module docstring).
    ``scores = {"fcn"|"crf": {"mean_iou", "pixel_accuracy", "trimap": {"w": {...}}}}``.
    """
    from ..metrics import ConfusionMatrix, TrimapMeter
    from ..predict import predict, refine

    meters = {stage: (ConfusionMatrix(n_classes), TrimapMeter(n_classes, widths)) for stage in ("fcn", "crf")}
    first = None
    for image, labels, *scored in samples:
        scored = scored[0] if scored else None
        counted = labels if scored is None else np.where(scored, labels, 255)
        pred, probs = predict(model, image)
        crf_pred, _ = refine(image, probs, device=device)
        for stage, p in (("fcn", pred), ("crf", crf_pred)):
            meters[stage][0].update(p, counted)
            meters[stage][1].update(p, labels, where=scored)
        if first is None:
            first = {"fcn": pred, "crf": crf_pred}
    scores = {stage: {"mean_iou": cm.mean_iou(), "pixel_accuracy": cm.pixel_accuracy(),
                      "trimap": tm.summary()} for stage, (cm, tm) in meters.items()}
    return scores, first


def train_model(name, samples, n_classes, *, width, iterations, lr, reduction, seed=0, weights=None,
                device="cpu", progress=False):
    """A model of registry ``name`` trained on ``samples``; returns ``(model, losses, seconds)``."""
    from ..models import build_model
    from ..training.trainer import TrainConfig, Trainer

    model = build_model(name, n_classes, width=width, seed=seed, weights=weights, backend=device)
    trainer = Trainer(model, samples, TrainConfig(iterations=iterations, lr=lr, reduction=reduction,
                                                  progress=progress))
    t0 = time.perf_counter()
    losses = trainer.run()
    return model, losses, time.perf_counter() - t0


def mean_scores(runs: list) -> dict:
    """The mean over runs of every number in ``score_model``'s nested scores (same keys in each)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: mean_scores([run[key] for run in runs]) for key in first}
    return float(np.mean(runs))


def _seed_run(task):
    """One seed's run of :func:`study_model`: ``(scores with final_loss and train_seconds, maps)``."""
    name, train, test, n_classes, setting, seed, widths, weights, device, progress = task
    model, losses, seconds = train_model(name, train, n_classes, seed=seed, weights=weights,
                                         device=device, progress=progress, **setting)
    scores, first = score_model(model, test, n_classes, widths, device)
    return {**scores, "final_loss": float(losses[-1]), "train_seconds": seconds}, first


def study_model(name, train, test, n_classes, setting: dict, seeds=STUDY_SEEDS, widths=STUDY_WIDTHS,
                weights=None, device="cpu", progress=False, workers: int = 1):
    """Train ``name`` once per seed, score each run; ``(entry, maps of the first seed)``.

    ``entry = {"fcn": mean scores, "crf": mean scores, "seeds": {"0": {"fcn", "crf",
    "final_loss", "train_seconds"}, …}, "train_seconds": total, "final_loss": mean}``: the means
    are over seeds (:func:`mean_scores`) of each run's scores on ``test``.

    ``workers > 1`` (CPU only) trains the seeds in that many single-threaded worker processes at
    once: small networks keep one core busy, not two, so the seeds of a study share the cores
    better than the threads of one training do. Each run is the same function of its seed.
    """
    tasks = [(name, train, test, n_classes, setting, seed, widths, weights, device, progress)
             for seed in seeds]
    if workers > 1 and len(tasks) > 1 and device == "cpu":
        import multiprocessing as mp

        from ..crf.batch import single_threaded_children

        with single_threaded_children(), mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            results = pool.map(_seed_run, tasks, chunksize=1)
    else:
        results = [_seed_run(task) for task in tasks]
    runs = {str(seed): run for seed, (run, _) in zip(seeds, results)}
    maps = results[0][1]
    entry = {stage: mean_scores([run[stage] for run in runs.values()]) for stage in ("fcn", "crf")}
    entry.update(seeds=runs, train_seconds=sum(run["train_seconds"] for run in runs.values()),
                 final_loss=mean_scores([run["final_loss"] for run in runs.values()]))
    return entry, maps


def run_study(out: str, data: str = "chelsea", models=STUDY_MODELS, weights: str | None = None,
              width: float | None = None, iterations: int | None = None, lr: float | None = None,
              seeds=STUDY_SEEDS, device: str = "cpu", widths=STUDY_WIDTHS, progress: bool = True,
              verbose: bool = True) -> dict:
    """Train (once per seed), predict, refine and score every model; write figures and tables.

    Returns ``{"settings": {...}, "models": {name: study_model's entry}}`` — what
    ``compare.json`` holds; the table and ``trimap.png`` show the means over ``seeds``, the
    figure ``compare.png`` the maps of the first seed.
    """
    say = print if verbose else (lambda *a, **k: None)
    data = new_value("--data", data)
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("`seeds` must name at least one seed")
    setting = dict(SETTINGS[data]["pretrained" if weights else "scratch"])
    for key, value in (("width", width), ("iterations", iterations), ("lr", lr)):
        if value is not None:
            setting[key] = value
    train, test, n_classes = study_data(data)
    os.makedirs(out, exist_ok=True)
    held_out = " (held-out rows)" if data == "chelsea" else ""
    say(f"tinyseg compare: {data}{held_out} ({len(train)} training, {len(test)} test image(s), {n_classes} classes), "
        f"{', '.join(TITLES[m] for m in models)}; width {setting['width']}, {setting['iterations']} "
        f"iterations of Adam lr={setting['lr']} ({setting['reduction']} loss), "
        f"{'VGG-16 weights' if weights else 'from scratch'}, seeds {_seed_list(seeds)}")
    result = {"settings": {"data": data, "seeds": seeds, "weights": bool(weights), "device": device,
                           "trimap_widths": list(widths), **setting}, "models": {}}
    maps = {}
    for name in models:
        entry, maps[name] = study_model(name, train, test, n_classes, setting, seeds, widths, weights,
                                        device, progress)
        result["models"][name] = entry
        say(f"  {TITLES[name]:<17} trained {len(seeds)}× in {entry['train_seconds']:.1f} s; mean mIoU "
            f"{entry['fcn']['mean_iou']:.3f} -> CRF {entry['crf']['mean_iou']:.3f}")
    image, labels, *scored = test[0]
    first_seed = {name: entry["seeds"][str(seeds[0])] for name, entry in result["models"].items()}
    study_figure(os.path.join(out, "compare.png"), image, labels, maps, first_seed, n_classes,
                 scored[0] if scored else None)
    trimap_figure(os.path.join(out, "trimap.png"), result["models"], widths)
    write_tables(out, result)
    say(format_table(result))
    if len(seeds) > 1:
        say(format_seed_table(result))
    say(f"wrote {os.path.join(out, 'compare.png')} (seed {seeds[0]}), trimap.png, compare.csv, compare.json")
    return result


def _seed_list(seeds) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1 \
        else ", ".join(map(str, seeds))


# ----------------------------------------------------------------------------- output
def table_rows(result: dict) -> list:
    """One row per model and stage: model, stage, mean_iou, pixel_accuracy, trimap_iou_w2, …."""
    widths = result["settings"]["trimap_widths"]
    rows = []
    for name, scores in result["models"].items():
        for stage in ("fcn", "crf"):
            s = scores[stage]
            row = {"model": name, "stage": stage, "mean_iou": s["mean_iou"],
                   "pixel_accuracy": s["pixel_accuracy"]}
            row.update({f"trimap_iou_w{w}": s["trimap"][str(w)]["mean_iou"] for w in widths})
            rows.append(row)
    return rows


def format_table(result: dict) -> str:
    widths = result["settings"]["trimap_widths"]
    head = f"{'model':<18}{'stage':<6}{'mIoU':>7}" + "".join(f"{'w=' + str(w):>8}" for w in widths)
    lines = [head, "-" * len(head)]
    for row in table_rows(result):
        lines.append(f"{TITLES[row['model']]:<18}{row['stage']:<6}{row['mean_iou']:7.3f}"
                     + "".join(f"{row[f'trimap_iou_w{w}']:8.3f}" for w in widths))
    return (f"trimap mean IoU within ±w px of the ground-truth boundaries (mean over seeds "
            f"{_seed_list(result['settings']['seeds'])})\n" + "\n".join(lines))


def format_seed_table(result: dict, widths=(2, 4, 8)) -> str:
    """Each seed's trimap IoU, network -> CRF, for the narrow bands: how much the means hide."""
    seeds = [str(seed) for seed in result["settings"]["seeds"]]
    head = f"{'model':<18}{'seed':>5}" + "".join(f"{'w=' + str(w):>16}" for w in widths)
    lines = [head, "-" * len(head)]
    for name, entry in result["models"].items():
        for seed in seeds:
            run = entry["seeds"][seed]
            lines.append(f"{TITLES[name]:<18}{seed:>5}" + "".join(
                f"{run['fcn']['trimap'][str(w)]['mean_iou']:9.3f}->{run['crf']['trimap'][str(w)]['mean_iou']:.3f}"
                for w in widths))
    return "each seed: trimap mean IoU, network -> CRF\n" + "\n".join(lines)


def write_tables(out: str, result: dict) -> None:
    rows = table_rows(result)
    with open(os.path.join(out, "compare.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump(result, f, indent=2)


def _colour(labels, n_classes):
    from ..data import voc_colormap
    cmap = voc_colormap()
    if n_classes == 2:                                  # the post's view: object blue, background red
        cmap = cmap.copy()
        cmap[0], cmap[1] = (200, 60, 50), (40, 70, 200)
    return cmap[np.asarray(labels, np.int64) % 256]


def study_figure(path, image, labels, maps: dict, scores: dict, n_classes: int, scored=None) -> None:
    """Top row: the image and each model's map; bottom row: the ground truth and each after the CRF.

    With ``scored`` (bool H×W) the ground truth is dimmed where it trained the network.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.2 * (n + 1), 5.6))
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("image")
    truth = _colour(labels, n_classes)
    if scored is not None:
        truth = np.where(scored[..., None], truth, truth // 3 + 170).astype(np.uint8)
    axes[1, 0].imshow(truth)
    axes[1, 0].set_title("ground truth" + ("\n(pale: the training rows)" if scored is not None else ""),
                         fontsize=9)
    for k, (name, m) in enumerate(maps.items(), start=1):
        for row, stage in ((0, "fcn"), (1, "crf")):
            s = scores[name][stage]
            axes[row, k].imshow(_colour(m[stage], n_classes))
            axes[row, k].set_title(f"{TITLES[name]}{' + CRF' if stage == 'crf' else ''}\n"
                                   f"mIoU {s['mean_iou']:.3f}, trimap(4) {s['trimap']['4']['mean_iou']:.3f}"
                                   if "4" in s["trimap"] else f"{TITLES[name]} mIoU {s['mean_iou']:.3f}",
                                   fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def trimap_figure(path, scores: dict, widths) -> None:
    """Trimap mean IoU against the band half-width, each model before (dashed) and after the CRF."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, s) in enumerate(scores.items()):
        for stage, style in (("fcn", "--"), ("crf", "-")):
            ys = [s[stage]["trimap"][str(w)]["mean_iou"] for w in widths]
            ax.plot(widths, ys, style, color=f"C{k}", marker="o",
                    label=f"{TITLES[name]}{' + CRF' if stage == 'crf' else ''}")
    ax.set_xlabel("trimap band half-width w (pixels)")
    ax.set_ylabel("mean IoU within the band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
