"""What training reports while it runs: the progress bar, the loss CSV, TensorBoard (rank 0 only).

The CSV holds ``iteration,loss,val_miou`` rows, one per iteration; ``val_miou`` (the validation
mean IoU measured after that iteration) is empty on the rows of iterations without validation.
A validation of an iteration that has no row of its own (e.g. the starting model, iteration 0)
gets a row with an empty ``loss``. An iteration's row is written once it is known whether a
validation follows it (at the next step, the validation, a checkpoint or the end of the run). At
the first step of a run the CSV is cut to the iterations already done (the checkpoint's, after a
resume) so a resumed run repeats no row and a new run starts it afresh.

Every validation prints one line, ``iteration T: validation mean IoU M (best B at iteration K)``,
with or without the progress bar, and goes to TensorBoard as the scalar ``val_miou``. For a
CRF-as-RNN model ``M`` is its output's (network + CRF) and the line ends with ``; network alone
N`` (TensorBoard: ``val_miou_network``).
"""
from __future__ import annotations

import csv
import os

from .._atomic import atomic_output

__all__ = ["TrainLog", "CSV_HEADER"]

CSV_HEADER = ["iteration", "loss", "val_miou"]


class TrainLog:
    """Progress bar, CSV and TensorBoard of a run, per the ``TrainConfig``; silent when not ``enabled``."""

    def __init__(self, config, enabled: bool = True):
        self.config = config
        self.enabled = enabled
        self._bar = None
        self._writer = None
        self._csv_started = False
        self._pending = None            # [iteration, loss, val_miou] not yet written

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
                csv.writer(f).writerows([CSV_HEADER, *rows])
            self._csv_started = True
        if c.progress and self._bar is None:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, initial=iteration, desc="train", unit="it")

    def set_total(self, total: int) -> None:
        """The number of iterations became known (fitted to the time budget)."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def flush_row(self) -> None:
        """Write the last iteration's row now (before a checkpoint, so a kill loses no row it holds)."""
        if self._pending is not None and self.config.log_csv:
            with open(self.config.log_csv, "a", newline="") as f:
                csv.writer(f).writerow(self._pending)
        self._pending = None

    def step(self, iteration: int, loss: float, grads: dict, backend) -> None:
        if not self.enabled:
            return
        self.flush_row()
        self._pending = [iteration, repr(float(loss)), ""]
        if self._writer is not None:
            self._writer.add_scalar("cross_entropy_loss", loss, iteration)
            for name, g in grads.items():
                self._writer.add_histogram(f"gradients/{name.replace('.', '/')}", backend.to_numpy(g),
                                           iteration)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}")
            self._bar.update(1)

    def validation(self, iteration: int, miou: float, best: float, best_iteration: int,
                   network: float | None = None) -> None:
        """One validation: its line, its ``val_miou`` in the CSV and TensorBoard.

        ``network``: a CRF-as-RNN model's network alone (``; network alone N`` on the line,
        TensorBoard's ``val_miou_network``).
        """
        if not self.enabled:
            return
        if self._pending is None or self._pending[0] != iteration:
            self.flush_row()
            self._pending = [iteration, "", ""]
        self._pending[2] = repr(float(miou))
        self.flush_row()
        if self._writer is not None:
            self._writer.add_scalar("val_miou", miou, iteration)
            if network is not None:
                self._writer.add_scalar("val_miou_network", network, iteration)
        message = (f"iteration {iteration}: validation mean IoU {miou:.4f} "
                   f"(best {best:.4f} at iteration {best_iteration})"
                   + (f"; network alone {network:.4f}" if network is not None else ""))
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def close_bar(self) -> None:
        """The steps are over (a final validation may follow)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        """The run is over: write the last row, close the bar and TensorBoard's writer."""
        self.flush_row()
        self.close_bar()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
