"""The layers contract (``.importlinter``): tinyseg's packages import only downwards.

``lint-imports`` checks the real tree; a copy of the package with one planted upward import (an
op reaching up to the command line) must break the contract, so the check can fail.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, ".importlinter")

pytest.importorskip("importlinter")


def _lint(where: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": where}
    script = ("import sys; from importlinter.cli import lint_imports_command; "
              "sys.argv = ['lint-imports', sys.argv[1], '--no-cache', '--no-logo']; "
              "lint_imports_command()")
    return subprocess.run([sys.executable, "-c", script, os.path.join(where, ".importlinter")],
                          cwd=where, env=env, text=True, capture_output=True)


def _copy(tmp_path) -> str:
    where = str(tmp_path / "tree")
    shutil.copytree(os.path.join(ROOT, "tinyseg"), os.path.join(where, "tinyseg"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.png", "*.h5", "*.npz"))
    shutil.copy(CONFIG, os.path.join(where, ".importlinter"))
    return where


def test_the_layers_contract_is_kept(tmp_path):
    run = _lint(_copy(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout


@pytest.mark.parametrize("module, line", [
    ("tinyseg/ops/conv.py", "from ..cli import main as _upward  # planted\n"),          # ops -> cli
    ("tinyseg/backend/cpu/conv.py", "from ...crf import dense_crf as _upward  # planted\n"),
    ("tinyseg/models/fcn32s.py", "from ..training import Trainer as _upward  # planted\n"),
])
def test_a_planted_upward_import_breaks_the_contract(tmp_path, module, line):
    where = _copy(tmp_path)
    path = os.path.join(where, module)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + sep + line + rest if sep else line + text)
    run = _lint(where)
    assert run.returncode != 0, run.stdout
    assert "BROKEN" in run.stdout.upper()
    assert module.replace("/", ".")[:-3] in run.stdout
