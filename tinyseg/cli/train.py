"""The ``train`` subcommand: train a model on one image or a dataset, with checkpoints.

``--model`` picks the network (FCN-32s by default); ``--init-from`` starts a staged FCN-16s/8s
from a coarser FCN's checkpoint (the FCN paper); ``--crf-rnn`` trains it with a CRF-as-RNN on top
(Zheng et al. 2015, :mod:`tinyseg.models.crf_rnn`).

A checkpoint is never replaced unasked: a new run refuses an existing ``--checkpoint`` unless
``--overwrite``; ``--resume`` continues it, taking the model, the classes and the recipe from it
(a model option given explicitly must agree with it; a training option given changes it from
there on). Ctrl-C or SIGTERM finishes the current iteration, writes the checkpoint and exits with
130/143; ``--max-minutes`` stops at a step boundary, writes the checkpoint and says so.

Under ``mpiexec -n R tinyseg train …`` (no other flag) the R ranks split every global batch,
sum their gradients over MPI and keep identical parameters; rank 0 alone prints and writes.
"""
from __future__ import annotations

import os
import sys
import time

from ..models import MODELS
from . import argcheck
from .common import add_device, load_model
from .dataopts import add_data, add_validation, check_dataset, dataset_from_args, label_map_from_args
from .memcheck import check_training
from .recipe import add_recipe_options, resolve_recipe

# Options that define the model: (option dest, key in the checkpoint's "model" config, default of a
# new run). With --resume they come from the checkpoint; one given explicitly must equal it.
MODEL_OPTIONS = [("width", "width", 1.0), ("dropout", "dropout", None), ("seed", "seed", 0)]


def register(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train FCN-32s/16s/8s or DeepLab-LargeFOV on your images (checkpoints, recipes, "
        "MPI ranks)",
        description="""Train on one image, a PASCAL VOC folder or images/ + masks/ folders with N
        classes. From scratch the default recipe is 'scratch' (Adam, mean loss, batches,
        augmentation, poly schedule); with --weights it is the post's (Adam 1e-4, summed loss,
        batch 1). Ctrl-C (or SIGTERM) finishes the current iteration, writes the checkpoint and
        exits (code 130/143); a second Ctrl-C aborts at once. Under `mpiexec -n R` the ranks share
        each batch.""")
    add_data(p, "train")
    add_validation(p)
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="the network: fcn32s (the post; default), fcn16s / fcn8s (skips from pool4 / "
                   "pool3), fcn8s-atonce (FCN-8s from VGG in one run, skips scaled 0.01 / 0.0001), "
                   "deeplab-largefov (atrous VGG at stride 8); with --resume: the checkpoint's")
    p.add_argument("--weights", help="imported VGG-16 weights (.npz or Keras .h5); default: from scratch")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="staged training (the FCN paper): start from a coarser FCN's checkpoint, e.g. "
                   "--model fcn16s --init-from fcn32s.h5: its parameters are copied, the new "
                   "score_pool* start at zero and upscore* bilinear, Adam starts afresh; --width "
                   "defaults to the checkpoint's; with --crf-rnn: a trained network of any model "
                   "(--model defaults to its), the CRF-as-RNN put on top. With --val-split the "
                   "starting model is validated too (iteration 0) and can be NAME.best.h5")
    p.add_argument("--crf-rnn", action="store_true",
                   help="train end to end with a CRF-as-RNN on top (Zheng et al. 2015: mean field as a "
                   "recurrent layer, 5 iterations in training, 10 at test; initialised to the post's "
                   "dense CRF: Potts, weights 3 and 10); the checkpoint holds its parameters and "
                   "predict/evaluate use it; with --resume: the checkpoint's")
    p.add_argument("--crf-lr", type=argcheck.positive_float, default=None, metavar="LR",
                   help="the CRF-as-RNN parameters' learning rate (default 0.05 with Adam, 1000 x --lr "
                   "with SGD); it follows the schedule like the network's")
    p.add_argument("--crf-warmup", type=argcheck.non_negative_int, default=None, metavar="N",
                   help="with --crf-rnn: the first N iterations train the CRF alone, the network "
                   "frozen (default 0; the study's fine-tuning recipe used 50)")
    p.add_argument("--crf-aux-weight", type=argcheck.non_negative_float, default=None, metavar="W",
                   help="with --crf-rnn: add W x the cross-entropy of the network's own logits to the "
                   "loss, after the warm-up (deep supervision; default 0, the study used 3)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the MD5 check of a Keras .h5 --weights file (for a file you trust)")
    p.add_argument("--width", type=argcheck.positive_float, default=None,
                   help="VGG channel multiplier (default 1.0; with --resume: the checkpoint's)")
    p.add_argument("--iterations", type=argcheck.positive_int, default=None,
                   help="total optimizer steps, counting those of a resumed checkpoint (default: the "
                   "recipe's; with --max-minutes and the scratch recipe: as many as fit)")
    p.add_argument("--max-minutes", type=argcheck.positive_float, default=None, metavar="M",
                   help="stop at a step boundary when M minutes have passed, write the checkpoint and "
                   "say so (a poly schedule without --iterations is fitted to the time)")
    p.add_argument("--lr", type=argcheck.positive_float, default=None,
                   help="base learning rate (default: the recipe's; with --resume: the checkpoint's)")
    p.add_argument("--reduction", choices=["sum", "mean"], default=None,
                   help="sum the pixel losses (post, fcn) or average them over the batch's labelled "
                   "pixels (scratch, deeplab)")
    p.add_argument("--dropout", type=argcheck.dropout_rate, default=None,
                   help="drop probability after fc6/fc7 (default: the recipe's, 0 for scratch and 0.5 for "
                   "the others; with --resume: the checkpoint's)")
    p.add_argument("--seed", type=int, default=None, help="initialisation, dropout, shuffling and "
                   "augmentation seed (default 0; with --resume: the checkpoint's)")
    add_recipe_options(p, argcheck.positive_int, argcheck.positive_float)
    p.add_argument("--checkpoint", default="checkpoint.h5",
                   help="HDF5 checkpoint written atomically (default: %(default)s); with validation "
                   "the best model also goes to NAME.best.h5")
    p.add_argument("--checkpoint-every", type=argcheck.non_negative_int, default=0, metavar="K",
                   help="also save every K iterations (default 0: only at the end and on Ctrl-C)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint exactly (its model, classes and recipe)")
    again.add_argument("--overwrite", action="store_true",
                       help="start a new run even if --checkpoint exists, replacing it")
    p.add_argument("--log-csv", help="'iteration,loss,val_miou' rows, val_miou empty without a "
                   "validation (a new run starts the file afresh; --resume keeps the rows up to the "
                   "checkpoint's iteration)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="TensorBoard scalars and gradient histograms (needs tinyseg[tensorboard])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(p)
    p.set_defaults(func=_train)


def check_train_args(args) -> dict | None:
    """Every check that can fail before data is read or a model is built.

    Fills the model options left unset (``None``) with a new run's defaults, or with the
    checkpoint's values when resuming; returns the checkpoint's config when resuming, else ``None``.
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
        from ..training.trainer import best_path

        for path in (ckpt, best_path(ckpt)):
            if os.path.exists(path) and not args.overwrite:
                raise FileExistsError(f"checkpoint {path} exists (from another run): continue it with "
                                      f"--resume, replace it with --overwrite, or choose another --checkpoint")
        if args.crf_lr is not None and not args.crf_rnn:
            raise ValueError("--crf-lr is the learning rate of --crf-rnn's parameters: add --crf-rnn")
        for option in ("--crf-warmup", "--crf-aux-weight"):
            if _given(args, option) and not args.crf_rnn:
                raise ValueError(f"{option} is part of --crf-rnn's training: add --crf-rnn")
        if args.model is None:
            args.model = "fcn32s"
        for dest, _, default in MODEL_OPTIONS:
            if getattr(args, dest) is None:
                setattr(args, dest, default)
        return None

    from ..weights.checkpoint import read_checkpoint_config

    if not os.path.exists(ckpt):
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
    if args.weights:
        raise ValueError("--weights starts a new run; with --resume the parameters come from "
                         f"the checkpoint {ckpt}")
    config, step = read_checkpoint_config(ckpt)
    model = config.get("model", {})
    saved_name = model.get("name", "fcn32s")                  # no name: an FCN-32s checkpoint
    if args.model is not None and args.model != saved_name:
        raise ValueError(f"--resume: --model {args.model} differs from the checkpoint's model "
                         f"{saved_name} ({ckpt}); drop --model, or start a new run with --overwrite")
    args.model = saved_name
    crf_options = [o for o in ("--crf-lr", "--crf-warmup", "--crf-aux-weight") if _given(args, o)]
    if (args.crf_rnn or crf_options) and "crf_rnn" not in model:
        raise ValueError(f"--resume: the checkpoint {ckpt} was trained without --crf-rnn; drop "
                         "--crf-rnn and its options, or start a new run with --overwrite")
    if crf_options:
        raise ValueError(f"--resume: {crf_options[0]} is the checkpoint's; drop it")
    for dest, key, _ in MODEL_OPTIONS:
        given = getattr(args, dest)
        if given is not None and key in model and given != model[key]:
            option = "--" + dest.replace("_", "-")
            raise ValueError(f"--resume: {option} {given} differs from the checkpoint's {key} "
                             f"{model[key]} ({ckpt}); drop {option}, or start a new run with --overwrite")
        setattr(args, dest, model.get(key, given))
    args.resumed_step = step
    return config


def _given(args, option: str) -> bool:
    return getattr(args, option[2:].replace("-", "_")) is not None


def _recipe(args, resumed):
    """The TrainConfig fields of the recipe, options and checkpoint (see ``resolve_recipe``)."""
    from ..training.augment import AugmentConfig

    saved = dict(resumed.get("train", {})) if resumed else None
    if saved is not None and "lr" not in saved:          # older checkpoints: the rate only in "adam"
        saved["lr"] = resumed.get("adam", {}).get("lr", 1e-4)
    if saved is not None:
        saved["optimizer"] = resumed.get("optimizer", "adam")
        saved["recipe"] = resumed.get("recipe", "post")
    r = resolve_recipe(args, from_scratch=not args.weights, saved=saved)
    if args.iterations is None and saved is None and args.max_minutes and r["recipe"] == "scratch":
        r["iterations"] = 0                               # as many as fit in the time
    if resumed and r["iterations"] and args.resumed_step >= r["iterations"]:
        raise ValueError(f"--resume: checkpoint {args.checkpoint} is at iteration {args.resumed_step} "
                         f"already; give --iterations above {args.resumed_step} to train further")
    augment = AugmentConfig(flip=r["flip"], scale=r["scale_range"], crop=r["crop"], color=r["color_jitter"])
    fields = {k: r[k] for k in ("iterations", "batch", "optimizer", "lr", "momentum", "weight_decay",
                                "lr_schedule", "warmup", "reduction")}
    return r, dict(fields, augment=augment)


def _check_init_from(args) -> None:
    """--init-from: a coarser FCN's checkpoint, a new run; --width defaults to the checkpoint's."""
    from ..weights.checkpoint import read_checkpoint_config

    if args.resume or args.weights:
        raise ValueError("--init-from starts a new staged run: it cannot be combined with "
                         f"{'--resume' if args.resume else '--weights'}")
    argcheck.existing_file(args.init_from, "--init-from")
    source = read_checkpoint_config(args.init_from)[0].get("model", {})
    name = source.get("name", "fcn32s")
    if args.crf_rnn and "crf_rnn" not in source and (args.model or name) == name:
        args.model = name                   # a CRF-as-RNN on top of a trained network of any kind
    elif not name.startswith("fcn") or (args.model or "fcn32s") in ("fcn32s", "deeplab-largefov"):
        raise ValueError(f"--init-from: staged training starts an fcn16s or fcn8s (--model) from a "
                         f"coarser FCN checkpoint; got --model {args.model or 'fcn32s'} from a {name} "
                         f"({args.init_from})")
    if args.width is None:
        args.width = source.get("width", 1.0)
    elif args.width != source.get("width", 1.0):
        raise ValueError(f"--width {args.width} differs from the --init-from checkpoint's width "
                         f"{source.get('width', 1.0)} ({args.init_from})")


def _train(args) -> int:
    from ..training.distributed import World, configure_threads
    from ..training.interrupt import TrainingInterrupted
    from ..models import build_model, init_from_checkpoint
    from ..training.trainer import TrainConfig, Trainer, TrainingDiverged
    from .warmup import first_run_notice

    started = time.monotonic()          # --max-minutes counts from here: data checks included
    world = World.detect()
    configure_threads(world)
    say = print if world.is_root else (lambda *a, **k: None)
    resumed = check_train_args(args)
    label_map = label_map_from_args(args, resumed.get("classes") if resumed else None,
                                    f"checkpoint {args.checkpoint}")
    dataset = dataset_from_args(args, label_map)
    check_dataset(dataset, world, training=True)
    val = None
    if args.val_split:
        val = dataset_from_args(args, label_map, split=args.val_split)
        check_dataset(val, world, training=False)
    saved_classes = (resumed or {}).get("model", {}).get("n_classes")
    if saved_classes is not None and saved_classes != label_map.n_classes:
        raise ValueError(f"--resume: the data has {label_map.n_classes} classes but the checkpoint "
                         f"{args.checkpoint} was trained for {saved_classes}; choose --classes to match")
    recipe, fields = _recipe(args, resumed)
    if args.batch is not None and args.batch > len(dataset):
        raise ValueError(f"--batch {args.batch} is more than the {len(dataset)} training images (a step "
                         f"would see each about {args.batch // len(dataset)} times); use --batch "
                         f"{len(dataset)} or fewer")
    check_training(args, args.model, label_map.n_classes, dataset, fields["augment"], fields["optimizer"],
                   fields["batch"], world.size, args.crf_rnn or "crf_rnn" in (resumed or {}).get("model", {}))
    val_every = args.val_every if args.val_every is not None else \
        max(1, len(dataset) // fields["batch"]) if val is not None else 0
    config = TrainConfig(**fields, shuffle_seed=(resumed or {}).get("train", {}).get("shuffle_seed", args.seed),
                         val_every=val_every, validate_start=bool(args.init_from or args.crf_rnn), max_minutes=args.max_minutes, clock_start=started,
                         checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                         overwrite=args.overwrite, log_csv=args.log_csv,
                         tensorboard=args.tensorboard, progress=not args.no_progress)
    metadata = {"classes": label_map.to_dict(), "recipe": recipe["recipe"]}
    if args.resume:
        model = load_model(args.checkpoint, args.device)
        trainer = Trainer(model, dataset, config, val_samples=val, metadata=metadata, world=world)
        trainer.resume(args.checkpoint)
        say(f"resumed from {args.checkpoint} at iteration {trainer.iteration} ({model.name})")
    else:
        dropout = args.dropout if args.dropout is not None else recipe["dropout"]
        model = build_model(args.model, label_map.n_classes, args.width, args.seed, args.weights,
                            args.device, dropout, verify_md5=not args.no_verify)
        if args.init_from:
            copied = init_from_checkpoint(model, args.init_from)
            say(f"{model.name} initialised from {args.init_from}: {len(copied)} of "
                f"{len(model.shapes)} parameters copied, the rest start afresh")
        if args.crf_rnn:
            from ..crf import CRFasRNN
            from ..models.crf_rnn import NetworkWithCRF, default_crf_lr

            crf_lr = args.crf_lr or default_crf_lr(config.optimizer, config.lr)
            model = NetworkWithCRF(model, CRFasRNN(label_map.n_classes, backend=args.device),
                                   lr_mult=crf_lr / config.lr, crf_warmup=args.crf_warmup or 0,
                                   aux_weight=args.crf_aux_weight or 0.0)
        trainer = Trainer(model, dataset, config, val_samples=val, metadata=metadata, world=world)
    ranks = f", {world.size} ranks" if world.size > 1 else ""
    say(f"train {model.name}: {len(dataset)} images, {label_map.n_classes} classes ({', '.join(label_map.names)}); "
        f"recipe {recipe['recipe']}: {config.optimizer} lr {config.lr:g} {config.lr_schedule}, batch "
        f"{config.batch}, {config.reduction} loss{ranks}", flush=True)
    if args.device == "cpu":
        first_run_notice()
    try:
        losses = trainer.run()
    except TrainingDiverged as exc:
        say(f"tinyseg train: stopped: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        say(f"tinyseg train: {exc}" + ("; continue with --resume" if exc.checkpoint else ""),
            file=sys.stderr)
        return exc.exit_code
    if trainer.stopped_early:
        say(f"tinyseg train: stopped: {trainer.stopped_early}; checkpoint {args.checkpoint} written"
            + ("; continue with --resume and a larger --max-minutes" if config.iterations and
               trainer.iteration < config.iterations else ""))
    best = (f"; best validation mean IoU {trainer.state.best_miou:.4f} at iteration "
            f"{trainer.state.best_iteration}" if trainer.state.best_miou is not None else "")
    last = f"last loss {losses[-1]:.6g}; " if losses else ""
    say(f"iterations {trainer.iteration}: {last}checkpoint {args.checkpoint}{best}")
    verdict = crf_rnn_verdict(trainer.state)
    if verdict:
        say(f"tinyseg train: warning: {verdict}", file=sys.stderr)
    return 0


def crf_rnn_verdict(state) -> str | None:
    """A warning when a CRF-as-RNN run's best validated output is below its starting network alone.

    ``state``: the trainer's :class:`~tinyseg.training.checkpointing.TrainState`; its
    ``network_validations`` (the network alone's mean IoU) start at iteration 0, the network the
    run started from. ``None`` when there is nothing to warn about (or no such validation).
    """
    if not state.network_validations or state.best_miou is None:
        return None
    first, start = state.network_validations[0]
    if first != 0 or state.best_miou >= start:
        return None
    return (f"the CRF-as-RNN made things worse on validation: its best mean IoU {state.best_miou:.4f} "
            f"(iteration {state.best_iteration}) is below the starting network alone, "
            f"{start:.4f}; keep using the starting checkpoint (--init-from) without the CRF-as-RNN "
            "(`tinyseg evaluate` also scores it with the post-hoc dense CRF)")
