"""Data-parallel scaling on this machine: MPI ranks against threads, Allreduce, overlap.

Three records (``--json PATH``), each measured alternately with its peer in the same run, medians
of the timed steps (the first step of every launch is an untimed warm-up):

* ``ranks2_vs_threads2`` — full-width FCN-32s training at 375×500, global batch 2: seconds per
  image with ``mpiexec -n 2`` × 1 thread (tinyseg_s) against one process × 2 threads (peer_s).
  ``throughput_ratio = peer_s / tinyseg_s`` is the images/s of the ranks relative to the threads
  (goal ≥ 0.95).
* ``allreduce_grads`` — summing the model's gradient buffer (537 MB at full width) over 2 ranks on
  loopback: the trainer's bucketed ``Iallreduce`` (tinyseg_s) against one blocking ``Allreduce``
  of the whole buffer (peer_s); ``gb_per_s`` is the buffer size over tinyseg_s.
* ``step_comm_vs_compute`` — the 2-rank training step with gradients summed over the ranks
  (tinyseg_s) against the same step with the communication switched off (peer_s); goal
  ratio ≤ 1.1 (communication overlapped with backward).

Needs mpi4py and ``mpiexec`` (``pip install 'tinyseg[mpi]'``), about 9 GB of memory and 10–15
minutes; run it on a quiet machine and give it both cores. ``--width`` and ``--size`` shrink it
for a quick look.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, record, write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- the worker
def worker(args) -> None:
    """One launch: train ``args.steps`` steps (1 warm-up) and write the step times as JSON."""
    import numpy as np

    from tinyseg.training.distributed import GradientBuckets, World
    from tinyseg.models import build_model
    from tinyseg.training.trainer import TrainConfig, Trainer

    world = World.detect()
    H, W = args.size
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(2):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        labels = rng.integers(0, 2, (H, W)).astype(np.int32)
        samples.append((image, labels))
    model = build_model("fcn32s", 2, width=args.width)
    config = TrainConfig(iterations=10**6, batch=2, optimizer="sgd", lr=1e-12, reduction="mean",
                         progress=False, handle_signals=False)
    trainer = Trainer(model, samples, config, world=world)
    if args.mode == "compute":
        trainer._buckets = GradientBuckets(model.params, world, model.backend, communicate=False)
    out = {"step_s": [], "allreduce_s": [], "plain_allreduce_s": [], "ranks": world.size}
    world.broadcast_params(model.params, model.backend)
    for k in range(args.steps + 1):
        world.barrier()
        t0 = time.perf_counter()
        trainer.step()
        world.barrier()
        if k:
            out["step_s"].append(time.perf_counter() - t0)
    if args.mode == "allreduce" and world.size > 1:
        from mpi4py import MPI
        buckets = GradientBuckets(model.params, world, model.backend)
        flat = np.ones(sum(int(np.prod(v.shape)) for v in model.params.values()), np.float32)
        out["bytes"] = flat.nbytes
        for k in range(args.steps + 1):
            world.barrier()
            t0 = time.perf_counter()
            buckets.begin(1)
            buckets.end_image(model.params)            # any arrays of the gradients' shapes
            buckets.finish()
            t1 = time.perf_counter()
            world.barrier()
            t2 = time.perf_counter()
            world.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            t3 = time.perf_counter()
            if k:
                out["allreduce_s"].append(t1 - t0)
                out["plain_allreduce_s"].append(t3 - t2)
    if world.is_root:
        with open(args.out, "w") as f:
            json.dump(out, f)


# ----------------------------------------------------------------------------- the driver
def launch(ranks: int, threads: int, mode: str, args, tmp: str) -> dict:
    out = os.path.join(tmp, f"{mode}-{ranks}x{threads}.json")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--out", out,
               "--steps", str(args.steps), "--width", str(args.width),
               "--size", str(args.size[0]), str(args.size[1])]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit("bench_scale: mpiexec not found (pip install 'tinyseg[mpi]')")
        command = [mpiexec, "-n", str(ranks)] + command
    subprocess.run(command, env=env, check=True)
    with open(out) as f:
        return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the records here")
    p.add_argument("--rounds", type=int, default=2, help="alternations of each pair (default 2)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per launch (default 3)")
    p.add_argument("--width", type=float, default=1.0, help="VGG width (default 1: 537 MB of gradients)")
    p.add_argument("--size", type=int, nargs=2, default=(375, 500), metavar=("H", "W"))
    p.add_argument("--worker", choices=["train", "compute", "allreduce"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.mode = args.worker
        return worker(args)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs; "
          f"FCN-32s width {args.width} at {args.size[0]}×{args.size[1]}, global batch 2")
    runs = {"threads2": [], "ranks2": [], "compute": [], "allreduce": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):            # alternate peer and tinyseg
            runs["threads2"] += launch(1, 2, "train", args, tmp)["step_s"]
            runs["ranks2"] += launch(2, 1, "train", args, tmp)["step_s"]
            runs["compute"] += launch(2, 1, "compute", args, tmp)["step_s"]
            res = launch(2, 1, "allreduce", args, tmp)
            runs["allreduce"].append(res)
    med = {k: statistics.median(v) for k, v in runs.items() if k != "allreduce"}
    ar = statistics.median(t for r in runs["allreduce"] for t in r["allreduce_s"])
    plain = statistics.median(t for r in runs["allreduce"] for t in r["plain_allreduce_s"])
    nbytes = runs["allreduce"][0]["bytes"]
    records = [
        record("ranks2_vs_threads2", med["ranks2"] / 2, "1 process x 2 threads", med["threads2"] / 2,
               throughput_ratio=med["threads2"] / med["ranks2"], unit="s per image"),
        record("allreduce_grads", ar, "one blocking MPI Allreduce", plain, bytes=nbytes,
               gb_per_s=nbytes / ar / 1e9),
        record("step_comm_vs_compute", med["ranks2"], "same step, no communication", med["compute"]),
    ]
    print_table(records, ["name", "tinyseg_s", "peer", "peer_s", "ratio", "throughput_ratio", "gb_per_s"])
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    write_json(args.json, records)


if __name__ == "__main__":
    main()
