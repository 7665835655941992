"""Stopping long work cleanly on Ctrl-C (SIGINT) or SIGTERM.

The first signal only *asks* the work to stop: :func:`stop_on_signals` records it and the loop
checks the request between steps (training finishes its step, then writes its checkpoint). A
second signal of either kind ends the process at once, by the signal's default action, even in
the middle of a kernel; atomic writes (:mod:`tinyseg._atomic`) leave the last checkpoint intact.

The exit codes follow the shell's convention, ``128 + signal number``: 130 after SIGINT, 143 after
SIGTERM.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

__all__ = ["StopRequest", "TrainingInterrupted", "stop_on_signals", "signal_name"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``"SIGINT"`` for 2, ``"SIGTERM"`` for 15, …"""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """What a loop checks between steps: ``signum`` is ``None`` until a stop is asked for."""

    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


class TrainingInterrupted(Exception):
    """Training stopped after a signal; ``checkpoint`` is the file written, or ``None``."""

    def __init__(self, signum: int, iteration: int, checkpoint: str | None):
        self.signum, self.iteration, self.checkpoint = signum, iteration, checkpoint
        saved = f"checkpoint {checkpoint} written" if checkpoint else "no checkpoint configured"
        super().__init__(f"stopped by {signal_name(signum)} after iteration {iteration}; {saved}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _after_abort(saved) -> str:
    """What a second signal would leave: ``saved()`` is ``(path, iteration)`` or ``None``."""
    if saved is None:
        return ""
    last = saved()
    if last is None:
        return "; no checkpoint is written yet"
    return f"; the last checkpoint, {last[0]}, holds iteration {last[1]}"


@contextmanager
def stop_on_signals(what: str = "work", enabled: bool = True, saved=None, announce: bool = True):
    """Within the block, SIGINT/SIGTERM set the yielded :class:`StopRequest` instead of raising.

    On the first signal a one-line notice goes to stderr and both signals get their default
    action back, so a second one ends the process at once. No Python runs after that second
    signal, so the notice says beforehand what it would leave: ``saved``, a callable returning
    ``(checkpoint path, iteration it holds)`` or ``None`` (nothing written yet). With
    ``announce=False`` the notice is not printed (MPI ranks other than the root: all of them get
    the terminal's signal, and one line says it for all). The previous handlers are restored when
    the block exits. Outside the main thread (where Python cannot install handlers) or with
    ``enabled=False`` nothing is installed and the request never fires.
    """
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def ask_to_stop(signum, frame):
        request.signum = signum
        for s in SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        if announce:
            print(f"\ntinyseg: {signal_name(signum)} received: finishing the current {what} step "
                  f"(signal again to abort at once{_after_abort(saved)})", file=sys.stderr, flush=True)

    for s in SIGNALS:
        signal.signal(s, ask_to_stop)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
