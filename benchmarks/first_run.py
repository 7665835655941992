"""Where the first run's time goes: every Numba compilation of a cold `tinyseg demo`.

Numba compiles each ``@njit`` kernel for each new argument signature on first use and keeps the
machine code in its cache (``cache=True``), so only the first run after an install pays. This
script empties that cache for itself (a fresh ``NUMBA_CACHE_DIR``, unless ``--warm``), runs the
demo in-process and records Numba's ``numba:compile`` events: for every kernel and signature,
the CPU seconds spent compiling it (exclusive of the kernels it calls, which are compiled inside
it; CPU time of the compiling thread, so that other work on the machine does not inflate it).

    python benchmarks/first_run.py                  # cold cache, the demo's default setting
    python benchmarks/first_run.py --json first_run.json --top 40

It prints the demo's phases (import, training, prediction, CRF; wall and CPU seconds: on a busy
machine the CPU seconds say more), the kernels by compile time, and the kernels compiled for more
than one signature. The real figure a user sees is the wall time of ``tinyseg demo`` in a fresh
clone and venv; see README ("First run").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warm", action="store_true", help="keep Numba's usual cache (measure a warm run)")
    p.add_argument("--iterations", type=int, default=None, help="demo iterations (default: the demo's)")
    p.add_argument("--width", type=float, default=None, help="demo width (default: the demo's)")
    p.add_argument("--top", type=int, default=25, help="kernels to list (default 25)")
    p.add_argument("--json", help="also write the records as JSON")
    args = p.parse_args(argv)
    if not args.warm:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="tinyseg-cold-cache-")
    t_start, c_start = time.perf_counter(), time.process_time()

    import numba.core.event as ev

    records, stack = [], []

    class CompileListener(ev.Listener):
        def on_start(self, event):
            d = event.data
            stack.append([time.thread_time(), 0.0, time.perf_counter()])
            records.append(None)                # reserve the slot: callers are listed first

        def on_end(self, event):
            t0, nested, wall0 = stack.pop()
            total = time.thread_time() - t0         # CPU seconds of this thread: robust to load
            if stack:
                stack[-1][1] += total
            d = event.data
            name = f"{d['dispatcher'].py_func.__module__}.{d['dispatcher'].py_func.__qualname__}"
            i = len(records) - 1 - records[::-1].index(None)
            records[i] = dict(kernel=name, signature=str(tuple(d["args"])), seconds=total,
                              exclusive=total - nested, at=wall0 - t_start)

    ev.register("numba:compile", CompileListener())
    import tinyseg  # noqa: F401  (what `tinyseg` imports before any work)
    import_s, import_cpu = time.perf_counter() - t_start, time.process_time() - c_start

    from tinyseg.cli.demo import run_demo

    with tempfile.TemporaryDirectory() as out:
        metrics = run_demo(out, width=args.width, iterations=args.iterations, progress=False,
                           verbose=False)
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    records = [r for r in records if r]

    print(f"cache: {'warm (usual location)' if args.warm else 'cold (' + os.environ['NUMBA_CACHE_DIR'] + ')'}")
    print(f"total {wall:.1f} s wall, {cpu:.1f} s CPU; import tinyseg {import_s:.1f} s ({import_cpu:.1f} s CPU); "
          f"train {metrics['train_seconds']:.1f} s, predict {metrics['predict_seconds']:.1f} s, "
          f"CRF {metrics['crf_seconds']:.1f} s")
    compile_s = sum(r["exclusive"] for r in records)
    print(f"{len(records)} compilations, {compile_s:.1f} s in all "
          f"({len({r['kernel'] for r in records})} kernels)\n")
    print(f"{'CPU s':>8} {'at (s)':>6}  kernel (signature)")
    for r in sorted(records, key=lambda r: -r["exclusive"])[:args.top]:
        print(f"{r['exclusive']:8.2f} {r['at']:6.1f}  {r['kernel']} {r['signature'][:110]}")
    by_kernel = defaultdict(list)
    for r in records:
        by_kernel[r["kernel"]].append(r)
    multi = {k: v for k, v in by_kernel.items() if len(v) > 1}
    if multi:
        print("\nkernels compiled for more than one signature:")
        for k, v in sorted(multi.items(), key=lambda kv: -sum(r["exclusive"] for r in kv[1])):
            print(f"{sum(r['exclusive'] for r in v):8.2f}  {k}: {len(v)} signatures")
            for r in v:
                print(f"{'':10}{r['exclusive']:6.2f}  {r['signature'][:120]}")
    from tinyseg.cli.warmup import PARTS
    helped = tuple(m + "." for m in PARTS["crf"])
    missed = sorted({r["kernel"] for r in records if r["kernel"].startswith(helped)})
    print(f"\nCRF kernels compiled here, not by the helper process (none expected; a new code path "
          f"or signature would show here): {missed or 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(wall=wall, cpu=cpu, import_seconds=import_s, metrics=metrics,
                           compilations=records), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
