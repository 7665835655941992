"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, save, one line, exit 130/143;
a second signal aborts at once. Real signals sent to a real `tinyseg train` process."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tinyseg.weights.checkpoint import load_checkpoint
from tinyseg.training.interrupt import stop_on_signals

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def csv_rows(path):
    try:
        return list(csv.reader(open(path)))[1:]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_step_writes_the_checkpoint_and_exits(tmp_path, signum, code):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    Image.fromarray((rng.random((24, 30)) > 0.5).astype(np.uint8)).save(tmp_path / "ann.png")
    ckpt, log = tmp_path / "c.h5", tmp_path / "loss.csv"
    command = [sys.executable, "-m", "tinyseg.cli", "train", "--image", str(tmp_path / "img.png"),
               "--annotation", str(tmp_path / "ann.png"), "--width", "0.03125", "--iterations",
               "1000000", "--checkpoint", str(ckpt), "--log-csv", str(log), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # no --checkpoint-every: the checkpoint written on the signal is the only one
        wait_for(lambda: len(csv_rows(log)) >= 2 or proc.poll() is not None, 300, "two iterations")
        proc.send_signal(signum)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        answered = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last.startswith("tinyseg train: stopped by " + name) and "--resume" in last, err
    done = load_checkpoint(ckpt).adam_state["step"]
    assert done >= 2 and f"after iteration {done};" in last
    assert [int(r[0]) for r in csv_rows(log)] == list(range(1, done + 1))
    assert answered < 20, f"took {answered:.1f} s to stop after {name}"


CHILD_WAITING_FOR_SIGNALS = """
import time
from tinyseg.training.interrupt import stop_on_signals
with stop_on_signals("test") as stop:
    print("ready", flush=True)
    while True:
        time.sleep(0.01)   # a long step that never looks at the request
"""


def test_a_second_signal_aborts_at_once():
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-c", CHILD_WAITING_FOR_SIGNALS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert "SIGINT received" in proc.stderr.readline() + proc.stderr.readline()
        assert proc.poll() is None                  # the first signal only asks
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT        # ended by the signal itself


def test_the_handlers_are_restored_after_the_block():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert signal.getsignal(signal.SIGINT) not in before
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: bool(stop), 5, "the request")
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_rank_other_than_the_root_keeps_the_notice_to_itself(capfd):
    """Under mpiexec every rank gets the terminal's Ctrl-C; only the root says so."""
    for announce, lines in ((False, 0), (True, 1)):
        with stop_on_signals("training", announce=announce) as stop:
            os.kill(os.getpid(), signal.SIGINT)
            wait_for(lambda: bool(stop), 5, "the request")
        err = capfd.readouterr().err
        assert err.count("SIGINT received") == lines, err
