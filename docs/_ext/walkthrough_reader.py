"""Read a ``# %%`` walkthrough as a notebook for myst-nb (jupytext's percent format).

jupytext leaves a script's notebook without a kernel; myst-nb needs one to highlight the code
and to execute it, so the reader names Python 3's.
"""
import jupytext

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}


def read_walkthrough(text: str):
    """``text`` of a ``py:percent`` script -> an ``nbformat`` notebook with a Python kernelspec."""
    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = dict(LANGUAGE_INFO)
    return notebook
