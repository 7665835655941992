"""Training recipes for ``tinyseg train``: named sets of defaults that single options override.

==========  ==========================================================================================
recipe      what it is
==========  ==========================================================================================
scratch     the default without ``--weights``: Adam 1e-3 with 50 steps of warm-up and the poly
            schedule, mean loss, batch 2, flips and scales 0.75–1.25, no dropout; found to train a
            normalisation-free VGG from scratch on a small dataset (README, "Training on your own data")
post        the post's: Adam 1e-4, loss summed over pixels, batch 1, no augmentation; the default
            with ``--weights`` (a pretrained VGG-16); ``seed`` is its old name
fcn         FCN (Long, Shelhamer & Darrell): SGD, momentum 0.99, weight decay 5e-4, loss summed over
            pixels, batch 1, lr 1e-10 (their FCN-32s rate for ~500×500 images and pretrained VGG)
deeplab     DeepLab (Chen et al.): SGD, momentum 0.9, weight decay 5e-4, mean loss, batch 10, lr 1e-3
            with the poly schedule, random scale 0.5–1.5, flips and 321×321 crops
==========  ==========================================================================================
"""
from __future__ import annotations

from .._moved import cli_value, new_value

__all__ = ["RECIPES", "add_recipe_options", "resolve_recipe"]

_BASE = dict(optimizer="adam", lr=1e-4, momentum=0.99, weight_decay=5e-4, reduction="sum", batch=1,
             lr_schedule="constant", warmup=0, flip=False, scale_range=(1.0, 1.0), crop=None, color_jitter=0.0,
             dropout=0.5, iterations=10)

RECIPES = {
    "scratch": {**_BASE, "optimizer": "adam", "lr": 1e-3, "reduction": "mean", "batch": 2,
                "lr_schedule": "poly", "warmup": 50, "flip": True, "scale_range": (0.75, 1.25),
                "dropout": 0.0, "iterations": 1000},
    "post": dict(_BASE),
    "fcn": {**_BASE, "optimizer": "sgd", "lr": 1e-10, "momentum": 0.99, "weight_decay": 5e-4},
    "deeplab": {**_BASE, "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4,
                "reduction": "mean", "batch": 10, "lr_schedule": "poly", "flip": True,
                "scale_range": (0.5, 1.5), "crop": (321, 321), "iterations": 6000},
}


def _pair(kind, name):
    def parse(text):
        import argparse
        parts = text.replace("x", ",").split(",")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be two {name} such as {'321,321' if kind is int else '0.5,1.5'}, "
                                             f"got {text!r}") from None
        if len(values) != 2 or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"must be two positive {name}, got {text!r}")
        return values
    return parse


def add_recipe_options(p, positive_int, positive_float):
    """The recipe and the options that override it (all default to the recipe's value)."""
    g = p.add_argument_group("recipe (each option overrides the recipe's value)")
    g.add_argument("--recipe", type=cli_value("--recipe"), choices=sorted(RECIPES), default=None,
                   help="named defaults: scratch (default from scratch), post (default with --weights), "
                   "fcn, deeplab")
    g.add_argument("--batch", type=positive_int, default=None, metavar="B",
                   help="images per step (global: under R ranks each takes B/R), by gradient accumulation")
    g.add_argument("--optimizer", choices=["adam", "sgd"], default=None,
                   help="adam (TensorFlow's) or sgd (momentum and weight decay, PyTorch's formula)")
    g.add_argument("--momentum", type=float, default=None, help="SGD momentum (fcn: 0.99)")
    g.add_argument("--weight-decay", type=float, default=None, help="SGD weight decay (fcn: 5e-4)")
    g.add_argument("--lr-schedule", choices=["constant", "poly"], default=None,
                   help="constant, or DeepLab's poly: lr·(1 − t/iterations)^0.9")
    g.add_argument("--warmup", type=int, default=None, metavar="K",
                   help="linear learning-rate warm-up over the first K iterations")
    g.add_argument("--flip", action="store_true", default=None, help="random left-right flips")
    g.add_argument("--no-flip", dest="flip", action="store_false", help="no flips")
    g.add_argument("--scale-range", type=_pair(float, "numbers"), default=None, metavar="LO,HI",
                   help="random rescaling by a factor in [LO, HI] (1,1: none)")
    g.add_argument("--crop", type=_pair(int, "integers"), default=None, metavar="H,W",
                   help="random H×W crops (padded with ignored pixels where the image is smaller)")
    g.add_argument("--color-jitter", type=float, default=None, metavar="C",
                   help="random contrast, saturation, brightness and hue of strength C in [0, 1] (0: none)")


def resolve_recipe(args, from_scratch: bool, saved: dict | None = None) -> dict:
    """The recipe's values with every option given on the command line put over them.

    ``saved`` is a resumed checkpoint's ``config["train"]``: its values come before the recipe's.
    """
    name = args.recipe or ("scratch" if from_scratch else "post")
    if saved is not None:      # a resumed run: the recipe it was written with (older files: the post's)
        name = new_value("--recipe", saved.get("recipe", "post"), warn=False)
    values = dict(RECIPES[name])
    if saved:
        values.update({k: v for k, v in saved.items() if k in values})
        aug = saved.get("augment") or {}
        values.update(flip=aug.get("flip", values["flip"]),
                      scale_range=tuple(aug.get("scale", values["scale_range"])),
                      crop=tuple(aug["crop"]) if aug.get("crop") else None,
                      color_jitter=aug.get("color", 0.0))
    for key in values:
        given = getattr(args, key, None)
        if given is not None:
            values[key] = given
    values["recipe"] = name
    return values
