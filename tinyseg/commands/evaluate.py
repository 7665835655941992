"""The ``evaluate`` subcommand: pixel accuracy and IoU over a dataset, before and after the CRF."""
from __future__ import annotations

import json

from . import argcheck
from .common import add_data, add_device, load_model, samples_from_args


def register(subparsers):
    p = subparsers.add_parser("evaluate", help="pixel accuracy and IoU before/after the CRF",
                              description="Accumulate one confusion matrix over the whole dataset "
                              "(label 255 left out) and report pixel accuracy, per-class IoU and mean "
                              "IoU, for the network alone and after the dense CRF.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    add_data(p, "val")
    p.add_argument("--no-crf", action="store_true", help="skip the CRF")
    p.add_argument("--trimap", default="1,2,4,8,12,16,20", metavar="W,W,...",
                   help="band half-widths (pixels) for boundary accuracy: mean IoU and pixel accuracy "
                   "within ±W of the ground truth's label boundaries, DeepLab's trimap (default "
                   "%(default)s; 'none' to skip)")
    p.add_argument("--json", metavar="PATH", help="also write the metrics as JSON (trimap under "
                   "fcn.trimap / crf.trimap: {\"W\": {\"mean_iou\": …, \"pixel_accuracy\": …}})")
    add_device(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from ..data import BINARY_CLASSES, VOC_CLASSES
    from ..predict import evaluate

    widths = _trimap_widths(args.trimap)
    argcheck.existing_file(args.checkpoint, "--checkpoint")
    if args.json:
        argcheck.writable_file(args.json, "--json")
    argcheck.device_available(args.device)
    model = load_model(args.checkpoint, args.device)
    samples, n_classes = samples_from_args(args)
    if n_classes != model.config.n_classes:
        raise ValueError(f"the data has {n_classes} classes but the checkpoint's model has "
                         f"{model.config.n_classes}; choose --labels to match")
    result = evaluate(model, samples, n_classes, crf=not args.no_crf, progress=True,
                      trimap=widths, device=args.device)
    bands = result.pop("trimap", {})
    names = BINARY_CLASSES if n_classes == 2 else VOC_CLASSES
    report = {}
    for stage, cm in result.items():
        report[stage] = cm.summary(names)
        print(f"{stage}: pixel accuracy {cm.pixel_accuracy():.4f}, mean IoU {cm.mean_iou():.4f}")
        for name, iou in zip(names, cm.per_class_iou()):
            print(f"    {name:<14} IoU {iou:.4f}")
        if stage in bands:
            report[stage]["trimap"] = bands[stage].summary()
            print("    trimap (±w px of boundaries): " + ", ".join(
                f"w={w} mIoU {bands[stage].mean_iou(w):.4f}" for w in widths))
    if args.json:
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
