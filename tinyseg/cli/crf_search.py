"""``tinyseg crf-search``: choose the CRF's parameters as DeepLab did, by grid search on val images.

DeepLab (Chen et al. 2015) fixed the spatial kernel (``w = 3``, ``sigma = 3``) and searched the
bilateral kernel's weight ``w``, spatial ``sxy`` and colour ``srgb`` by a coarse-to-fine grid search
on a subset of the validation set, keeping the set with the best mean IoU. Here:

1. **coarse**: every combination of ``--coarse-compat``, ``--coarse-sdims`` and ``--coarse-schan``;
2. **fine**: around the best coarse set, each parameter at its value and halfway to its coarse
   neighbours (3 × 3 × 3 sets; ``--no-fine`` skips it).

Each image is refined with every parameter set of a stage and its confusion matrices are summed
(integers: a parallel run equals a serial one). Images are spread over ``--jobs`` processes, each
with one Numba thread. The network's probabilities come from ``--probabilities DIR`` (one
``<id>.npy`` per image, H×W×C, as DeepLab users save them) or are computed once from
``--checkpoint`` into ``--cache DIR``. The best set is written with
:func:`tinyseg.cli.crf_options.save_crf_params`, ready for ``--crf-params``.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import tempfile

import numpy as np

from .crf_options import SEED_PARAMS, save_crf_params

__all__ = ["register", "run", "fine_values", "evaluate_image", "grid_search"]

COARSE = dict(compat=(3.0, 4.0, 5.0, 6.0), sdims=(30.0, 50.0, 70.0, 90.0, 110.0),
              schan=(3.0, 5.0, 8.0, 13.0, 20.0))


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "crf-search", help="grid-search the CRF's bilateral parameters on validation images",
        description="DeepLab's protocol: the spatial kernel fixed (w 3, sigma 3), a coarse grid "
        "over the bilateral weight, sxy and srgb, then a fine grid around the best, on the first "
        "--images images of a VOC split, maximising mean IoU. Writes the best parameters as JSON "
        "for --crf-params of predict, evaluate and crf.")
    p.add_argument("--voc", metavar="ROOT", required=True, help="a PASCAL VOC folder "
                   "(JPEGImages/, SegmentationClass/, ImageSets/Segmentation/<split>.txt)")
    p.add_argument("--split", default="val", help="id list to search on (default: %(default)s)")
    p.add_argument("--labels", choices=["voc", "binary"], default="voc",
                   help="label mapping of the annotations (default: %(default)s)")
    p.add_argument("--images", type=int, default=100, metavar="N",
                   help="search on the first N images of the split (DeepLab: 100; default %(default)s)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--probabilities", metavar="DIR",
                     help="folder of the network's probabilities, one <id>.npy (H×W×C) per image")
    src.add_argument("--checkpoint", help="a checkpoint: its probabilities are computed once "
                     "(into --cache)")
    p.add_argument("--cache", metavar="DIR", help="where --checkpoint's probabilities go "
                   "(default: a temporary folder, removed at the end)")
    p.add_argument("--out", required=True, metavar="FILE", help="JSON file for the best parameters")
    p.add_argument("--coarse-compat", type=float, nargs="+", default=list(COARSE["compat"]),
                   metavar="W", help="bilateral weights of the coarse stage")
    p.add_argument("--coarse-sdims", type=float, nargs="+", default=list(COARSE["sdims"]),
                   metavar="S", help="bilateral sxy (pixels) of the coarse stage")
    p.add_argument("--coarse-schan", type=float, nargs="+", default=list(COARSE["schan"]),
                   metavar="S", help="bilateral srgb (0-255 units) of the coarse stage")
    p.add_argument("--no-fine", action="store_true", help="skip the fine stage")
    p.add_argument("--gaussian-sdims", type=float, default=3.0, metavar="S",
                   help="spatial kernel's sigma, fixed (DeepLab: 3)")
    p.add_argument("--gaussian-compat", type=float, default=3.0, metavar="W",
                   help="spatial kernel's weight, fixed (DeepLab: 3)")
    p.add_argument("--crf-iterations", type=int, default=10, metavar="N",
                   help="mean-field iterations (DeepLab: 10)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where --checkpoint's network runs (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def fine_values(best: float, coarse) -> list[float]:
    """``best`` and the points halfway to its neighbours in the sorted ``coarse`` values."""
    values = sorted(set(float(v) for v in coarse))
    i = values.index(float(best))
    out = [float(best)]
    if i > 0:
        out.insert(0, (values[i - 1] + best) / 2)
    if i + 1 < len(values):
        out.append((values[i + 1] + best) / 2)
    return out


def _param_sets(compats, sdims, schans, fixed: dict) -> list[dict]:
    return [dict(fixed, compat=float(w), sdims=(float(s), float(s)), schan=(float(c),) * 3)
            for w, s, c in itertools.product(compats, sdims, schans)]


def evaluate_image(task) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker: (index, confusion of the plain argmax (C, C), confusions (P, C, C)) of one image.

    task = (index, image_path, labels_path_or_array, probabilities_path, n_classes, mapping,
    param_sets).
    """
    from ..data import load_annotation, load_image, voc_labels, binary_labels
    from ..metrics import ConfusionMatrix
    from .crf import load_probabilities
    from ..crf.refine import dense_crf

    index, image_path, annotation_path, prob_path, n_classes, mapping, param_sets = task
    image = load_image(image_path)
    annotation = load_annotation(annotation_path)
    labels = (voc_labels(annotation, path=annotation_path) if mapping == "voc"
              else binary_labels(annotation))
    probs = load_probabilities(prob_path, image.shape[:2])
    if probs.shape[2] != n_classes:
        raise ValueError(f"probabilities {prob_path!r} have {probs.shape[2]} classes, the "
                         f"annotations {n_classes}")
    plain = ConfusionMatrix(n_classes)
    plain.update(probs.argmax(axis=2), labels)
    out = np.zeros((len(param_sets), n_classes, n_classes), dtype=np.int64)
    for k, params in enumerate(param_sets):
        cm = ConfusionMatrix(n_classes)
        cm.update(dense_crf(image, probs, **params)[0], labels)
        out[k] = cm.matrix
    return index, plain.matrix, out


def _init_worker():
    import numba

    numba.set_num_threads(1)                  # the processes are the parallelism


def grid_search(tasks: list, param_sets: list[dict], jobs: int, desc: str, quiet: bool):
    """Summed confusions (P, C, C) and the plain-argmax confusion (C, C) over the tasks."""
    from tqdm.auto import tqdm

    full = [t + (param_sets,) for t in tasks]
    n_classes = tasks[0][4]
    total = np.zeros((len(param_sets), n_classes, n_classes), dtype=np.int64)
    plain = np.zeros((n_classes, n_classes), dtype=np.int64)
    bar = tqdm(total=len(full), desc=desc, unit="image", file=sys.stderr, disable=quiet)
    if jobs <= 1:
        results = map(evaluate_image, full)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(jobs, initializer=_init_worker)
        results = pool.imap_unordered(evaluate_image, full)
    try:
        for _, p, cms in results:
            plain += p
            total += cms
            bar.update(1)
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return total, plain


def _mean_iou(matrix: np.ndarray) -> float:
    from ..metrics import per_class_iou

    iou = per_class_iou(matrix)
    return float(np.nanmean(iou)) if np.any(np.isfinite(iou)) else float("nan")


def _probabilities_from_checkpoint(args, dataset, ids, folder) -> None:
    from tqdm.auto import tqdm

    from .common import load_model
    from ..predict import predict

    model = load_model(args.checkpoint, args.device)
    for i in tqdm(ids, desc="network", unit="image", file=sys.stderr, disable=args.quiet):
        path = os.path.join(folder, f"{dataset.ids[i]}.npy")
        if not os.path.isfile(path):
            _, probs = predict(model, dataset[i][0])
            np.save(path, probs.astype(np.float32))


def run(args) -> int:
    from ..data import VOCDataset

    if args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.crf_iterations < 0:
        raise ValueError(f"--crf-iterations must be >= 0, got {args.crf_iterations}")
    for name in ("coarse_compat", "coarse_sdims", "coarse_schan"):
        values = getattr(args, name)
        if min(values) < 0 or (name != "coarse_compat" and min(values) <= 0):
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {values}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"--out {args.out!r}: folder {out_dir!r} does not exist")
    dataset = VOCDataset(args.voc, args.split, labels=args.labels)
    ids = list(range(min(args.images, len(dataset))))
    n_classes = 21 if args.labels == "voc" else 2
    tmp = None
    if args.probabilities:
        folder = args.probabilities
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"--probabilities folder not found: {folder!r}")
        missing = [dataset.ids[i] for i in ids
                   if not os.path.isfile(os.path.join(folder, f"{dataset.ids[i]}.npy"))]
        if missing:
            raise FileNotFoundError(f"--probabilities {folder!r} lacks {len(missing)} of the "
                                    f"images, e.g. {missing[0]}.npy")
    else:
        folder = args.cache or (tmp := tempfile.TemporaryDirectory(prefix="tinyseg-crf-search-")).name
        os.makedirs(folder, exist_ok=True)
    try:
        if not args.probabilities:
            _probabilities_from_checkpoint(args, dataset, ids, folder)
        tasks = [(i, dataset.image_path(dataset.ids[i]), dataset.annotation_path(dataset.ids[i]),
                  os.path.join(folder, f"{dataset.ids[i]}.npy"), n_classes, args.labels)
                 for i in ids]
        fixed = dict(gaussian_sdims=(args.gaussian_sdims,) * 2,
                     gaussian_compat=args.gaussian_compat, iterations=args.crf_iterations)
        stages = [("coarse", _param_sets(args.coarse_compat, args.coarse_sdims, args.coarse_schan,
                                         fixed))]
        log, best, plain = [], None, None
        for stage, sets in stages:
            total, plain = grid_search(tasks, sets, args.jobs, stage, args.quiet)
            results = [dict(compat=p["compat"], sdims=p["sdims"][0], schan=p["schan"][0],
                            mean_iou=_mean_iou(cm)) for p, cm in zip(sets, total)]
            log.append(dict(stage=stage, results=results))
            top = max(results, key=lambda r: r["mean_iou"])
            if best is None or top["mean_iou"] > best["mean_iou"]:
                best = top
            if stage == "coarse" and not args.no_fine:
                done = {(r["compat"], r["sdims"], r["schan"]) for r in results}
                fine = [p for p in _param_sets(fine_values(best["compat"], args.coarse_compat),
                                               fine_values(best["sdims"], args.coarse_sdims),
                                               fine_values(best["schan"], args.coarse_schan), fixed)
                        if (p["compat"], p["sdims"][0], p["schan"][0]) not in done]
                if fine:
                    stages.append(("fine", fine))
    except KeyboardInterrupt:
        print("tinyseg crf-search: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        if tmp is not None:
            tmp.cleanup()
    params = dict(SEED_PARAMS, **fixed, compat=best["compat"], sdims=(best["sdims"],) * 2,
                  schan=(best["schan"],) * 3)
    save_crf_params(args.out, params, search=dict(
        mean_iou=best["mean_iou"], mean_iou_without_crf=_mean_iou(plain), images=len(ids),
        voc=os.path.abspath(args.voc), split=args.split, stages=log))
    print(f"crf-search: {len(ids)} images, {sum(len(s['results']) for s in log)} parameter sets; "
          f"mean IoU {_mean_iou(plain):.4f} without the CRF, {best['mean_iou']:.4f} with compat "
          f"{best['compat']:g}, sdims {best['sdims']:g}, schan {best['schan']:g}; wrote {args.out}")
    return 0
