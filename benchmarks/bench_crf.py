"""Dense CRF: tinyseg vs pydensecrf, per core, on all cores, and throughput on a set of images.

Every case (the post's and DeepLab's parameters × 2, 5, 21 labels × 375×500 and 512×512; 10
mean-field iterations) is timed set-up + inference, from the unary to Q, through each library's
pydensecrf 2-D API (``DenseCRF2D`` + ``addPairwiseGaussian`` + ``addPairwiseBilateral`` +
``inference``; tinyseg's is ``tinyseg.crf.compat``), on four photos from scikit-image
(``_crf_inputs.CASE_PHOTOS``, resized) with network-like probabilities (SLIC superpixels, a class
per segment, coarse noise, blurred softmax: ``_crf_inputs``). Three columns:

(a) **per core**: one image, one thread each (tinyseg's worker pinned to 1 thread; pydensecrf is
    single-threaded). tinyseg's one-call API ``dense_crf`` (probabilities in, same CRF) is timed
    too, in the same 1-thread worker.
(b) **all cores vs one**: one image, tinyseg on all ``--threads`` cores vs pydensecrf on its one
    thread (labelled so in the table: not an equal-core comparison).
(c) **throughput** on a set of 16 images (``_crf_inputs.SET_PHOTOS``, each as is and mirrored):
    pydensecrf in a pool of ``--threads`` single-threaded processes (what its users do) vs
    tinyseg's two ways to use the same cores in its ``--threads``-thread worker: a pool of
    ``--threads`` worker threads, each refining one image at a time on one core
    (``tinyseg.crf.batch.CRFPool``, what ``refine_many`` and the command line use), or all
    threads on each image in turn. The better one is reported and named. Each pool is started
    and warmed before timing; each image is sent as arrays (probabilities in, labels out) to both
    pools alike.

Every side runs in its own worker process (``_conditions``): the same allocator settings and
environment in all of them, the thread count pinned in each and reported (the JSON's
``workers``). Times are medians of ``--repeat`` runs alternating between the workers (the order
rotating each round), summed over the photos for (a) and (b) (the ratio is the ratio of the total
time on the four photos; per-photo medians are in the JSON).

Usage: ``python benchmarks/bench_crf.py [--quick] [--json PATH] [--repeat 3] [--set-repeat 2]``
(``--quick``: two cases, two photos, one throughput case; a few minutes). Accuracy against the
exact CRF and peak memory: ``benchmarks/bench_crf_accuracy.py``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import print_table  # noqa: E402
from _conditions import Run, Worker, add_condition_options, conditions_from_args, serve  # noqa: E402
import _crf_inputs as inputs  # noqa: E402

ITERATIONS = 10


def cases(quick: bool, only: str = "") -> list[tuple]:
    """(params, labels, size) of the timed cases (``only``: those whose name contains it)."""
    if quick:
        return [("deeplab", 21, "375x500"), ("post", 2, "375x500")]
    return [(p, n, s) for p in ("post", "deeplab") for n in (2, 5, 21) for s in inputs.SIZES
            if only in f"crf.{p}.{n}labels.{s}.{ITERATIONS}it"]


# ----------------------------------------------------------------------------- worker side
class _Worker:
    """Handlers of one side's worker process (``tinyseg`` or ``pydensecrf``)."""

    def __init__(self, side: str, threads: int):
        self.side, self.threads = side, threads
        self.cache, self.sets, self.pool = {}, {}, None

    def setup(self):
        if self.side == "tinyseg":
            import tinyseg.crf.compat as module
            from tinyseg.crf import dense_crf
            self.dense_crf = dense_crf
        else:
            import pydensecrf.densecrf as module
        self.module = module

    def _arrays(self, path):
        if path not in self.cache:
            with np.load(path) as z:
                self.cache[path] = {k: z[k] for k in z.files}
        return self.cache[path]

    def warm(self, params, labels):
        """Untimed runs on small crops: Numba's cached kernels loaded, first-call costs paid."""
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
        for n in labels:
            p = rng.random((40, 50, n)).astype(np.float32) + 0.1
            p /= p.sum(-1, keepdims=True)
            for name in params:
                inputs.run_crf(self.module, image, inputs.unary_of(p), name, ITERATIONS)
                if self.side == "tinyseg":
                    self.dense_crf(image, p, **inputs.dense_crf_params(name, ITERATIONS))
        return {"ok": True}

    def time(self, path, params, iterations, api="compat"):
        a = self._arrays(path)
        t0, c0 = time.perf_counter(), time.process_time()
        if api == "compat":
            inputs.run_crf(self.module, a["image"], a["unary"], params, iterations)
        else:
            self.dense_crf(a["image"], a["probabilities"], **inputs.dense_crf_params(params, iterations))
        return {"s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}

    def _start_pool(self, workers, params, labels):
        import multiprocessing as mp

        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
        warm = []
        for n in labels:
            p = rng.random((40, 50, n)).astype(np.float32) + 0.1
            warm.append((image, p / p.sum(-1, keepdims=True)))
        if self.side == "tinyseg":
            from tinyseg.crf.batch import CRFPool
            self.pool = CRFPool({}, workers)
            for name in params:                     # every process gets work: 2 items per worker
                list(self.pool.imap(warm * 2 * workers, inputs.dense_crf_params(name, ITERATIONS)))
        else:
            self.pool = mp.get_context("spawn").Pool(workers)
            for name in params:
                self.pool.starmap(inputs.pydensecrf_refine,
                                  [(im, p, name, ITERATIONS) for im, p in warm * 2 * workers],
                                  chunksize=1)

    def throughput(self, path, params, iterations, mode, workers, warm_params, warm_labels):
        if path not in self.sets:
            with np.load(path) as z:
                n = len([k for k in z.files if k.startswith("image")])
                self.sets[path] = [(z[f"image{i}"], z[f"probabilities{i}"]) for i in range(n)]
        items = self.sets[path]
        if mode == "pool" and self.pool is None:
            self._start_pool(workers, warm_params, warm_labels)
        kw = inputs.dense_crf_params(params, iterations)
        t0 = time.perf_counter()
        if mode == "pool" and self.side == "tinyseg":
            out = list(self.pool.imap(items, kw))
        elif mode == "pool":
            out = list(self.pool.starmap(inputs.pydensecrf_refine,
                                         [(im, p, params, iterations) for im, p in items], chunksize=1))
        elif self.side == "tinyseg":
            out = [self.dense_crf(im, p, **kw)[0] for im, p in items]
        else:
            out = [inputs.pydensecrf_refine(im, p, params, iterations) for im, p in items]
        seconds = time.perf_counter() - t0
        return {"s": seconds, "images": len(out)}


def worker_main(side: str, threads: int) -> None:
    w = _Worker(side, threads)
    serve(side, threads, {"warm": w.warm, "time": w.time, "throughput": w.throughput}, setup=w.setup)


# ----------------------------------------------------------------------------- driver side
def prepare(tmp: str, chosen: list, n_photos: int) -> tuple[dict, dict]:
    """Write every case's inputs to ``tmp``: {(labels, size, photo): path}, {(labels, size): set path}."""
    case_files, set_files = {}, {}
    photos = {name: inputs.photo(name) for name in inputs.SET_PHOTOS}
    for labels, size in sorted({(n, s) for _, n, s in chosen}):
        shape = inputs.SIZES[size]
        for k, name in enumerate(inputs.CASE_PHOTOS[:n_photos]):
            image = inputs.resized(photos[name], shape)
            p = inputs.network_like_probabilities(image, labels, seed=k)
            path = os.path.join(tmp, f"{name}.{labels}.{size}.npz")
            np.savez(path, image=image, probabilities=p, unary=inputs.unary_of(p))
            case_files[(labels, size, name)] = path
        arrays = {}
        for k, name in enumerate(inputs.SET_PHOTOS):
            for m, mirror in enumerate((False, True)):
                image = inputs.resized(photos[name][:, ::-1] if mirror else photos[name], shape)
                i = 2 * k + m
                arrays[f"image{i}"] = image
                arrays[f"probabilities{i}"] = inputs.network_like_probabilities(image, labels, seed=100 + i)
        set_files[(labels, size)] = os.path.join(tmp, f"set.{labels}.{size}.npz")
        np.savez(set_files[(labels, size)], **arrays)
        print(f"  inputs ready: {labels} labels, {size}", flush=True)
    return case_files, set_files


def alternate(calls: dict, repeat: int) -> dict:
    """{name: median seconds} of ``calls`` (name -> () -> seconds), alternating, order rotating."""
    names, times = list(calls), {name: [] for name in calls}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(calls[name]())
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per photo and side (median)")
    parser.add_argument("--set-repeat", type=int, default=2,
                        help="timed runs of each throughput way per case (median)")
    parser.add_argument("--quick", action="store_true", help="two cases, two photos, one set")
    parser.add_argument("--no-set", action="store_true", help="skip column (c), the throughput")
    parser.add_argument("--only", default="", metavar="SUBSTRING",
                        help="the cases whose name contains this, e.g. 21labels or deeplab.5labels.512x512")
    add_condition_options(parser)
    parser.add_argument("--worker", choices=["tinyseg", "pydensecrf"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.worker_threads)
        return 0
    if args.repeat < 1 or args.set_repeat < 1:
        parser.error("--repeat and --set-repeat must be >= 1")
    cond = conditions_from_args(args)
    run = Run("bench_crf", cond)
    if inputs.peer_module() is None:
        print("pydensecrf is not installed (pip install pydensecrf2): nothing to compare", file=sys.stderr)
        return 1
    n = cond.threads
    n_photos = 2 if args.quick else len(inputs.CASE_PHOTOS)
    chosen = cases(args.quick, args.only)
    if not chosen:
        parser.error(f"--only {args.only!r} matches no case")
    set_cases = set() if args.no_set else {chosen[0]} if args.quick else set(chosen)
    records = []
    with tempfile.TemporaryDirectory(prefix="bench-crf-") as tmp:
        case_files, set_files = prepare(tmp, chosen, n_photos)
        workers = {}
        try:
            workers["pydensecrf.1"] = run.add_worker(Worker(__file__, "pydensecrf", cond, 1))
            workers["tinyseg.1"] = run.add_worker(Worker(__file__, "tinyseg", cond, 1))
            workers[f"tinyseg.{n}"] = run.add_worker(Worker(__file__, "tinyseg", cond, n))
            params_used = sorted({p for p, _, _ in chosen})
            labels_used = sorted({c for _, c, _ in chosen})
            for w in workers.values():
                w.ask(cmd="warm", params=params_used, labels=labels_used)
            said = ", ".join(f"{k} (numba {w.report.get('numba_threads')} threads)"
                             for k, w in workers.items())
            print(f"  workers: {said}", flush=True)
            for params, labels, size in chosen:
                records.append(measure_case(workers, n, params, labels, size, case_files, set_files,
                                            args, (params, labels, size) in set_cases,
                                            params_used, labels_used))
        finally:
            for w in workers.values():
                w.close()
    print(f"\n{cond.header()}")
    print(f"(a) one thread each; (b) tinyseg on {n} threads vs pydensecrf on 1 (unequal cores); "
          f"(c) {n} cores each, 16 images")
    print_table(records, ["name", "tinyseg_1t_s", "peer_1t_s", "ratio_per_core", "dense_crf_1t_s",
                          f"tinyseg_{n}t_s", "ratio_all_vs_1", "peer_pool_s", "tinyseg_best_s",
                          "tinyseg_best_way", "ratio_throughput"])
    run.write(args.json, records, columns={
        "per_core": "one image, one thread each",
        "all_cores": f"one image, tinyseg on {n} threads vs pydensecrf on 1 thread",
        "throughput": f"16 images, {n} single-threaded pydensecrf processes vs tinyseg's best way on {n} cores"})
    return 0


def measure_case(workers, n, params, labels, size, case_files, set_files, args, with_set,
                 warm_params, warm_labels) -> dict:
    it = ITERATIONS
    peer, one, many = workers["pydensecrf.1"], workers["tinyseg.1"], workers[f"tinyseg.{n}"]
    per_photo = {}
    t_case = time.perf_counter()
    for (c, s, photo), path in case_files.items():
        if (c, s) != (labels, size):
            continue
        calls = {"peer_1t": lambda: peer.ask(cmd="time", path=path, params=params, iterations=it)["s"],
                 "tinyseg_1t": lambda: one.ask(cmd="time", path=path, params=params, iterations=it)["s"],
                 "dense_crf_1t": lambda: one.ask(cmd="time", path=path, params=params, iterations=it,
                                                 api="dense_crf")["s"],
                 f"tinyseg_{n}t": lambda: many.ask(cmd="time", path=path, params=params, iterations=it)["s"]}
        per_photo[photo] = alternate(calls, args.repeat)
    total = {k: sum(p[k] for p in per_photo.values()) for k in next(iter(per_photo.values()))}
    rec = {"name": f"crf.{params}.{labels}labels.{size}.{it}it", "params": params, "labels": labels,
           "size": size, "iterations": it, "photos": list(per_photo), "per_photo": per_photo,
           "peer": "pydensecrf", **{f"{k}_s": v for k, v in total.items()},
           "ratio_per_core": total["tinyseg_1t"] / total["peer_1t"],
           "ratio_dense_crf_per_core": total["dense_crf_1t"] / total["peer_1t"],
           "ratio_all_vs_1": total[f"tinyseg_{n}t"] / total["peer_1t"],
           "per_photo_ratio_per_core": {k: v["tinyseg_1t"] / v["peer_1t"] for k, v in per_photo.items()},
           "threads_all": n}
    rec["ratio"] = rec["ratio_per_core"]
    if with_set:
        path = set_files[(labels, size)]
        common = dict(cmd="throughput", path=path, params=params, iterations=it, workers=n,
                      warm_params=warm_params, warm_labels=warm_labels)
        calls = {"peer_pool": lambda: peer.ask(mode="pool", **common)["s"],
                 "tinyseg_pool": lambda: many.ask(mode="pool", **common)["s"],
                 "tinyseg_threads": lambda: many.ask(mode="threads", **common)["s"]}
        t = alternate(calls, args.set_repeat)
        best = min(("tinyseg_pool", "tinyseg_threads"), key=t.get)
        rec.update(set_images=16, peer_pool_s=t["peer_pool"], tinyseg_pool_s=t["tinyseg_pool"],
                   tinyseg_threads_s=t["tinyseg_threads"], tinyseg_best_s=t[best],
                   tinyseg_best_way=(f"{n} worker threads, an image each" if best == "tinyseg_pool"
                                     else f"{n} threads on each image in turn"),
                   ratio_throughput=t[best] / t["peer_pool"],
                   peer_images_per_s=16 / t["peer_pool"], tinyseg_images_per_s=16 / t[best])
    print(f"  {rec['name']}: per core {rec['ratio_per_core']:.2f}, dense_crf {rec['ratio_dense_crf_per_core']:.2f}, "
          f"{n} vs 1 {rec['ratio_all_vs_1']:.2f}" + (
              f", throughput {rec['ratio_throughput']:.2f} ({rec['tinyseg_best_way']})" if with_set else "")
          + f"  [{time.perf_counter() - t_case:.0f} s]", flush=True)
    return rec


if __name__ == "__main__":
    sys.exit(main())
