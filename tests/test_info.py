"""``tinyseg info``: one screen for bug reports, also as JSON, on any machine."""
import json
import os
import subprocess
import sys

import numba

from tinyseg import __version__
from tinyseg.cli import main
from tinyseg.cli.info import collect


def test_info_names_versions_backends_and_cache(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"tinyseg {__version__}")
    assert f"numba {numba.__version__}" in out
    assert "backend cpu: available" in out
    assert "backend cuda: " in out
    assert "libNVVM: " in out
    assert "Numba cache: " in out and "backend" in out.split("Numba cache: ")[1]


def test_info_json_is_the_same_report(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads(json.dumps(collect()))  # fresh collection agrees, key for key
    assert info["libraries"]["numba"] == numba.__version__
    assert info["backends"]["cpu"] == "available"
    assert set(info["cuda"]) >= {"simulator", "gpus"}


def test_info_without_simulator_reports_gpus_or_why_none():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    run = subprocess.run([sys.executable, "-m", "tinyseg.cli", "info", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    cuda = json.loads(run.stdout)["cuda"]
    assert cuda["simulator"] is False
    if not cuda["gpus"]:                 # a machine without a GPU says why
        assert cuda["error"]
    else:                                # a GPU machine names each GPU
        assert all(g["name"] and g["compute_capability"] for g in cuda["gpus"])
