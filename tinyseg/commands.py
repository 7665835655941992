"""The ``train``, ``predict``, ``evaluate`` and ``import-weights`` subcommands of ``tinyseg``."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np


# ----------------------------------------------------------------------------- shared options
def _add_device(p):
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the network runs: cpu (Numba @njit) or cuda (numba.cuda); default cpu")


def _add_data(p, split_default):
    g = p.add_argument_group("data (one image, or a PASCAL VOC folder)")
    g.add_argument("--image", help="an RGB image file (JPEG/PNG)")
    g.add_argument("--annotation", help="its annotation PNG (grayscale or palette indices)")
    g.add_argument("--voc", metavar="ROOT", help="a PASCAL VOC folder with JPEGImages/, "
                   "SegmentationClass/ and ImageSets/Segmentation/")
    g.add_argument("--split", default=split_default, help="VOC split to use (default: %(default)s)")
    g.add_argument("--labels", choices=["binary", "voc"], default=None,
                   help="label mapping: 'binary' (the seed: value 1 = object, rest background; 255 "
                   "ignored) or 'voc' (21 classes, 255 ignored). Default: binary for --image, voc for --voc")


def _samples(args):
    """A sequence of (image, labels) pairs and the number of classes, from --image/--voc."""
    from .data import VOCDataset, binary_labels, load_annotation, load_image, voc_labels

    if bool(args.voc) == bool(args.image):
        raise ValueError("give either --image (with --annotation) or --voc")
    if args.voc:
        mapping = args.labels or "voc"
        dataset = VOCDataset(args.voc, args.split, labels=mapping)
        return dataset, (2 if mapping == "binary" else 21)
    if not args.annotation:
        raise ValueError("--image needs --annotation (the ground-truth PNG)")
    image, annotation = load_image(args.image), load_annotation(args.annotation)
    if annotation.shape != image.shape[:2]:
        raise ValueError(f"annotation {args.annotation} is {annotation.shape[0]}×{annotation.shape[1]} "
                         f"but image {args.image} is {image.shape[0]}×{image.shape[1]}")
    mapping = args.labels or "binary"
    labels = binary_labels(annotation) if mapping == "binary" else voc_labels(annotation, path=args.annotation)
    return [(image, labels)], (2 if mapping == "binary" else 21)


def load_model(checkpoint: str, device: str = "cpu"):
    """The FCN-32s stored in a training checkpoint."""
    from .checkpoint import load_checkpoint
    from .model import FCN32s, FCN32sConfig

    ckpt = load_checkpoint(checkpoint)
    return FCN32s(FCN32sConfig(**ckpt.config["model"]), backend=device, params=ckpt.params)


# ----------------------------------------------------------------------------- train
def register(subparsers):
    _register_train(subparsers)
    _register_predict(subparsers)
    _register_evaluate(subparsers)
    _register_import(subparsers)


def _register_train(subparsers):
    p = subparsers.add_parser("train", help="train FCN-32s (batch 1, summed cross-entropy, Adam)",
                              description="Train FCN-32s as in the seed: pixel-wise softmax "
                              "cross-entropy summed over the image, Adam, batch 1.")
    _add_data(p, "train")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz or Keras .h5); default: from scratch")
    p.add_argument("--width", type=float, default=1.0, help="VGG channel multiplier (default 1.0)")
    p.add_argument("--iterations", type=int, default=10, help="total iterations (default 10, the seed)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4, the seed)")
    p.add_argument("--reduction", choices=["sum", "mean"], default="sum",
                   help="sum the pixel losses (the seed) or average them")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout after fc6/fc7 (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="initialisation, dropout and shuffling seed")
    p.add_argument("--checkpoint", default="checkpoint.h5",
                   help="HDF5 checkpoint written atomically (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                   help="also save every K iterations (default: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint exactly")
    p.add_argument("--log-csv", help="append 'iteration,loss' rows to this CSV file")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="TensorBoard scalars and gradient histograms (needs tinyseg[tensorboard])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device(p)
    p.set_defaults(func=_train)


def _train(args) -> int:
    from .train import TrainConfig, Trainer, TrainingDiverged, build_model

    samples, n_classes = _samples(args)
    config = TrainConfig(iterations=args.iterations, lr=args.lr, reduction=args.reduction,
                         shuffle_seed=args.seed, checkpoint=args.checkpoint,
                         checkpoint_every=args.checkpoint_every, log_csv=args.log_csv,
                         tensorboard=args.tensorboard, progress=not args.no_progress)
    if args.resume:
        if not os.path.exists(args.checkpoint):
            raise FileNotFoundError(f"--resume: no checkpoint at {args.checkpoint}")
        model = load_model(args.checkpoint, args.device)
        trainer = Trainer(model, samples, config)
        trainer.resume(args.checkpoint)
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration}")
    else:
        model = build_model(n_classes, args.width, args.seed, args.weights, args.device, args.dropout)
        trainer = Trainer(model, samples, config)
    try:
        losses = trainer.run()
    except TrainingDiverged as exc:
        print(f"tinyseg train: stopped: {exc}")
        return 1
    if losses:
        print(f"iterations {trainer.iteration}: last loss {losses[-1]:.6g}; checkpoint {args.checkpoint}")
    return 0


# ----------------------------------------------------------------------------- predict
def _register_predict(subparsers):
    p = subparsers.add_parser("predict", help="segment an image with a trained checkpoint (+ CRF)",
                              description="Predict labels and probabilities for an image; optionally "
                              "refine them with the dense CRF; write label PNGs (VOC palette), the "
                              "probabilities (.npy) and the seed's figures.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    p.add_argument("--image", required=True, help="the RGB image to segment")
    p.add_argument("--out", default="prediction", help="output folder (default: %(default)s)")
    p.add_argument("--crf", action="store_true", help="also refine with the dense CRF (seed parameters)")
    _add_device(p)
    p.set_defaults(func=_predict)


def _predict(args) -> int:
    from .data import load_image, save_label_png
    from .figures import prediction_figure
    from .predict import predict, refine

    model = load_model(args.checkpoint, args.device)
    image = load_image(args.image)
    labels, probs = predict(model, image)
    os.makedirs(args.out, exist_ok=True)
    save_label_png(os.path.join(args.out, "labels.png"), labels)
    np.save(os.path.join(args.out, "probabilities.npy"), probs)
    if probs.shape[-1] == 2:
        prediction_figure(os.path.join(args.out, "prediction.png"), labels, probs)
    written = ["labels.png", "probabilities.npy"] + (["prediction.png"] if probs.shape[-1] == 2 else [])
    if args.crf:
        crf_labels, _ = refine(image, probs, device=args.device)
        save_label_png(os.path.join(args.out, "crf_labels.png"), crf_labels)
        written.append("crf_labels.png")
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0


# ----------------------------------------------------------------------------- evaluate
def _register_evaluate(subparsers):
    p = subparsers.add_parser("evaluate", help="pixel accuracy and IoU before/after the CRF",
                              description="Accumulate one confusion matrix over the whole dataset "
                              "(label 255 left out) and report pixel accuracy, per-class IoU and mean "
                              "IoU, for the network alone and after the dense CRF.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    _add_data(p, "val")
    p.add_argument("--no-crf", action="store_true", help="skip the CRF")
    p.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    _add_device(p)
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from .data import BINARY_CLASSES, VOC_CLASSES
    from .predict import evaluate

    model = load_model(args.checkpoint, args.device)
    samples, n_classes = _samples(args)
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


# ----------------------------------------------------------------------------- import-weights
def _register_import(subparsers):
    p = subparsers.add_parser("import-weights", help="import Keras VGG-16 weights into a tinyseg .npz",
                              description="Import vgg16_weights_tf_dim_ordering_tf_kernels(.h5|_notop.h5) "
                              "(or a .npz of named arrays), verify its MD5, make conv1_1 take RGB "
                              "instead of Caffe's BGR, recast fc1/fc2 as 7×7 and 1×1 convolutions, and "
                              "save tinyseg-named arrays. Nothing is downloaded.")
    p.add_argument("path", help="the Keras .h5 file (or a .npz)")
    p.add_argument("--out", default=os.path.join("weights", "vgg16.npz"),
                   help="output .npz (default: %(default)s)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check (for files other than the two published Keras files)")
    p.set_defaults(func=_import_weights)


def _import_weights(args) -> int:
    from .weights import load_params, save_params_npz

    params = load_params(args.path, verify_md5=not args.no_verify)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_params_npz(args.out, params)
    n = sum(int(np.prod(v.shape)) for v in params.values())
    print(f"imported {len(params)} arrays ({n / 1e6:.1f} M parameters) from {args.path} into {args.out}")
    return 0
