"""``tinyseg crf``: refine a probability map with the dense CRF and write the labels as a PNG."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .crf_options import add_crf_options, crf_params_from_args

__all__ = ["register", "run", "run_folder", "match_folder", "load_probabilities",
           "check_label_output"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``crf`` subcommand to ``tinyseg``'s subparsers."""
    p = subparsers.add_parser(
        "crf",
        help="refine class probabilities with a fully connected CRF",
        description=(
            "Refine per-pixel class probabilities (e.g. FCN-32s softmax output) with a fully "
            "connected CRF: unary -log p, a spatial Gaussian kernel and a bilateral (position + "
            "colour) kernel, mean-field inference. Defaults are the post's pydensecrf settings; "
            "a probability of exactly 0 keeps its class out of that pixel."),
    )
    p.add_argument("--image", required=True,
                   help="RGB image file (JPEG, PNG, ...), or a folder of them: then --probabilities "
                   "is a folder of STEM.npy matched by file stem and --out a folder that gets STEM.png")
    p.add_argument("--probabilities", required=True,
                   help="class probabilities: a .npy file (H×W×C; also C×H×W or 1×H×W×C), or a "
                   ".npz holding one such array (a folder of .npy with a folder of images)")
    p.add_argument("--out", required=True,
                   help="output label PNG (palette PNG whose pixel values are the class indices; "
                   "label maps are kept lossless, so the name must end in .png); with a folder of "
                   "images, the output folder (created if its parent exists)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="folder of images: workers refining one image each on one core (threads "
                   "of this process; default: the usable cores; under mpiexec the ranks share the "
                   "images instead)")
    add_crf_options(p, iterations_flag="--iterations")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the mean field runs: cpu (Numba @njit) or cuda (numba.cuda); default cpu")
    p.add_argument("--method", choices=["fast", "exact"], default="fast",
                   help="filtering: 'fast' (separable/recursive spatial Gaussian, sparse bilateral "
                   "grid or cluster filter) or 'exact' (brute force O(N^2): small images only, "
                   "larger ones need --force); default fast")
    p.add_argument("--force", action="store_true",
                   help="let --method exact take an image of more than 40000 pixels (hours of work)")
    p.add_argument("--save-q", metavar="PATH", default=None,
                   help="also save the refined marginals Q (H×W×C float32) as .npy")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _magic(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def load_probabilities(path, shape) -> np.ndarray:
    """Read a .npy (or one-array .npz) probability map as H×W×C for an image of ``shape`` (H, W).

    Errors are one line that names the file and what it holds instead.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"probabilities file not found: {path!r}")
    head = _magic(path)
    if head.startswith(_PNG_MAGIC) or head[:3] == b"\xff\xd8\xff":
        raise ValueError(f"probabilities file {path!r} is an image, not an array: give the "
                         "network's class probabilities as .npy (H×W×C float), e.g. the "
                         "probabilities.npy that `tinyseg predict` writes")
    if head.startswith(_ZIP_MAGIC):
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.keys())
            if len(names) != 1 and "probabilities" not in names:
                raise ValueError(f"probabilities file {path!r} holds {len(names)} arrays "
                                 f"({', '.join(names[:5])}): give one array, or name it "
                                 "'probabilities'")
            p = npz["probabilities" if "probabilities" in names else names[0]]
    elif head.startswith(_NPY_MAGIC):
        try:
            p = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"cannot read probabilities file {path!r}: {exc}") from None
    else:
        raise ValueError(f"probabilities file {path!r} is not a NumPy .npy/.npz file")
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"probabilities in {path!r} have dtype {p.dtype}: expected floats "
                         "(class probabilities in [0, 1])")
    h, w = shape
    if p.ndim == 4 and p.shape[0] == 1:
        p = p[0]                                                    # (1, H, W, C) -> (H, W, C)
    if p.ndim == 3 and p.shape[:2] != (h, w) and p.shape[1:] == (h, w):
        p = np.moveaxis(p, 0, -1)                                   # (C, H, W) -> (H, W, C)
    if p.ndim != 3 or p.shape[:2] != (h, w):
        raise ValueError(f"probabilities in {path!r} have shape {p.shape} but the image is "
                         f"{h}×{w}: expected H×W×C (or C×H×W)")
    return p


def check_label_output(path: str, option: str = "--out") -> None:
    """A label map is written losslessly as PNG: refuse other extensions and missing folders."""
    ext = os.path.splitext(path)[1].lower()
    if ext != ".png":
        raise ValueError(f"{option} {path!r}: label maps are written as PNG (lossless; a JPEG "
                         "would blur the class indices), so the name must end in .png")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{option} {path!r}: folder {folder!r} does not exist")


class _Progress:
    """A tqdm bar on stderr fed by dense_crf's ``progress(stage, done, total)``."""

    def __init__(self, iterations: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=iterations, desc="crf", unit="it", file=sys.stderr, leave=False)

    def __call__(self, stage, done, total):
        if self.bar is None:
            return
        if stage == "iteration":
            self.bar.n = done
            self.bar.set_postfix_str("")
        else:                                   # rows of an exact filtering
            self.bar.set_postfix_str(f"exact filter {100 * done // total}%")
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run(args) -> int:
    """Run ``tinyseg crf``; returns the exit code."""
    from ..data import load_image, save_label_png
    from ..crf.refine import dense_crf

    params = crf_params_from_args(args)
    if params["iterations"] < 1:
        where = f"--crf-params {args.crf_params}" if args.crf_iterations is None else "--iterations"
        raise ValueError(f"{where}: mean-field iterations must be a positive integer, got "
                         f"{params['iterations']} (0 would leave the probabilities as they are)")
    if os.path.isdir(args.image):
        return run_folder(args, params)
    check_label_output(args.out)
    if args.save_q:
        folder = os.path.dirname(os.path.abspath(args.save_q))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"--save-q {args.save_q!r}: folder {folder!r} does not exist")
    image = load_image(args.image)
    probabilities = load_probabilities(args.probabilities, image.shape[:2])
    if probabilities.shape[2] < 2:
        raise ValueError(f"--probabilities {args.probabilities}: {probabilities.shape[2]} class; a CRF "
                         "needs at least 2 classes to choose between (give H×W×C with C >= 2)")
    progress = _Progress(params["iterations"], enabled=not args.quiet)
    t0 = time.perf_counter()
    try:
        labels, q = dense_crf(image, probabilities, method=args.method, device=args.device,
                              force=args.force, progress=progress, **params)
    except KeyboardInterrupt:
        progress.close()
        print("tinyseg crf: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        progress.close()
    seconds = time.perf_counter() - t0
    save_label_png(args.out, labels)
    if args.save_q:
        np.save(args.save_q, q)
    changed = float(np.mean(labels != np.argmax(probabilities, axis=2)))
    print(f"crf: {image.shape[0]}×{image.shape[1]}, {q.shape[2]} classes, {params['iterations']} "
          f"iterations in {seconds:.3f} s; {100 * changed:.2f}% of the labels changed; "
          f"wrote {args.out}")
    return 0


def _probability_shape(path: str) -> tuple:
    """The array shape in a .npy file's header, without reading the data."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read probabilities file {path!r}: {exc}") from None


def match_folder(image_dir: str, prob_dir: str) -> list[tuple[str, str, str]]:
    """``[(stem, image path, probabilities path)]`` of two folders matched by file stem, sorted.

    Checked before any work: both folders exist, every image has a ``STEM.npy`` and every
    ``.npy`` an image, stems are unique, and each array's shape is H×W×C (or C×H×W, 1×H×W×C) for
    its image's H×W. Each problem is one error that names the files.
    """
    from PIL import Image

    from ..data.datasets import IMAGE_EXTENSIONS

    if not os.path.isdir(prob_dir):
        raise FileNotFoundError(f"--probabilities {prob_dir!r}: with a folder of images, give a "
                                "folder of probabilities (STEM.npy per image)")
    images = {}
    for name in sorted(os.listdir(image_dir)):
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in images:
            raise ValueError(f"--image {image_dir!r} has several images named {stem!r} (outputs are "
                             "named by file stem)")
        images[stem] = os.path.join(image_dir, name)
    if not images:
        raise ValueError(f"--image: folder {image_dir!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    probs = {os.path.splitext(n)[0]: os.path.join(prob_dir, n) for n in sorted(os.listdir(prob_dir))
             if n.endswith(".npy") and not n.startswith(".")}
    no_probs = sorted(set(images) - set(probs))
    no_image = sorted(set(probs) - set(images))
    if no_probs or no_image:
        parts = []
        if no_probs:
            parts.append(f"{len(no_probs)} image(s) without STEM.npy in {prob_dir!r} (e.g. "
                         f"{', '.join(no_probs[:3])})")
        if no_image:
            parts.append(f"{len(no_image)} .npy file(s) without an image in {image_dir!r} (e.g. "
                         f"{', '.join(no_image[:3])})")
        raise ValueError("unmatched file stems: " + "; ".join(parts))
    pairs = []
    for stem in sorted(images):
        try:
            with Image.open(images[stem]) as im:
                w, h = im.size
        except Exception as exc:  # PIL raises many types
            raise ValueError(f"cannot read image file {images[stem]!r}: {exc}") from None
        shape = _probability_shape(probs[stem])
        if shape[:1] == (1,) and len(shape) == 4:
            shape = shape[1:]
        if len(shape) != 3 or (shape[:2] != (h, w) and shape[1:] != (h, w)):
            raise ValueError(f"probabilities {probs[stem]!r} have shape {shape} but the image "
                             f"{images[stem]!r} is {h}×{w}: expected H×W×C (or C×H×W)")
        pairs.append((stem, images[stem], probs[stem]))
    return pairs


def run_folder(args, params: dict) -> int:
    """``tinyseg crf`` on a folder: every image refined (on every core), labels as OUT/STEM.png."""
    from ..data import save_label_png
    from ..crf.batch import default_workers, mpi_world_size, refine_many

    if args.save_q:
        raise ValueError("--save-q takes one image; with a folder of images leave it out")
    if args.device != "cpu":
        raise ValueError("a folder of images is refined on the CPU's cores; --device cuda takes "
                         "one image")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    parent = os.path.dirname(os.path.abspath(args.out))
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out!r} is a file: with a folder of images give an output folder")
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--out {args.out!r}: folder {parent!r} does not exist")
    pairs = match_folder(args.image, args.probabilities)
    os.makedirs(args.out, exist_ok=True)
    workers = default_workers() if args.workers is None else args.workers
    t0 = time.perf_counter()
    kw = dict(params, method=args.method, force=args.force)
    try:
        labels = refine_many([(img, prob) for _, img, prob in pairs], kw, workers=workers,
                             progress=not args.quiet, reader=load_probabilities)
    except KeyboardInterrupt:
        print("tinyseg crf: interrupted; nothing written", file=sys.stderr)
        return 130
    if labels is None:                                # an MPI rank other than 0
        return 0
    for (stem, _, _), lab in zip(pairs, labels):
        save_label_png(os.path.join(args.out, f"{stem}.png"), lab)
    how = (f"{mpi_world_size()} MPI ranks" if mpi_world_size() > 1
           else f"{min(workers, len(pairs))} worker thread(s)")
    print(f"crf: {len(pairs)} images, {params['iterations']} iterations, {how}, in "
          f"{time.perf_counter() - t0:.2f} s; wrote {args.out}/STEM.png")
    return 0
