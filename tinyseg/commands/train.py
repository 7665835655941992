"""The ``train`` subcommand: train a model on one image or a dataset, with checkpoints.

A checkpoint is never replaced unasked: a new run refuses an existing ``--checkpoint`` unless
``--overwrite``; ``--resume`` continues it, taking the model and training options from it (an
option given explicitly must agree with it). Ctrl-C or SIGTERM finishes the current iteration,
writes the checkpoint and exits with 130/143.
"""
from __future__ import annotations

import os
import sys

from . import argcheck
from .common import add_data, add_device, load_model, samples_from_args

# Options that define the model: (option dest, key in the checkpoint's "model" config, default of a
# new run[, function from the option's value to the config's, e.g. class names -> n_classes]).
# With --resume they come from the checkpoint; one given explicitly must agree with it. A new
# model option (--model -> "name", --classes -> "n_classes") is one more entry.
MODEL_OPTIONS = [("width", "width", 1.0), ("dropout", "dropout", 0.5), ("seed", "seed", 0)]
# Training options a resumed run takes from the checkpoint unless given: (dest, section, key, default).
# Giving one with --resume changes it from there on (e.g. a lower --lr to fine-tune).
TRAINING_OPTIONS = [("lr", "adam", "lr", 1e-4), ("reduction", "train", "reduction", "sum")]


def register(subparsers):
    p = subparsers.add_parser("train", help="train FCN-32s (batch 1, summed cross-entropy, Adam)",
                              description="Train FCN-32s as in the seed: pixel-wise softmax "
                              "cross-entropy summed over the image, Adam, batch 1. Ctrl-C (or "
                              "SIGTERM) finishes the current iteration, writes the checkpoint and "
                              "exits (code 130/143); a second Ctrl-C aborts at once.")
    add_data(p, "train")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz or Keras .h5); default: from scratch")
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
    if not args.resume:
        if os.path.exists(ckpt) and not args.overwrite:
            raise FileExistsError(f"checkpoint {ckpt} exists (from another run): continue it with "
                                  f"--resume, replace it with --overwrite, or choose another --checkpoint")
        for dest, _, default, *_ in MODEL_OPTIONS:
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
    for dest, key, _, *convert in MODEL_OPTIONS:
        given = getattr(args, dest)
        value = convert[0](given) if convert and given is not None else given
        if given is not None and key in model and value != model[key]:
            option = "--" + dest.replace("_", "-")
            raise ValueError(f"--resume: {option} {given} differs from the checkpoint's {key} "
                             f"{model[key]} ({ckpt}); drop {option}, or start a new run with --overwrite")
        if not convert:
            setattr(args, dest, model.get(key, given))
    for dest, section, key, default in TRAINING_OPTIONS:
        if getattr(args, dest) is None:
            setattr(args, dest, config.get(section, {}).get(key, default))
    args.shuffle_seed = config.get("train", {}).get("shuffle_seed", args.seed)
    if step >= args.iterations:
        raise ValueError(f"--resume: checkpoint {ckpt} is at iteration {step} already; give "
                         f"--iterations above {step} to train further")
    return config


def _train(args) -> int:
    from ..interrupt import TrainingInterrupted
    from ..train import TrainConfig, Trainer, TrainingDiverged, build_model
    from ..warmup import first_run_notice

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
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration}")
    else:
        model = build_model(n_classes, args.width, args.seed, args.weights, args.device, args.dropout,
                            verify_md5=not args.no_verify)
        trainer = Trainer(model, samples, config)
    if args.device == "cpu":
        first_run_notice()
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
