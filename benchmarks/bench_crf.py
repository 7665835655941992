"""Dense CRF: tinyseg vs pydensecrf -- time, agreement with the exact CRF, peak memory.

Every case runs the same script through each library's pydensecrf API (``DenseCRF2D`` +
``addPairwiseGaussian`` + ``addPairwiseBilateral`` + ``inference``), from the unary to Q:

* parameter sets: **seed** (spatial sxy 10, w 3; bilateral sxy 50, srgb 20, w 10) and **deeplab**
  (spatial sxy 3, w 3; bilateral sxy 80, srgb 13, w 4 -- DeepLab's VOC setting), and DeepLab's
  with small colour bandwidths, **srgb5**, **srgb3**, **srgb1**;
* 2, 5 and 21 labels; 375×500 (scikit-image's ``chelsea`` resized, the seed's size) and 512×512
  (``astronaut``); 10 mean-field iterations, and the seed's own 5 for 2 labels.

**time**: median of ``--repeat`` runs, tinyseg and pydensecrf alternating (after one untimed
round, so Numba's compiled kernels are loaded), so that a shared machine's changing load falls on
both alike. pydensecrf is single-threaded; tinyseg uses Numba's threads (printed). The load
average is printed and stored: wall-clock ratios measured on a loaded machine favour the
single-threaded peer, whose one thread is never left waiting for a descheduled sibling, so the
CPU seconds (all threads, ``time.process_time``) and their ratio are recorded too.

**accuracy**: labels after the iterations on small crops (about 60×90 / 64×64, where the exact
CRF is affordable), compared with the exact CRF (brute-force O(N²) filtering, float64 sums): the
share of pixels whose label differs, tinyseg's fast filters vs pydensecrf's permutohedral lattice.

**memory**: peak RSS of a fresh process that runs one library's CRF at 512×512 with 21 labels and
the deeplab parameters (``VmHWM`` of ``/proc/self/status``, each library in its own child process that loads
the prepared inputs and runs a small warm-up CRF first); ``added`` is the peak minus the resident
memory just before the measured run (the CRF's own working memory).

"Coarse FCN-like probabilities": a binary mask (Otsu threshold of the grey image) averaged over
32×32 blocks and upsampled bilinearly -- what FCN-32s's stride-32 output looks like -- then
``p1 = sigmoid(4 (m - 1/2))``; with more labels the others get smooth random logits.

Usage: ``python benchmarks/bench_crf.py [--json PATH] [--repeat 5] [--quick] [--skip-memory]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import alternating_medians, coarse_object_map, print_table, record, write_json  # noqa: E402

# (spatial sxy, spatial w, bilateral sxy, srgb, bilateral w)
PARAMS = {
    "seed": (10, 3, 50, 20, 10),
    "deeplab": (3, 3, 80, 13, 4),
    "srgb5": (3, 3, 80, 5, 4),
    "srgb3": (3, 3, 80, 3, 4),
    "srgb1": (3, 3, 80, 1, 4),
}


def load_average() -> float:
    return os.getloadavg()[0]


def images() -> dict:
    from skimage import data, transform

    def resized(img, shape):
        return (transform.resize(img, shape, anti_aliasing=True) * 255).round().astype(np.uint8)

    return {"375x500": resized(data.chelsea(), (375, 500)), "512x512": data.astronaut()}


def coarse_probabilities(image: np.ndarray, n_labels: int = 2, seed: int = 0) -> np.ndarray:
    """FCN-32s-like probabilities (H, W, C) float32 for ``image`` (see the module docstring)."""
    from skimage import transform

    h, w = image.shape[:2]
    m, hb, wb = coarse_object_map(image)
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


def run_crf(module, image, unary, params="seed", iterations=10, **kw):
    """One CRF through a pydensecrf-style ``module``; returns Q (C, N) as an array."""
    gsxy, gw, bsxy, srgb, bw = PARAMS[params]
    h, w = image.shape[:2]
    d = module.DenseCRF2D(w, h, unary.shape[0], **kw)
    d.setUnaryEnergy(unary)
    d.addPairwiseGaussian(sxy=gsxy, compat=gw)
    d.addPairwiseBilateral(sxy=bsxy, srgb=srgb, rgbim=image, compat=bw)
    return np.asarray(d.inference(iterations))


def peer_module():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        return None
    return dcrf


def time_cases(quick: bool) -> list[tuple]:
    """(params, labels, size, iterations) of the timed cases."""
    if quick:
        return [("seed", 2, "375x500", 5), ("seed", 21, "375x500", 10),
                ("deeplab", 21, "375x500", 10), ("srgb3", 21, "375x500", 10)]
    cases = [("seed", 2, "375x500", 5)]
    for params in ("seed", "deeplab"):
        for labels in (2, 5, 21):
            for size in ("375x500", "512x512"):
                cases.append((params, labels, size, 10))
    for params in ("srgb5", "srgb3", "srgb1"):
        for labels in (2, 21):
            cases.append((params, labels, "375x500", 10))
    return cases


def bench_time(repeat: int, quick: bool) -> list[dict]:
    import numba

    import tinyseg.crf.compat as tcrf

    peer = peer_module()
    threads = numba.get_num_threads()
    imgs = images()
    records = []
    for params, labels, size, iterations in time_cases(quick):
        image = np.ascontiguousarray(imgs[size])
        unary = unary_of(coarse_probabilities(image, labels))
        fns = {"tinyseg": lambda: run_crf(tcrf, image, unary, params, iterations)}
        if peer is not None:
            fns["peer"] = lambda: run_crf(peer, image, unary, params, iterations)
        load = load_average()
        t, cpu = alternating_medians(fns, repeat)
        extra = dict(threads=threads, load=round(load, 2), tinyseg_cpu_s=cpu["tinyseg"])
        if peer is not None:
            a = run_crf(tcrf, image, unary, params, iterations).argmax(0)
            b = run_crf(peer, image, unary, params, iterations).argmax(0)
            extra.update(peer="pydensecrf", peer_s=t["peer"], peer_cpu_s=cpu["peer"],
                         cpu_ratio=cpu["tinyseg"] / cpu["peer"],
                         label_agreement_pct=100 * float(np.mean(a == b)))
        name = f"crf.{params}.{labels}labels.{size}.{iterations}it"
        records.append(record(name, t["tinyseg"], **extra))
        print(f"  {name}: tinyseg {t['tinyseg']:.3f} s" + (
            f", pydensecrf {t['peer']:.3f} s, ratio {t['tinyseg'] / t['peer']:.2f}, CPU ratio "
            f"{cpu['tinyseg'] / cpu['peer']:.2f}" if peer else "") + f" (load {load:.1f})", flush=True)
    return records


def bench_accuracy(quick: bool) -> list[dict]:
    """Label disagreement with the exact CRF on small crops, tinyseg and pydensecrf."""
    from skimage import data, transform

    import tinyseg.crf.compat as tcrf

    peer = peer_module()
    crops = {"chelsea": (data.chelsea(), (60, 90)), "astronaut": (data.astronaut(), (64, 64)),
             "coffee": (data.coffee(), (60, 90))}
    if quick:
        crops.pop("coffee")
    settings = [("seed", 2, 5), ("seed", 21, 10), ("deeplab", 21, 10), ("srgb5", 21, 10),
                ("srgb3", 21, 10), ("srgb1", 21, 10)]
    records = []
    for params, labels, iterations in settings:
        for name, (full, shape) in crops.items():
            small = (transform.resize(full, shape, anti_aliasing=True) * 255).round().astype(np.uint8)
            p = transform.resize(coarse_probabilities(full, labels), shape, order=1,
                                 anti_aliasing=False)
            unary = unary_of((p / p.sum(-1, keepdims=True)).astype(np.float32))
            exact = run_crf(tcrf, small, unary, params, iterations, method="exact").argmax(0)
            t0 = time.perf_counter()
            fast = run_crf(tcrf, small, unary, params, iterations).argmax(0)
            t_fast = time.perf_counter() - t0
            extra = dict(tinyseg_diff_pct=100 * float(np.mean(fast != exact)),
                         crf_changed_pct=100 * float(np.mean(exact != unary.argmin(0))))
            if peer is not None:
                t0 = time.perf_counter()
                theirs = run_crf(peer, small, unary, params, iterations).argmax(0)
                extra.update(peer_crop_s=time.perf_counter() - t0,
                             peer_diff_pct=100 * float(np.mean(theirs != exact)))
            records.append(record(f"crf.vs-exact.{params}.{labels}labels.{name}-{shape[0]}x{shape[1]}",
                                  t_fast, **extra))
    return records


_MEMORY_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {bench_dir!r})
from bench_crf import run_crf
if {which!r} == "tinyseg":
    import tinyseg.crf.compat as module
else:
    import pydensecrf.densecrf as module
image = np.load({image!r})
unary = np.load({unary!r})
small = np.ascontiguousarray(image[:32, :32])
run_crf(module, small, np.ascontiguousarray(unary.reshape(21, 512, 512)[:, :32, :32].reshape(21, -1)),
        "deeplab")                                                   # warm-up (JIT cache loaded)
def status(key):       # this process's own figures (ru_maxrss may carry the parent's peak)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024
rss_before, base = status("VmRSS:"), status("VmHWM:")
t0 = time.perf_counter()
q = run_crf(module, image, unary, "deeplab", 10)
t = time.perf_counter() - t0
peak = status("VmHWM:")
print(json.dumps(dict(seconds=t, rss_before_mb=rss_before, peak_before_mb=base, peak_mb=peak)))
"""


def bench_memory() -> list[dict]:
    """Peak RSS of one CRF (512×512, 21 labels, deeplab, 10 iterations) in a fresh process per
    library; the inputs are prepared here and loaded there, so that the child's peak is the CRF's."""
    import tempfile

    bench_dir = os.path.dirname(os.path.abspath(__file__))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        image = np.ascontiguousarray(images()["512x512"])
        np.save(os.path.join(tmp, "image.npy"), image)
        np.save(os.path.join(tmp, "unary.npy"), unary_of(coarse_probabilities(image, 21)))
        for which in ("tinyseg", "pydensecrf"):
            if which == "pydensecrf" and peer_module() is None:
                continue
            code = _MEMORY_CHILD.format(bench_dir=bench_dir, which=which,
                                        image=os.path.join(tmp, "image.npy"),
                                        unary=os.path.join(tmp, "unary.npy"))
            # tinyseg twice: the first run may fill Numba's on-disk cache, the second is measured
            for _ in range(2 if which == "tinyseg" else 1):
                res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     cwd=os.path.dirname(bench_dir))
                if res.returncode != 0:
                    raise RuntimeError(f"memory run of {which} failed:\n{res.stderr}")
            out[which] = json.loads(res.stdout.strip().splitlines()[-1])
    t = out["tinyseg"]
    extra = dict(peak_rss_mb=t["peak_mb"], rss_before_mb=t["rss_before_mb"],
                 added_mb=t["peak_mb"] - t["rss_before_mb"])
    if "pydensecrf" in out:
        p = out["pydensecrf"]
        extra.update(peer="pydensecrf", peer_s=p["seconds"], peer_peak_rss_mb=p["peak_mb"],
                     peer_rss_before_mb=p["rss_before_mb"],
                     peer_added_mb=p["peak_mb"] - p["rss_before_mb"],
                     peak_ratio=t["peak_mb"] / p["peak_mb"],
                     added_ratio=(t["peak_mb"] - t["rss_before_mb"]) / (p["peak_mb"] - p["rss_before_mb"]))
    return [record("crf.memory.deeplab.21labels.512x512.10it", t["seconds"], **extra)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--quick", action="store_true", help="a few timing and accuracy cases")
    parser.add_argument("--skip-time", action="store_true", help="skip the timing")
    parser.add_argument("--skip-accuracy", action="store_true", help="skip the accuracy cases")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory subprocesses")
    args = parser.parse_args(argv)

    import tinyseg.crf  # noqa: F401  (first: tinyseg sets OMP_WAIT_POLICY before Numba's threads start)
    import numba

    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load_average():.2f}; pydensecrf {'present' if peer_module() else 'absent'}")
    records = [] if args.skip_memory else bench_memory()      # first, while this process is small
    if not args.skip_time:
        records += bench_time(args.repeat, args.quick)
    if not args.skip_accuracy:
        records += bench_accuracy(args.quick)
    print_table(records, ["name", "tinyseg_s", "peer_s", "ratio", "cpu_ratio", "load",
                          "label_agreement_pct",
                          "tinyseg_diff_pct", "peer_diff_pct", "crf_changed_pct",
                          "peak_rss_mb", "peer_peak_rss_mb", "peak_ratio", "added_mb",
                          "peer_added_mb", "added_ratio"])
    print(f"load average at the end: {load_average():.2f}")
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
