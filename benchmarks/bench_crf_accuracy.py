"""Dense CRF accuracy and memory: tinyseg vs pydensecrf against the exact CRF, and peak RSS.

**accuracy**: labels after the iterations on small crops (about 60×90 / 64×64, where the exact
CRF is affordable) of scikit-image photos with network-like probabilities (``_crf_inputs``),
compared with the exact CRF (brute-force O(N²) filtering): the share of pixels whose label
differs, tinyseg's fast filters vs pydensecrf's permutohedral lattice.

**memory**: peak RSS of a fresh worker process (``_conditions``: the same allocator settings and
one thread in both) that runs one library's CRF at 512×512 with 21 labels and DeepLab's
parameters (``VmHWM`` of ``/proc/self/status``, after a small warm-up CRF); ``added`` is the peak
minus the resident memory just before the measured run (the CRF's own working memory).

Usage: ``python benchmarks/bench_crf_accuracy.py [--quick] [--json PATH] [--skip-memory]``
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import print_table, record  # noqa: E402
from _conditions import Run, Worker, add_condition_options, conditions_from_args, serve  # noqa: E402
import _crf_inputs as inputs  # noqa: E402


def bench_accuracy(quick: bool) -> list[dict]:
    """Label disagreement with the exact CRF on small crops, tinyseg and pydensecrf."""
    import tinyseg.crf.compat as tcrf

    peer = inputs.peer_module()
    crops = {"chelsea": (60, 90), "astronaut": (64, 64), "coffee": (60, 90), "rocket": (60, 90)}
    if quick:
        crops = {k: crops[k] for k in ("chelsea", "astronaut")}
    settings = [("post", 2, 5), ("post", 21, 10), ("deeplab", 21, 10), ("srgb5", 21, 10),
                ("srgb3", 21, 10), ("srgb1", 21, 10)]
    if quick:
        settings = settings[:3]
    records = []
    for params, labels, iterations in settings:
        for k, (name, shape) in enumerate(crops.items()):
            small = inputs.resized(inputs.photo(name), shape)
            unary = inputs.unary_of(inputs.network_like_probabilities(small, labels, seed=k))
            exact = inputs.run_crf(tcrf, small, unary, params, iterations, method="exact").argmax(0)
            t0 = time.perf_counter()
            fast = inputs.run_crf(tcrf, small, unary, params, iterations).argmax(0)
            t_fast = time.perf_counter() - t0
            extra = dict(tinyseg_diff_pct=100 * float(np.mean(fast != exact)),
                         crf_changed_pct=100 * float(np.mean(exact != unary.argmin(0))))
            if peer is not None:
                theirs = inputs.run_crf(peer, small, unary, params, iterations).argmax(0)
                extra.update(peer="pydensecrf", peer_diff_pct=100 * float(np.mean(theirs != exact)))
            records.append(record(f"crf.vs-exact.{params}.{labels}labels.{name}-{shape[0]}x{shape[1]}",
                                  t_fast, **extra))
            print(f"  {records[-1]['name']}: tinyseg {extra['tinyseg_diff_pct']:.2f}% differ, "
                  f"pydensecrf {extra.get('peer_diff_pct', float('nan')):.2f}%", flush=True)
    return records


def _memory(path):
    """Worker handler: peak RSS of one CRF on the prepared inputs (this process's own figures)."""
    import tinyseg.crf.compat as tcrf
    module = tcrf if _SIDE[0] == "tinyseg" else inputs.peer_module()
    with np.load(path) as z:
        image, unary = z["image"], z["unary"]
    small = np.ascontiguousarray(image[:32, :32])
    inputs.run_crf(module, small, np.ascontiguousarray(
        unary.reshape(unary.shape[0], *image.shape[:2])[:, :32, :32].reshape(unary.shape[0], -1)),
        "deeplab")                                                     # warm-up

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024

    rss_before = status("VmRSS:")
    t0 = time.perf_counter()
    inputs.run_crf(module, image, unary, "deeplab", 10)
    return dict(seconds=time.perf_counter() - t0, rss_before_mb=rss_before, peak_mb=status("VmHWM:"))


_SIDE = [None]


def bench_memory(run: Run, cond) -> list[dict]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        image = inputs.resized(inputs.photo("astronaut"), (512, 512))
        path = os.path.join(tmp, "inputs.npz")
        np.savez(path, image=image, unary=inputs.unary_of(inputs.network_like_probabilities(image, 21)))
        for side in ("tinyseg", "pydensecrf"):
            if side == "pydensecrf" and inputs.peer_module() is None:
                continue
            # tinyseg twice: the first run may fill Numba's on-disk cache, the second is measured
            for _ in range(2 if side == "tinyseg" else 1):
                w = Worker(__file__, side, cond, 1)
                try:
                    out[side] = w.ask(cmd="memory", path=path)
                finally:
                    w.close()
            run.add_worker(w)
    t = out["tinyseg"]
    extra = dict(peak_rss_mb=t["peak_mb"], added_mb=t["peak_mb"] - t["rss_before_mb"])
    if "pydensecrf" in out:
        p = out["pydensecrf"]
        extra.update(peer="pydensecrf", peer_s=p["seconds"], peer_peak_rss_mb=p["peak_mb"],
                     peer_added_mb=p["peak_mb"] - p["rss_before_mb"],
                     peak_ratio=t["peak_mb"] / p["peak_mb"],
                     added_ratio=(t["peak_mb"] - t["rss_before_mb"]) / (p["peak_mb"] - p["rss_before_mb"]))
    return [record("crf.memory.deeplab.21labels.512x512.10it", t["seconds"], **extra)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="fewer crops and settings")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    add_condition_options(parser)
    parser.add_argument("--worker", choices=["tinyseg", "pydensecrf"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _SIDE[0] = args.worker
        serve(args.worker, args.worker_threads, {"memory": _memory})
        return 0
    cond = conditions_from_args(args)
    run = Run("bench_crf_accuracy", cond)
    records = [] if args.skip_memory else bench_memory(run, cond)
    if not args.skip_accuracy:
        records += bench_accuracy(args.quick)
    print(f"\n{cond.header()}")
    print_table(records, ["name", "tinyseg_diff_pct", "peer_diff_pct", "crf_changed_pct",
                          "peak_rss_mb", "peer_peak_rss_mb", "peak_ratio", "added_mb", "peer_added_mb",
                          "added_ratio"])
    run.write(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
