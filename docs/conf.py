"""Sphinx configuration of tinyseg's documentation site.

Build it (from the repository root)::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The walkthroughs in ``examples/*.py`` (``# %%`` cells) are copied into ``docs/tutorial/`` at
build time and rendered by myst-nb through jupytext. They are **not executed** unless
``TINYSEG_DOCS_EXECUTE`` says so:

* unset or ``off`` -- code and text only (the default: fast, what CI builds);
* ``1`` or ``cache`` -- executed once and cached in ``docs/_build/.jupyter_cache`` (figures
  inline; later builds reuse the outputs until a cell changes);
* ``force`` -- executed on every build.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(HERE, "_ext"))

import tinyseg  # noqa: E402

project = "tinyseg"
author = "tinyseg contributors"
copyright = "tinyseg contributors"
release = tinyseg.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

# ----------------------------------------------------------------------------- the walkthroughs
# One home for each walkthrough: examples/NAME.py. The build copies it next to its page.
WALKTHROUGHS = ("post_walkthrough", "walkthrough_cures", "walkthrough_crf_rnn")
_tutorial = os.path.join(HERE, "tutorial")
for _name in WALKTHROUGHS:
    _src, _dst = os.path.join(ROOT, "examples", _name + ".py"), os.path.join(_tutorial, _name + ".py")
    if not os.path.exists(_dst) or open(_src, "rb").read() != open(_dst, "rb").read():
        shutil.copyfile(_src, _dst)

nb_custom_formats = {".py": "walkthrough_reader.read_walkthrough"}   # jupytext, py:percent
_execute = os.environ.get("TINYSEG_DOCS_EXECUTE", "off").strip().lower()
nb_execution_mode = {"": "off", "0": "off", "off": "off", "1": "cache", "cache": "cache",
                     "force": "force"}.get(_execute, "off")
nb_execution_cache_path = os.path.join(HERE, "_build", ".jupyter_cache")
nb_execution_timeout = 1800             # the cures' study trains 3 models × 4 seeds
nb_execution_raise_on_error = True
nb_execution_in_temp = True             # figures written by the walkthroughs stay out of docs/
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb", ".py": "myst-nb"}
# benchmarks_summary.md is the README's short table (benchmarks/report.py writes it, its links are
# relative to the repository root); the site has the whole report, benchmarks.md.
exclude_patterns = ["_build", "_ext", "conf.py", "**.ipynb_checkpoints", "README.md",
                    "benchmarks_summary.md"]
# index.md's toctree ends with the glob "*": every top-level page not listed before it —
# architecture.md, benchmarks.md (written by benchmarks/report.py), contributing.md.
suppress_warnings = ["mystnb.unknown_mime_type"]

# ----------------------------------------------------------------------------- API pages
autosummary_generate = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"              # the numpydoc sections carry the types
autodoc_mock_imports = ["mpi4py", "torch", "pydensecrf", "tensorboardX"]
numpydoc_show_class_members = False     # members are documented by autodoc below the class
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# ----------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"tinyseg {release}"
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = []
html_show_sourcelink = False
