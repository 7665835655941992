"""The default recipe from scratch on a new small dataset: does ``tinyseg train`` learn it in 10 minutes?

Builds the synthetic textured-shapes dataset (:mod:`tinyseg.data.synthetic`: 4 classes, textured
shapes on textured backgrounds, exact ground truth; 48 training and 16 held-out images of
160×224 in the VOC layout), then for each ``--model`` runs, as a user would::

    tinyseg train --voc ROOT --classes ROOT/classes.txt --model M --width 0.25 --max-minutes 10 \\
        --checkpoint M.h5 [--val-split val]
    tinyseg evaluate --checkpoint M.h5 --voc ROOT --split val --no-crf --json M.json

and prints the held-out mean IoU and the per-class IoU under the dataset's class names. With
``--compare-post`` the post's recipe (Adam 1e-4, summed loss, batch 1) trains in the same time
on the same data, as the peer. Records (``--json``): ``name``, ``tinyseg_s`` (training wall time),
``mean_iou``, ``per_class_iou``, ``iterations``, and with the peer ``peer_s``, ``peer_mean_iou``,
``ratio`` (= tinyseg_s / peer_s).

Goal: held-out mean IoU >= 0.7 (0.85 hoped for) within 10 minutes on 2 cores, with
FCN-8s or DeepLab-LargeFOV at width 0.25. Give it a quiet machine: it is a 10-minute budget.

``--ablation`` instead trains FCN-8s with the default recipe and with one thing changed at a time
(the post's recipe, Adam 1e-4, dropout 0.5, no augmentation, a constant rate, batch 1, SGD), each
on the same number of images (``--images``, default 1200, what 10 minutes give on 2 quiet cores)
rather than for a time, so the figures do not depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tinyseg(*args, env):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinyseg.cli", *args], env=env, text=True,
                          capture_output=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_recipe: tinyseg {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def train_and_evaluate(model, data, out, minutes, width, recipe, val, env):
    ckpt = os.path.join(out, f"{model}-{recipe or 'default'}.h5")
    args = ["train", "--voc", data, "--classes", os.path.join(data, "classes.txt"), "--model", model,
            "--width", str(width), "--max-minutes", str(minutes), "--checkpoint", ckpt, "--no-progress"]
    if recipe:
        args += ["--recipe", recipe, "--iterations", "1000000"]
    if val:
        args += ["--val-split", "val"]
    stdout, seconds = tinyseg(*args, env=env)
    report = ckpt.replace(".h5", ".json")
    tinyseg("evaluate", "--checkpoint", ckpt, "--voc", data, "--split", "val", "--no-crf", "--trimap",
            "none", "--json", report, env=env)
    with open(report) as f:
        fcn = json.load(f)["fcn"]
    from tinyseg.weights.checkpoint import read_checkpoint_config
    iterations = read_checkpoint_config(ckpt)[1]
    summary = [line for line in stdout.splitlines() if line.startswith(("train:", "iterations", "tinyseg train"))]
    return dict(seconds=seconds, mean_iou=fcn["mean_iou"], per_class_iou=fcn["per_class_iou"],
                iterations=iterations, log=summary)


# (name, options): the default recipe with one thing changed; every run sees --images images.
ABLATION = [
    ("scratch (default)", []),
    ("post recipe", ["--recipe", "post"]),
    ("Adam 1e-4", ["--lr", "1e-4"]),
    ("dropout 0.5", ["--dropout", "0.5"]),
    ("no augmentation", ["--no-flip", "--scale-range", "1,1"]),
    ("constant rate", ["--lr-schedule", "constant"]),
    ("batch 1", ["--batch", "1"]),
    ("SGD 0.9, lr 1e-2", ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "1e-2"]),
]


def ablation(args, data, out, env):
    records = []
    for name, options in ABLATION:
        batch = 1 if "post recipe" in name or "batch 1" in name else 2
        ckpt = os.path.join(out, f"ablation-{len(records)}.h5")
        tinyseg("train", "--voc", data, "--classes", os.path.join(data, "classes.txt"), "--model", "fcn8s",
                "--width", str(args.width), "--iterations", str(args.images // batch), "--checkpoint", ckpt,
                "--no-progress", "--overwrite", *options, env=env)
        report = ckpt.replace(".h5", ".json")
        tinyseg("evaluate", "--checkpoint", ckpt, "--voc", data, "--split", "val", "--no-crf",
                "--trimap", "none", "--json", report, env=env)
        with open(report) as f:
            miou = json.load(f)["fcn"]["mean_iou"]
        print(f"{name:<20} {args.images // batch:>5} steps of batch {batch}: held-out mean IoU {miou:.4f}",
              flush=True)
        records.append({"name": f"ablation: {name}", "mean_iou": miou, "images": args.images,
                        "options": options})
    return records


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="fcn8s,deeplab-largefov", help="comma-separated (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per model (default 10)")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--train", type=int, default=48, help="training images (default 48)")
    p.add_argument("--val", type=int, default=16, help="held-out images (default 16)")
    p.add_argument("--validate", action="store_true", help="also validate during training (--val-split)")
    p.add_argument("--compare-post", action="store_true", help="also train the post's recipe as the peer")
    # the old spelling of --compare-post, hidden; removed with tinyseg._moved's old values
    p.add_argument("--compare-seed", dest="compare_post", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ablation", action="store_true", help="one change at a time, on --images images")
    p.add_argument("--images", type=int, default=1200, help="images per ablation run (default 1200)")
    p.add_argument("--keep", metavar="DIR", help="keep the dataset and checkpoints here")
    p.add_argument("--json", help="write the records here")
    args = p.parse_args()
    sys.path.insert(0, ROOT)
    from tinyseg.data.synthetic import write_dataset

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = args.keep or tempfile.mkdtemp(prefix="tinyseg-recipe-")
    data = os.path.join(out, "shapes")
    if not os.path.isdir(data):
        names = write_dataset(data, {"train": args.train, "val": args.val}, layout="voc", n_classes=4)
        print(f"dataset: {data}: {args.train} + {args.val} images of 160×224, classes {', '.join(names)}")
    if args.ablation:
        write_json(args.json, ablation(args, data, out, env))
        return
    records = []
    for model in args.models.split(","):
        load = os.getloadavg()[0]
        mine = train_and_evaluate(model, data, out, args.minutes, args.width, None, args.validate, env)
        rec = {"name": f"recipe_default_{model}", "tinyseg_s": mine["seconds"], "mean_iou": mine["mean_iou"],
               "per_class_iou": mine["per_class_iou"], "iterations": mine["iterations"],
               "load_before": load}
        print(f"{model}: default recipe, {mine['seconds'] / 60:.1f} min, {mine['iterations']} iterations: "
              f"held-out mean IoU {mine['mean_iou']:.4f}  (load {load:.2f})")
        for line in mine["log"]:
            print("    " + line)
        for name, iou in mine["per_class_iou"].items():
            print(f"    {name:<10} IoU {iou if iou is not None else float('nan'):.4f}")
        if args.compare_post:
            post = train_and_evaluate(model, data, out, args.minutes, args.width, "post", False, env)
            rec.update(peer="post recipe (Adam 1e-4, summed loss, batch 1)", peer_s=post["seconds"],
                       ratio=mine["seconds"] / post["seconds"], peer_mean_iou=post["mean_iou"],
                       peer_iterations=post["iterations"])
            print(f"{model}: post recipe, {post['seconds'] / 60:.1f} min, {post['iterations']} iterations: "
                  f"held-out mean IoU {post['mean_iou']:.4f}")
        records.append(rec)
    print(f"load average after: {os.getloadavg()[0]:.2f}; files in {out}")
    write_json(args.json, records)


if __name__ == "__main__":
    main()
