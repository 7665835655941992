"""Shared helpers for the benchmark scripts: timing, table printing and the JSON record format.

Every benchmark writes (with ``--json PATH``) a list of records, each a dict with at least
``name`` and ``tinyseg_s`` (median seconds); where a peer ran in the same run, ``peer`` (what it
was), ``peer_s`` and ``ratio = tinyseg_s / peer_s``. Other keys (``gflops_per_s`` …) may follow.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from typing import Callable

import numpy as np


def median_seconds(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tinyseg_steps(model, adam, x, labels):
    """``(forward, train_step)`` over a tinyseg ``model``: a test-mode forward of ``x``, and one
    training iteration — ``Trainer.step`` without its bookkeeping: forward with dropout, summed
    softmax cross-entropy against ``labels``, backward, ``adam.step`` — returning the loss."""
    from tinyseg import ops

    def forward():
        model.forward(x, train=False)
        model.clear()

    def train_step():
        logits = model.forward(x, train=True, step=adam.t)
        loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction="sum")
        del logits
        model.backward(dlogits)
        adam.step(model.params, model.grads)
        model.clear()
        return loss

    return forward, train_step


def adam_sweep(shapes, zeros, full):
    """``(step, n_params, params, grads)`` for timing Adam: ``step()`` runs one ``ops.adam_update``
    per array of ``shapes`` (parameters and moments ``zeros(shape)``, gradients ``full(shape)``),
    the step count advancing each call."""
    from tinyseg import ops

    params = [zeros(s) for s in shapes]
    grads = [full(s) for s in shapes]
    ms = [zeros(s) for s in shapes]
    vs = [zeros(s) for s in shapes]
    t = [0]

    def step():
        t[0] += 1
        for p, g, m, v in zip(params, grads, ms, vs):
            ops.adam_update(p, g, m, v, t[0])

    return step, sum(p.size for p in params), params, grads


def alternating_medians(fns: dict, repeat: int) -> tuple[dict, dict]:
    """Median wall and CPU seconds (all threads) of each callable, timed round-robin after one
    untimed round (so that a shared machine's changing load falls on all of them alike)."""
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for r in range(repeat + 1):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if r:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def coarse_object_map(image):
    """What an FCN-32s sees of ``image`` (H, W, 3): its Otsu foreground mask averaged over 32×32
    blocks and upsampled ×32 bilinearly, ``(map (H, W) in [0, 1], blocks down, blocks across)``.
    The CRF benchmarks build their FCN-like inputs from it."""
    from skimage import color, filters, transform

    h, w = image.shape[:2]
    grey = color.rgb2gray(image)
    mask = (grey > filters.threshold_otsu(grey)).astype("float64")
    hb, wb = -(-h // 32), -(-w // 32)
    padded = np.pad(mask, ((0, hb * 32 - h), (0, wb * 32 - w)), mode="edge")
    blocks = padded.reshape(hb, 32, wb, 32).mean(axis=(1, 3))            # (H/32, W/32)
    return transform.resize(blocks, (hb * 32, wb * 32), order=1)[:h, :w], hb, wb


def record(name: str, tinyseg_s: float, peer: str | None = None, peer_s: float | None = None,
           **extra) -> dict:
    """One benchmark record in the shared format."""
    rec = {"name": name, "tinyseg_s": tinyseg_s}
    if peer is not None and peer_s is not None:
        rec.update(peer=peer, peer_s=peer_s, ratio=tinyseg_s / peer_s)
    rec.update(extra)
    return rec


def print_table(records: list[dict], columns: list[str]) -> None:
    """Print ``records`` as an aligned text table with the given columns (missing values blank)."""
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    rows = [[fmt(r.get(c)) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def write_json(path: str | None, records: list[dict], **meta) -> None:
    """Write ``records`` (a list) to ``path`` as JSON; machine facts go to a sibling key-less print."""
    if not path:
        return
    with open(path, "w") as f:
        json.dump(records, f, indent=2)
    print(f"wrote {len(records)} records to {path} ({platform.node()}, {platform.processor() or platform.machine()})")
