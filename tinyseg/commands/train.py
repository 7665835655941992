"""The ``train`` subcommand: train a model on one image or a dataset, with checkpoints."""
from __future__ import annotations

import os

from .common import add_data, add_device, load_model, samples_from_args


def register(subparsers):
    p = subparsers.add_parser("train", help="train FCN-32s (batch 1, summed cross-entropy, Adam)",
                              description="Train FCN-32s as in the seed: pixel-wise softmax "
                              "cross-entropy summed over the image, Adam, batch 1.")
    add_data(p, "train")
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
    add_device(p)
    p.set_defaults(func=_train)


def _train(args) -> int:
    from ..train import TrainConfig, Trainer, TrainingDiverged, build_model

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
