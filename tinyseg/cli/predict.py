"""The ``predict`` subcommand: labels, probabilities and figures for an image or a folder of images.

Class names come from the checkpoint: the overlays' legends and the printed class shares use
them. Under ``mpiexec -n R`` the ranks share the images of a folder.
"""
from __future__ import annotations

import os

import numpy as np

from .crf_options import add_crf_options, crf_options_given, crf_params_from_args
from . import argcheck
from .common import add_device, load_model
from .memcheck import check_forward


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="segment an image or a folder of images with a trained checkpoint "
        "(+ CRF)",
        description="""Predict labels and probabilities; optionally refine them with the dense CRF;
        write label PNGs (VOC palette; pixel values are the classes), the same labels as colour
        overlays on the image with a legend of the class names (*_overlay.png), the probabilities
        (.npy) and, for two classes, the post's figures. A folder of images gives OUT/NAME.png,
        OUT/NAME_overlay.png (and OUT/NAME_crf*.png) per image.""")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `tinyseg train`")
    p.add_argument("--image", required=True, help="the RGB image to segment, or a folder of images")
    p.add_argument("--out", default="prediction", help="output folder (default: %(default)s)")
    p.add_argument("--crf", action="store_true", help="also refine with the dense CRF (seed parameters "
                   "unless --crf-params or a CRF option below is given, which imply --crf)")
    p.add_argument("--save-probabilities", action="store_true",
                   help="for a folder: also write OUT/NAME.npy (always written for one image)")
    add_device(p)
    add_crf_options(p)
    p.set_defaults(func=_predict)


def _folder_images(folder):
    from ..data.datasets import IMAGE_EXTENSIONS

    names = sorted(n for n in os.listdir(folder) if not n.startswith(".")
                   and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
                   and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise ValueError(f"--image: folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    stems = [os.path.splitext(n)[0] for n in names]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ValueError(f"--image: folder {folder} has several images named {dup[0]!r} (outputs are "
                         "named by file stem)")
    return [os.path.join(folder, n) for n in names]


def _shares(counts, names) -> str:
    total = max(int(counts.sum()), 1)
    return ", ".join(f"{n} {100 * c / total:.1f} %" for n, c in zip(names, counts) if c)


def _predict(args) -> int:
    from ..weights.checkpoint import read_checkpoint_config
    from ..data import load_image, save_label_png
    from ..training.distributed import World, configure_threads
    from ..figures import overlay_figure, prediction_figure
    from ..crf.batch import refine_stream
    from ..predict import predict
    from .dataopts import saved_label_map

    world = World.detect()
    threads = configure_threads(world)          # per rank under mpiexec, 0 for one process
    argcheck.existing_file(args.checkpoint, "--checkpoint")
    folder = os.path.isdir(args.image)
    if not folder:
        argcheck.existing_file(args.image, "--image")
    argcheck.output_folder(args.out, "--out")
    argcheck.device_available(args.device)
    args.crf = args.crf or crf_options_given(args)
    crf_params = crf_params_from_args(args)
    names = saved_label_map(read_checkpoint_config(args.checkpoint)[0]).names
    paths = _folder_images(args.image) if folder else [args.image]
    check_forward(read_checkpoint_config(args.checkpoint)[0].get("model", {}), paths)
    # No background compile here (tinyseg.cli.warmup): the network of a checkpoint may itself run
    # CRF kernels (CRF-as-RNN), and two processes must never compile the same kernel at once.
    model = load_model(args.checkpoint, args.device)
    os.makedirs(args.out, exist_ok=True)
    counts = np.zeros(len(names), np.int64)
    mine = world.share(paths)
    if folder and world.is_root:
        from tqdm.auto import tqdm
        mine = tqdm(mine, desc="predict", unit="image")
    written = []

    def network():                              # the network's outputs, image by image
        for path in mine:
            yield (path, *_network_outputs(path))

    def _network_outputs(path):
        image = load_image(path)
        labels, probs = predict(model, image)
        np.add(counts, np.bincount(labels.ravel(), minlength=len(names)), out=counts)
        stem = os.path.splitext(os.path.basename(path))[0] if folder else "labels"
        out = lambda suffix: os.path.join(args.out, f"{stem}{suffix}")      # noqa: E731
        save_label_png(out(".png"), labels)
        overlay_figure(out("_overlay.png"), image, labels, names,
                       "network + CRF-as-RNN" if hasattr(model, "crf") else "network")
        written.extend([out(".png"), out("_overlay.png")])
        if not folder or args.save_probabilities:
            npy = out(".npy") if folder else os.path.join(args.out, "probabilities.npy")
            np.save(npy, probs)
            written.append(npy)
        if not folder and probs.shape[-1] == 2:
            prediction_figure(os.path.join(args.out, "prediction.png"), labels, probs, class_names=names)
            written.append(os.path.join(args.out, "prediction.png"))
        return image, probs, out

    # The CRF of a folder runs on every core (one image per core in worker threads, a few images at
    # a time; labels identical to one image at a time), of this process or of this rank.
    stream = network()
    if args.crf:
        stream = refine_stream(stream, dict(crf_params, device=args.device),
                               workers=(threads or None) if folder else 1, item=lambda r: (r[1], r[2]))
    for record in stream:
        if not args.crf:
            continue
        (path, image, probs, out), crf_labels = record
        crf = lambda suffix: out(f"_crf{suffix}") if folder else os.path.join(  # noqa: E731
            args.out, f"crf_labels{suffix}")
        save_label_png(crf(".png"), crf_labels)
        overlay_figure(crf("_overlay.png"), image, crf_labels, names, "dense CRF")
        written += [crf(".png"), crf("_overlay.png")]
    counts = world.sum_int(counts)
    if world.is_root:
        if folder:
            print(f"wrote the labels of {len(paths)} images into {args.out}")
        else:
            print(f"wrote {', '.join(written)}")
        print(f"predicted classes: {_shares(counts, names)}")
    return 0
