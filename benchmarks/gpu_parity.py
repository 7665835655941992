"""Does the CUDA backend compute what the CPU backend computes? Exit 1 on any mismatch.

Run by ``benchmarks/gpu_check.sh`` after the CUDA tests and before the timings, on shapes large
enough to use every launch configuration the tests' tiny shapes do not reach (several GEMM tiles
and split-K, im2col blocks, many CRF grid cells). Each check compares the GPU's result with the
CPU backend's on the same inputs:

* ``gemm``: the tiled GEMM (each tile configuration, split-K, transposed operands, ``beta = 1``) against
  NumPy in float64, relative error ≤ 1e-4 of the largest entry;
* ``fcn32s``: an FCN-32s (width 1/8, 21 classes, 2 × 93×125) — test-mode logits, then one
  training step: loss, every parameter gradient and every parameter after Adam;
* ``crf``: the dense CRF with the post's parameters at 2 and 21 labels on a 120×160 image:
  labels agree on ≥ 99.9 % of pixels and Q to 1e-3.

    python benchmarks/gpu_parity.py [--json PATH]
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_parity.py --smoke   # checks the script itself
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


class Checks:
    """Collects ``(name, error, tolerance)`` and prints each as it is made."""

    def __init__(self):
        self.rows = []

    def add(self, name: str, error: float, tol: float) -> None:
        ok = bool(error <= tol)
        self.rows.append({"name": name, "error": error, "tolerance": tol, "ok": ok})
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {error:.3g} (tolerance {tol:g})", flush=True)

    @property
    def failed(self) -> list:
        return [r for r in self.rows if not r["ok"]]


def check_gemm(checks: Checks, smoke: bool) -> None:
    from numba import cuda

    from tinyseg.backend.cuda import matmul as G

    rng = np.random.default_rng(1)
    shapes = [(9, 7, 5)] if smoke else [(37, 27, 5), (1000, 577, 130), (4096, 64, 300),
                                          (64, 23000, 96)]
    configs = {"tiny": G.TINY} if smoke else {"auto": None, "small": G.SMALL, "large": G.LARGE}
    for M, K, N in shapes:
        for ta, tb in ((False, False), (True, False), (False, True)):
            a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
            b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
            c0 = rng.standard_normal((M, N)).astype(np.float32)
            want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
            runs = [(cname, cfg, None) for cname, cfg in configs.items()]
            runs.append(("split-k 3", G.TINY if smoke else None, 3))
            for cname, cfg, split_k in runs:
                c = cuda.to_device(c0)
                G.gemm(cuda.to_device(a), cuda.to_device(b), c, trans_a=ta, trans_b=tb,
                       beta=1.0, config=cfg, split_k=split_k)
                checks.add(f"gemm {M}x{K}x{N} ta={ta} tb={tb} {cname}",
                           _rel_err(c.copy_to_host(), want + c0), 1e-4)


def check_fcn32s(checks: Checks, smoke: bool) -> None:
    from tinyseg import ops
    from tinyseg.models import FCN32s, FCN32sConfig
    from tinyseg.training.optim import Adam

    N, H, W = (1, 9, 11) if smoke else (2, 93, 125)
    config = FCN32sConfig(n_classes=21, width=1 / 64 if smoke else 1 / 8, seed=3)
    rng = np.random.default_rng(2)
    x = (rng.random((N, H, W, 3), dtype=np.float32) * 255 - 120).astype(np.float32)
    labels = rng.integers(0, 21, size=(N, H, W)).astype(np.int32)
    labels[:, :3] = 255
    cpu = FCN32s(config, backend="cpu")
    gpu = FCN32s(config, backend="cuda", params=cpu.host_params())
    # fc8 starts at zero: give it values so the logits are not all equal.
    fc8 = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.01
           for k, v in cpu.host_params().items() if k.startswith("fc8.")}
    for model in (cpu, gpu):
        model.load_params({**model.host_params(), **fc8})

    want = cpu.forward(x, train=False)
    got = gpu.backend.to_numpy(gpu.forward(x, train=False))
    cpu.clear(), gpu.clear()
    checks.add("fcn32s test-mode logits", _rel_err(got, want), 1e-4)

    results = {}
    for name, model in (("cpu", cpu), ("gpu", gpu)):
        be = model.backend
        adam = Adam()
        logits = model.forward(be.asarray(x), train=True, step=0)
        loss, dlogits = ops.softmax_cross_entropy(logits, be.asarray(labels), reduction="sum")
        model.backward(dlogits)
        grads = {k: be.to_numpy(v).copy() for k, v in model.grads.items()}
        adam.step(model.params, model.grads)
        model.clear()
        results[name] = (float(loss), grads, model.host_params())
    (l_cpu, g_cpu, p_cpu), (l_gpu, g_gpu, p_gpu) = results["cpu"], results["gpu"]
    checks.add("fcn32s training loss", abs(l_gpu - l_cpu) / abs(l_cpu), 1e-4)
    checks.add("fcn32s gradients (worst parameter)",
               max(_rel_err(g_gpu[k], g_cpu[k]) for k in g_cpu), 1e-3)
    checks.add("fcn32s parameters after Adam (worst)",
               max(_rel_err(p_gpu[k], p_cpu[k]) for k in p_cpu), 1e-5)


def check_crf(checks: Checks, smoke: bool) -> None:
    from tinyseg.crf import dense_crf

    H, W = (12, 15) if smoke else (120, 160)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    image[:, W // 2:] //= 3
    for C in (2, 21):
        p = rng.random((H, W, C)).astype(np.float32) + 0.05
        p[: H // 2, :, 0] += 2.0
        p /= p.sum(-1, keepdims=True)
        labels_cpu, q_cpu = dense_crf(image, p, device="cpu")
        labels_gpu, q_gpu = dense_crf(image, p, device="cuda")
        checks.add(f"crf {C} labels: labels differing", float(np.mean(labels_cpu != labels_gpu)), 1e-3)
        checks.add(f"crf {C} labels: Q", float(np.abs(q_gpu - q_cpu).max()), 1e-3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write the checks to this JSON file")
    p.add_argument("--smoke", action="store_true", help="tiny shapes (also in the simulator)")
    args = p.parse_args(argv)
    import numba
    from numba import cuda

    if not numba.config.ENABLE_CUDASIM and not cuda.is_available():
        print("gpu_parity: FAIL: no GPU (numba.cuda.is_available() is False)", file=sys.stderr)
        return 1
    checks = Checks()
    for check in (check_gemm, check_fcn32s, check_crf):
        print(f"{check.__name__[6:]}:", flush=True)
        check(checks, args.smoke)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(checks.rows, f, indent=2)
    if checks.failed:
        print(f"gpu_parity: FAIL: {len(checks.failed)} of {len(checks.rows)} checks differ from the "
              f"CPU backend: {', '.join(r['name'] for r in checks.failed)}", file=sys.stderr)
        return 1
    print(f"gpu_parity: all {len(checks.rows)} checks agree with the CPU backend")
    return 0


if __name__ == "__main__":
    sys.exit(main())
