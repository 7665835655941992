"""The ``synthetic`` subcommand: write the synthetic textured-shapes dataset to try training on."""
from __future__ import annotations

from . import argcheck


def register(subparsers):
    p = subparsers.add_parser(
        "synthetic",
        help="write a synthetic dataset (textured shapes, exact ground truth) in the VOC or the "
        "folders layout",
        description="""Textured discs, squares, triangles, rings and crosses on textured
        backgrounds, one class per shape, random colours; exact labels; with a classes.txt.
        Everything follows from --seed.""")
    p.add_argument("out", help="output folder")
    p.add_argument("--layout", choices=["voc", "folders"], default="voc",
                   help="voc: JPEGImages/ SegmentationClass/ ImageSets/; folders: SPLIT/images, SPLIT/masks")
    p.add_argument("--train", type=argcheck.positive_int, default=48, help="training images (default 48)")
    p.add_argument("--val", type=argcheck.positive_int, default=16, help="held-out images (default 16)")
    p.add_argument("--classes", type=int, choices=range(2, 7), default=4, metavar="K",
                   help="classes including the background, 2..6 (default 4)")
    p.add_argument("--size", type=argcheck.positive_int, nargs=2, default=(160, 224), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synthetic)


def _synthetic(args) -> int:
    from ..data.synthetic import write_dataset

    argcheck.output_folder(args.out, "out")
    names = write_dataset(args.out, {"train": args.train, "val": args.val}, layout=args.layout,
                          size=tuple(args.size), n_classes=args.classes, seed=args.seed)
    print(f"wrote {args.train} + {args.val} images of {args.size[0]}×{args.size[1]} ({args.layout} "
          f"layout) into {args.out}; classes: {', '.join(names)}")
    return 0
