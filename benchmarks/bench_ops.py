"""Per-op speed of tinyseg's CPU kernels on the FCN-32s/VGG-16 and DeepLab-LargeFOV layer shapes
of a 375×500 input, and the peak memory of a test-mode prediction.

For every convolution, forward and backward time, GFLOP/s and the ratio to numpy's float32 GEMM on
the same matrix shapes measured in the same run (forward: (M, K) @ (K, F); backward: (K, M) @ (M, F)
plus (M, F) @ (F, K), with M = H·W, K = kh·kw·C; ``gemm_efficiency`` = GEMM time / tinyseg time,
i.e. the share of numpy's GEMM throughput reached, counting the convolution's direct FLOPs), and
to torch.nn.functional.conv2d (2 threads) when torch is installed (its backward timed alone,
through a graph built once). 3×3 layers run twice: with
the default algorithm (``auto``: Winograd F(2×2, 3×3) for 3×3 kernels with ≥ 16 channels, so
its "GEMM efficiency" can exceed 1; on maps under 1000 pixels, such as ``conv5_3.224``'s 14×14, its
backward takes im2col's weight gradient) and with ``im2col`` (the blocked im2col + GEMM kernels).
DeepLab's dilated layers are ``deeplab.conv5`` (3×3, dilation 2, 512→512) and ``deeplab.fc6``
(3×3, dilation 12, 512→1024) on the 47×63 map of a 375×500 image at output stride 8.

Also max pooling (VGG's 2×2/2, DeepLab's 3×3 with padding 1 at stride 2 and 1, each against
``torch.nn.functional.max_pool2d``), the ×32 upsampling and Adam over VGG-16's 134 M parameters,
the peak extra memory of each convolution forward vs its full im2col buffer, and (``predict``
record, in a child process) the peak extra memory of ``tinyseg.predict.predict`` on a 375×500
image with the full-width FCN-32s against "the two largest activations plus one workspace".

Everything runs in one worker process, so tinyseg, NumPy's GEMM and PyTorch alternate under the
same allocator and thread settings: the worker starts with ``_conditions``' environment (glibc
malloc thresholds or none, OpenBLAS core type, ``OMP_WAIT_POLICY``) and pins ``--threads`` threads
in Numba, PyTorch and the BLAS; what it then runs with is in the JSON's ``workers``.

    python benchmarks/bench_ops.py [--json PATH] [--repeat 5] [--only SUBSTRING] [--no-torch]
                                   [--threads N] [--malloc thresholds|default]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import adam_sweep, print_table, record  # noqa: E402
from _conditions import Run, add_condition_options, conditions_from_args, pin_threads, worker_report  # noqa: E402

from tinyseg import ops  # noqa: E402
from tinyseg.ops.upsampling import get_kernel_size, upsample_filt  # noqa: E402

H, W = 375, 500


def _table(text: str) -> list:
    """The rows under a table's header line as tuples; whole numbers become ints."""
    return [tuple(int(v) if v.isdigit() else v for v in line.split())
            for line in text.strip().splitlines()[1:]]


# The convolutions at a 375×500 input with ceil (SAME) pooling (and conv5_3.224 at a 224×224 one,
# where Winograd's map is small); DeepLab's map stays at 47×63 (output stride 8) from pool3 on.
CONVS = _table("""
    name            H    W    k  C_in  C_out  dilation
    conv1_1         375  500  3  3     64     1
    conv1_2         375  500  3  64    64     1
    conv2_2         188  250  3  128   128    1
    conv3_3         94   125  3  256   256    1
    conv4_3         47   63   3  512   512    1
    conv5_3         24   32   3  512   512    1
    conv5_3.224     14   14   3  512   512    1
    fc6             12   16   7  512   4096   1
    fc7             12   16   1  4096  4096   1
    fc8             12   16   1  4096  21     1
    deeplab.conv5   47   63   3  512   512    2
    deeplab.fc6     47   63   3  512   1024   12
    deeplab.fc7     47   63   1  1024  1024   1
""")
# (name, H, W, C, stride) of the 3×3/pad-1 pools of DeepLab-LargeFOV at 375×500
POOLS3 = [("deeplab.pool1", 375, 500, 64, 2), ("deeplab.pool3", 94, 125, 256, 2),
          ("deeplab.pool4", 47, 63, 512, 1)]


def interleaved(fns: dict, repeat: int, pause: float = 0.05) -> dict:
    """Median seconds of each callable, runs interleaved so machine noise hits all alike.

    An untimed ``pause`` before each run lets the previous one's thread pools (OpenMP, OpenBLAS,
    PyTorch's) stop spinning, so no run pays for the one before it.
    """
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_extra_bytes(fn, output_bytes: int) -> int:
    """Peak bytes allocated by ``fn()`` beyond its own output (NumPy allocations are traced)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak - output_bytes


def bench_convs(rng, repeat, torch, only=""):
    records = []
    for name, h, w, k, cin, cout, d in CONVS:
        if only not in name:
            continue
        x = rng.standard_normal((1, h, w, cin), dtype=np.float32)
        wt = (rng.standard_normal((k, k, cin, cout), dtype=np.float32) * 0.01)
        b = np.zeros(cout, np.float32)
        M, K = h * w, k * k * cin
        A = rng.standard_normal((M, K), dtype=np.float32)
        B = wt.reshape(K, cout)
        C = np.empty((M, cout), np.float32)
        dout = rng.standard_normal((1, h, w, cout), dtype=np.float32)
        D = dout.reshape(M, cout)
        dW = np.empty((K, cout), np.float32)
        dA = np.empty((M, K), np.float32)

        def gemm_backward():
            np.dot(A.T, D, out=dW)
            np.dot(D, B.T, out=dA)

        algorithms = ["auto", "im2col"] if k == 3 and min(cin, cout) >= 16 else ["auto"]
        caches = {a: ops.conv2d_forward(x, wt, b, d, algorithm=a)[1] for a in algorithms}
        dw_buf, db_buf = np.empty_like(wt), np.empty_like(b)   # reused, as a Conv2D layer does
        fns = {"gemm_fwd": lambda: np.dot(A, B, out=C), "gemm_bwd": gemm_backward}
        for a in algorithms:
            fns[f"fwd.{a}"] = lambda a=a: ops.conv2d_forward(x, wt, b, d, algorithm=a)
            fns[f"bwd.{a}"] = lambda a=a: ops.conv2d_backward(dout, caches[a], dw_buf, db_buf)
        if torch is not None:
            xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
            wtt = torch.tensor(wt.transpose(3, 2, 0, 1).copy(), requires_grad=True)
            bt = torch.tensor(b, requires_grad=True)
            gt = torch.tensor(dout.transpose(0, 3, 1, 2).copy())
            pad = d * (k // 2)

            graph = torch.nn.functional.conv2d(xt, wtt, bt, padding=pad, dilation=d)

            def torch_fwd():
                with torch.no_grad():
                    torch.nn.functional.conv2d(xt, wtt, bt, padding=pad, dilation=d)

            fns["torch_fwd"] = torch_fwd
            # backward alone: the gradients through a graph built once, outside the timing
            fns["torch_bwd"] = lambda: torch.autograd.grad(graph, (xt, wtt, bt), gt, retain_graph=True)
        t = interleaved(fns, repeat)
        flops = 2.0 * M * K * cout
        for a in algorithms:
            tag = name if a == "auto" else f"{name}.{a}"
            extra = peak_extra_bytes(lambda: ops.conv2d_forward(x, wt, b, d, algorithm=a), dout.nbytes)
            im2col_full = 0 if k == 1 else M * K * 4
            fwd = record(f"{tag}.forward", t[f"fwd.{a}"], peer="numpy-gemm", peer_s=t["gemm_fwd"],
                         dilation=d, algorithm=a, gflops_per_s=flops / t[f"fwd.{a}"] / 1e9,
                         gemm_efficiency=t["gemm_fwd"] / t[f"fwd.{a}"],
                         extra_memory_mb=extra / 2**20, im2col_full_mb=im2col_full / 2**20)
            bwd = record(f"{tag}.backward", t[f"bwd.{a}"], peer="numpy-gemm", peer_s=t["gemm_bwd"],
                         dilation=d, algorithm=a, gflops_per_s=2 * flops / t[f"bwd.{a}"] / 1e9,
                         gemm_efficiency=t["gemm_bwd"] / t[f"bwd.{a}"])
            if torch is not None:
                fwd.update(torch_s=t["torch_fwd"], ratio_vs_torch=t[f"fwd.{a}"] / t["torch_fwd"])
                bwd.update(torch_s=t["torch_bwd"], ratio_vs_torch=t[f"bwd.{a}"] / t["torch_bwd"])
            records += [fwd, bwd]
            print(f"  {tag}: fwd {t[f'fwd.{a}']*1e3:.1f} ms, bwd {t[f'bwd.{a}']*1e3:.1f} ms "
                  f"(GEMM {t['gemm_fwd']*1e3:.1f} / {t['gemm_bwd']*1e3:.1f} ms)", flush=True)
    return records


def bench_pools3(rng, repeat, torch, only=""):
    """DeepLab's 3×3 pad-1 max pools (stride 2 and 1) against torch's max_pool2d(3, s, 1)."""
    records = []
    for name, h, w, c, stride in POOLS3:
        if only not in name:
            continue
        x = rng.standard_normal((1, h, w, c), dtype=np.float32)
        out, cache = ops.maxpool3x3_forward(x, stride)
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        fns = {"fwd": lambda: ops.maxpool3x3_forward(x, stride),
               "bwd": lambda: ops.maxpool3x3_backward(dout, cache)}
        if torch is not None:
            xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
            gt = torch.tensor(dout.transpose(0, 3, 1, 2).copy())

            def torch_fwd():
                with torch.no_grad():
                    torch.nn.functional.max_pool2d(xt, 3, stride, 1)

            graph = torch.nn.functional.max_pool2d(xt, 3, stride, 1)
            fns["torch_fwd"] = torch_fwd
            fns["torch_bwd"] = lambda: torch.autograd.grad(graph, xt, gt, retain_graph=True)
        t = interleaved(fns, repeat)
        peer = "torch-max_pool2d" if torch is not None else None
        records += [record(f"{name}.s{stride}.forward", t["fwd"], peer=peer, peer_s=t.get("torch_fwd")),
                    record(f"{name}.s{stride}.backward", t["bwd"], peer=peer, peer_s=t.get("torch_bwd"))]
        print(f"  {name} (3×3/{stride}): fwd {t['fwd']*1e3:.1f} ms, bwd {t['bwd']*1e3:.1f} ms", flush=True)
    return records


def bench_others(rng, repeat, torch, n_classes=21):
    records = []
    x = rng.standard_normal((1, H, W, 64), dtype=np.float32)
    out, cache = ops.maxpool_forward(x)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    fns = {"fwd": lambda: ops.maxpool_forward(x), "bwd": lambda: ops.maxpool_backward(dout, cache)}
    if torch is not None:
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
        fns["torch_fwd"] = lambda: torch.nn.functional.max_pool2d(xt, 2, 2, ceil_mode=True)
    t = interleaved(fns, repeat)
    rec = record("pool1.forward", t["fwd"], peer="torch-max_pool2d" if torch else None,
                 peer_s=t.get("torch_fwd"))
    records += [rec, record("pool1.backward", t["bwd"])]

    f = 32
    k = get_kernel_size(f)
    kernel = upsample_filt(k).astype(np.float32)
    s = rng.standard_normal((1, 12, 16, n_classes), dtype=np.float32)
    up, ucache = ops.conv_transpose2d_depthwise_forward(s, kernel, f)
    dup = rng.standard_normal(up.shape, dtype=np.float32)
    fns = {"fwd": lambda: ops.conv_transpose2d_depthwise_forward(s, kernel, f),
           "bwd": lambda: ops.conv_transpose2d_depthwise_backward(dup, ucache)}
    if torch is not None:
        wfull = np.zeros((n_classes, 1, k, k), np.float32)
        wfull[:, 0] = kernel
        st = torch.tensor(s.transpose(0, 3, 1, 2).copy())
        wt = torch.tensor(wfull)
        pad = (k - f) // 2
        fns["torch_fwd"] = lambda: torch.nn.functional.conv_transpose2d(
            st, wt, stride=f, groups=n_classes)[:, :, pad:pad + 12 * f, pad:pad + 16 * f].contiguous()
    t = interleaved(fns, repeat)
    flops = 2.0 * up.size * (k // f) ** 2
    records += [record("upsample32.forward", t["fwd"], peer="torch-conv_transpose2d" if torch else None,
                       peer_s=t.get("torch_fwd"), gflops_per_s=flops / t["fwd"] / 1e9),
                record("upsample32.backward", t["bwd"], gflops_per_s=flops / t["bwd"] / 1e9)]
    return records


def vgg16_fcn32s_shapes(n_classes=21):
    """The parameter shapes of the full-width FCN-32s, conv1_1.w … fc8.b (134 M parameters)."""
    from tinyseg.models import FCN32s, FCN32sConfig

    return list(FCN32s.param_shapes(FCN32sConfig(n_classes=n_classes)).values())


def bench_adam(rng, repeat, torch):
    shapes = vgg16_fcn32s_shapes()
    tinyseg_adam, n, params, grads = adam_sweep(shapes, lambda s: np.zeros(s, np.float32),
                                                lambda s: np.full(s, 0.01, np.float32))
    fns = {"adam": tinyseg_adam}
    if torch is not None:
        tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g)
        opt = torch.optim.Adam(tparams, lr=1e-4, fused=True)
        fns["torch"] = opt.step
    t = interleaved(fns, repeat)
    return [record("adam.vgg16", t["adam"], peer="torch-adam-fused" if torch else None,
                   peer_s=t.get("torch"), n_params=n, gb_per_s=n * 4 * 7 / t["adam"] / 1e9)]


def predict_memory_worker(H: int, W: int, n_classes: int) -> dict:
    """Peak extra memory of one ``predict`` (run in a fresh process by :func:`bench_predict_memory`).

    tracemalloc sees every NumPy allocation, so its peak during the call, minus what was allocated
    before it (the parameters), is the extra memory the prediction needed: activations, workspaces,
    the preprocessed image, the probabilities. The bound it is compared with is the two largest
    activations of the network (any layer's input and output) plus the largest convolution
    workspace (im2col block, or Winograd tiles, products and transformed filters).
    """
    import resource

    from tinyseg.backend.cpu import CONV_WORKSPACE_BYTES, WINOGRAD_BLOCK_BYTES, parallel_workers
    from tinyseg.layers import Conv2D, CropTo
    from tinyseg.models import FCN32s, FCN32sConfig
    from tinyseg.ops import conv as conv_ops
    from tinyseg.predict import predict

    model = FCN32s(FCN32sConfig(n_classes=n_classes, width=1.0))
    image = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)
    predict(model, image[:40, :50])                          # load/compile every kernel first
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    labels, probs = predict(model, image)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del labels, probs
    sizes, workspace = [], 0
    x = np.zeros((1, H, W, 3), np.float32)
    for layer in model.layers:                               # the activations, layer by layer
        if isinstance(layer, Conv2D):
            workspace = max(workspace, conv_ops.conv2d_workspace_bytes(
                x.shape, layer.params["w"].shape, layer.dilation, "auto", CONV_WORKSPACE_BYTES,
                parallel_workers(), WINOGRAD_BLOCK_BYTES))
        y = layer.forward(x, False, size=(H, W)) if isinstance(layer, CropTo) else layer.forward(x, False)
        sizes.append(y.nbytes)
        x = y
    del x, y
    two_largest = sum(sorted(sizes)[-2:])
    return {"peak_extra_mb": (peak - base) / 2**20, "two_largest_activations_mb": two_largest / 2**20,
            "workspace_mb": workspace / 2**20, "bound_mb": (two_largest + workspace) / 2**20,
            "maxrss_growth_mb": (rss_after - rss_before) / 2**20,
            "note": "maxrss_growth: growth of the process's peak RSS during the same predict call"}


def bench_predict_memory(H: int = H, W: int = W, n_classes: int = 21) -> list:
    """Run :func:`predict_memory_worker` in a child process (a clean heap) and make a record."""
    import json
    import subprocess

    cmd = [sys.executable, os.path.abspath(__file__), "--predict-memory-worker", f"{H}x{W}x{n_classes}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    print(f"  predict {H}×{W}, full-width FCN-32s: peak extra {m['peak_extra_mb']:.1f} MB "
          f"(bound: two largest activations {m['two_largest_activations_mb']:.1f} MB + "
          f"workspace {m['workspace_mb']:.1f} MB = {m['bound_mb']:.1f} MB)", flush=True)
    return [{"name": f"predict.memory.{H}x{W}", **m}]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="PATH", help="write the records to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per op (median reported)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if installed")
    parser.add_argument("--only", default="", metavar="SUBSTRING",
                        help="run only the records whose name contains this (e.g. deeplab, conv4, "
                             "pool, predict, adam)")
    add_condition_options(parser)
    parser.add_argument("--predict-memory-worker", metavar="HxWxC", help=argparse.SUPPRESS)
    parser.add_argument("--worker-json", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict_memory_worker:                        # child process of bench_predict_memory
        import json

        h, w, c = (int(v) for v in args.predict_memory_worker.split("x"))
        print(json.dumps(predict_memory_worker(h, w, c)))
        return
    if not args.worker_json:                              # the driver: one worker does the work
        return drive(args, argv)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    pin_threads(args.threads)
    import numba
    print(f"numba threads: {numba.get_num_threads()}, torch: "
          f"{f'{torch.__version__}, {torch.get_num_threads()} threads' if torch else 'not used'}")
    rng = np.random.default_rng(0)
    only = args.only

    def wanted(*names):                                   # does --only select any of these records?
        return any(only in name for name in names)

    records = bench_convs(rng, args.repeat, torch, only) + bench_pools3(rng, args.repeat, torch, only)
    if wanted("pool1.forward", "upsample32.forward"):
        records += bench_others(rng, args.repeat, torch)
    if wanted("adam.vgg16"):
        records += bench_adam(rng, max(3, args.repeat), torch)
    if wanted("predict.memory"):
        records += bench_predict_memory()
    print_table([r for r in records if "tinyseg_s" in r],
                ["name", "tinyseg_s", "peer", "peer_s", "ratio", "gflops_per_s", "gemm_efficiency",
                 "torch_s", "ratio_vs_torch", "extra_memory_mb", "im2col_full_mb"])
    import json
    with open(args.worker_json, "w") as f:
        json.dump({"records": records, "worker": worker_report("tinyseg+numpy+torch")}, f)


def drive(args, argv) -> None:
    """Run this script as one worker under the chosen conditions and write its results."""
    import json
    import subprocess
    import tempfile

    cond = conditions_from_args(args)
    run = Run("bench_ops", cond)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ops.json")
        argv = list(sys.argv[1:] if argv is None else argv)
        subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--worker-json", path],
                       env=cond.env(cond.threads), check=True)
        with open(path) as f:
            result = json.load(f)
    run.workers.append(result["worker"])
    print(cond.header())
    run.write(args.json, result["records"])


if __name__ == "__main__":
    main()
