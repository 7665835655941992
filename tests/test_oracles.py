"""The oracles (PyTorch, pydensecrf, mpi4py with mpiexec, tensorboardX) are skipped locally when
missing but fail the suite under CI=true, so CI cannot go green without its comparisons; and the
quick subset's list of slow tests (conftest.SLOW) names tests that exist."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import in_ci, missing_oracle, require

TESTS = pathlib.Path(__file__).resolve().parent
FAKE = "tinyseg_no_such_oracle_module"


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("TRUE", True),
                                             ("false", False), ("", False), ("0", False)])
def test_in_ci_reads_the_ci_variable(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_require_returns_the_module():
    import json

    assert require("json") is json


def test_a_missing_oracle_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true: module '{FAKE}' is not available"):
        require(FAKE)
    with pytest.raises(pytest.fail.Exception, match="mpiexec is not available"):
        missing_oracle("mpiexec", "pip install 'tinyseg[mpi]'")


def test_a_missing_oracle_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"module '{FAKE}' is not available"):
        require(FAKE)
    with pytest.raises(pytest.skip.Exception, match="tinyseg\\[tensorboard\\]"):
        require("tensorboardX.no_such_submodule")


def test_a_pytest_run_fails_under_ci_when_an_oracle_is_missing(tmp_path):
    """End to end: the exit status a CI job sees for a test that needs a missing oracle."""
    (tmp_path / "test_needs_oracle.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom conftest import require\n\n"
        f"def test_compare():\n    require({FAKE!r})\n")
    env = dict(os.environ, CI="true")
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf",
                          str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and FAKE in run.stdout


def test_every_oracle_is_there_under_ci():
    """In CI this fails on the first oracle the install lost; locally it skips on it."""
    for module in ("torch", "pydensecrf.densecrf", "pydensecrf.utils", "mpi4py", "tensorboardX"):
        require(module)
    from mpi_helpers import mpiexec_or_skip

    assert mpiexec_or_skip()


ORACLE_IMPORTORSKIP = re.compile(r"importorskip\(\s*['\"](torch|pydensecrf|mpi4py|tensorboardX)")


def test_no_test_skips_an_oracle_past_require():
    """Tests reach the oracles through ``conftest.require`` (never ``pytest.importorskip``), so
    CI=true turns every such skip into a failure."""
    offenders = [p.name for p in TESTS.glob("*.py") if ORACLE_IMPORTORSKIP.search(p.read_text())]
    assert offenders == []


def test_every_test_listed_as_slow_exists():
    """conftest.SLOW names tests by module and function: a renamed test must not drop out silently."""
    from conftest import SLOW

    for module, names in SLOW.items():
        source = (TESTS / module).read_text()
        for name in names:
            assert re.search(rf"^def {name}\(", source, flags=re.M), f"{module}::{name}"
