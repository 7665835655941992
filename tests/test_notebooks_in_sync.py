"""The walkthroughs ship as notebooks (examples/notebooks/*.ipynb) generated from examples/*.py by
jupytext; each notebook must equal a fresh conversion of its script."""
import glob
import importlib.util
import json
import os

import re

import pytest

pytest.importorskip("jupytext")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def _make_notebooks():
    path = os.path.join(EXAMPLES, "notebooks", "make_notebooks.py")
    spec = importlib.util.spec_from_file_location("make_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mk = _make_notebooks()


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_every_cell_script_in_examples_is_a_listed_walkthrough():
    scripts = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(EXAMPLES, "*.py"))
                     if _read(p).startswith("# %%"))
    assert scripts == sorted(mk.WALKTHROUGHS)


@pytest.mark.parametrize("name", mk.WALKTHROUGHS)
def test_notebook_equals_a_fresh_conversion_of_its_script(name):
    script, notebook = mk.paths(name)
    assert os.path.exists(notebook), f"missing {notebook}: run python examples/notebooks/make_notebooks.py"
    assert _read(notebook) == mk.notebook_text(_read(script)), (
        f"{os.path.relpath(notebook, ROOT)} is out of date: run python examples/notebooks/make_notebooks.py")


@pytest.mark.parametrize("name", mk.WALKTHROUGHS)
def test_notebook_has_the_scripts_cells_and_no_outputs(name):
    script, notebook = mk.paths(name)
    cells = json.loads(_read(notebook))["cells"]
    assert len(cells) == len(re.findall(r"^# %%", _read(script), flags=re.M))
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    # a line of the script's first code cell appears verbatim in the notebook
    assert any("import argparse\n" in "".join(cell["source"]) for cell in code)


def test_an_edited_script_no_longer_matches_its_notebook():
    script, notebook = mk.paths(mk.WALKTHROUGHS[0])
    edited = _read(script) + "\n# %%\nprint('a new cell')\n"
    assert _read(notebook) != mk.notebook_text(edited)
