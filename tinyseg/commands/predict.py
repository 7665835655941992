"""The ``predict`` subcommand: labels, probabilities and figures for an image."""
from __future__ import annotations

import os

import numpy as np

from . import argcheck
from .common import add_device, load_model


def register(subparsers):
    p = subparsers.add_parser("predict", help="segment an image with a trained checkpoint (+ CRF)",
                              description="Predict labels and probabilities for an image; optionally "
                              "refine them with the dense CRF; write label PNGs (VOC palette; pixel "
                              "values are the classes), the same labels as colour overlays on the "
                              "image with a legend (*_overlay.png), the probabilities (.npy) and "
                              "the seed's figures.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    p.add_argument("--image", required=True, help="the RGB image to segment")
    p.add_argument("--out", default="prediction", help="output folder (default: %(default)s)")
    p.add_argument("--crf", action="store_true", help="also refine with the dense CRF (seed parameters)")
    add_device(p)
    p.set_defaults(func=_predict)


def _predict(args) -> int:
    from ..data import BINARY_CLASSES, VOC_CLASSES, load_image, save_label_png
    from ..figures import overlay_figure, prediction_figure
    from ..predict import predict, refine
    from ..warmup import compile_in_background

    argcheck.existing_file(args.checkpoint, "--checkpoint")
    argcheck.existing_file(args.image, "--image")
    argcheck.output_folder(args.out, "--out")
    argcheck.device_available(args.device)
    # On a cold Numba cache a helper compiles the CRF's kernels while this process runs the network.
    with compile_in_background(["crf"] if args.crf else [], args.device) as helper:
        model = load_model(args.checkpoint, args.device)
        image = load_image(args.image)
        labels, probs = predict(model, image)
        helper.wait("crf")
    names = {2: BINARY_CLASSES, len(VOC_CLASSES): VOC_CLASSES}.get(probs.shape[-1])
    os.makedirs(args.out, exist_ok=True)
    save_label_png(os.path.join(args.out, "labels.png"), labels)
    overlay_figure(os.path.join(args.out, "labels_overlay.png"), image, labels, names, "network")
    np.save(os.path.join(args.out, "probabilities.npy"), probs)
    written = ["labels.png", "labels_overlay.png", "probabilities.npy"]
    if probs.shape[-1] == 2:
        prediction_figure(os.path.join(args.out, "prediction.png"), labels, probs, class_names=names)
        written.append("prediction.png")
    if args.crf:
        crf_labels, _ = refine(image, probs, device=args.device)
        save_label_png(os.path.join(args.out, "crf_labels.png"), crf_labels)
        overlay_figure(os.path.join(args.out, "crf_labels_overlay.png"), image, crf_labels, names, "dense CRF")
        written += ["crf_labels.png", "crf_labels_overlay.png"]
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0
