"""``tinyseg demo``: the post's experiment on scikit-image's cat, end to end.

Train FCN-32s on one image (chelsea, with the annotation tinyseg ships), predict on that same
image, refine with the dense CRF, and write the post's figures, the loss curve and
``metrics.json``. With ``--weights`` (imported VGG-16) it runs the post's setting exactly: full
width, 10 iterations, Adam 1e-4. Without weights it trains a narrower VGG from scratch with a
setting chosen to finish in a few minutes on 2 cores and still tell the post's story: a coarse
FCN map that the CRF sharpens.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import argcheck
from .._moved import cli_value
from ..training.interrupt import signal_name

# From scratch: VGG-16 at 1/4 width (1/16 of the compute), the post's Adam 1e-4, 30 iterations
# (the post's 10 start from ImageNet weights). Longer or faster training fits the cat so well
# that little is left for the CRF: 60 iterations at 1e-3 gave a cat IoU of 0.996 before the CRF.
SCRATCH = dict(width=0.25, iterations=30, lr=1e-4)
# With pretrained weights: the post exactly.
PRETRAINED = dict(width=1.0, iterations=10, lr=1e-4)
CLASS_NAMES = ("background", "cat")      # chelsea's annotation: 1 = the cat


def run_demo(out: str, weights: str | None = None, width: float | None = None,
             iterations: int | None = None, lr: float | None = None, seed: int = 0,
             device: str = "cpu", progress: bool = True, verbose: bool = True,
             verify_md5: bool = True) -> dict:
    """Run the demo, write figures and ``metrics.json`` into ``out``; return the metrics."""
    from ..data import binary_labels, chelsea, save_label_png
    from ..figures import crf_figure, loss_figure, overlay_figure, panel_figure, prediction_figure
    from ..metrics import ConfusionMatrix
    from ..ops import conv_algorithm
    from ..predict import predict, refine
    from ..models import build_model
    from ..training.trainer import TrainConfig, Trainer
    from .warmup import compile_in_background, first_run_notice

    defaults = PRETRAINED if weights else SCRATCH
    width = defaults["width"] if width is None else width
    iterations = defaults["iterations"] if iterations is None else iterations
    lr = defaults["lr"] if lr is None else lr
    os.makedirs(out, exist_ok=True)
    say = print if verbose else (lambda *a, **k: None)

    t_start = time.perf_counter()
    # On a cold Numba cache a helper process compiles the CRF's kernels while this one compiles
    # and runs training (tinyseg.cli.warmup; it never compiles what this process compiles). From
    # scratch (width 0.25, 30 iterations) every convolution runs by im2col: Winograd would save
    # about 1 s of the warm run's 9 but cost 13 CPU-seconds of compiling on the first run.
    with compile_in_background(["crf"], device) as helper, \
            conv_algorithm("auto" if weights else "im2col"):
        if verbose:
            first_run_notice(say=say)
        image, annotation = chelsea()
        labels = binary_labels(annotation)              # 1 = cat, 0 = background, 255 = ignored
        model = build_model("fcn32s", n_classes=2, width=width, seed=seed, weights=weights, backend=device,
                            verify_md5=verify_md5)
        say(f"tinyseg demo: chelsea {image.shape[0]}×{image.shape[1]}, FCN-32s width {width} "
            f"({model.n_params() / 1e6:.1f} M params, "
            f"{'pretrained VGG-16' if weights else 'from scratch'}), "
            f"{iterations} iterations of Adam lr={lr}, device {device}")

        trainer = Trainer(model, [(image, labels)],
                          TrainConfig(iterations=iterations, lr=lr, progress=progress,
                                      log_csv=os.path.join(out, "loss.csv")))
        t0 = time.perf_counter()
        losses = trainer.run()
        train_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        fcn_labels, probs = predict(model, image)
        predict_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        helper.wait("crf")
        crf_labels, _ = refine(image, probs, device=device)
        crf_s = time.perf_counter() - t0
        final_loss = _test_loss(model, image, labels)

    scores = {}
    for name, pred in (("fcn", fcn_labels), ("crf", crf_labels)):
        cm = ConfusionMatrix(2)
        cm.update(pred, labels)
        scores[name] = cm
    iou_fcn = float(scores["fcn"].per_class_iou()[1])
    iou_crf = float(scores["crf"].per_class_iou()[1])

    names = CLASS_NAMES
    prediction_figure(os.path.join(out, "fcn_prediction.png"), fcn_labels, probs, class_names=names)
    crf_figure(os.path.join(out, "crf_vs_ground_truth.png"), crf_labels, labels, class_names=names)
    panel_figure(os.path.join(out, "panel.png"), image, fcn_labels, probs, crf_labels, labels,
                 iou_fcn, iou_crf, class_names=names)
    loss_figure(os.path.join(out, "loss.png"), losses)
    for name, pred, title in (("fcn_labels", fcn_labels, "FCN-32s"), ("crf_labels", crf_labels, "dense CRF")):
        save_label_png(os.path.join(out, f"{name}.png"), pred)
        overlay_figure(os.path.join(out, f"{name}_overlay.png"), image, pred, names, title)
    seconds = time.perf_counter() - t_start

    metrics = {
        "iou_fcn": iou_fcn, "iou_crf": iou_crf,
        "mean_iou_fcn": float(scores["fcn"].mean_iou()), "mean_iou_crf": float(scores["crf"].mean_iou()),
        "pixel_accuracy_fcn": float(scores["fcn"].pixel_accuracy()),
        "pixel_accuracy_crf": float(scores["crf"].pixel_accuracy()),
        "losses": [float(l) for l in losses], "final_loss_test_mode": final_loss,
        "seconds": seconds, "train_seconds": train_s, "predict_seconds": predict_s, "crf_seconds": crf_s,
        "width": width, "iterations": iterations, "lr": lr, "pretrained": bool(weights), "device": device,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)

    say(f"loss: first {losses[0]:.1f}, min {min(losses):.1f}, last {losses[-1]:.1f} "
        f"(test mode, no dropout: {final_loss:.1f})")
    say(f"cat IoU: FCN-32s {iou_fcn:.3f} → dense CRF {iou_crf:.3f}; mean IoU "
        f"{metrics['mean_iou_fcn']:.3f} → {metrics['mean_iou_crf']:.3f}; pixel accuracy "
        f"{metrics['pixel_accuracy_fcn']:.3f} → {metrics['pixel_accuracy_crf']:.3f}")
    say(f"time: {seconds:.1f} s (train {train_s:.1f} s, predict {predict_s:.2f} s, CRF {crf_s:.2f} s)")
    say(f"wrote {os.path.join(out, 'panel.png')}, fcn_prediction.png, crf_vs_ground_truth.png, loss.png, "
        f"fcn_labels.png, crf_labels.png (+ _overlay.png), loss.csv, metrics.json")
    return metrics


def _test_loss(model, image, labels):
    """The summed loss in test mode (dropout off), as the post's "Final Loss"."""
    from .. import ops
    from ..data import preprocess

    logits = model.forward(preprocess(image)[None], train=False)
    loss, _ = ops.softmax_cross_entropy(logits, labels[None])
    model.clear()
    return float(loss)


def register(subparsers) -> argparse.ArgumentParser:
    from ..studies.cures import STUDY_DATA, STUDY_SEEDS

    p = subparsers.add_parser(
        "demo", help="the post's experiment on scikit-image's cat: train, predict, CRF, figures",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo", help="folder for the figures, loss.csv and metrics.json "
                   "(default: %(default)s)")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz from `tinyseg import-weights`, or "
                   "the Keras .h5); runs the post's exact setting")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check of a Keras .h5 --weights file (for a file you trust)")
    p.add_argument("--width", type=argcheck.positive_float, help=f"VGG channel multiplier (default {SCRATCH['width']} "
                   f"from scratch, {PRETRAINED['width']} with --weights)")
    p.add_argument("--iterations", type=argcheck.positive_int, help=f"training iterations (default {SCRATCH['iterations']} "
                   f"from scratch, {PRETRAINED['iterations']} with --weights)")
    p.add_argument("--lr", type=argcheck.positive_float, help=f"Adam learning rate (default {SCRATCH['lr']} from scratch, "
                   f"{PRETRAINED['lr']} with --weights)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and dropout seed (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="backend (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--compare", action="store_true", help="the comparison study instead (tinyseg.studies.cures): "
                   "FCN-32s, FCN-8s and DeepLab-LargeFOV, each before/after the CRF, figure and trimap table")
    p.add_argument("--data", type=cli_value("--data"), choices=STUDY_DATA,
                   help="with --compare: the cat scored on held-out rows (chelsea, the default), on its "
                   "training labels as the post does (chelsea-post), or synthetic shapes with held-out images: "
                   "shapes (colour edges are label edges) or camouflage (they are not)")
    p.add_argument("--seeds", type=argcheck.positive_int,
                   help="with --compare: train each model from this many seeds (--seed, --seed + 1, …) and "
                   f"report the mean scores (default {len(STUDY_SEEDS)})")
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..training.interrupt import TrainingInterrupted

    # Everything that can fail early fails before the output folder is made.
    for option in ("seeds", "data"):
        if getattr(args, option) is not None and not args.compare:
            raise ValueError(f"--{option} applies only with --compare (the demo trains one network)")
    argcheck.output_folder(args.out, "--out")
    if args.weights:
        argcheck.existing_file(args.weights, "--weights")
    argcheck.device_available(args.device)
    created = not os.path.exists(args.out)
    try:
        if args.compare:
            from ..studies.cures import STUDY_SEEDS, run_study
            seeds = range(args.seed, args.seed + (args.seeds or len(STUDY_SEEDS)))
            run_study(args.out, data=args.data or "chelsea", weights=args.weights, width=args.width,
                      iterations=args.iterations, lr=args.lr, seeds=seeds, device=args.device,
                      progress=not args.no_progress)
            return 0
        run_demo(args.out, weights=args.weights, width=args.width, iterations=args.iterations,
                 lr=args.lr, seed=args.seed, device=args.device, progress=not args.no_progress,
                 verify_md5=not args.no_verify)
    except TrainingInterrupted as exc:
        print(f"tinyseg demo: stopped by {signal_name(exc.signum)} at training iteration "
              f"{exc.iteration}", file=sys.stderr)
        return exc.exit_code
    finally:
        if created and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)              # a failed run leaves no empty folder behind
    return 0
