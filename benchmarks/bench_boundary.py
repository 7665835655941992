"""Boundary accuracy of the two cures, measured: FCN-32s vs FCN-8s vs DeepLab-LargeFOV, each
before and after the post's dense CRF, on the bundled image and on synthetic shapes.

Runs :func:`tinyseg.studies.cures.run_study` on each dataset (``chelsea``: the bundled cat, binary,
trained on the labels of alternate 30-row strips and scored on the others; ``chelsea-post``: the
post's protocol, trained and scored on the same labels; ``shapes``: 16 training and 6 held-out
images of textured shapes, 4 classes, exact ground truth, every label edge a colour edge;
``camouflage``: the same sizes and classes, but colour edges are not label edges) and prints, per
dataset, the table of mean IoU and trimap IoU (w = 2 … 20) as means over seeds 0–3 (``--seed``,
``--seeds``), then two checks for every w ≤ 8 on those means: FCN-8s above FCN-32s, and the CRF
above the network for each model, each with the number of seeds on which it also holds alone. The
figures and tables of each study go to ``--out/<dataset>/``. Nothing is asserted: the checks are
printed and stored as measured.

    python benchmarks/bench_boundary.py [--data chelsea,chelsea-post,shapes,camouflage]
                                        [--out boundary/] [--json PATH] [--width W]
                                        [--iterations N] [--weights vgg16.npz] [--seed 0] [--seeds 4]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def checks(models: dict, widths, max_w: int = 8) -> dict:
    """The two cures' claims for every trimap w ≤ ``max_w``: ``{claim: bool}`` as measured.

    ``models`` maps each model to its ``{"fcn": scores, "crf": scores}`` (the means over seeds, or
    one seed's).
    """
    widths = [w for w in widths if w <= max_w]

    def t(name, stage, w):
        return models[name][stage]["trimap"][str(w)]["mean_iou"]

    out = {}
    if "fcn8s" in models and "fcn32s" in models:
        out["fcn8s_above_fcn32s"] = all(t("fcn8s", "fcn", w) > t("fcn32s", "fcn", w) for w in widths)
    for name in models:
        out[f"crf_raises_{name}"] = all(t(name, "crf", w) > t(name, "fcn", w) for w in widths)
    return out


def seed_counts(result: dict, max_w: int = 8) -> dict:
    """For each claim, on how many seeds it holds for that seed's run alone."""
    seeds = [str(seed) for seed in result["settings"]["seeds"]]
    per_seed = [checks({name: entry["seeds"][seed] for name, entry in result["models"].items()},
                       result["settings"]["trimap_widths"], max_w) for seed in seeds]
    return {claim: sum(run[claim] for run in per_seed) for claim in per_seed[0]}


def main(argv=None):
    from tinyseg._moved import cli_value
    from tinyseg.studies.cures import STUDY_DATA, STUDY_SEEDS, run_study

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=",".join(STUDY_DATA),
                        help="comma-separated datasets (default: %(default)s)")
    parser.add_argument("--out", default="boundary", help="folder for each study's figures and tables")
    parser.add_argument("--json", metavar="PATH", help="write every study and its checks as JSON")
    parser.add_argument("--width", type=float, help="channel multiplier (default: the study's per dataset)")
    parser.add_argument("--iterations", type=int, help="training iterations (default: the study's)")
    parser.add_argument("--weights", help="imported VGG-16 weights: the pretrained setting")
    parser.add_argument("--seed", type=int, default=0, help="first initialisation and dropout seed")
    parser.add_argument("--seeds", type=int, default=len(STUDY_SEEDS), help="number of seeds averaged "
                        "(default %(default)s)")
    args = parser.parse_args(argv)
    datasets = [cli_value("--data")(d) for d in args.data.split(",") if d]
    unknown = [d for d in datasets if d not in STUDY_DATA]
    if unknown or not datasets:
        parser.error(f"--data: unknown dataset {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(STUDY_DATA)}")

    report = {}
    for data in datasets:
        t0 = time.perf_counter()
        load = os.getloadavg()[0]
        result = run_study(os.path.join(args.out, data), data=data, weights=args.weights, width=args.width,
                           iterations=args.iterations, seeds=range(args.seed, args.seed + args.seeds),
                           progress=False)
        result["checks_w_le_8"] = checks(result["models"], result["settings"]["trimap_widths"])
        result["seeds_where_check_holds"] = seed_counts(result)
        result["seconds"] = time.perf_counter() - t0
        result["load_avg_1min"] = load
        report[data] = result
        counts = result["seeds_where_check_holds"]
        print(f"{data}: checks for w ≤ 8 on the means over {args.seeds} seeds (and on how many seeds alone): "
              + ", ".join(f"{k} {'yes' if v else 'NO'} ({counts[k]}/{args.seeds})"
                          for k, v in result["checks_w_le_8"].items()))
        print(f"{data}: {result['seconds']:.0f} s, load average {load:.2f} -> {os.getloadavg()[0]:.2f}\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
