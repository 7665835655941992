"""Dense CRF: tinyseg vs pydensecrf -- time, agreement with the exact CRF, memory.

The seed's CRF (spatial Gaussian sdims 10 compat 3; bilateral sdims 50, schan 20, compat 10;
5 mean-field iterations; 2 labels), run through each library's pydensecrf API
(``DenseCRF2D`` + ``addPairwiseGaussian`` + ``addPairwiseBilateral`` + ``inference(5)``).

* **time**: set-up + 5 iterations (everything from the unary to Q), median of ``--repeat`` runs
  after a warm-up run (so Numba's compilation is cached and warm, not timed), on scikit-image's
  ``chelsea`` (300×451), ``chelsea`` resized to 375×500 (the seed's size) and ``astronaut``
  (512×512), timed round-robin with pydensecrf. pydensecrf runs single-threaded; tinyseg with
  Numba's threads (printed) and, in the ``.1thread`` records, with one thread.
* **accuracy**: the labels after 5 iterations on downsampled images (about 60×90), compared with
  the exact CRF (brute-force O(N²) filtering, float64 sums): the share of pixels whose label
  differs, for tinyseg's fast filters and for pydensecrf's permutohedral lattice.
* **memory**: peak RSS of a fresh process that runs tinyseg's CRF at 512×512 with 21 labels
  (and, for comparison, pydensecrf's), measured with ``resource.getrusage`` in a subprocess
  (tinyseg's run twice, the first filling Numba's on-disk cache); ``baseline`` is the peak
  after the imports, inputs and a small warm-up CRF, before the measured one.

"Coarse FCN-like probabilities": a binary mask (Otsu threshold of the grey image, i.e. the
image's own dark/bright regions) is averaged over 32×32 blocks and upsampled bilinearly -- what
FCN-32s's stride-32 output looks like -- then ``p1 = sigmoid(4 (m - 1/2))``, ``p0 = 1 - p1``
(so ``p`` stays in [0.12, 0.88]). With 21 labels (memory only) the other classes get random
smooth logits.

Usage: ``python benchmarks/bench_crf.py [--json PATH] [--repeat 5] [--quick]``
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, record, write_json  # noqa: E402

SEED = dict(gaussian_sxy=10, gaussian_compat=3, bilateral_sxy=50, srgb=20, bilateral_compat=10,
            iterations=5)


def images():
    from skimage import data, transform

    def resized(img, shape):
        return (transform.resize(img, shape, anti_aliasing=True) * 255).round().astype(np.uint8)

    chelsea = data.chelsea()
    return {
        "chelsea-300x451": chelsea,
        "chelsea-375x500": resized(chelsea, (375, 500)),
        "astronaut-512x512": data.astronaut(),
    }


def coarse_probabilities(image: np.ndarray, n_labels: int = 2, seed: int = 0) -> np.ndarray:
    """FCN-32s-like probabilities (H, W, C) float32 for ``image`` (see the module docstring)."""
    from skimage import color, filters, transform

    h, w = image.shape[:2]
    grey = color.rgb2gray(image)
    mask = (grey > filters.threshold_otsu(grey)).astype(np.float64)
    hb, wb = -(-h // 32), -(-w // 32)
    padded = np.pad(mask, ((0, hb * 32 - h), (0, wb * 32 - w)), mode="edge")
    blocks = padded.reshape(hb, 32, wb, 32).mean(axis=(1, 3))            # (H/32, W/32)
    m = transform.resize(blocks, (hb * 32, wb * 32), order=1)[:h, :w]      # bilinear, x32
    p1 = 1.0 / (1.0 + np.exp(-4.0 * (m - 0.5)))
    p = np.stack([1.0 - p1, p1], axis=-1)
    if n_labels > 2:
        rng = np.random.default_rng(seed)
        extra = transform.resize(rng.normal(0, 1, (hb, wb, n_labels - 2)), (h, w), order=1)
        logits = np.concatenate([np.log(p), extra - 1.0], axis=-1)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
    return p.astype(np.float32)


def unary_of(p: np.ndarray) -> np.ndarray:
    """(H, W, C) probabilities -> (C, H*W) float32 unary, C-contiguous (pydensecrf's layout)."""
    return np.ascontiguousarray(-np.log(np.maximum(p, 1e-8)).transpose(2, 0, 1).reshape(p.shape[2], -1),
                                dtype=np.float32)


def run_crf(module, image, unary, iterations=SEED["iterations"], **kw):
    """The seed's CRF through a pydensecrf-style ``module``; returns Q (C, N) as an array."""
    h, w = image.shape[:2]
    d = module.DenseCRF2D(w, h, unary.shape[0], **kw)
    d.setUnaryEnergy(unary)
    d.addPairwiseGaussian(sxy=SEED["gaussian_sxy"], compat=SEED["gaussian_compat"])
    d.addPairwiseBilateral(sxy=SEED["bilateral_sxy"], srgb=SEED["srgb"], rgbim=image,
                           compat=SEED["bilateral_compat"])
    return np.asarray(d.inference(iterations))


def peer_module():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        return None
    return dcrf


def interleaved_medians(fns: dict, repeat: int) -> dict:
    """Median seconds of each callable, timed round-robin (one warm-up round first) so that a
    shared machine's changing load falls on all of them alike."""
    times = {name: [] for name in fns}
    for r in range(repeat + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def with_threads(n: int, fn):
    """``fn`` run with Numba limited to ``n`` threads."""
    import numba

    def run():
        before = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            return fn()
        finally:
            numba.set_num_threads(before)
    return run


def bench_time(repeat: int, quick: bool) -> list[dict]:
    import numba

    import tinyseg.crf.compat as tcrf

    peer = peer_module()
    threads = numba.get_num_threads()
    records = []
    for name, image in images().items():
        if quick and name != "chelsea-375x500":
            continue
        image = np.ascontiguousarray(image)
        unary = unary_of(coarse_probabilities(image))
        fns = {"tinyseg": lambda: run_crf(tcrf, image, unary)}
        if threads > 1:
            fns["tinyseg-1thread"] = with_threads(1, lambda: run_crf(tcrf, image, unary))
        if peer is not None:
            fns["peer"] = lambda: run_crf(peer, image, unary)
        t = interleaved_medians(fns, repeat)
        extra = {}
        if peer is not None:
            a = run_crf(tcrf, image, unary).argmax(0)
            b = run_crf(peer, image, unary).argmax(0)
            extra = dict(peer="pydensecrf", peer_s=t["peer"],
                         label_agreement_pct=100 * float(np.mean(a == b)))
        records.append(record(f"crf.setup+5it.{name}", t["tinyseg"], threads=threads, **extra))
        if "tinyseg-1thread" in t:
            records.append(record(f"crf.setup+5it.{name}.1thread", t["tinyseg-1thread"], threads=1,
                                  **{k: v for k, v in extra.items() if k != "label_agreement_pct"}))
    return records


def bench_accuracy(quick: bool) -> list[dict]:
    """Label disagreement with the exact CRF on downsampled images."""
    from skimage import data, transform

    import tinyseg.crf.compat as tcrf

    peer = peer_module()
    cases = {"chelsea": (data.chelsea(), (60, 90)), "astronaut": (data.astronaut(), (64, 64))}
    if not quick:
        cases.update({"coffee": (data.coffee(), (60, 90)), "rocket": (data.rocket(), (60, 90)),
                      "chelsea-375x500": (images()["chelsea-375x500"], (60, 80))})
    records = []
    for name, (full, shape) in cases.items():
        small = (transform.resize(full, shape, anti_aliasing=True) * 255).round().astype(np.uint8)
        p = transform.resize(coarse_probabilities(full), shape, order=1, anti_aliasing=False)
        unary = unary_of(p.astype(np.float32))
        exact = run_crf(tcrf, small, unary, method="exact").argmax(0)
        t0 = time.perf_counter()
        fast = run_crf(tcrf, small, unary).argmax(0)
        t_fast = time.perf_counter() - t0
        extra = dict(tinyseg_diff_pct=100 * float(np.mean(fast != exact)),
                     crf_changed_pct=100 * float(np.mean(exact != unary.argmin(0))))
        if peer is not None:
            t0 = time.perf_counter()
            theirs = run_crf(peer, small, unary).argmax(0)
            extra.update(peer="pydensecrf", peer_s=time.perf_counter() - t0,
                         peer_diff_pct=100 * float(np.mean(theirs != exact)))
        records.append(record(f"crf.vs-exact.{name}-{shape[0]}x{shape[1]}", t_fast, **extra))
    return records


_MEMORY_CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {bench_dir!r})
from bench_crf import coarse_probabilities, run_crf, unary_of
from skimage import data
which = {which!r}
if which == "tinyseg":
    import tinyseg.crf.compat as module
else:
    import pydensecrf.densecrf as module
image = np.ascontiguousarray(data.astronaut())
unary = unary_of(coarse_probabilities(image, 21))
small = np.ascontiguousarray(image[:32, :32])
run_crf(module, small, np.ascontiguousarray(unary.reshape(21, 512, 512)[:, :32, :32].reshape(21, -1)))  # JIT warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
q = run_crf(module, image, unary)
t = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(seconds=t, baseline_mb=base / 1024, peak_mb=peak / 1024)))
"""


def bench_memory() -> list[dict]:
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for which in ("tinyseg", "pydensecrf"):
        if which == "pydensecrf" and peer_module() is None:
            continue
        code = _MEMORY_CHILD.format(bench_dir=bench_dir, which=which)
        # twice: the first run fills Numba's on-disk cache for this shape, the second is measured
        for _ in range(2 if which == "tinyseg" else 1):
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 cwd=os.path.dirname(bench_dir))
            if res.returncode != 0:
                raise RuntimeError(f"memory run of {which} failed:\n{res.stderr}")
        out[which] = json.loads(res.stdout.strip().splitlines()[-1])
    t = out["tinyseg"]
    extra = dict(peak_rss_mb=t["peak_mb"], baseline_rss_mb=t["baseline_mb"])
    if "pydensecrf" in out:
        p = out["pydensecrf"]
        extra.update(peer="pydensecrf", peer_s=p["seconds"], peer_peak_rss_mb=p["peak_mb"],
                     peer_baseline_rss_mb=p["baseline_mb"])
    return [record("crf.memory.astronaut-512x512-21labels", t["seconds"], **extra)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per case (median)")
    parser.add_argument("--quick", action="store_true",
                        help="only 375×500 timing and the two required accuracy cases")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory subprocesses")
    args = parser.parse_args(argv)

    import tinyseg.crf  # noqa: F401  (first: tinyseg sets OMP_WAIT_POLICY before Numba's threads start)
    import numba

    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads; pydensecrf "
          f"{'present' if peer_module() else 'absent'}; times are medians after a warm-up run "
          "(Numba compilation cached and warm)")
    records = bench_time(args.repeat, args.quick)
    records += bench_accuracy(args.quick)
    if not args.skip_memory:
        records += bench_memory()
    print_table(records, ["name", "threads", "tinyseg_s", "peer_s", "ratio", "label_agreement_pct",
                          "tinyseg_diff_pct", "peer_diff_pct", "crf_changed_pct",
                          "peak_rss_mb", "baseline_rss_mb", "peer_peak_rss_mb"])
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
