"""Do the CRF-as-RNN fine-tuning options help on a second dataset? ``tinyseg train`` end to end.

A folder dataset of 64×64 crops of scikit-image's ``coins`` (masks: smoothed image > Otsu's
threshold, holes filled; training crops from the left 60 % of the picture, validation crops
from the right 40 %), an FCN-8s trained from scratch on it, then for each option set and seed
``tinyseg train --init-from base.h5 --crf-rnn OPTIONS --val-split val``; the validations of
each run (network + CRF, and the network alone; iteration 0 is the starting model) come from its
checkpoint. Prints one table row per run: start network alone, start with the untrained CRF
(the post's Potts parameters), last iteration with the CRF, best and its iteration.

    python benchmarks/check_crf_rnn_options.py --out /tmp/coins --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys

import numpy as np

OPTION_SETS = {
    "short: warmup 5, aux 3, lr 3e-4, 20 it": ["--crf-warmup", "5", "--crf-aux-weight", "3", "--lr", "3e-4",
                                              "--iterations", "20"],
    "README: warmup 50, aux 3, lr 3e-4, 100 it": ["--crf-warmup", "50", "--crf-aux-weight", "3", "--lr",
                                                 "3e-4", "--iterations", "100"],
    "defaults, 20 it": ["--iterations", "20"],
}


def write_coins(root: str, n_train: int, n_val: int, size: int = 64, seed: int = 0) -> None:
    from PIL import Image
    from scipy import ndimage
    from skimage import data, filters

    gray = data.coins()
    smooth = filters.gaussian(gray, 2, preserve_range=True)
    mask = ndimage.binary_fill_holes(smooth > filters.threshold_otsu(smooth)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    H, W = gray.shape
    split_x = int(0.6 * W)
    for split, n, (x0, x1) in (("train", n_train, (0, split_x - size)), ("val", n_val, (split_x, W - size))):
        os.makedirs(os.path.join(root, split, "images"), exist_ok=True)
        os.makedirs(os.path.join(root, split, "masks"), exist_ok=True)
        for i in range(n):
            y, x = int(rng.integers(0, H - size)), int(rng.integers(x0, x1))
            crop = gray[y:y + size, x:x + size]
            Image.fromarray(np.repeat(crop[..., None], 3, -1)).save(os.path.join(root, split, "images", f"{i:03d}.png"))
            Image.fromarray(mask[y:y + size, x:x + size]).save(os.path.join(root, split, "masks", f"{i:03d}.png"))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("background\ncoin\n")


def train(args) -> None:
    from tinyseg.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["train", *args])
    except SystemExit as exc:
        code = exc.code
    if code != 0:
        sys.exit(f"tinyseg train {' '.join(args)} failed: {err.getvalue()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="crf_rnn_options")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--width", default="0.25")
    p.add_argument("--base-iterations", default="300")
    a = p.parse_args()
    from tinyseg.weights.checkpoint import load_checkpoint

    root = os.path.join(a.out, "coins")
    if not os.path.exists(root):
        write_coins(root, n_train=32, n_val=16)
    data = ["--data", root, "--classes", os.path.join(root, "classes.txt"), "--no-progress",
            "--val-split", "val"]
    base = os.path.join(a.out, "base.h5")
    if not os.path.exists(base):
        train([*data, "--model", "fcn8s", "--width", a.width, "--iterations", a.base_iterations,
               "--checkpoint", base, "--val-every", "50"])
    print(f"base FCN-8s (width {a.width}, {a.base_iterations} iterations): validations "
          f"{[(it, round(v, 4)) for it, v in load_checkpoint(base).extra['validations']]}")
    print("| options | seed | network alone (start) | + untrained CRF (start) | with CRF, last | best (iteration) |")
    print("|---|---|---|---|---|---|")
    for name, options in OPTION_SETS.items():
        for seed in a.seeds:
            ckpt = os.path.join(a.out, f"rnn-{abs(hash(name)) % 10**6}-{seed}.h5")
            train([*data, "--init-from", base, "--crf-rnn", *options, "--seed", str(seed),
                   "--val-every", "5", "--checkpoint", ckpt, "--overwrite"])
            extra = load_checkpoint(ckpt).extra
            v, n = extra["validations"], extra["network_validations"]
            print(f"| {name} | {seed} | {n[0][1]:.4f} | {v[0][1]:.4f} | {v[-1][1]:.4f} | "
                  f"{extra['best_miou']:.4f} ({extra['best_iteration']}) |", flush=True)


if __name__ == "__main__":
    main()
