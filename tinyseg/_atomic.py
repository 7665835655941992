"""Atomic file output: write under a temporary name in the destination folder, then rename.

The temporary file of ``DIR/NAME`` is ``DIR/.NAME.tinyseg-tmp-PID-XXXXXXXX.tmp`` (PID: the writing
process, X: random). A process killed mid-write (``kill -9``, power loss) leaves that file behind;
the next write of ``DIR/NAME`` removes every such file whose process no longer exists, and
nothing else: the name must match that pattern exactly, for this ``NAME``, with a dead PID.

The temporary file is created with ``os.open(O_CREAT | O_EXCL, 0o666)``, so the kernel applies the
process umask as it does for ``open(path, "w")``: the output gets ``0o666 & ~umask`` (0644 under
umask 022). ``tempfile.mkstemp`` would create it 0600, and reading the umask with ``os.umask``
would briefly change it for every thread.
"""
from __future__ import annotations

import os
import re
import secrets
import string
from contextlib import contextmanager

__all__ = ["atomic_output", "temp_prefix", "stale_temp_files"]

_MARK = "tinyseg-tmp"


def temp_prefix(path) -> str:
    """The start of this process's temporary names for ``path``: ``.NAME.tinyseg-tmp-PID-``."""
    return f".{os.path.basename(os.fspath(path))}.{_MARK}-{os.getpid()}-"


_LETTERS = string.ascii_lowercase + string.digits + "_"


def _create_temp(folder: str, prefix: str) -> str:
    """Create an empty ``prefix + 8 random letters + .tmp`` in ``folder``, mode ``0o666 & ~umask``."""
    for _ in range(100):
        name = prefix + "".join(secrets.choice(_LETTERS) for _ in range(8)) + ".tmp"
        tmp = os.path.join(folder, name)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name {prefix}XXXXXXXX.tmp in {folder!r}")


def _pid_is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True                     # ours: possibly a write in progress in another thread
    try:
        os.kill(pid, 0)                 # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True                     # exists but belongs to someone else / cannot tell
    return True


def stale_temp_files(path) -> list:
    """Temporary files left by killed writers of ``path`` (full paths), by the rule above."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\.{_MARK}-(\d+)-[a-z0-9_]{{8}}\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _pid_is_running(int(match.group(1))):
            stale.append(os.path.join(folder, name))
    return sorted(stale)


@contextmanager
def atomic_output(path, what: str = "output"):
    """Yield a temporary path beside ``path``; on success make it durable and move it onto ``path``.

    The bytes are fsync'ed before ``os.replace``, so ``path`` holds either the old file or the
    complete new one, never a partial write. On any error the temporary file is removed and the
    old ``path`` is left untouched. Stale temporary files of ``path`` from killed writers are
    removed first. ``what`` names the file in error messages, which name ``path``, not the
    temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} folder does not exist: {folder!r}")
    for stale in stale_temp_files(path):
        try:
            os.remove(stale)
        except FileNotFoundError:
            pass                        # another writer removed it first
    try:
        tmp = _create_temp(folder, temp_prefix(path))
    except OSError as exc:
        raise type(exc)(f"cannot write {what} {path!r}: {exc.strerror or exc} "
                        f"(in folder {folder!r})") from None
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and tmp in str(exc):
            raise type(exc)(f"cannot write {what} {path!r}: "
                            f"{exc.strerror or str(exc).replace(tmp, path)}") from exc
        raise
