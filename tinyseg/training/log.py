"""What training reports while it runs: the progress bar, the loss CSV, TensorBoard (rank 0 only).

The CSV holds ``iteration,loss`` rows (validations are printed and go to TensorBoard). At
the first step of a run it is cut to the iterations already done (the checkpoint's, after a
resume) so a resumed run repeats no row and a new run starts it afresh.
"""
from __future__ import annotations

import csv
import os

from .._atomic import atomic_output

__all__ = ["TrainLog"]


class TrainLog:
    """Progress bar, CSV and TensorBoard of a run, per the ``TrainConfig``; silent when not ``enabled``."""

    def __init__(self, config, enabled: bool = True):
        self.config = config
        self.enabled = enabled
        self._bar = None
        self._writer = None
        self._csv_started = False

    def start(self, iteration: int, total: int) -> None:
        """Before the first step: open TensorBoard's writer, trim the CSV, show the bar."""
        if not self.enabled:
            return
        c = self.config
        if c.tensorboard and self._writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise RuntimeError("--tensorboard needs tensorboardX: pip install "
                                   "'tinyseg[tensorboard]'") from None
            self._writer = SummaryWriter(c.tensorboard)
        if c.log_csv and not self._csv_started:
            rows = []
            if iteration and os.path.exists(c.log_csv):
                with open(c.log_csv, newline="") as f:
                    rows = [r for r in list(csv.reader(f))[1:]
                            if r and r[0].isdigit() and int(r[0]) <= iteration]
            with atomic_output(c.log_csv, "loss CSV") as tmp, open(tmp, "w", newline="") as f:
                csv.writer(f).writerows([["iteration", "loss"], *rows])
            self._csv_started = True
        if c.progress:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, initial=iteration, desc="train", unit="it")

    def set_total(self, total: int) -> None:
        """The number of iterations became known (fitted to the time budget)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def step(self, iteration: int, loss: float, grads: dict, backend) -> None:
        if not self.enabled:
            return
        if self.config.log_csv:
            with open(self.config.log_csv, "a", newline="") as f:
                csv.writer(f).writerow([iteration, repr(float(loss))])
        if self._writer is not None:
            self._writer.add_scalar("cross_entropy_loss", loss, iteration)
            for name, g in grads.items():
                self._writer.add_histogram(f"gradients/{name.replace('.', '/')}", backend.to_numpy(g),
                                           iteration)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}")
            self._bar.update(1)

    def validation(self, iteration: int, miou: float) -> None:
        if not self.enabled:
            return
        if self._writer is not None:
            self._writer.add_scalar("val_mean_iou", miou, iteration)
        message = f"iteration {iteration}: validation mean IoU {miou:.4f}"
        if self._bar is not None:
            self._bar.write(message)
        elif self.config.progress:
            print(message, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
