"""``tinyseg crf``: refine a probability map with the dense CRF and write the labels as a PNG."""
from __future__ import annotations

import argparse
import time

import numpy as np

__all__ = ["register", "run", "load_probabilities"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``crf`` subcommand to ``tinyseg``'s subparsers."""
    p = subparsers.add_parser(
        "crf",
        help="refine class probabilities with a fully connected CRF",
        description=(
            "Refine per-pixel class probabilities (e.g. FCN-32s softmax output) with a fully "
            "connected CRF: unary -log p, a spatial Gaussian kernel and a bilateral (position + "
            "colour) kernel, mean-field inference. Defaults are the seed's pydensecrf settings."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--image", required=True, help="RGB image file (JPEG, PNG, ...)")
    p.add_argument("--probabilities", required=True,
                   help="class probabilities as a .npy file: H×W×C (also accepted: C×H×W, 1×H×W×C)")
    p.add_argument("--out", required=True,
                   help="output label PNG (palette PNG whose pixel values are the class indices)")
    p.add_argument("--sdims", type=float, nargs="+", default=[50.0, 50.0], metavar="S",
                   help="bilateral kernel: spatial standard deviation(s) in pixels (row, col)")
    p.add_argument("--schan", type=float, nargs="+", default=[20.0, 20.0, 20.0], metavar="S",
                   help="bilateral kernel: colour standard deviation(s) in 0-255 units (r, g, b)")
    p.add_argument("--compat", type=float, default=10.0,
                   help="bilateral kernel: Potts weight (0 drops the kernel)")
    p.add_argument("--gaussian-sdims", type=float, nargs="+", default=[10.0, 10.0], metavar="S",
                   help="spatial Gaussian kernel: standard deviation(s) in pixels (row, col)")
    p.add_argument("--gaussian-compat", type=float, default=3.0,
                   help="spatial Gaussian kernel: Potts weight (0 drops the kernel)")
    p.add_argument("--iterations", type=int, default=5, help="mean-field iterations")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the mean field runs: cpu (Numba @njit) or cuda (numba.cuda); default cpu")
    p.add_argument("--method", choices=["fast", "exact"], default="fast",
                   help="filtering: 'fast' (exact separable Gaussian + sparse bilateral grid) or "
                        "'exact' (brute force O(N^2), small images only)")
    p.add_argument("--save-q", metavar="PATH", default=None,
                   help="also save the refined marginals Q (H×W×C float32) as .npy")
    p.set_defaults(func=run)
    return p


def _one_or_many(values, n, name):
    if len(values) == 1:
        return tuple(values) * n
    if len(values) != n:
        raise ValueError(f"--{name} takes 1 or {n} values, got {len(values)}")
    return tuple(values)


def load_probabilities(path, shape) -> np.ndarray:
    """Read a .npy probability map and return it as H×W×C for an image of ``shape`` (H, W)."""
    try:
        p = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"probabilities file not found: {path!r}") from None
    except Exception as exc:
        raise ValueError(f"cannot read probabilities file {path!r} as .npy: {exc}") from exc
    h, w = shape
    if p.ndim == 4 and p.shape[0] == 1:
        p = p[0]                                                    # (1, H, W, C) -> (H, W, C)
    if p.ndim == 3 and p.shape[:2] != (h, w) and p.shape[1:] == (h, w):
        p = np.moveaxis(p, 0, -1)                                   # (C, H, W) -> (H, W, C)
    if p.ndim != 3 or p.shape[:2] != (h, w):
        raise ValueError(f"probabilities in {path!r} have shape {p.shape} but the image is "
                         f"{h}×{w}: expected H×W×C (or C×H×W)")
    return p


def run(args) -> int:
    """Run ``tinyseg crf``; returns the exit code."""
    from ..data import load_image, save_label_png
    from .refine import dense_crf

    image = load_image(args.image)
    probabilities = load_probabilities(args.probabilities, image.shape[:2])
    t0 = time.perf_counter()
    labels, q = dense_crf(
        image, probabilities,
        sdims=_one_or_many(args.sdims, 2, "sdims"),
        schan=_one_or_many(args.schan, 3, "schan"),
        compat=args.compat,
        gaussian_sdims=_one_or_many(args.gaussian_sdims, 2, "gaussian-sdims"),
        gaussian_compat=args.gaussian_compat,
        iterations=args.iterations,
        method=args.method,
        device=args.device,
    )
    seconds = time.perf_counter() - t0
    save_label_png(args.out, labels)
    if args.save_q:
        np.save(args.save_q, q)
    changed = float(np.mean(labels != np.argmax(probabilities, axis=2)))
    print(f"crf: {image.shape[0]}×{image.shape[1]}, {q.shape[2]} classes, {args.iterations} "
          f"iterations in {seconds:.3f} s; {100 * changed:.2f}% of the labels changed; "
          f"wrote {args.out}")
    return 0
