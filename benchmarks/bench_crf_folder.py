"""A folder of images through the dense CRF, whole commands timed: ``tinyseg crf`` on folders vs a
pydensecrf pool doing the same work.

16 photos (``_crf_inputs.SET_PHOTOS``, each as is and mirrored) resized to 375×500, saved as PNG,
with 21-label network-like probabilities saved as ``STEM.npy``; DeepLab's parameters, 10
iterations. Timed from process start to exit, each a subprocess with the same environment
(``_conditions``: allocator, thread variables, OpenBLAS settings):

* **tinyseg**: ``tinyseg crf --image DIR --probabilities DIR --out DIR ...`` (labels written as
  ``OUT/STEM.png``; its default: one worker thread per usable core, an image each);
* **pydensecrf**: this script's ``--peer`` mode: a ``multiprocessing.Pool`` of ``--threads``
  processes (Python's default start method), each reading the image and the ``.npy``, running
  pydensecrf's 2-D API (set-up + 10 iterations), and writing the labels as a PNG.

Both pay their own start-up (imports, Numba's cache, spawning workers) and file I/O. Medians of
``--repeat`` runs, alternating, after one untimed run of each.

Usage: ``python benchmarks/bench_crf_folder.py [--json PATH] [--repeat 3] [--images 16]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import print_table  # noqa: E402
from _conditions import Run, add_condition_options, conditions_from_args  # noqa: E402
import _crf_inputs as inputs  # noqa: E402

PARAMS, LABELS, ITERATIONS, SHAPE = "deeplab", 21, 10, (375, 500)


def _peer_one(task):
    """Pool worker: read, refine with pydensecrf, write (what a pydensecrf user's script does)."""
    from PIL import Image

    image_path, prob_path, out_path = task
    image = np.array(Image.open(image_path).convert("RGB"))          # writable, as pydensecrf needs
    p = np.load(prob_path)
    labels = inputs.pydensecrf_refine(image, p, PARAMS, ITERATIONS)
    Image.fromarray(labels.astype(np.uint8), mode="L").save(out_path)
    return out_path


def peer_main(image_dir, prob_dir, out_dir, processes) -> int:
    import multiprocessing as mp

    os.makedirs(out_dir, exist_ok=True)
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(image_dir) if n.endswith(".png"))
    tasks = [(os.path.join(image_dir, f"{s}.png"), os.path.join(prob_dir, f"{s}.npy"),
              os.path.join(out_dir, f"{s}.png")) for s in stems]
    with mp.Pool(processes) as pool:
        pool.map(_peer_one, tasks, chunksize=1)
    return 0


def tinyseg_command(image_dir, prob_dir, out_dir) -> list[str]:
    module = "tinyseg" if os.path.isfile(os.path.join(REPO, "tinyseg", "__main__.py")) else "tinyseg.cli"
    gsxy, gw, bsxy, srgb, bw = inputs.PARAMS[PARAMS]
    return [sys.executable, "-m", module, "crf", "--image", image_dir, "--probabilities", prob_dir,
            "--out", out_dir, "--sdims", str(bsxy), "--schan", str(srgb), "--compat", str(bw),
            "--gaussian-sdims", str(gsxy), "--gaussian-compat", str(gw),
            "--iterations", str(ITERATIONS), "--quiet"]


def prepare(tmp: str, n_images: int) -> tuple[str, str]:
    from PIL import Image

    image_dir, prob_dir = os.path.join(tmp, "images"), os.path.join(tmp, "probabilities")
    os.makedirs(image_dir)
    os.makedirs(prob_dir)
    k = 0
    for mirror in (False, True):
        for name in inputs.SET_PHOTOS:
            if k == n_images:
                break
            photo = inputs.photo(name)
            image = inputs.resized(photo[:, ::-1] if mirror else photo, SHAPE)
            stem = f"{name}{'_mirrored' if mirror else ''}"
            Image.fromarray(image).save(os.path.join(image_dir, f"{stem}.png"))
            np.save(os.path.join(prob_dir, f"{stem}.npy"),
                    inputs.network_like_probabilities(image, LABELS, seed=100 + k))
            k += 1
    return image_dir, prob_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command (median)")
    parser.add_argument("--images", type=int, default=16, help="images in the folder (default 16)")
    add_condition_options(parser)
    parser.add_argument("--peer", nargs=3, metavar=("IMAGES", "PROBS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        return peer_main(*args.peer, args.threads)
    if inputs.peer_module() is None:
        print("pydensecrf is not installed (pip install pydensecrf2): nothing to compare", file=sys.stderr)
        return 1
    cond = conditions_from_args(args)
    run = Run("bench_crf_folder", cond)
    env = cond.env(cond.threads)
    run.workers += [
        {"side": "tinyseg crf command", "note": f"thread variables {cond.threads} in the command's "
         "environment; it refines with one worker thread per core, an image each "
         "(tinyseg.crf.batch.CRFPool)"},
        {"side": "pydensecrf pool", "note": f"{cond.threads} processes, thread variables "
         f"{cond.threads} in the environment (pydensecrf itself is single-threaded)"}]
    with tempfile.TemporaryDirectory(prefix="bench-crf-folder-") as tmp:
        image_dir, prob_dir = prepare(tmp, args.images)
        commands = {
            "tinyseg": tinyseg_command(image_dir, prob_dir, os.path.join(tmp, "out-tinyseg")),
            "pydensecrf": [sys.executable, os.path.abspath(__file__), "--peer", image_dir, prob_dir,
                           os.path.join(tmp, "out-pydensecrf"), "--threads", str(cond.threads)]}

        def timed(name):
            t0 = time.perf_counter()
            res = subprocess.run(commands[name], env=env, cwd=tmp, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if res.returncode != 0:
                raise RuntimeError(f"{name} command failed ({res.returncode}):\n{res.stderr[-2000:]}")
            return seconds

        for name in commands:                                  # untimed: caches, page cache
            timed(name)
        times = {name: [] for name in commands}
        for r in range(args.repeat):
            for name in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
                times[name].append(timed(name))
                print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
        from PIL import Image
        agree = np.mean([np.mean(np.asarray(Image.open(os.path.join(tmp, "out-tinyseg", n)))
                                 == np.asarray(Image.open(os.path.join(tmp, "out-pydensecrf", n))))
                         for n in sorted(os.listdir(os.path.join(tmp, "out-tinyseg")))])
    t, p = statistics.median(times["tinyseg"]), statistics.median(times["pydensecrf"])
    rec = {"name": f"crf.folder.{PARAMS}.{LABELS}labels.375x500.{ITERATIONS}it.{args.images}images",
           "tinyseg_s": t, "peer": f"pydensecrf, pool of {cond.threads} processes", "peer_s": p,
           "ratio": t / p, "images": args.images, "processes": cond.threads,
           "tinyseg_runs_s": times["tinyseg"], "peer_runs_s": times["pydensecrf"],
           "label_agreement_pct": 100 * float(agree),
           "tinyseg_command": " ".join(os.path.basename(c) if c == sys.executable else c
                                       for c in tinyseg_command("IMAGES", "PROBS", "OUT"))}
    print(f"\n{cond.header()}")
    print_table([rec], ["name", "tinyseg_s", "peer", "peer_s", "ratio", "label_agreement_pct"])
    run.write(args.json, [rec])
    return 0


if __name__ == "__main__":
    sys.exit(main())
