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
    p.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    add_device(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from ..data import BINARY_CLASSES, VOC_CLASSES
    from ..predict import evaluate

    argcheck.existing_file(args.checkpoint, "--checkpoint")
    if args.json:
        argcheck.writable_file(args.json, "--json")
    argcheck.device_available(args.device)
    model = load_model(args.checkpoint, args.device)
    samples, n_classes = samples_from_args(args)
    if n_classes != model.config.n_classes:
        raise ValueError(f"the data has {n_classes} classes but the checkpoint's model has "
                         f"{model.config.n_classes}; choose --labels to match")
    result = evaluate(model, samples, n_classes, crf=not args.no_crf, progress=True, device=args.device)
    names = BINARY_CLASSES if n_classes == 2 else VOC_CLASSES
    report = {}
    for stage, cm in result.items():
        report[stage] = cm.summary(names)
        print(f"{stage}: pixel accuracy {cm.pixel_accuracy():.4f}, mean IoU {cm.mean_iou():.4f}")
        for name, iou in zip(names, cm.per_class_iou()):
            print(f"    {name:<14} IoU {iou:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
