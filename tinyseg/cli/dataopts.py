"""Data options shared by ``train``, ``evaluate`` and ``predict``: where the images are, which
classes they have, and how mask values become classes.

Sources: ``--image IMG --annotation PNG`` (one image), ``--voc ROOT`` (the PASCAL VOC layout) or
``--data ROOT`` (the VOC layout or ``images/`` + ``masks/`` folders matched by file stem; splits
are sub-folders ``ROOT/<split>/`` or lists ``ROOT/<split>.txt``).

Classes and mask values: one rule for every command, :func:`tinyseg.data.classes.resolve_classes`
(its words, :data:`tinyseg.data.classes.RULE`, are the help of the class options).
"""
from __future__ import annotations

import os

__all__ = ["add_data", "add_validation", "label_map_from_args", "saved_label_map", "dataset_from_args",
           "check_dataset", "Subset", "single_image"]


def add_data(p, split_default, *, annotation_required=True):
    from ..data.classes import RULE

    g = p.add_argument_group("data (one image, a PASCAL VOC folder, or images/ + masks/ folders)")
    g.add_argument("--image", help="an RGB image file (JPEG/PNG)")
    g.add_argument("--annotation", help="its annotation (mask) PNG: grayscale or palette values")
    g.add_argument("--voc", metavar="ROOT", help="a PASCAL VOC folder with JPEGImages/, "
                   "SegmentationClass/ and ImageSets/Segmentation/")
    g.add_argument("--data", metavar="ROOT", help="a dataset folder: the VOC layout, or images/ "
                   "and masks/ matched by file stem (splits: ROOT/SPLIT/images|masks or a list "
                   "ROOT/SPLIT.txt of image names)")
    g.add_argument("--split", default=None, help=f"the split to use (default: {split_default}; a "
                   "folders dataset without splits uses all its images)")
    g.add_argument("--classes", metavar="N|FILE", help="the number of classes, or a text file whose "
                   "line k names class k (default: ROOT/classes.txt if present; see 'classes' below)")
    g.add_argument("--mask-values", metavar="V0,V1,...", help="the mask value of each class in class "
                   "order, e.g. 0,255 for black/white masks; the names stay those of --classes FILE or "
                   "ROOT/classes.txt (default: value k is class k; 255 is ignored unless listed)")
    g.add_argument("--labels", choices=["binary", "voc"], default=None,
                   help="a named class set: 'binary' (the post: 0 background, 1 object, 255 ignored) "
                   "or 'voc' (21 classes, 255 ignored). Default: binary for --image, voc for --voc")
    p.add_argument_group("classes", RULE)
    p.set_defaults(split_default=split_default)


def add_validation(p):
    g = p.add_argument_group("validation")
    g.add_argument("--val-split", metavar="SPLIT", help="a held-out split of the same dataset "
                   "evaluated during training (mean IoU); the best model is kept in NAME.best.h5")
    g.add_argument("--val-every", type=int, default=None, metavar="K",
                   help="validate every K iterations and at the end (default: about once an epoch)")


def _source(args):
    given = [o for o in ("image", "voc", "data") if getattr(args, o, None)]
    if len(given) != 1:
        raise ValueError("give one of --image (with --annotation), --voc ROOT or --data ROOT")
    return given[0]


def saved_label_map(config: dict):
    """The classes a checkpoint was trained for (older checkpoints: binary, VOC or numbered)."""
    from ..data import LabelMap

    if config.get("classes"):
        return LabelMap.from_dict(config["classes"])
    n = config.get("model", {}).get("n_classes", 2)
    return LabelMap.binary() if n == 2 else LabelMap.voc() if n == 21 else LabelMap.numbered(n)


def label_map_from_args(args, saved=None, saved_from: str = "the checkpoint"):
    """The :class:`~tinyseg.data.LabelMap` of the options; ``saved`` is a checkpoint's (a dict or a
    LabelMap), ``saved_from`` how errors name it. The rule: :data:`tinyseg.data.classes.RULE`."""
    from ..data import LabelMap
    from ..data.classes import resolve_classes

    source = _source(args)
    root = args.voc or args.data
    found = os.path.join(root, "classes.txt") if root else None
    if found is None or not os.path.isfile(found):
        found = None
    fallback = (LabelMap.binary() if source == "image" else
                LabelMap.voc() if source == "voc" or (os.path.isdir(root) and _layout(root) == "voc")
                else None)
    try:
        return resolve_classes(classes=args.classes, mask_values=args.mask_values, labels=args.labels,
                               found=found, saved=saved, saved_from=saved_from, fallback=fallback)
    except ValueError as exc:
        if "not known" not in str(exc):
            raise
        raise ValueError(f"the classes of {root} are not known: give --classes N or --classes "
                         "classes.txt (or put a classes.txt in the dataset folder)") from None


def _layout(root):
    from ..data import dataset_layout
    return dataset_layout(root)


class Subset:
    """The items ``indices`` of a sequence (a rank's shard), as a sequence."""

    def __init__(self, items, indices):
        self.items, self.indices = items, list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.items[self.indices[i]]

    def __iter__(self):
        for i in self.indices:
            yield self.items[i]


def single_image(image, annotation, label_map):
    """``--image``/``--annotation`` as a one-item dataset (checked like any other)."""
    from ..data import SegmentationDataset

    stem = os.path.splitext(os.path.basename(image))[0]
    return SegmentationDataset([(stem, image, annotation)], label_map, f"image {image!r}")


def dataset_from_args(args, label_map, split=None):
    """The dataset the options name (``split`` overrides ``--split``)."""
    from ..data import FolderDataset, VOCDataset, dataset_layout

    source = _source(args)
    split = split or args.split
    if source == "image":
        if not args.annotation:
            raise ValueError("--image needs --annotation (the ground-truth mask)")
        return single_image(args.image, args.annotation, label_map)
    root = args.voc or args.data
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder not found: {root!r}")
    if source == "voc" or dataset_layout(root) == "voc":
        return VOCDataset(root, split or args.split_default, labels=label_map)
    if split is None:                 # the default split if the folder has it, else every image
        has = os.path.isdir(os.path.join(root, args.split_default)) or \
            os.path.isfile(os.path.join(root, f"{args.split_default}.txt"))
        split = args.split_default if has else None
    return FolderDataset(root, split, labels=label_map)


def check_dataset(dataset, world, training: bool):
    """Read every mask and image header once, the ranks sharing the work; errors name the file.

    For training, a dataset whose masks hold fewer than two classes is an error (nothing to
    learn), and classes that never occur are reported. Returns the pixel count of each class.
    """
    import numpy as np

    from ..data import MASK_HINT

    error, counts = None, np.zeros(dataset.n_classes, np.int64)
    try:
        counts = dataset.check(world.share(range(len(dataset))), progress=world.is_root and len(dataset) > 50)
    except (OSError, ValueError) as exc:
        error = exc
    world.agree(error)
    counts = world.sum_int(counts)
    names = dataset.class_names
    if training:
        present = [names[k] for k in np.flatnonzero(counts)]
        if len(present) < 2:
            what = (f"mask {dataset.mask_path(0)!r} holds" if len(dataset) == 1
                    else f"the training masks of {dataset.name} hold")
            raise ValueError(f"{what} only the class(es) {present} besides ignored pixels (255): "
                             f"nothing to tell apart; {MASK_HINT}")
        absent = [names[k] for k in range(len(names)) if counts[k] == 0]
        if absent and world.is_root:
            print(f"note: no training pixel of class(es) {absent}", flush=True)
    return counts
