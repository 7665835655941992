"""Markdown tables, conditions and plots of the benchmark JSON (``report.py`` calls
:func:`write_report`). Ratios are tinyseg's time over the peer's: below 1.0 tinyseg is faster."""
from __future__ import annotations

import os
from collections import Counter

TITLES = {"crf": "Dense CRF: per core, all cores, throughput",
          "crf_folder": "Dense CRF on a folder of images (whole commands)",
          "crf_accuracy": "Dense CRF: agreement with the exact CRF, and memory",
          "train": "Training step and forward, tinyseg vs PyTorch",
          "ops": "Per-op speed (convolutions vs GEMM and PyTorch)"}


def _f(v, digits=3):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _ratio(v):
    return "" if v is None else f"{v:.2f}×"


def _span(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}×" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}×"


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(out)


def threads_summary(workers: list[dict]) -> str:
    """One phrase per kind of worker: side, Numba/PyTorch/BLAS threads, BLAS kernel."""
    kinds = Counter()
    for w in workers:
        if "note" in w:
            kinds[f"{w.get('side', '?')}: {w['note']}"] += 1
            continue
        blas = w.get("blas") or [{}]
        parts = [w.get("side", "?")]
        if "numba_threads" in w:
            parts.append(f"Numba {w['numba_threads']}")
        if "torch_threads" in w:
            parts.append(f"PyTorch {w['torch_threads']}")
        parts.append("BLAS " + ", ".join(f"{b.get('num_threads', '?')} ({b.get('architecture', '?')})"
                                         for b in blas))
        kinds[" · ".join(str(p) for p in parts)] += 1
    return "; ".join(f"{k} ×{n}" if n > 1 else k for k, n in kinds.items())


def conditions_block(doc: dict) -> str:
    m, c = doc["machine"], doc["conditions"]
    lines = [f"- **machine**: {m['cpu']}, {m['usable_cores']} usable cores ({m['cpu_count']} CPUs); "
             f"{m['platform']}",
             f"- **versions**: Python {m['python']}, NumPy {m['numpy']}, SciPy {m.get('scipy')}, "
             f"Numba {m['numba']}, PyTorch {m['torch']}, pydensecrf {m['pydensecrf']}, "
             f"tinyseg {m.get('tinyseg')} ({m.get('tinyseg_commit')})",
             f"- **allocator and environment (both sides)**: {c['header']}",
             f"- **threads, as each worker reported them**: {threads_summary(doc.get('workers', []))}",
             f"- **load average** (1, 5, 15 min) before {doc['load_before']}, after "
             f"{doc['load_after']}; the run took {doc['seconds']:.0f} s"]
    return "\n".join(lines)


def plot_ratios(path: str, labels: list[str], series: dict, title: str) -> None:
    """Grouped horizontal bars of ratios per case, with the 1.0 line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n, k = len(labels), max(1, len(series))
    fig, ax = plt.subplots(figsize=(8, 0.35 * n * k + 1.5))
    y = np.arange(n)
    h = 0.8 / k
    for i, (name, values) in enumerate(series.items()):
        vals = [np.nan if v is None else v for v in values]
        ax.barh(y + (i - (k - 1) / 2) * h, vals, height=h, label=name)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("tinyseg time / peer time (below 1: tinyseg faster)")
    ax.set_title(title, fontsize=10)
    if k > 1:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- per benchmark
def section_crf(doc, plot):
    recs = doc["records"]
    n = recs[0].get("threads_all", "N") if recs else "N"
    rows, labels = [], []
    for r in recs:
        case = f"{r['params']}, {r['labels']} labels, {r['size']}"
        labels.append(case)
        rows.append([case, _f(r["tinyseg_1t_s"]), _f(r["peer_1t_s"]), _ratio(r["ratio_per_core"]),
                     _ratio(r.get("ratio_dense_crf_per_core")), _f(r.get(f"tinyseg_{n}t_s")),
                     _ratio(r.get("ratio_all_vs_1")), _f(r.get("peer_pool_s")),
                     _f(r.get("tinyseg_best_s")), _ratio(r.get("ratio_throughput")),
                     r.get("tinyseg_best_way", "")])
    plot(labels, {"(a) per core": [r["ratio_per_core"] for r in recs],
                  f"(b) tinyseg {n} threads vs pydensecrf 1": [r.get("ratio_all_vs_1") for r in recs],
                  "(c) throughput, 16 images": [r.get("ratio_throughput") for r in recs]})
    photos = recs[0]["photos"] if recs else []
    text = (f"Set-up + {recs[0]['iterations'] if recs else 10} mean-field iterations through each "
            f"library's pydensecrf 2-D API (tinyseg: `tinyseg.crf.compat`; the `dense_crf` column is "
            f"tinyseg's one-call API on the same CRF). Times in seconds, summed over the photos "
            f"{', '.join(photos)} (medians of alternated runs per photo). **(a)** one image, one "
            f"thread each. **(b)** one image, tinyseg on {n} threads vs pydensecrf on its one "
            f"thread: *unequal cores*, labelled so. **(c)** 16 images on {n} cores each: "
            f"pydensecrf in a pool of {n} single-threaded processes vs tinyseg's better way "
            f"(named in the last column).")
    header = ["case", "(a) tinyseg 1 thread, s", "(a) pydensecrf, s", "(a) ratio",
              "(a) dense_crf ratio", f"(b) tinyseg {n} threads, s", f"(b) ratio {n} vs 1",
              "(c) pydensecrf pool, s", "(c) tinyseg, s", "(c) ratio", "(c) tinyseg's way"]
    return text + "\n\n" + table(header, rows)


def section_crf_folder(doc, plot):
    recs = doc["records"]
    plot([r["name"] for r in recs], {"whole command": [r["ratio"] for r in recs]})
    r = recs[0]
    text = (f"`{r['tinyseg_command']}` on {r['images']} photos (375×500, 21 labels, DeepLab's "
            f"parameters, 10 iterations) vs {r['peer']} reading and writing the same files; each "
            f"command timed from start to exit (imports, worker start-up and file I/O included).")
    rows = [[x["name"], _f(x["tinyseg_s"]), x["peer"], _f(x["peer_s"]), _ratio(x["ratio"]),
             _f(x.get("label_agreement_pct"))] for x in recs]
    return text + "\n\n" + table(["case", "tinyseg, s", "peer", "peer, s", "ratio",
                                  "labels agreeing, %"], rows)


def section_crf_accuracy(doc, plot):
    recs = doc["records"]
    acc = [r for r in recs if "tinyseg_diff_pct" in r]
    mem = [r for r in recs if "peak_rss_mb" in r]
    out = []
    if acc:
        out.append("Share of pixels whose label differs from the exact CRF's (brute force), on small "
                   "crops:\n\n" + table(["case", "tinyseg, %", "pydensecrf, %", "CRF changed, %"],
                                        [[r["name"], _f(r["tinyseg_diff_pct"]), _f(r.get("peer_diff_pct")),
                                          _f(r["crf_changed_pct"])] for r in acc]))
        plot([r["name"].replace("crf.vs-exact.", "") for r in acc],
             {"tinyseg % / pydensecrf %": [r["tinyseg_diff_pct"] / r["peer_diff_pct"]
                                           if r.get("peer_diff_pct") else None for r in acc]})
    if mem:
        out.append("Peak memory of one CRF (512×512, 21 labels, DeepLab's parameters), each "
                   "library in a fresh worker:\n\n" + table(
                       ["case", "tinyseg peak, MB", "pydensecrf peak, MB", "ratio", "tinyseg added, MB",
                        "pydensecrf added, MB", "added ratio"],
                       [[r["name"], _f(r["peak_rss_mb"]), _f(r.get("peer_peak_rss_mb")),
                         _ratio(r.get("peak_ratio")), _f(r["added_mb"]), _f(r.get("peer_added_mb")),
                         _ratio(r.get("added_ratio"))] for r in mem]))
    return "\n\n".join(out)


def section_train(doc, plot):
    recs = doc["records"]
    plot([r["name"] for r in recs], {"vs PyTorch": [r.get("ratio") for r in recs]})
    rows = [[r["name"], _f(r["tinyseg_s"]), _f(r.get("peer_s")), _ratio(r.get("ratio")),
             _ratio(r.get("ratio_min")), _f(r.get("tinyseg_peak_rss_gb")), _f(r.get("torch_peak_rss_gb"))]
            for r in recs]
    return ("Batch 1, full-width networks; a training step is forward with dropout, summed "
            "cross-entropy, backward and Adam. Medians of alternated runs, each framework in its own "
            "worker.\n\n" + table(["case", "tinyseg, s", "PyTorch, s", "ratio", "ratio of fastest runs",
                                   "tinyseg peak RSS, GB", "PyTorch peak RSS, GB"], rows))


def section_ops(doc, plot):
    recs = [r for r in doc["records"] if "tinyseg_s" in r]
    with_torch = [r for r in recs if r.get("ratio_vs_torch") is not None or
                  (r.get("peer", "").startswith("torch") and r.get("ratio") is not None)]
    plot([r["name"] for r in with_torch],
         {"vs PyTorch": [r.get("ratio_vs_torch", r.get("ratio")) for r in with_torch]})
    rows = [[r["name"], _f(r["tinyseg_s"]), r.get("peer", ""), _f(r.get("peer_s")), _ratio(r.get("ratio")),
             _f(r.get("gemm_efficiency")), _f(r.get("torch_s")), _ratio(r.get("ratio_vs_torch"))]
            for r in recs]
    other = [r for r in doc["records"] if "tinyseg_s" not in r]
    text = ("All in one worker process (same allocator and threads for tinyseg, NumPy's GEMM and "
            "PyTorch), runs interleaved. `GEMM efficiency` is NumPy's GEMM time on the same matrix "
            "shapes over tinyseg's.\n\n" + table(
                ["op", "tinyseg, s", "peer", "peer, s", "ratio", "GEMM efficiency", "PyTorch, s",
                 "ratio vs PyTorch"], rows))
    for r in other:
        text += "\n\n" + ", ".join(f"{k} {_f(v)}" for k, v in r.items())
    return text


SECTIONS = {"crf": section_crf, "crf_folder": section_crf_folder, "crf_accuracy": section_crf_accuracy,
            "train": section_train, "ops": section_ops}


def summary(docs: dict) -> list[list[str]]:
    """The README's short table: (what, ratio range, conditions) rows."""
    rows = []
    crf = docs.get("crf", {}).get("records", [])
    for labels in (21, 2):
        sel = [r for r in crf if r["labels"] == labels]
        if sel:
            rows.append([f"CRF per core, {labels} labels (one thread each)",
                         _span([r["ratio_per_core"] for r in sel]), f"{len(sel)} case(s) × {len(sel[0]['photos'])} photos"])
    sel = [r for r in crf if r["labels"] == 21]
    if sel:
        n = sel[0].get("threads_all")
        rows.append([f"CRF one image, tinyseg {n} threads vs pydensecrf 1 (unequal), 21 labels",
                     _span([r.get("ratio_all_vs_1") for r in sel]), f"{len(sel)} case(s)"])
        th = [r for r in sel if r.get("ratio_throughput") is not None]
        if th:
            rows.append([f"CRF throughput, {th[0]['set_images']} images on {n} cores each, 21 labels",
                         _span([r["ratio_throughput"] for r in th]),
                         f"{len(th)} case(s); tinyseg: {', '.join(sorted({r['tinyseg_best_way'] for r in th}))}"])
    for r in docs.get("crf_folder", {}).get("records", []):
        rows.append([f"`tinyseg crf` on a folder of {r['images']} photos vs {r['peer']}",
                     _ratio(r["ratio"]), "whole commands"])
    train = docs.get("train", {}).get("records", [])
    for kind, what in (("train_step", "training step"), ("forward", "forward")):
        sel = [r for r in train if f".{kind}." in r["name"] and r.get("ratio") is not None]
        if sel:
            rows.append([f"{what} vs PyTorch", _span([r["ratio"] for r in sel]),
                         ", ".join(sorted({r["model"] for r in sel}))])
    return rows


def shared_conditions(docs: dict) -> str:
    """The conditions every run shares, or, where runs differ, which run had which."""
    headers = {name: doc["conditions"]["header"] for name, doc in docs.items()}
    if len(set(headers.values())) == 1:
        return f"Condition of every table: {next(iter(headers.values()))}."
    return ("The runs' conditions differ; each section names its own: " +
            "; ".join(f"{TITLES[name]}: {h}" for name, h in headers.items()) + ".")


def write_report(docs: dict, docs_dir: str, quick: bool = False) -> list[str]:
    static = os.path.join(docs_dir, "_static", "benchmarks")
    banner = ("> **Smoke run** (`report.py --quick`): reduced sizes on a possibly busy machine; "
              "not figures to quote.\n\n" if quick else "")
    any_doc = next(iter(docs.values()))
    parts = ["# Benchmarks\n", banner,
             "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; do not "
             "edit by hand. Ratios are tinyseg's time over the peer's (below 1.0: tinyseg is faster). "
             "Every benchmark runs each side in its own worker process with the same thread count "
             "(pinned and reported by each worker) and the same allocator settings, named in each "
             "section.\n",
             shared_conditions(docs) + "\n",
             "## Summary\n", table(["what", "tinyseg / peer", "over"], summary(docs)), ""]
    for name, doc in docs.items():
        png = os.path.join(static, f"{name}.png")
        plotted = []

        def plot(labels, series, name=name, png=png):
            if labels:
                plot_ratios(png, labels, series, TITLES[name])
                plotted.append(png)

        body = SECTIONS[name](doc, plot)
        parts += [f"## {TITLES[name]}\n", conditions_block(doc), "", body, ""]
        if plotted:
            parts.append(f"![{TITLES[name]}](_static/benchmarks/{name}.png)\n")
    os.makedirs(docs_dir, exist_ok=True)
    report = os.path.join(docs_dir, "benchmarks.md")
    with open(report, "w") as f:
        f.write("\n".join(parts))
    short = os.path.join(docs_dir, "benchmarks_summary.md")
    with open(short, "w") as f:
        f.write(banner + table(["what", "tinyseg / peer", "over"], summary(docs)) +
                f"\n\n{any_doc['machine']['cpu']}, {any_doc['machine']['usable_cores']} cores. "
                f"{shared_conditions(docs)} Details, plots and every table: "
                "[docs/benchmarks.md](docs/benchmarks.md).\n")
    return [report, short]
