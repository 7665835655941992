"""GPU speed of tinyseg's numba.cuda backend, against PyTorch CUDA in the same run.

Four parts, all on the first CUDA device, float32:

* ``gemm``: the hand-written shared-memory tiled GEMM (:mod:`tinyseg.backend.cuda.matmul`) in
  TFLOP/s on the convolution GEMM shapes of a 375×500 input — forward ``(M, K) @ (K, F)``, weight
  gradient ``(K, M) @ (M, F)`` (``trans_a``), input gradient ``(M, F) @ (F, K)`` (``trans_b``), with
  ``M = H·W``, ``K = kh·kw·C`` — plus square 1024³ and 4096³; each with the automatic choice and
  with each fixed tile configuration, against ``torch.matmul`` on the same shapes and layouts
  (TF32 off: ``torch.backends.cuda.matmul.allow_tf32 = False``, so both do float32 FMAs).
  ``pct_of_torch`` = torch time / tinyseg time, i.e. tinyseg's share of PyTorch's throughput.
* ``op``: every FCN-32s layer's forward and backward through :mod:`tinyseg.ops` on device
  arrays (conv, max pooling, ReLU, dropout, the ×32 bilinear upsampling, softmax
  cross-entropy, Adam over all VGG-16 parameters) at batch 1 × 375×500 and batch 8 × 224×224,
  against the matching ``torch.nn.functional`` call (NCHW) where there is one.
* ``crf``: the post's dense CRF (five mean-field iterations; spatial 10 px / 3, bilateral 50 px,
  20 levels / 10) at 375×500 with 2 and 21 labels, ``dense_crf(device="cuda")`` against
  ``device="cpu"``, set-up included.
* ``train``: one full-width FCN-32s training step (forward with dropout, summed softmax
  cross-entropy, backward, Adam) with ``tinyseg.models.FCN32s(backend="cuda")``, against the same
  network in PyTorch CUDA (as in ``bench_train.py``), at both sizes.

Times are medians of ``--repeat`` runs after warm-up runs (which absorb numba's JIT compilation
and PyTorch's allocator warm-up), each run followed by a device synchronisation, measured with
``time.perf_counter`` (so host-side launch overhead counts, as it does in training).

Each layer allocates its outputs and im2col buffer with ``cuda.device_array`` (numba has no
caching allocator by default); if allocation shows up in the numbers, numba can use RMM's pool
(``NUMBA_CUDA_MEMORY_MANAGER=rmm.allocators.numba`` with ``rmm`` installed).

Without a GPU it prints why and exits 0 without records. ``--smoke`` runs every code path on tiny
shapes (also under ``NUMBA_ENABLE_CUDASIM=1``) to check the script itself; its numbers mean nothing.

    python benchmarks/bench_gpu.py [--json PATH] [--repeat 5] [--parts gemm,op,train,crf] [--no-torch]
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_gpu.py --smoke
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import adam_sweep, print_table, record, tinyseg_steps, write_json  # noqa: E402

VGG16 = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]   # (convs per block, channels)
FC = 4096
FACTOR = 32


# ----------------------------------------------------------------------------- timing
class Timer:
    """Median seconds of ``fn()`` + a device synchronisation (numba's and torch's)."""

    def __init__(self, repeat: int, warmup: int, torch):
        self.repeat, self.warmup, self.torch = repeat, warmup, torch
        from numba import cuda
        self._cuda = cuda

    def sync(self):
        self._cuda.synchronize()
        if self.torch is not None:
            self.torch.cuda.synchronize()

    def __call__(self, fn) -> float:
        for _ in range(self.warmup):
            fn()
        self.sync()
        times = []
        for _ in range(self.repeat):
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def gpu_status() -> str | None:
    """None when a usable GPU is present, else why not."""
    import numba
    from numba import cuda

    if numba.config.ENABLE_CUDASIM:
        return "NUMBA_ENABLE_CUDASIM=1: numba's CUDA simulator is on, so there is no GPU to time"
    try:
        if not cuda.is_available():
            return "numba.cuda.is_available() is False: no NVIDIA GPU or CUDA driver found"
    except Exception as e:  # pragma: no cover - broken driver installs
        return f"numba.cuda failed to initialise: {e}"
    return None


def load_torch(enabled: bool):
    """torch with a usable CUDA device (TF32 off for a float32-to-float32 comparison), or None."""
    if not enabled:
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def layer_shapes(H: int, W: int, scale: float = 1.0, n_classes: int = 21):
    """[(name, h, w, k, c_in, c_out)] of FCN-32s's convolutions for an H×W input (SAME pooling)."""
    ch = lambda c: max(1, int(round(c * scale)))  # noqa: E731
    out, cin, h, w = [], 3, H, W
    for block, (n, c) in enumerate(VGG16, start=1):
        for i in range(1, n + 1):
            out.append((f"conv{block}_{i}", h, w, 3, cin, ch(c)))
            cin = ch(c)
        h, w = (h + 1) // 2, (w + 1) // 2
    out += [("fc6", h, w, 7, cin, ch(FC)), ("fc7", h, w, 1, ch(FC), ch(FC)),
            ("fc8", h, w, 1, ch(FC), n_classes)]
    return out


# ----------------------------------------------------------------------------- GEMM
def bench_gemm(timer, torch, smoke: bool):
    from numba import cuda

    from tinyseg.backend.cuda import matmul as G

    rng = np.random.default_rng(0)
    if smoke:
        shapes = [("square.16", 16, 16, 16, False, False), ("odd.fwd", 37, 27, 5, False, False),
                  ("odd.dw", 27, 5, 37, True, False), ("odd.dx", 37, 5, 27, False, True)]
        configs = {"auto": None, "tiny": G.TINY}
    else:
        shapes = [("square.1024", 1024, 1024, 1024, False, False),
                  ("square.4096", 4096, 4096, 4096, False, False)]
        for name, h, w, k, cin, cout in layer_shapes(375, 500):
            if name in ("conv1_2", "conv3_3", "conv5_3", "fc6", "fc7"):
                M, K = h * w, k * k * cin
                shapes += [(f"{name}.fwd", M, K, cout, False, False),     # col @ w
                           (f"{name}.dw", K, M, cout, True, False),       # colᵀ @ dout
                           (f"{name}.dx", M, cout, K, False, True)]       # dout @ wᵀ
        configs = {"auto": None, "small": G.SMALL, "large": G.LARGE}
    records = []
    for name, M, K, N, ta, tb in shapes:
        # shapes are (M, K, N) of op(a) @ op(b); a is stored (K, M) with trans_a, b (N, K) with trans_b
        a = cuda.to_device(rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32))
        b = cuda.to_device(rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32))
        c = cuda.device_array((M, N), np.float32)
        flops = 2.0 * M * N * K
        t_torch = None
        if torch is not None:
            at = torch.randn(*((K, M) if ta else (M, K)), device="cuda")
            bt = torch.randn(*((N, K) if tb else (K, N)), device="cuda")
            ct = torch.empty(M, N, device="cuda")
            opa = at.t() if ta else at
            opb = bt.t() if tb else bt
            t_torch = timer(lambda: torch.matmul(opa, opb, out=ct))
        for cname, cfg in configs.items():
            t = timer(lambda: G.gemm(a, b, c, trans_a=ta, trans_b=tb, config=cfg))
            rec = record(f"gemm.{name}.{cname}", t, peer="torch.matmul" if t_torch else None,
                         peer_s=t_torch, part="gemm", shape=f"{M}x{K}x{N}",
                         tflops=flops / t / 1e12)
            if t_torch:
                rec.update(torch_tflops=flops / t_torch / 1e12, pct_of_torch=100.0 * t_torch / t)
            records.append(rec)
        print(f"  gemm {name}: {records[-len(configs)]['tflops']:.2f} TFLOP/s (auto)", flush=True)
    return records


# ----------------------------------------------------------------------------- per op
def bench_ops(timer, torch, N: int, H: int, W: int, smoke: bool):
    from tinyseg import ops
    from tinyseg.backend import get_backend
    from tinyseg.ops.upsampling import get_kernel_size, upsample_filt

    be = get_backend("cuda")
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)
    tag = f"{N}x{H}x{W}"
    scale = 1 / 128 if smoke else 1.0
    n_classes = 2 if smoke else 21
    records = []

    def dev(*shape):
        return be.asarray(rng.standard_normal(shape, dtype=np.float32))

    def add(name, t, t_peer=None, peer=None, **extra):
        records.append(record(f"{name}@{tag}", t, peer=peer if t_peer else None, peer_s=t_peer,
                              part="op", **extra))

    for name, h, w, k, cin, cout in layer_shapes(H, W, scale, n_classes):
        x, wt, b = dev(N, h, w, cin), dev(k, k, cin, cout), dev(cout)
        out, cache = ops.conv2d_forward(x, wt, b)
        dout = dev(*out.shape)
        t_fwd = timer(lambda: ops.conv2d_forward(x, wt, b))
        t_bwd = timer(lambda: ops.conv2d_backward(dout, cache))
        tf = tb = None
        if torch is not None:
            xt = torch.randn(N, cin, h, w, device="cuda", requires_grad=True)
            wtt = torch.randn(cout, cin, k, k, device="cuda", requires_grad=True)
            bt = torch.zeros(cout, device="cuda", requires_grad=True)
            gt = torch.randn(N, cout, h, w, device="cuda")

            def tfwd():
                with torch.no_grad():
                    F.conv2d(xt, wtt, bt, padding=k // 2)
            tf = timer(tfwd)
            yt = F.conv2d(xt, wtt, bt, padding=k // 2)
            tb = timer(lambda: torch.autograd.grad(yt, (xt, wtt, bt), gt, retain_graph=True))
        flops = 2.0 * N * h * w * k * k * cin * cout
        add(f"{name}.forward", t_fwd, tf, "torch-conv2d", tflops=flops / t_fwd / 1e12)
        add(f"{name}.backward", t_bwd, tb, "torch-conv2d-grad", tflops=2 * flops / t_bwd / 1e12)
        print(f"  {name}@{tag}: fwd {t_fwd * 1e3:.2f} ms, bwd {t_bwd * 1e3:.2f} ms", flush=True)
        del x, wt, b, out, cache, dout

    c64 = max(1, int(round(64 * scale)))
    x = dev(N, H, W, c64)
    out, cache = ops.maxpool_forward(x)
    dout = dev(*out.shape)
    tp = None
    if torch is not None:
        xt = torch.randn(N, c64, H, W, device="cuda")
        tp = timer(lambda: F.max_pool2d(xt, 2, 2, ceil_mode=True))
    add("pool1.forward", timer(lambda: ops.maxpool_forward(x)), tp, "torch-max_pool2d")
    add("pool1.backward", timer(lambda: ops.maxpool_backward(dout, cache)))

    r_out, r_cache = ops.relu_forward(x)
    tr = timer(lambda: F.relu(xt)) if torch is not None else None
    add("relu1.forward", timer(lambda: ops.relu_forward(x)), tr, "torch-relu")
    add("relu1.backward", timer(lambda: ops.relu_backward(x, r_out)))
    td = timer(lambda: F.dropout(xt, 0.5, training=True)) if torch is not None else None
    add("dropout.forward", timer(lambda: ops.dropout_forward(x, 0.5, 1)), td, "torch-dropout")
    del x, out, cache, dout, r_out, r_cache

    h, w = H, W
    for _ in range(5):
        h, w = (h + 1) // 2, (w + 1) // 2
    k = get_kernel_size(FACTOR)
    kernel = be.asarray(upsample_filt(k).astype(np.float32))
    s = dev(N, h, w, n_classes)
    up, ucache = ops.conv_transpose2d_depthwise_forward(s, kernel, FACTOR)
    dup = dev(*up.shape)
    tu = None
    if torch is not None:
        wfull = torch.tensor(np.repeat(upsample_filt(k)[None, None], n_classes, 0),
                             dtype=torch.float32, device="cuda")
        st = torch.randn(N, n_classes, h, w, device="cuda")
        pad = (k - FACTOR) // 2
        tu = timer(lambda: F.conv_transpose2d(st, wfull, stride=FACTOR, groups=n_classes)[
            :, :, pad:pad + FACTOR * h, pad:pad + FACTOR * w].contiguous())
    add("upsample32.forward", timer(lambda: ops.conv_transpose2d_depthwise_forward(s, kernel, FACTOR)),
        tu, "torch-conv_transpose2d")
    add("upsample32.backward", timer(lambda: ops.conv_transpose2d_depthwise_backward(dup, ucache)))
    del up, ucache, dup

    logits = dev(N, H, W, n_classes)
    labels = rng.integers(0, n_classes, size=(N, H, W)).astype(np.int32)
    dlabels = be.asarray(labels)
    tl = None
    if torch is not None:
        lt = torch.randn(N, n_classes, H, W, device="cuda", requires_grad=True)
        labt = torch.from_numpy(labels.astype(np.int64)).cuda()
        tl = timer(lambda: torch.autograd.grad(F.cross_entropy(lt, labt, reduction="sum"), lt))
    add("softmax_ce", timer(lambda: ops.softmax_cross_entropy(logits, dlabels)), tl,
        "torch-cross_entropy+grad")
    del logits, dlabels

    if N == 1:   # Adam does not depend on the batch: once
        shapes = [sh for _, _, _, k, cin, cout in layer_shapes(H, W, scale)
                  for sh in ((k, k, cin, cout), (cout,))]                  # VGG-16 + fc6..fc8
        adam, n, params, grads = adam_sweep(shapes, be.zeros,
                                             lambda sh: be.asarray(np.full(sh, 0.01, np.float32)))
        ta = None
        if torch is not None:
            tparams = [torch.nn.Parameter(torch.zeros(sh, device="cuda")) for sh in shapes]
            for tp_ in tparams:
                tp_.grad = torch.full_like(tp_, 0.01)
            opt = torch.optim.Adam(tparams, lr=1e-4, fused=True)
            ta = timer(opt.step)
        t = timer(adam)
        records.append(record("adam.vgg16-sized", t, peer="torch-adam-fused" if ta else None,
                              peer_s=ta, part="op", n_params=n, gb_per_s=n * 4 * 7 / t / 1e9))
        del adam, params, grads
    return records


# ----------------------------------------------------------------------------- training step
def torch_train_step(torch, shapes: dict, N, H, W, n_classes, device: str = "cuda"):
    """The FCN-32s training step in PyTorch CUDA: bench_train.py's peer network
    (``tests/torch_nets.build``) on the GPU, summed cross-entropy, fused Adam."""
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from torch_nets import build

    F = torch.nn.functional
    params, net = build("fcn32s", shapes, n_classes, device=device)
    x = torch.randn(N, 3, H, W, device=device) * 60
    labels = torch.randint(0, n_classes, (N, H, W), device=device)
    opt = torch.optim.Adam(params, lr=1e-4, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x, True), labels, reduction="sum")
        loss.backward()
        opt.step()
        return loss.item()
    return step


def bench_train(timer, torch, N, H, W, smoke: bool):
    from tinyseg.models import FCN32s, FCN32sConfig
    from tinyseg.training.optim import Adam

    n_classes = 2 if smoke else 21
    width = 1 / 128 if smoke else 1.0
    model = FCN32s(FCN32sConfig(n_classes=n_classes, width=width, seed=0), backend="cuda")
    be = model.backend
    adam = Adam()
    rng = np.random.default_rng(0)
    x = be.asarray((rng.random((N, H, W, 3), dtype=np.float32) * 255 - 120).astype(np.float32))
    labels = be.asarray(rng.integers(0, n_classes, size=(N, H, W)).astype(np.int32))
    forward, step = tinyseg_steps(model, adam, x, labels)

    tag = f"{N}x{H}x{W}"
    t_fwd = timer(forward)
    t_step = timer(step)
    shapes = {k: tuple(v.shape) for k, v in model.params.items()}
    t_peer = timer(torch_train_step(torch, shapes, N, H, W, n_classes)) if torch is not None else None
    print(f"  train step @{tag}: {t_step * 1e3:.1f} ms"
          + (f" (torch {t_peer * 1e3:.1f} ms)" if t_peer else ""), flush=True)
    return [record(f"fcn32s.forward@{tag}", t_fwd, part="train"),
            record(f"fcn32s.train_step@{tag}", t_step, peer="torch-cuda" if t_peer else None,
                   peer_s=t_peer, part="train", images_per_s=N / t_step)]


# ----------------------------------------------------------------------------- dense CRF
def bench_crf(timer, H: int, W: int, n_labels: int, iterations: int = 5):
    """``dense_crf`` with the post's parameters, ``device="cuda"`` vs ``device="cpu"`` (set-up included)."""
    from tinyseg.crf import dense_crf

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    image[:, W // 2:] //= 3                                   # two regions, like an object
    p = rng.random((H, W, n_labels)).astype(np.float32) + 0.1
    p /= p.sum(-1, keepdims=True)
    t_gpu = timer(lambda: dense_crf(image, p, iterations=iterations, device="cuda"))
    t_cpu = timer(lambda: dense_crf(image, p, iterations=iterations, device="cpu"))
    print(f"  crf {n_labels} labels @{H}x{W}: gpu {t_gpu * 1e3:.1f} ms, cpu {t_cpu * 1e3:.1f} ms",
          flush=True)
    return [record(f"crf.dense_crf{iterations}.{n_labels}labels@{H}x{W}", t_gpu, peer="tinyseg-cpu",
                   peer_s=t_cpu, part="crf")]


# ----------------------------------------------------------------------------- driver
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write the records to this JSON file")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (JIT, allocator)")
    p.add_argument("--parts", default="gemm,op,train,crf",
                   help="comma list of gemm, op, train, crf")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch CUDA")
    p.add_argument("--smoke", action="store_true",
                   help="tiny shapes, runs under the CUDA simulator too: checks the script only")
    args = p.parse_args(argv)
    parts = {s.strip() for s in args.parts.split(",") if s.strip()}

    why = gpu_status()
    if why is not None and not (args.smoke and "simulator" in why):
        print(f"bench_gpu: no GPU to benchmark ({why}); nothing measured, no records written.")
        return 0
    torch = load_torch(not args.no_torch)
    timer = Timer(1 if args.smoke else args.repeat, 1 if args.smoke else args.warmup, torch)
    from numba import cuda

    device = "simulator" if why else cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else str(device)
    print(f"bench_gpu on {device}; peer: {'torch ' + torch.__version__ if torch else 'none'}")

    sizes = [(1, 375, 500), (8, 224, 224)]
    if args.smoke:
        sizes = [(1, 5, 6), (2, 3, 4)]
    records = []
    if "gemm" in parts:
        records += bench_gemm(timer, torch, args.smoke)
    if "op" in parts:
        for N, H, W in sizes:
            records += bench_ops(timer, torch, N, H, W, args.smoke)
    if "train" in parts:
        for N, H, W in sizes:
            records += bench_train(timer, torch, N, H, W, args.smoke)
    if "crf" in parts:
        for n_labels in (2, 21):
            records += bench_crf(timer, *((6, 7) if args.smoke else (375, 500)), n_labels)
    for r in records:
        r["device"] = device
    print_table(records, ["name", "tinyseg_s", "peer_s", "ratio", "tflops", "pct_of_torch"])
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
