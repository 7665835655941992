"""Whole-network speed and memory: full-width FCN-32s (VGG-16), batch 1, tinyseg vs PyTorch.

For each input size (default 375×500, the seed's PASCAL VOC image, and 224×224):

* ``forward``: test-mode forward, preprocessed image → logits ``(1, H, W, C)`` (dropout off);
  PyTorch runs it under ``torch.no_grad()``.
* ``train_step``: one seed iteration — forward with dropout 0.5, summed pixel-wise softmax
  cross-entropy, backward, Adam (PyTorch: ``torch.optim.Adam(fused=True)``).
* peak RSS (``ru_maxrss``) of the process after the forward runs and after the training steps.

Each framework runs in its **own subprocess** (this script with ``--worker tinyseg|torch``), so
neither one's memory or thread pools pollute the other's numbers. Within a worker every
measurement starts with untimed warm-up runs — they absorb Numba's compilation (or loading its
cache) and PyTorch's first-call allocations — then reports the median of ``--repeat`` timed runs.
Both use 2 threads (``torch.set_num_threads(2)``; Numba and OpenBLAS default to the 2 cores).

The PyTorch network is the same FCN-32s: NCHW float32, 3×3 convs with padding 1, ``ceil_mode=True``
2×2 max pooling (tinyseg's SAME pooling), fc6 7×7 padding 3 (SAME), fc7/fc8 1×1, ReLU, dropout 0.5
after fc6 and fc7 in training, then the fixed (not trained) ×32 bilinear transposed convolution
(64×64 tent per class, stride 32, run per channel with ``groups=C`` as tinyseg does), the
TF-SAME crop ``[16:16+32h, 16:16+32w]`` and the crop to ``H×W``, and ``cross_entropy(...,
reduction="sum")``. Both are He-initialised (values differ; speed does not depend on them).

RSS is reported in GB = 10⁹ bytes (``ru_maxrss`` KiB × 1024 / 10⁹).

    python benchmarks/bench_train.py [--json PATH] [--sizes 375x500,224x224] [--repeat 3]
                                     [--classes 2,21] [--no-torch]
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
from _common import print_table, record, write_json  # noqa: E402

PEER = "torch-2.13-cpu"
THREADS = 2
VGG16 = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]   # (convs per block, channels)
FC = 4096
FACTOR = 32


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def timed(fn, repeat: int, warmup: int) -> tuple[float, list]:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs, and all times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def inputs(H: int, W: int, n_classes: int):
    """A preprocessed-looking input (1, H, W, 3) and labels (1, H, W), identical for both workers."""
    rng = np.random.default_rng(0)
    x = (rng.random((1, H, W, 3), dtype=np.float32) * 255 - 120).astype(np.float32)
    labels = rng.integers(0, n_classes, size=(1, H, W)).astype(np.int32)
    return x, labels


# ----------------------------------------------------------------------------- workers
def worker_tinyseg(H, W, n_classes, repeat, warmup):
    from tinyseg import ops
    from tinyseg.model import FCN32s, FCN32sConfig
    from tinyseg.optim import Adam

    model = FCN32s(FCN32sConfig(n_classes=n_classes, width=1.0, seed=0))
    adam = Adam()
    x, labels = inputs(H, W, n_classes)
    rss_model = peak_rss_gb()

    def forward():
        model.forward(x, train=False)
        model.clear()

    def train_step():                        # Trainer.step without its bookkeeping
        logits = model.forward(x, train=True, step=adam.t)
        loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction="sum")
        del logits
        model.backward(dlogits)
        adam.step(model.params, model.grads)
        model.clear()
        return loss

    fwd, fwd_all = timed(forward, repeat, warmup)
    rss_fwd = peak_rss_gb()
    step, step_all = timed(train_step, repeat, warmup)
    import numba
    return {"forward_s": fwd, "forward_all": fwd_all, "train_step_s": step, "train_step_all": step_all,
            "rss_model_gb": rss_model, "rss_forward_gb": rss_fwd, "rss_train_gb": peak_rss_gb(),
            "threads": numba.get_num_threads()}


def _tent(size: int) -> np.ndarray:
    """The seed's ``upsample_filt`` (kept here so the torch worker does not import tinyseg/Numba)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


def worker_torch(H, W, n_classes, repeat, warmup):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    params = []                                              # [(name, weight, bias, padding)]

    def conv(name, cin, cout, k):
        w = torch.randn(cout, cin, k, k) * (2.0 / (k * k * cin)) ** 0.5    # He, (co, ci, kh, kw)
        params.append((name, w.requires_grad_(), torch.zeros(cout, requires_grad=True), k // 2))

    cin = 3
    for block, (n, c) in enumerate(VGG16, start=1):
        for i in range(1, n + 1):
            conv(f"conv{block}_{i}", cin, c, 3)
            cin = c
    conv("fc6", cin, FC, 7)
    conv("fc7", FC, FC, 1)
    conv("fc8", FC, n_classes, 1)
    k = 2 * FACTOR - FACTOR % 2                              # 64
    up_w = torch.tensor(np.repeat(_tent(k)[None, None], n_classes, axis=0), dtype=torch.float32)
    pad = (k - FACTOR) // 2                                  # TF SAME: 16

    def net(x, train):                                       # x (1, 3, H, W)
        i = 0
        for n, _ in VGG16:
            for _ in range(n):
                _, w, b, p = params[i]
                x = F.relu(F.conv2d(x, w, b, padding=p))
                i += 1
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)        # (1, c, ⌈h/2⌉, ⌈w/2⌉)
        for name in ("fc6", "fc7"):
            _, w, b, p = params[i]
            x = F.dropout(F.relu(F.conv2d(x, w, b, padding=p)), 0.5, training=train)
            i += 1
        _, w, b, p = params[i]
        s = F.conv2d(x, w, b, padding=p)                     # (1, C, h, w) scores
        h, ww = s.shape[2:]
        up = F.conv_transpose2d(s, up_w, stride=FACTOR, groups=n_classes)   # (1, C, 32h+32, 32w+32)
        return up[:, :, pad:pad + FACTOR * h, pad:pad + FACTOR * ww][:, :, :H, :W]

    x_np, labels_np = inputs(H, W, n_classes)
    x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())  # (1, H, W, 3) -> (1, 3, H, W)
    labels = torch.from_numpy(labels_np.astype(np.int64))
    opt = torch.optim.Adam([t for _, w, b, _ in params for t in (w, b)], lr=1e-4, fused=True)
    rss_model = peak_rss_gb()

    def forward():
        with torch.no_grad():
            net(x, train=False)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x, train=True), labels, reduction="sum")
        loss.backward()
        opt.step()
        return loss.item()

    fwd, fwd_all = timed(forward, repeat, warmup)
    rss_fwd = peak_rss_gb()
    step, step_all = timed(train_step, repeat, warmup)
    return {"forward_s": fwd, "forward_all": fwd_all, "train_step_s": step, "train_step_all": step_all,
            "rss_model_gb": rss_model, "rss_forward_gb": rss_fwd, "rss_train_gb": peak_rss_gb(),
            "threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- driver
def run_worker(framework, size, n_classes, repeat, warmup) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--size", size,
           "--classes", str(n_classes), "--repeat", str(repeat), "--warmup", str(warmup)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{framework} worker ({size}, C={n_classes}) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


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
    parser.add_argument("--json", metavar="PATH", help="write the records to this JSON file")
    parser.add_argument("--sizes", default="375x500,224x224",
                        help="comma-separated HxW input sizes (default: 375x500,224x224)")
    parser.add_argument("--classes", default="2,21",
                        help="comma-separated class counts (default: 2,21 — the seed's binary task "
                             "and PASCAL VOC; 21 only at the first size)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs before timing (Numba compilation/cache load happens here)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if installed")
    parser.add_argument("--worker", choices=["tinyseg", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    if args.worker:                                          # child process: one framework, one size
        H, W = parse_size(args.size)
        fn = worker_tinyseg if args.worker == "tinyseg" else worker_torch
        print(json.dumps(fn(H, W, int(args.classes), args.repeat, args.warmup)))
        return

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    classes = [int(c) for c in args.classes.split(",") if c]
    have_torch = False
    if not args.no_torch:
        try:
            import importlib.util
            have_torch = importlib.util.find_spec("torch") is not None
        except ImportError:
            have_torch = False
    print(f"{THREADS} threads, batch 1, full width, {args.warmup} warm-up + {args.repeat} timed runs "
          f"(median; Numba compilation excluded), peer: {PEER if have_torch else 'none'}; "
          f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}",
          flush=True)
    runs = [(H, W, classes[0]) for H, W in sizes] + [(sizes[0][0], sizes[0][1], c) for c in classes[1:]]
    records = []
    t_start = time.perf_counter()
    for H, W, C in runs:
        size = f"{H}x{W}"
        tag = "fcn32s" if C == 2 else f"fcn32s.c{C}"
        load = os.getloadavg()[0]
        mine = run_worker("tinyseg", size, C, args.repeat, args.warmup)
        peer = run_worker("torch", size, C, args.repeat, args.warmup) if have_torch else None
        print(f"  {size} C={C}: tinyseg forward {mine['forward_s']:.3f} s, step {mine['train_step_s']:.3f} s"
              + (f"; torch forward {peer['forward_s']:.3f} s, step {peer['train_step_s']:.3f} s"
                 if peer else "") + f" (load {load:.2f})", flush=True)
        for kind, rss in (("forward", "rss_forward_gb"), ("train_step", "rss_train_gb")):
            extra = {"tinyseg_peak_rss_gb": mine[rss], "tinyseg_runs_s": mine[f"{kind}_all"]}
            if peer:
                extra.update(torch_peak_rss_gb=peer[rss], peer_runs_s=peer[f"{kind}_all"])
            records.append(record(f"{tag}.{kind}.{size}", mine[f"{kind}_s"],
                                  peer=PEER if peer else None, peer_s=peer[f"{kind}_s"] if peer else None,
                                  n_classes=C, input=size, threads=THREADS, load_avg_1min=load, **extra))
    print(f"total {time.perf_counter() - t_start:.0f} s; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_table(records, ["name", "tinyseg_s", "peer", "peer_s", "ratio",
                          "tinyseg_peak_rss_gb", "torch_peak_rss_gb"])
    write_json(args.json, records)


if __name__ == "__main__":
    main()
