"""Per-op speed of tinyseg's CPU kernels on the FCN-32s/VGG-16 layer shapes of a 375×500 input.

For every convolution, forward and backward time, GFLOP/s and the ratio to numpy's float32 GEMM on
the same matrix shapes measured in the same run (forward: (M, K) @ (K, F); backward: (K, M) @ (M, F)
plus (M, F) @ (F, K), with M = H·W, K = kh·kw·C), and to torch.nn.functional.conv2d (2 threads)
when torch is installed. Also max pooling, the ×32 upsampling and Adam over VGG-16's 134 M
parameters, and the peak extra memory of each convolution forward vs its full im2col buffer.

    python benchmarks/bench_ops.py [--json PATH] [--repeat 5] [--quick]
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
from _common import print_table, record, write_json  # noqa: E402

from tinyseg import ops  # noqa: E402
from tinyseg.upsampling import get_kernel_size, upsample_filt  # noqa: E402

H, W = 375, 500
# (name, H, W, k, C_in, C_out) at a 375×500 input with ceil (SAME) pooling.
CONVS = [
    ("conv1_2", 375, 500, 3, 64, 64),
    ("conv2_2", 188, 250, 3, 128, 128),
    ("conv3_3", 94, 125, 3, 256, 256),
    ("conv4_3", 47, 63, 3, 512, 512),
    ("conv5_3", 24, 32, 3, 512, 512),
    ("fc6", 12, 16, 7, 512, 4096),
    ("fc7", 12, 16, 1, 4096, 4096),
    ("fc8", 12, 16, 1, 4096, 21),
]


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


def bench_convs(rng, repeat, torch):
    records = []
    for name, h, w, k, cin, cout in CONVS:
        x = rng.standard_normal((1, h, w, cin), dtype=np.float32)
        wt = (rng.standard_normal((k, k, cin, cout), dtype=np.float32) * 0.01)
        b = np.zeros(cout, np.float32)
        out, cache = ops.conv2d_forward(x, wt, b)
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        M, K = h * w, k * k * cin
        A = rng.standard_normal((M, K), dtype=np.float32)
        B = wt.reshape(K, cout)
        C = np.empty((M, cout), np.float32)
        D = dout.reshape(M, cout)
        dW = np.empty((K, cout), np.float32)
        dA = np.empty((M, K), np.float32)

        def gemm_backward():
            np.dot(A.T, D, out=dW)
            np.dot(D, B.T, out=dA)

        dw_buf, db_buf = np.empty_like(wt), np.empty_like(b)   # reused, as a Conv2D layer does
        fns = {"fwd": lambda: ops.conv2d_forward(x, wt, b),
               "bwd": lambda: ops.conv2d_backward(dout, cache, dw_buf, db_buf),
               "gemm_fwd": lambda: np.dot(A, B, out=C),
               "gemm_bwd": gemm_backward}
        if torch is not None:
            xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
            wtt = torch.tensor(wt.transpose(3, 2, 0, 1).copy(), requires_grad=True)
            bt = torch.tensor(b, requires_grad=True)
            gt = torch.tensor(dout.transpose(0, 3, 1, 2).copy())

            def torch_fwd():
                with torch.no_grad():
                    torch.nn.functional.conv2d(xt, wtt, bt, padding=k // 2)

            def torch_bwd():
                torch.autograd.grad(torch.nn.functional.conv2d(xt, wtt, bt, padding=k // 2),
                                    (xt, wtt, bt), gt)
            fns["torch_fwd"] = torch_fwd
            fns["torch_fwdbwd"] = torch_bwd
        t = interleaved(fns, repeat)
        flops = 2.0 * M * K * cout
        extra = peak_extra_bytes(lambda: ops.conv2d_forward(x, wt, b), out.nbytes)
        im2col_full = 0 if k == 1 else M * K * 4
        fwd = record(f"{name}.forward", t["fwd"], peer="numpy-gemm", peer_s=t["gemm_fwd"],
                     gflops_per_s=flops / t["fwd"] / 1e9,
                     gemm_efficiency=t["gemm_fwd"] / t["fwd"],
                     extra_memory_mb=extra / 2**20, im2col_full_mb=im2col_full / 2**20)
        bwd = record(f"{name}.backward", t["bwd"], peer="numpy-gemm", peer_s=t["gemm_bwd"],
                     gflops_per_s=2 * flops / t["bwd"] / 1e9,
                     gemm_efficiency=t["gemm_bwd"] / t["bwd"])
        if torch is not None:
            fwd.update(torch_s=t["torch_fwd"], ratio_vs_torch=t["fwd"] / t["torch_fwd"])
            # torch's backward alone = (forward + backward) − forward
            tb = max(t["torch_fwdbwd"] - t["torch_fwd"], 1e-9)
            bwd.update(torch_s=tb, ratio_vs_torch=t["bwd"] / tb)
        records += [fwd, bwd]
        print(f"  {name}: fwd {t['fwd']*1e3:.1f} ms, bwd {t['bwd']*1e3:.1f} ms", flush=True)
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
    shapes, cin = [], 3
    for cout, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
        for _ in range(n):
            shapes += [(3, 3, cin, cout), (cout,)]
            cin = cout
    shapes += [(7, 7, 512, 4096), (4096,), (1, 1, 4096, 4096), (4096,), (1, 1, 4096, n_classes), (n_classes,)]
    return shapes


def bench_adam(rng, repeat, torch):
    shapes = vgg16_fcn32s_shapes()
    params = [np.zeros(s, np.float32) for s in shapes]
    grads = [np.full(s, 0.01, np.float32) for s in shapes]
    ms = [np.zeros(s, np.float32) for s in shapes]
    vs = [np.zeros(s, np.float32) for s in shapes]
    n = sum(p.size for p in params)
    step = [0]

    def tinyseg_adam():
        step[0] += 1
        for p, g, m, v in zip(params, grads, ms, vs):
            ops.adam_update(p, g, m, v, step[0])

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="PATH", help="write the records to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per op (median reported)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if installed")
    args = parser.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    if args.no_torch:
        torch = None
    import numba
    print(f"numba threads: {numba.get_num_threads()}, torch: {torch.__version__ if torch else 'not installed'}")
    rng = np.random.default_rng(0)
    records = bench_convs(rng, args.repeat, torch) + bench_others(rng, args.repeat, torch) + \
        bench_adam(rng, max(3, args.repeat), torch)
    print_table(records, ["name", "tinyseg_s", "peer", "peer_s", "ratio", "gflops_per_s",
                          "gemm_efficiency", "torch_s", "ratio_vs_torch", "extra_memory_mb", "im2col_full_mb"])
    write_json(args.json, records)


if __name__ == "__main__":
    main()
