"""Options and helpers shared by the ``train``, ``predict`` and ``evaluate`` subcommands."""
from __future__ import annotations


def add_device(p):
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the network runs: cpu (Numba @njit) or cuda (numba.cuda); default cpu")


def add_data(p, split_default):
    g = p.add_argument_group("data (one image, or a PASCAL VOC folder)")
    g.add_argument("--image", help="an RGB image file (JPEG/PNG)")
    g.add_argument("--annotation", help="its annotation PNG (grayscale or palette indices)")
    g.add_argument("--voc", metavar="ROOT", help="a PASCAL VOC folder with JPEGImages/, "
                   "SegmentationClass/ and ImageSets/Segmentation/")
    g.add_argument("--split", default=split_default, help="VOC split to use (default: %(default)s)")
    g.add_argument("--labels", choices=["binary", "voc"], default=None,
                   help="label mapping: 'binary' (the seed: value 1 = object, rest background; 255 "
                   "ignored) or 'voc' (21 classes, 255 ignored). Default: binary for --image, voc for --voc")


def samples_from_args(args):
    """A sequence of (image, labels) pairs and the number of classes, from --image/--voc."""
    from ..data import VOCDataset, binary_labels, load_annotation, load_image, voc_labels

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
    """The model stored in a training checkpoint (its config names it; none named: FCN-32s)."""
    from ..checkpoint import load_checkpoint
    from ..models import model_from_config

    ckpt = load_checkpoint(checkpoint)
    return model_from_config(ckpt.config["model"], backend=device, params=ckpt.params)
