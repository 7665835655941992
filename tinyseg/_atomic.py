"""Atomic file output: write under a temporary name in the destination folder, then rename."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_output(path, what: str = "output"):
    """Yield a temporary path beside ``path``; on success make it durable and move it onto ``path``.

    The bytes are fsync'ed before ``os.replace``, so ``path`` holds either the old file or the
    complete new one, never a partial write. On any error the temporary file is removed and the
    old ``path`` is left untouched. ``what`` names the file in the missing-folder error.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} folder does not exist: {folder!r}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
