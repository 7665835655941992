"""Run the benchmark suite (or part of it) and write ``docs/benchmarks.md`` from its JSON.

    python benchmarks/report.py                      # the whole suite, then the report
    python benchmarks/report.py --only crf,train     # some benchmarks (others' JSON reused)
    python benchmarks/report.py --quick              # a smoke run (results/quick/, marked so)
    python benchmarks/report.py --render-only        # only rewrite the docs from the JSON

Each benchmark writes ``benchmarks/results/NAME.json`` (``--quick``: ``results/quick/``): its
records, the conditions both sides shared, each worker's own report of its threads, the machine
(CPU, cores, versions) and the load average before and after. The report has, per benchmark, the
conditions, one table and one plot of tinyseg's time ratio per case with the 1.0 line
(``docs/_static/benchmarks/NAME.png``); ``docs/benchmarks_summary.md`` is the short table for the
README. Every figure in both comes from the JSON. The condition options (``--threads``,
``--malloc``, ``--openblas-coretype``, ``--omp-wait-policy``, ``--openblas-thread-timeout``) are
passed to every benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _report_render as render  # noqa: E402
from _conditions import add_condition_options  # noqa: E402

# name -> (script, full-run arguments, quick-run arguments). The full run is sized for about
# 20 minutes on 2 cores; each script's own defaults measure longer.
SUITE = {
    "crf": ("bench_crf.py", ["--repeat", "3", "--set-repeat", "1"],
            ["--quick", "--repeat", "1", "--set-repeat", "1"]),
    "crf_folder": ("bench_crf_folder.py", ["--repeat", "5"], ["--repeat", "1"]),
    "crf_accuracy": ("bench_crf_accuracy.py", [], ["--quick"]),
    "train": ("bench_train.py", ["--model", "all", "--sizes", "375x500,224x224", "--classes", "21",
                                 "--repeat", "7"],
              ["--model", "fcn32s", "--sizes", "224x224", "--classes", "21", "--repeat", "1"]),
    "ops": ("bench_ops.py", ["--repeat", "3"], ["--only", "conv5", "--repeat", "1"]),
}


def run_one(name: str, quick: bool, results: str, passed: list[str]) -> float:
    script, full, short = SUITE[name]
    path = os.path.join(results, f"{name}.json")
    cmd = [sys.executable, os.path.join(HERE, script), *(short if quick else full), *passed,
           "--json", path]
    print(f"\n=== {name}: {' '.join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd[1:])}",
          flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True)
    seconds = time.perf_counter() - t0
    print(f"=== {name}: done in {seconds:.0f} s", flush=True)
    return seconds


def passed_conditions(args) -> list[str]:
    return ["--threads", str(args.threads), "--malloc", args.malloc,
            "--openblas-coretype", args.openblas_coretype, "--omp-wait-policy", args.omp_wait_policy,
            "--openblas-thread-timeout", args.openblas_thread_timeout]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SUITE),
                        help=f"comma-separated benchmarks to run (default: all: {','.join(SUITE)})")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes; results/quick/")
    parser.add_argument("--render-only", action="store_true", help="run nothing, only render")
    parser.add_argument("--docs", default=os.path.join(REPO, "docs"), help="docs folder")
    add_condition_options(parser)
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in SUITE]
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown[0]!r}; choose from {', '.join(SUITE)}")
    results = os.path.join(HERE, "results", "quick" if args.quick else "")
    os.makedirs(results, exist_ok=True)
    if not args.render_only:
        t0 = time.perf_counter()
        for k, name in enumerate(chosen, 1):
            print(f"[{k}/{len(chosen)}] {name}", flush=True)
            run_one(name, args.quick, results, passed_conditions(args))
        print(f"\nsuite: {time.perf_counter() - t0:.0f} s", flush=True)
    docs = {}
    for name in SUITE:
        path = os.path.join(results, f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                docs[name] = json.load(f)
    if not docs:
        print(f"no results in {results}: run the benchmarks first", file=sys.stderr)
        return 1
    written = render.write_report(docs, args.docs, quick=args.quick)
    for path in written:
        print(f"wrote {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
