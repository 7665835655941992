"""Write the walkthroughs ``examples/*.py`` as Jupyter notebooks ``examples/notebooks/*.ipynb``.

The ``.py`` files (jupytext's percent format: ``# %%`` cells) are the one source; the notebooks
are generated from them, without outputs, for readers who prefer Jupyter::

    python examples/notebooks/make_notebooks.py            # rewrite every notebook
    python examples/notebooks/make_notebooks.py --check    # exit 1 if one is out of date

``tests/test_notebooks_in_sync.py`` runs the same conversion in memory and compares.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.dirname(HERE)
WALKTHROUGHS = ("post_walkthrough", "walkthrough_cures", "walkthrough_crf_rnn")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_text(script_text: str) -> str:
    """The ``.ipynb`` text of a ``py:percent`` script: its cells, no outputs, a Python 3 kernel.

    A pure function of ``script_text`` (cell ids are numbered), so a notebook can be compared
    with a fresh conversion of its script.
    """
    import jupytext
    import nbformat

    notebook = jupytext.reads(script_text, fmt="py:percent")
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for k, cell in enumerate(notebook.cells):
        cell.id = f"cell-{k}"              # stable ids (nbformat draws random ones)
    return nbformat.writes(notebook) + "\n"


def paths(name: str):
    """``(script, notebook)`` paths of walkthrough ``name``."""
    return os.path.join(EXAMPLES, name + ".py"), os.path.join(HERE, name + ".ipynb")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ")
    args = parser.parse_args(argv)
    stale = []
    for name in WALKTHROUGHS:
        script, notebook = paths(name)
        with open(script, encoding="utf-8") as f:
            text = notebook_text(f.read())
        current = open(notebook, encoding="utf-8").read() if os.path.exists(notebook) else None
        if current == text:
            continue
        stale.append(notebook)
        if not args.check:
            with open(notebook, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(notebook)}")
    if args.check and stale:
        print("out of date: " + ", ".join(os.path.relpath(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
