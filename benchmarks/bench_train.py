"""Whole-network speed and memory: each full-width model (VGG-16), batch 1, tinyseg vs PyTorch.

``--model NAME`` picks the network (``fcn32s``, the default, ``fcn16s``, ``fcn8s``, ``fcn8s-atonce``,
``deeplab-largefov``; a comma-separated list or ``all`` runs several); the PyTorch peer is the same
network built from PyTorch's functional ops (``tests/torch_nets.py``, the one the model tests compare with). Record names are
``<model>.<forward|train_step>.<H>x<W>`` (``<model>.c21.…`` for 21 classes).

For each input size (default 375×500, the post's PASCAL VOC image, and 224×224):

* ``forward``: test-mode forward, preprocessed image → logits ``(1, H, W, C)`` (dropout off);
  PyTorch runs it under ``torch.no_grad()``.
* ``train_step``: one training iteration of the post's recipe — forward with dropout 0.5, summed pixel-wise softmax
  cross-entropy, backward, Adam (PyTorch: ``torch.optim.Adam(fused=True)``).
* peak RSS (``ru_maxrss``) of the process after the forward runs and after the training steps.

The table gives medians (``tinyseg_s``, ``peer_s``, ``ratio``) and, because a shared machine's
load makes single runs vary, also the fastest run of each (``*_min_s``, ``ratio_min``) and the
1-minute load average when the size started.

Each framework runs in its **own subprocess** (this script with ``--worker tinyseg|torch``), so
neither one's memory or thread pools pollute the other's numbers; the workers stay alive and the
driver asks them for one run at a time, **alternating** tinyseg and PyTorch (the other one waits,
idle, on its pipe), so load from other jobs on a shared machine hits both alike. Every
measurement starts with untimed warm-up runs — they absorb Numba's compilation (or loading its
cache) and PyTorch's first-call allocations — then reports the median of ``--repeat`` timed runs,
each timed inside its worker. Both workers start with the same environment (``_conditions``:
thread variables, glibc malloc thresholds or none, OpenBLAS core type, ``OMP_WAIT_POLICY``) and
pin ``--threads`` threads (Numba, PyTorch, BLAS); each reports what it then runs with (the JSON's
``workers``).

For FCN-32s the PyTorch network is: NCHW float32, 3×3 convs with padding 1, ``ceil_mode=True``
2×2 max pooling (tinyseg's SAME pooling), fc6 7×7 padding 3 (SAME), fc7/fc8 1×1, ReLU, dropout 0.5
after fc6 and fc7 in training, then the fixed (not trained) ×32 bilinear transposed convolution
(64×64 tent per class, stride 32, run per channel with ``groups=C`` as tinyseg does), the
TF-SAME crop ``[16:16+32h, 16:16+32w]`` and the crop to ``H×W``, and ``cross_entropy(...,
reduction="sum")``. Both are He-initialised (values differ; speed does not depend on them).

RSS is reported in GB = 10⁹ bytes (``ru_maxrss`` KiB × 1024 / 10⁹).

    python benchmarks/bench_train.py [--model fcn32s|fcn16s|fcn8s|fcn8s-atonce|deeplab-largefov|all]
                                     [--json PATH] [--sizes 375x500,224x224] [--repeat 3]
                                     [--classes 2,21] [--no-torch] [--threads N]
                                     [--malloc thresholds|default]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table, record, tinyseg_steps  # noqa: E402
from _conditions import Run, add_condition_options, conditions_from_args, pin_threads, worker_report  # noqa: E402

PEER = "torch-2.13-cpu"


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def inputs(H: int, W: int, n_classes: int):
    """A preprocessed-looking input (1, H, W, 3) and labels (1, H, W), identical for both workers."""
    rng = np.random.default_rng(0)
    x = (rng.random((1, H, W, 3), dtype=np.float32) * 255 - 120).astype(np.float32)
    labels = rng.integers(0, n_classes, size=(1, H, W)).astype(np.int32)
    return x, labels


# ----------------------------------------------------------------------------- workers
def worker_tinyseg(model_name, H, W, n_classes):
    from tinyseg.models import build_model
    from tinyseg.training.optim import Adam

    model = build_model(model_name, n_classes, width=1.0, seed=0)
    adam = Adam()
    x, labels = inputs(H, W, n_classes)
    forward, train_step = tinyseg_steps(model, adam, x, labels)

    import numba
    return forward, train_step, numba.get_num_threads()


def worker_torch(model_name, H, W, n_classes, shapes):
    import torch
    import torch.nn.functional as F

    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from torch_nets import build

    params, net = build(model_name, shapes, n_classes)
    x_np, labels_np = inputs(H, W, n_classes)
    x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())  # (1, H, W, 3) -> (1, 3, H, W)
    labels = torch.from_numpy(labels_np.astype(np.int64))
    opt = torch.optim.Adam(params, lr=1e-4, fused=True)

    def forward():
        with torch.no_grad():
            net(x, train=False)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x, train=True), labels, reduction="sum")
        loss.backward()
        opt.step()
        return loss.item()

    return forward, train_step, torch.get_num_threads()


def serve(framework: str, model_name: str, H: int, W: int, n_classes: int, shapes=None,
          threads: int = 1) -> None:
    """Worker loop: build the network, then answer one command per stdin line with a JSON line.

    ``forward`` / ``train_step``: run it once, reply ``{"s": seconds}``; ``rss``: reply
    ``{"peak_rss_gb": ...}``; ``quit`` (or end of input): exit.
    """
    if framework == "tinyseg":
        forward, train_step, _ = worker_tinyseg(model_name, H, W, n_classes)
    else:
        forward, train_step, _ = worker_torch(model_name, H, W, n_classes, shapes)
    pin_threads(threads)
    fns = {"forward": forward, "train_step": train_step}

    def reply(obj):
        print(json.dumps(obj), flush=True)

    reply({"ready": True, "peak_rss_gb": peak_rss_gb(), **worker_report(framework)})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd in fns:
            t0 = time.perf_counter()
            fns[cmd]()
            reply({"s": time.perf_counter() - t0})
        elif cmd == "rss":
            reply({"peak_rss_gb": peak_rss_gb()})
        else:
            break


# ----------------------------------------------------------------------------- driver
class Worker:
    """A ``--worker`` subprocess driven over its stdin/stdout, one command at a time."""

    def __init__(self, framework: str, model_name: str, size: str, n_classes: int, shapes: dict,
                 conditions):
        self.framework = framework
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--model", model_name,
               "--size", size, "--classes", str(n_classes), "--shapes", json.dumps(shapes),
               "--threads", str(conditions.threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1, env=conditions.env(conditions.threads))

    def ask(self, cmd: str | None = None) -> dict:
        """Send ``cmd`` (None: just read the next reply) and return the worker's JSON reply."""
        if cmd is not None:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker died (exit code {self.proc.wait()}); "
                               f"its error is above")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait()


def measure(workers: dict, kind: str, repeat: int, warmup: int) -> dict:
    """``{name: (median seconds, all timed runs)}`` of ``kind``, runs alternating between workers."""
    times = {name: [] for name in workers}
    for r in range(warmup + repeat):
        for name, w in workers.items():
            t = w.ask(kind)["s"]
            if r >= warmup:
                times[name].append(t)
            time.sleep(0.2)                                  # let the other's threads go idle
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}


def parse_size(s: str) -> tuple[int, int]:
    try:
        H, W = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size must look like 375x500 (HxW), got {s!r}") from None
    if H < 1 or W < 1:
        raise argparse.ArgumentTypeError(f"a size must be positive, got {s!r}")
    return H, W


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fcn32s",
                        help="model(s) to measure: fcn32s (default), fcn16s, fcn8s, fcn8s-atonce, "
                             "deeplab-largefov, a comma-separated list, or 'all'")
    parser.add_argument("--json", metavar="PATH", help="write the records to this JSON file")
    parser.add_argument("--sizes", default="375x500,224x224",
                        help="comma-separated HxW input sizes (default: 375x500,224x224)")
    parser.add_argument("--classes", default="2,21",
                        help="comma-separated class counts (default: 2,21 — the post's binary task "
                             "and PASCAL VOC; 21 only at the first size)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs before timing (Numba compilation/cache load happens here)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if installed")
    add_condition_options(parser)
    parser.add_argument("--worker", choices=["tinyseg", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--shapes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    if args.worker:                                          # child process: one framework, one size
        H, W = parse_size(args.size)
        shapes = {k: tuple(v) for k, v in json.loads(args.shapes).items()}
        serve(args.worker, args.model, H, W, int(args.classes), shapes, args.threads)
        return
    cond = conditions_from_args(args)

    from tinyseg.models import MODELS
    names = list(MODELS) if args.model == "all" else [m for m in args.model.split(",") if m]
    for name in names:
        if name not in MODELS:
            parser.error(f"--model: unknown model {name!r}; choose from {', '.join(MODELS)} or all")

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    classes = [int(c) for c in args.classes.split(",") if c]
    have_torch = False
    if not args.no_torch:
        try:
            import importlib.util
            have_torch = importlib.util.find_spec("torch") is not None
        except ImportError:
            have_torch = False
    run = Run("bench_train", cond)
    print(f"{cond.threads} threads each, batch 1, full width, {args.warmup} warm-up + {args.repeat} "
          f"timed runs (median; Numba compilation excluded), peer: {PEER if have_torch else 'none'}",
          flush=True)
    runs = [(m, H, W, classes[0]) for m in names for H, W in sizes] + \
        [(m, sizes[0][0], sizes[0][1], c) for m in names for c in classes[1:]]
    records = []
    t_start = time.perf_counter()
    for model_name, H, W, C in runs:
        size = f"{H}x{W}"
        tag = model_name if C == 2 else f"{model_name}.c{C}"
        load = os.getloadavg()[0]
        shapes = MODELS[model_name].param_shapes(MODELS[model_name].config_class(n_classes=C))
        workers = {"tinyseg": Worker("tinyseg", model_name, size, C, shapes, cond)}
        if have_torch:
            workers["torch"] = Worker("torch", model_name, size, C, shapes, cond)
        try:
            for w in workers.values():
                ready = w.ask()                              # wait until it has built its network
                ready.pop("ready", None)
                run.workers.append({"model": model_name, "input": size, **ready})
            result = {}
            for kind in ("forward", "train_step"):
                result[kind] = measure(workers, kind, args.repeat, args.warmup)
                # ru_maxrss only grows: after the forward runs it is the forward's peak, after
                # the training steps the training step's (Adam's moments appear at the first step).
                result[kind + "_rss"] = {name: w.ask("rss")["peak_rss_gb"] for name, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
        line = f"  {model_name} {size} C={C}:"
        for name in workers:
            line += (f" {name} forward {result['forward'][name][0]:.3f} s, "
                     f"step {result['train_step'][name][0]:.3f} s;")
        print(line + f" load {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
        for kind in ("forward", "train_step"):
            mine, mine_all = result[kind]["tinyseg"]
            extra = {"tinyseg_peak_rss_gb": result[kind + "_rss"]["tinyseg"], "tinyseg_runs_s": mine_all,
                     "tinyseg_min_s": min(mine_all)}
            peer_s = None
            if have_torch:
                peer_s, peer_all = result[kind]["torch"]
                # Best runs too: on a busy machine the fastest run is the least disturbed one.
                extra.update(torch_peak_rss_gb=result[kind + "_rss"]["torch"], peer_runs_s=peer_all,
                             peer_min_s=min(peer_all), ratio_min=min(mine_all) / min(peer_all))
            records.append(record(f"{tag}.{kind}.{size}", mine, peer=PEER if have_torch else None,
                                  peer_s=peer_s, model=model_name, n_classes=C, input=size,
                                  threads=cond.threads,
                                  load_avg_1min=load, **extra))
    print(f"total {time.perf_counter() - t_start:.0f} s; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(cond.header())
    print_table(records, ["name", "tinyseg_s", "peer", "peer_s", "ratio",
                          "tinyseg_min_s", "peer_min_s", "ratio_min", "tinyseg_peak_rss_gb", "torch_peak_rss_gb",
                          "load_avg_1min"])
    run.write(args.json, records)


if __name__ == "__main__":
    main()
