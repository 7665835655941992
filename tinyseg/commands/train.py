"""The ``train`` subcommand: train a model on one image or a dataset, with checkpoints."""
from __future__ import annotations

import os

from ..models import MODELS
from .common import add_data, add_device, load_model, samples_from_args


def register(subparsers):
    p = subparsers.add_parser("train", help="train a model (FCN-32s/16s/8s, DeepLab-LargeFOV; batch 1, "
                              "summed cross-entropy, Adam)",
                              description="Train a segmentation model as in the seed: pixel-wise softmax "
                              "cross-entropy summed over the image, Adam, batch 1.")
    add_data(p, "train")
    p.add_argument("--model", choices=list(MODELS), default="fcn32s",
                   help="the network: fcn32s (the seed), fcn16s / fcn8s (skips from pool4 / pool3), "
                   "fcn8s-atonce (FCN-8s from VGG in one run, skips scaled 0.01 / 0.0001), "
                   "deeplab-largefov (atrous VGG at stride 8); default %(default)s")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz or Keras .h5); default: from scratch")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="staged training (the FCN paper): start from a coarser FCN's checkpoint, e.g. "
                   "--model fcn16s --init-from fcn32s.h5: its parameters are copied, the new "
                   "score_pool* start at zero and upscore* bilinear, Adam starts afresh; --width "
                   "defaults to the checkpoint's")
    p.add_argument("--width", type=float, default=None,
                   help="VGG channel multiplier (default 1.0, or the --init-from checkpoint's)")
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
    add_device(p)
    p.set_defaults(func=_train)


def _train(args) -> int:
    from ..models import build_model, init_from_checkpoint
    from ..train import TrainConfig, Trainer, TrainingDiverged

    if args.init_from and (args.resume or args.weights):
        raise ValueError("--init-from starts a new staged run: it cannot be combined with "
                         f"{'--resume' if args.resume else '--weights'}")
    init = _staged_source(args.init_from) if args.init_from else None
    width = args.width if args.width is not None else (init["width"] if init else 1.0)
    if init and init["width"] != width:
        raise ValueError(f"--width {width} differs from the --init-from checkpoint's width {init['width']}")
    samples, n_classes = samples_from_args(args)
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
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration} ({model.name})")
    else:
        model = build_model(args.model, n_classes, width, args.seed, args.weights, args.device,
                            args.dropout)
        if init:
            copied = init_from_checkpoint(model, args.init_from)
            print(f"{model.name} initialised from {args.init_from} ({init['name']}): "
                  f"{len(copied)} of {len(model.shapes)} parameters copied")
        trainer = Trainer(model, samples, config)
    try:
        losses = trainer.run()
    except TrainingDiverged as exc:
        print(f"tinyseg train: stopped: {exc}")
        return 1
    if losses:
        print(f"iterations {trainer.iteration}: last loss {losses[-1]:.6g}; checkpoint {args.checkpoint}")
    return 0


def _staged_source(path: str) -> dict:
    """The --init-from checkpoint's model config, checked before any work starts."""
    from ..checkpoint import load_checkpoint

    if not os.path.exists(path):
        raise FileNotFoundError(f"--init-from: no checkpoint at {path}")
    config = dict(load_checkpoint(path).config.get("model", {}))
    config.setdefault("name", "fcn32s")
    if not config["name"].startswith("fcn"):
        raise ValueError(f"--init-from {path} holds a {config['name']}; staged training starts "
                         f"from an FCN checkpoint (fcn32s or fcn16s)")
    return config
