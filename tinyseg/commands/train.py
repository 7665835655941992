"""The ``train`` subcommand: train a model on one image or a dataset, with checkpoints.

``--model`` picks the network (FCN-32s by default); ``--init-from`` starts a staged FCN-16s/8s
from a coarser FCN's checkpoint (the FCN paper). A checkpoint is never replaced unasked: a new run refuses an existing ``--checkpoint`` unless
``--overwrite``; ``--resume`` continues it, taking the model and training options from it (an
option given explicitly must agree with it). Ctrl-C or SIGTERM finishes the current iteration,
writes the checkpoint and exits with 130/143.
"""
from __future__ import annotations

import os
import sys

from ..models import MODELS
from . import argcheck
from .common import add_data, add_device, load_model, samples_from_args

# Options that define the model: (option dest, key in the checkpoint's "model" config, default of a
# new run). With --resume they come from the checkpoint; one given explicitly must equal it.
MODEL_OPTIONS = [("width", "width", 1.0), ("dropout", "dropout", 0.5), ("seed", "seed", 0)]
# Training options a resumed run takes from the checkpoint unless given: (dest, section, key, default).
# Giving one with --resume changes it from there on (e.g. a lower --lr to fine-tune).
TRAINING_OPTIONS = [("lr", "adam", "lr", 1e-4), ("reduction", "train", "reduction", "sum")]


def register(subparsers):
    p = subparsers.add_parser("train", help="train a model: FCN-32s/16s/8s or DeepLab-LargeFOV (batch 1, "
                              "summed cross-entropy, Adam)",
                              description="Train a segmentation model as in the seed: pixel-wise softmax "
                              "cross-entropy summed over the image, Adam, batch 1. Ctrl-C (or "
                              "SIGTERM) finishes the current iteration, writes the checkpoint and "
                              "exits (code 130/143); a second Ctrl-C aborts at once.")
    add_data(p, "train")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="the network: fcn32s (the seed; default), fcn16s / fcn8s (skips from pool4 / "
                   "pool3), fcn8s-atonce (FCN-8s from VGG in one run, skips scaled 0.01 / 0.0001), "
                   "deeplab-largefov (atrous VGG at stride 8); with --resume: the checkpoint's")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz or Keras .h5); default: from scratch")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="staged training (the FCN paper): start from a coarser FCN's checkpoint, e.g. "
                   "--model fcn16s --init-from fcn32s.h5: its parameters are copied, the new "
                   "score_pool* start at zero and upscore* bilinear, Adam starts afresh; --width "
                   "defaults to the checkpoint's")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check of a Keras .h5 --weights file (for a file you trust)")
    p.add_argument("--width", type=argcheck.positive_float, default=None,
                   help="VGG channel multiplier (default 1.0; with --resume: the checkpoint's)")
    p.add_argument("--iterations", type=argcheck.positive_int, default=10,
                   help="total iterations, counting those of a resumed checkpoint (default 10, the seed)")
    p.add_argument("--lr", type=argcheck.positive_float, default=None,
                   help="Adam learning rate (default 1e-4, the seed; with --resume: the checkpoint's)")
    p.add_argument("--reduction", choices=["sum", "mean"], default=None,
                   help="sum the pixel losses (the seed, default) or average them "
                   "(with --resume: the checkpoint's)")
    p.add_argument("--dropout", type=argcheck.dropout_rate, default=None,
                   help="drop probability after fc6/fc7 (default 0.5; with --resume: the checkpoint's)")
    p.add_argument("--seed", type=int, default=None, help="initialisation, dropout and shuffling seed "
                   "(default 0; with --resume: the checkpoint's)")
    p.add_argument("--checkpoint", default="checkpoint.h5",
                   help="HDF5 checkpoint written atomically (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=argcheck.non_negative_int, default=0, metavar="K",
                   help="also save every K iterations (default 0: only at the end and on Ctrl-C)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint exactly (its model and training options)")
    again.add_argument("--overwrite", action="store_true",
                       help="start a new run even if --checkpoint exists, replacing it")
    p.add_argument("--log-csv", help="'iteration,loss' rows (a new run starts the file afresh; "
                   "--resume keeps the rows up to the checkpoint's iteration)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="TensorBoard scalars and gradient histograms (needs tinyseg[tensorboard])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(p)
    p.set_defaults(func=_train)


def check_train_args(args) -> dict | None:
    """Every check that can fail before data is read or a model is built.

    Fills the options left unset (``None``) with a new run's defaults, or with the checkpoint's
    values when resuming; returns the checkpoint's config when resuming, else ``None``.
    """
    ckpt = args.checkpoint
    argcheck.writable_file(ckpt, "--checkpoint")
    if args.log_csv:
        argcheck.writable_file(args.log_csv, "--log-csv")
    if args.tensorboard:
        argcheck.module_available("tensorboardX", "--tensorboard", "tensorboard")
    if args.weights:
        argcheck.existing_file(args.weights, "--weights")
    argcheck.device_available(args.device)
    if args.init_from:
        _check_init_from(args)
    if not args.resume:
        if os.path.exists(ckpt) and not args.overwrite:
            raise FileExistsError(f"checkpoint {ckpt} exists (from another run): continue it with "
                                  f"--resume, replace it with --overwrite, or choose another --checkpoint")
        if args.model is None:
            args.model = "fcn32s"
        for dest, _, default in MODEL_OPTIONS:
            if getattr(args, dest) is None:
                setattr(args, dest, default)
        for dest, _, _, default in TRAINING_OPTIONS:
            if getattr(args, dest) is None:
                setattr(args, dest, default)
        return None

    from ..checkpoint import read_checkpoint_config

    if not os.path.exists(ckpt):
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
    if args.weights:
        raise ValueError("--weights starts a new run; with --resume the parameters come from "
                         f"the checkpoint {ckpt}")
    config, step = read_checkpoint_config(ckpt)
    model = config.get("model", {})
    saved_name = model.get("name", "fcn32s")                  # unnamed: before tinyseg.models
    if args.model is not None and args.model != saved_name:
        raise ValueError(f"--resume: --model {args.model} differs from the checkpoint's model "
                         f"{saved_name} ({ckpt}); drop --model, or start a new run with --overwrite")
    args.model = saved_name
    for dest, key, _ in MODEL_OPTIONS:
        given = getattr(args, dest)
        if given is not None and key in model and given != model[key]:
            option = "--" + dest.replace("_", "-")
            raise ValueError(f"--resume: {option} {given} differs from the checkpoint's {key} "
                             f"{model[key]} ({ckpt}); drop {option}, or start a new run with --overwrite")
        setattr(args, dest, model.get(key, given))
    for dest, section, key, default in TRAINING_OPTIONS:
        if getattr(args, dest) is None:
            setattr(args, dest, config.get(section, {}).get(key, default))
    args.shuffle_seed = config.get("train", {}).get("shuffle_seed", args.seed)
    if step >= args.iterations:
        raise ValueError(f"--resume: checkpoint {ckpt} is at iteration {step} already; give "
                         f"--iterations above {step} to train further")
    return config


def _check_init_from(args) -> None:
    """--init-from: a coarser FCN's checkpoint, a new run; --width defaults to the checkpoint's."""
    from ..checkpoint import read_checkpoint_config

    if args.resume or args.weights:
        raise ValueError("--init-from starts a new staged run: it cannot be combined with "
                         f"{'--resume' if args.resume else '--weights'}")
    argcheck.existing_file(args.init_from, "--init-from")
    source = read_checkpoint_config(args.init_from)[0].get("model", {})
    name = source.get("name", "fcn32s")
    if not name.startswith("fcn") or (args.model or "fcn32s") in ("fcn32s", "deeplab-largefov"):
        raise ValueError(f"--init-from: staged training starts an fcn16s or fcn8s (--model) from a "
                         f"coarser FCN checkpoint; got --model {args.model or 'fcn32s'} from a {name} "
                         f"({args.init_from})")
    if args.width is None:
        args.width = source.get("width", 1.0)
    elif args.width != source.get("width", 1.0):
        raise ValueError(f"--width {args.width} differs from the --init-from checkpoint's width "
                         f"{source.get('width', 1.0)} ({args.init_from})")


def _train(args) -> int:
    from ..interrupt import TrainingInterrupted
    from ..models import build_model, init_from_checkpoint
    from ..train import TrainConfig, Trainer, TrainingDiverged

    resumed = check_train_args(args)
    samples, n_classes = samples_from_args(args)
    if resumed is not None:
        saved_classes = resumed.get("model", {}).get("n_classes")
        if saved_classes is not None and saved_classes != n_classes:
            raise ValueError(f"--resume: the data has {n_classes} classes but the checkpoint "
                             f"{args.checkpoint} was trained for {saved_classes}; choose --labels to match")
    config = TrainConfig(iterations=args.iterations, lr=args.lr, reduction=args.reduction,
                         shuffle_seed=getattr(args, "shuffle_seed", args.seed),
                         checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                         overwrite=args.overwrite, log_csv=args.log_csv,
                         tensorboard=args.tensorboard, progress=not args.no_progress)
    if args.resume:
        model = load_model(args.checkpoint, args.device)
        trainer = Trainer(model, samples, config)
        trainer.resume(args.checkpoint)
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration} ({model.name})")
    else:
        model = build_model(args.model, n_classes, args.width, args.seed, args.weights, args.device,
                            args.dropout, verify_md5=not args.no_verify)
        if args.init_from:
            copied = init_from_checkpoint(model, args.init_from)
            print(f"{model.name} initialised from {args.init_from}: {len(copied)} of "
                  f"{len(model.shapes)} parameters copied, the rest start afresh")
        trainer = Trainer(model, samples, config)
    try:
        losses = trainer.run()
    except TrainingDiverged as exc:
        print(f"tinyseg train: stopped: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"tinyseg train: {exc}" + ("; continue with --resume" if exc.checkpoint else ""),
              file=sys.stderr)
        return exc.exit_code
    print(f"iterations {trainer.iteration}: last loss {losses[-1]:.6g}; checkpoint {args.checkpoint}")
    return 0
