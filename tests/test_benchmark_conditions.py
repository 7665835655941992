"""The benchmarks' equal conditions (benchmarks/_conditions.py) and report tables
(benchmarks/_report_render.py): what every worker gets, and what it reports."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from _conditions import MALLOC_THRESHOLDS, THREAD_VARIABLES, Conditions  # noqa: E402


def test_thresholds_in_every_worker():
    env = Conditions(threads=2, malloc="thresholds").env(1, base={"OPENBLAS_CORETYPE": "Haswell",
                                                                   "OPENBLAS_L2_SIZE": "1"})
    assert env["MALLOC_MMAP_THRESHOLD_"] == "1073741824"
    assert env["MALLOC_TRIM_THRESHOLD_"] == "2147483647"
    assert all(env[v] == "1" for v in THREAD_VARIABLES)
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env     # both, together
    assert "TINYSEG_SYSTEM_MALLOC" not in env
    assert env["OPENBLAS_THREAD_TIMEOUT"] == "4"               # what tinyseg's tune_process sets


def test_openblas_thread_timeout_is_set_or_removed_alike():
    base = {"OPENBLAS_THREAD_TIMEOUT": "28"}
    assert Conditions(threads=2).env(base=base)["OPENBLAS_THREAD_TIMEOUT"] == "4"
    cond = Conditions(threads=2, openblas_thread_timeout="default")
    assert "OPENBLAS_THREAD_TIMEOUT" not in cond.env(base=base)
    assert "OPENBLAS_THREAD_TIMEOUT unset" in cond.header()
    assert "OPENBLAS_THREAD_TIMEOUT=4" in Conditions(threads=2).header()


def test_default_allocator_in_every_worker():
    base = dict(MALLOC_THRESHOLDS, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="1")
    env = Conditions(threads=2, malloc="default", openblas_coretype="keep").env(base=base)
    assert not set(MALLOC_THRESHOLDS) & set(env)
    assert env["TINYSEG_SYSTEM_MALLOC"] == "1"                 # no tinyseg version sets them itself
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["OPENBLAS_L2_SIZE"] == "1"
    assert all(env[v] == "2" for v in THREAD_VARIABLES)


def test_a_pinned_worker_reports_one_thread():
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import numpy; "
            "from _conditions import pin_threads, worker_report; pin_threads(1); "
            "print(json.dumps(worker_report('x')))")
    env = Conditions(threads=1).env(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    rep = json.loads(out.strip().splitlines()[-1])
    assert rep["numba_threads"] == 1
    assert rep["env"]["MALLOC_MMAP_THRESHOLD_"] == "1073741824"
    assert rep["env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert all(b.get("num_threads") == 1 for b in rep["blas"] if "num_threads" in b)


def test_summary_spans_come_from_the_records():
    from _report_render import summary

    crf = [{"labels": 21, "photos": ["a", "b"], "ratio_per_core": r, "ratio_all_vs_1": r / 2,
            "threads_all": 2, "ratio_throughput": r + 0.1, "set_images": 16,
            "tinyseg_best_way": "pool"} for r in (0.8, 1.2)]
    rows = {row[0]: row[1] for row in summary({"crf": {"records": crf}})}
    assert rows["CRF per core, 21 labels (one thread each)"] == "0.80–1.20×"
    assert rows["CRF throughput, 16 images on 2 cores each, 21 labels"] == "0.90–1.30×"
    assert any("unequal" in k and v == "0.40–0.60×" for k, v in rows.items())


@pytest.mark.parametrize("bad", ["--only nope"])
def test_report_rejects_an_unknown_benchmark(bad):
    res = subprocess.run([sys.executable, "benchmarks/report.py", *bad.split()], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode != 0 and "unknown benchmark 'nope'" in res.stderr


def test_the_report_says_when_runs_had_different_conditions():
    from _report_render import shared_conditions

    same = {"crf": {"conditions": {"header": "A"}}, "train": {"conditions": {"header": "A"}}}
    assert shared_conditions(same) == "Condition of every table: A."
    mixed = {"crf": {"conditions": {"header": "A"}}, "train": {"conditions": {"header": "B"}}}
    text = shared_conditions(mixed)
    assert "differ" in text and ": A" in text and ": B" in text
