"""The ``evaluate`` subcommand: pixel accuracy and IoU over a dataset, before and after the CRF.

The classes (names, mask values) are the checkpoint's unless data options say otherwise. Under
``mpiexec -n R`` the ranks share the images and sum their confusion matrices (integers: exactly
the serial result); rank 0 prints and writes. The CRF runs on every core of the process (or of
the rank): one image per core (worker threads), a few images at a time (``tinyseg.crf.batch``).
"""
from __future__ import annotations

import json

from .crf_options import add_crf_options, crf_params_from_args
from . import argcheck
from .common import add_device, load_model
from .memcheck import check_forward
from .dataopts import Subset, add_data, check_dataset, dataset_from_args, label_map_from_args, saved_label_map


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="pixel accuracy and IoU before/after the CRF",
        description="""Accumulate one confusion matrix over the whole dataset (label 255 left out)
        and report pixel accuracy, per-class IoU (under the classes' names) and mean IoU over the
        classes present, for the network alone and after the dense CRF.""")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    add_data(p, "val")
    p.add_argument("--no-crf", action="store_true", help="skip the CRF")
    p.add_argument("--trimap", default="1,2,4,8,12,16,20", metavar="W,W,...",
                   help="band half-widths (pixels) for boundary accuracy: mean IoU and pixel accuracy "
                   "within ±W of the ground truth's label boundaries, DeepLab's trimap (default "
                   "%(default)s; 'none' to skip)")
    p.add_argument("--json", metavar="PATH", help="also write the metrics as JSON ({\"fcn\": "
                   "{\"mean_iou\": …, \"per_class_iou\": {name: …}, \"confusion_matrix\": …, "
                   "\"trimap\": {\"W\": {\"mean_iou\": …, \"pixel_accuracy\": …}}}, \"crf\": …})")
    add_device(p)
    add_crf_options(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from ..weights.checkpoint import read_checkpoint_config
    from ..training.distributed import World, configure_threads
    from ..predict import evaluate

    world = World.detect()
    threads = configure_threads(world)          # per rank under mpiexec, 0 for one process
    widths = _trimap_widths(args.trimap)
    argcheck.existing_file(args.checkpoint, "--checkpoint")
    if args.json:
        argcheck.writable_file(args.json, "--json")
    argcheck.device_available(args.device)
    crf_params = crf_params_from_args(args)
    config, _ = read_checkpoint_config(args.checkpoint)
    label_map = label_map_from_args(args, saved_label_map(config), f"checkpoint {args.checkpoint}")
    n_classes = config.get("model", {}).get("n_classes", label_map.n_classes)
    if label_map.n_classes != n_classes:
        raise ValueError(f"the data options give {label_map.n_classes} classes but the checkpoint's "
                         f"model has {n_classes}; choose --classes/--labels to match (or leave them out "
                         "to use the checkpoint's)")
    dataset = dataset_from_args(args, label_map)
    check_dataset(dataset, world, training=False)
    check_forward(config.get("model", {}), dataset)
    model = load_model(args.checkpoint, args.device)
    mine = Subset(dataset, world.share(range(len(dataset))))
    result = evaluate(model, mine, n_classes, crf=not args.no_crf, progress=world.is_root,
                      trimap=widths, device=args.device, crf_workers=threads or None, **crf_params)
    bands = result.pop("trimap", {})
    for cm in [*result.values(), *(m for meter in bands.values() for m in meter.matrices.values())]:
        cm.matrix = world.sum_int(cm.matrix)                  # integers: exactly the serial sums
    if not world.is_root:
        return 0
    names = label_map.names
    report = {}
    for stage, cm in result.items():
        report[stage] = cm.summary(names)
        print(f"{stage}: pixel accuracy {cm.pixel_accuracy():.4f}, mean IoU {cm.mean_iou():.4f} "
              f"({len(dataset)} images)")
        width = max(len(n) for n in names)
        for name, iou in zip(names, cm.per_class_iou()):
            print(f"    {name:<{width}}  IoU {iou:.4f}" if iou == iou else f"    {name:<{width}}  absent")
        if stage in bands:
            report[stage]["trimap"] = bands[stage].summary()
            print("    trimap (±w px of boundaries): " + ", ".join(
                f"w={w} mIoU {bands[stage].mean_iou(w):.4f}" for w in widths))
    if args.json:
        for stage, cm in result.items():
            report[stage]["confusion_matrix"] = cm.matrix.tolist()
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def _trimap_widths(text: str) -> tuple:
    """``"1,2,4"`` -> ``(1, 2, 4)``; ``"none"`` -> ``()``; one clear error otherwise."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--trimap must be comma-separated pixel widths like 1,2,4,8 (or none), "
                         f"got {text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"--trimap widths must be positive, got {text!r}")
    return widths
