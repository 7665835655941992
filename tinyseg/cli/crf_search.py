"""``tinyseg crf-search``: choose the CRF's parameters as DeepLab did, by grid search on val images.

DeepLab (Chen et al. 2015) fixed the spatial kernel (``w = 3``, ``sigma = 3``) and searched the
bilateral kernel's weight ``w``, spatial ``sxy`` and colour ``srgb`` by a coarse-to-fine grid search
on a subset of the validation set, keeping the set with the best mean IoU. Here:

1. **coarse**: every combination of ``--coarse-compat``, ``--coarse-sdims`` and ``--coarse-schan``;
2. **widen**: where the best value is the smallest or largest of its grid, one more value past
   that edge, up to ``--widen-rounds`` times (:mod:`tinyseg.crf.grid`); a best value still on an
   edge at the end is reported with the options that search further;
3. **fine**: around the best set, each parameter at its value and halfway to its neighbours in
   the grid (3 × 3 × 3 sets; ``--no-fine`` skips it).

The images are those of ``train``'s and ``evaluate``'s dataset options (``--voc``, ``--data``,
``--image``, ``--split``), their classes and mask values chosen by the same rule (``--classes``,
``--mask-values``, ``--labels``, the dataset's ``classes.txt``, ``--checkpoint``'s classes).

Each image is refined with every parameter set of a stage and its confusion matrices are summed
(integers: a parallel run equals a serial one). Images are spread over ``--jobs`` worker
threads, each on one core (the CRF's kernels release the GIL), and under ``mpiexec`` over the
ranks too (rank r takes every R-th image). The network's probabilities come from
``--probabilities DIR`` (one ``<id>.npy`` per image, H×W×C, as DeepLab users save them) or are
computed once from ``--checkpoint`` into ``--cache DIR``. The best set is written with
:func:`tinyseg.cli.crf_options.save_crf_params`, ready for ``--crf-params``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from ..crf.grid import edges, fine_values, further_options, scores_of, staged_search
from .crf_options import save_crf_params

__all__ = ["register", "run", "fine_values", "evaluate_image", "grid_search"]

COARSE = dict(compat=(3.0, 4.0, 5.0, 6.0), sdims=(30.0, 50.0, 70.0, 90.0, 110.0),
              schan=(3.0, 5.0, 8.0, 13.0, 20.0))


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "crf-search", help="grid-search the CRF's bilateral parameters on validation images",
        description="DeepLab's protocol: the spatial kernel fixed (w 3, sigma 3), a coarse grid "
        "over the bilateral weight, sxy and srgb, then a fine grid around the best, on the first "
        "--images images of a dataset split, maximising mean IoU; the grid is widened where the "
        "best value lies on its edge. Writes the best parameters as JSON for --crf-params of "
        "predict, evaluate and crf.")
    from .dataopts import add_data

    add_data(p, "val")
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
    p.add_argument("--widen-rounds", type=int, default=2, metavar="K",
                   help="while the best value of a parameter is the smallest or largest of its "
                   "grid, try one more value past that edge, at most K times (0: never; a best "
                   "value left on an edge is reported with the options that search further; "
                   "default %(default)s)")
    p.add_argument("--no-fine", action="store_true", help="skip the fine stage")
    p.add_argument("--gaussian-sdims", type=float, default=3.0, metavar="S",
                   help="spatial kernel's sigma, fixed (DeepLab: 3)")
    p.add_argument("--gaussian-compat", type=float, default=3.0, metavar="W",
                   help="spatial kernel's weight, fixed (DeepLab: 3)")
    p.add_argument("--crf-iterations", type=int, default=10, metavar="N",
                   help="mean-field iterations (DeepLab: 10)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker threads, one image each on one core (default: the number of CPUs)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where --checkpoint's network runs (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _param_sets(points, fixed: dict) -> list[dict]:
    """:func:`dense_crf` keywords of grid points ``{"compat", "sdims", "schan"}``."""
    return [dict(fixed, compat=p["compat"], sdims=(p["sdims"],) * 2, schan=(p["schan"],) * 3)
            for p in points]


def evaluate_image(task) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker: (index, confusion of the plain argmax (C, C), confusions (P, C, C)) of one image.

    task = (index, image_path, mask_path, probabilities_path, n_classes, label_map, param_sets),
    ``label_map`` the :class:`~tinyseg.data.LabelMap` that turns the mask into labels.
    """
    from ..data import load_annotation, load_image
    from ..metrics import ConfusionMatrix
    from .crf import load_probabilities
    from ..crf.refine import dense_crf

    index, image_path, annotation_path, prob_path, n_classes, label_map, param_sets = task
    image = load_image(image_path)
    labels = label_map.to_labels(load_annotation(annotation_path), path=annotation_path)
    probs = load_probabilities(prob_path, image.shape[:2])
    if probs.shape[2] != n_classes:
        raise ValueError(f"probabilities {prob_path!r} have {probs.shape[2]} classes, the "
                         f"dataset {n_classes} ({', '.join(label_map.names)})")
    plain = ConfusionMatrix(n_classes)
    plain.update(probs.argmax(axis=2), labels)
    out = np.zeros((len(param_sets), n_classes, n_classes), dtype=np.int64)
    for k, params in enumerate(param_sets):
        cm = ConfusionMatrix(n_classes)
        cm.update(dense_crf(image, probs, **params)[0], labels)
        out[k] = cm.matrix
    return index, plain.matrix, out


def grid_search(tasks: list, param_sets: list[dict], jobs: int, desc: str, quiet: bool):
    """Summed confusions (P, C, C) and the plain-argmax confusion (C, C) over the tasks."""
    from tqdm.auto import tqdm

    from concurrent.futures import ThreadPoolExecutor

    from ..crf.batch import mpi_world_size, one_core_per_thread

    full = [t + (param_sets,) for t in tasks]
    n_classes = tasks[0][4]
    comm = None
    if mpi_world_size() > 1:                  # under mpiexec: rank r takes every R-th image
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        full = full[comm.Get_rank()::comm.Get_size()]
        quiet = quiet or comm.Get_rank() != 0
    total = np.zeros((len(param_sets), n_classes, n_classes), dtype=np.int64)
    plain = np.zeros((n_classes, n_classes), dtype=np.int64)
    bar = tqdm(total=len(full), desc=desc, unit="image", file=sys.stderr, disable=quiet)
    if jobs <= 1:
        results = map(evaluate_image, full)
        pool = None
    else:                                     # threads, one core each: the kernels release the GIL
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="tinyseg-crf-search",
                                  initializer=one_core_per_thread)
        results = pool.map(evaluate_image, full)
    try:
        for _, p, cms in results:
            plain += p
            total += cms
            bar.update(1)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True)
    if comm is not None:                      # integers: the sums equal a single process's
        from mpi4py import MPI
        for array in (total, plain):
            comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
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


def _dataset(args):
    """The dataset and classes of the data options (the checkpoint's classes bind the count)."""
    from .dataopts import dataset_from_args, label_map_from_args, saved_label_map

    saved = None
    if args.checkpoint:
        from ..weights.checkpoint import read_checkpoint_config

        if not os.path.isfile(args.checkpoint):
            raise FileNotFoundError(f"--checkpoint: file not found: {args.checkpoint}")
        saved = saved_label_map(read_checkpoint_config(args.checkpoint)[0])
    label_map = label_map_from_args(args, saved, f"checkpoint {args.checkpoint}")
    return dataset_from_args(args, label_map), label_map


def run(args) -> int:
    if args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.widen_rounds < 0:
        raise ValueError(f"--widen-rounds must be >= 0, got {args.widen_rounds}")
    if args.crf_iterations < 0:
        raise ValueError(f"--crf-iterations must be >= 0, got {args.crf_iterations}")
    for name in ("coarse_compat", "coarse_sdims", "coarse_schan"):
        values = getattr(args, name)
        if min(values) < 0 or (name != "coarse_compat" and min(values) <= 0):
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {values}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"--out {args.out!r}: folder {out_dir!r} does not exist")
    dataset, label_map = _dataset(args)
    ids = list(range(min(args.images, len(dataset))))
    n_classes = label_map.n_classes
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
    plain = None
    try:
        if not args.probabilities:
            _probabilities_from_checkpoint(args, dataset, ids, folder)
        tasks = [(i, dataset.image_path(i), dataset.mask_path(i),
                  os.path.join(folder, f"{dataset.ids[i]}.npy"), n_classes, label_map) for i in ids]
        fixed = dict(gaussian_sdims=(args.gaussian_sdims,) * 2,
                     gaussian_compat=args.gaussian_compat, iterations=args.crf_iterations)

        def score(stage, points):
            nonlocal plain
            total, plain = grid_search(tasks, _param_sets(points, fixed), args.jobs, stage, args.quiet)
            return [_mean_iou(cm) for cm in total]

        grids = dict(compat=args.coarse_compat, sdims=args.coarse_sdims, schan=args.coarse_schan)
        best, log, grids = staged_search(score, grids, widen_rounds=args.widen_rounds,
                                         fine=not args.no_fine)
    except KeyboardInterrupt:
        print("tinyseg crf-search: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        if tmp is not None:
            tmp.cleanup()
    from ..crf.batch import mpi_world_size
    from ..crf.refine import POST_CRF

    if mpi_world_size() > 1:
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_rank() != 0:    # rank 0 writes
            return 0
    params = dict(POST_CRF, **fixed, compat=best["compat"], sdims=(best["sdims"],) * 2,
                  schan=(best["schan"],) * 3)
    scores = scores_of(log)
    on_edge = edges(best, grids, scores)
    save_crf_params(args.out, params, search=dict(
        mean_iou=best["mean_iou"], mean_iou_without_crf=_mean_iou(plain), images=len(ids),
        dataset=dataset.name, split=args.split or args.split_default, classes=list(label_map.names),
        grids={k: list(v) for k, v in grids.items()}, on_edge=on_edge, stages=log))
    print(f"crf-search: {len(ids)} images, {sum(len(s['results']) for s in log)} parameter sets; "
          f"mean IoU {_mean_iou(plain):.4f} without the CRF, {best['mean_iou']:.4f} with compat "
          f"{best['compat']:g}, sdims {best['sdims']:g}, schan {best['schan']:g}; wrote {args.out}")
    for name, side in on_edge.items():
        print(f"crf-search: note: the best {name} {best[name]:g} is the {side} value searched; the "
              f"optimum may lie beyond it")
    if on_edge:
        print(f"crf-search: to search further: {further_options(best, grids, scores)} (or a larger "
              f"--widen-rounds)")
    return 0
