"""Training, as in the seed: pixel-wise softmax cross-entropy summed over the image, Adam, batch 1.

One iteration::

    x = preprocess(image)[None]                     # (1, H, W, 3), RGB minus the VGG means
    logits = model.forward(x, train=True, step=t)   # (1, H, W, C), dropout on
    loss, dlogits = softmax_cross_entropy(logits, labels[None], reduction="sum")
    model.backward(dlogits)                          # fills model.grads
    adam.step(model.params, model.grads)             # TensorFlow's Adam, in place

Samples are visited in a fixed order that depends only on ``(shuffle_seed, epoch)``, and dropout
masks only on ``(model seed, t)``, so a run resumed from a checkpoint continues exactly as if it
had never stopped. A NaN or infinite loss stops training before the update is applied; the last
checkpoint written stays as it was.
"""
from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from . import ops
from .checkpoint import load_checkpoint, save_checkpoint
from .data import preprocess
from .model import FCN32s, FCN32sConfig
from .optim import Adam, AdamConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the parameters were left as they were before that step."""


@dataclass
class TrainConfig:
    iterations: int = 10                # the seed trains for 10 iterations
    lr: float = 1e-4                    # the seed's Adam learning rate
    reduction: str = "sum"              # "sum" over pixels (the seed) or "mean"
    shuffle_seed: int = 0               # order of the samples in each epoch
    checkpoint: str | None = None       # HDF5 checkpoint path, written atomically
    checkpoint_every: int = 0           # also save every k iterations (0: only at the end)
    log_csv: str | None = None          # append "iteration,loss,seconds" rows here
    tensorboard: str | None = None      # a log folder for TensorBoard (needs tensorboardX)
    progress: bool = True               # show a tqdm progress bar with the loss


@dataclass
class TrainState:
    losses: list = field(default_factory=list)   # loss of every iteration done so far
    seconds: float = 0.0                          # training time so far


class Trainer:
    """Trains ``model`` on ``samples`` — a sequence of ``(image uint8 H×W×3, labels int H×W)``."""

    def __init__(self, model: FCN32s, samples: Sequence, config: TrainConfig | None = None,
                 optimizer: Adam | None = None):
        self.model = model
        self.samples = samples
        self.config = config or TrainConfig()
        if len(samples) == 0:
            raise ValueError("`samples` is empty: nothing to train on")
        if self.config.reduction not in ("sum", "mean"):
            raise ValueError(f"`reduction` must be 'sum' or 'mean', got {self.config.reduction!r}")
        self.optimizer = optimizer or Adam(AdamConfig(lr=self.config.lr))
        self.state = TrainState()
        self._writer = None

    @property
    def iteration(self) -> int:
        """Iterations done so far (= Adam's step count)."""
        return self.optimizer.t

    def sample_index(self, t: int) -> int:
        """Which sample iteration ``t`` (0-based) uses: epoch ``t // n`` is a fixed permutation."""
        n = len(self.samples)
        if n == 1:
            return 0
        epoch, k = divmod(t, n)
        order = np.random.default_rng([self.config.shuffle_seed, epoch]).permutation(n)
        return int(order[k])

    def step(self) -> float:
        """One training iteration; returns its loss."""
        t = self.iteration
        image, labels = self.samples[self.sample_index(t)]
        x = preprocess(image)[None]                                   # (1, H, W, 3)
        labels = np.asarray(labels)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"labels of sample {self.sample_index(t)} are {labels.shape} but its "
                             f"image is {image.shape[:2]}")
        logits = self.model.forward(x, train=True, step=t)
        loss, dlogits = ops.softmax_cross_entropy(logits, labels[None], reduction=self.config.reduction)
        if not math.isfinite(loss):
            self.model.clear()
            raise TrainingDiverged(
                f"loss became {loss} at iteration {t + 1}; stopped before updating the parameters"
                + (f"; the last good checkpoint is {self.config.checkpoint}"
                   if self.config.checkpoint and os.path.exists(self.config.checkpoint) else ""))
        self.model.backward(dlogits)
        grads = self.model.grads
        self.optimizer.step(self.model.params, grads)
        self.model.clear()
        self._log(t + 1, loss, grads)
        return loss

    def run(self, iterations: int | None = None) -> list:
        """Train until ``iterations`` (default: the config's) have been done in total."""
        total = self.config.iterations if iterations is None else iterations
        todo = range(self.iteration, total)
        bar = None
        if self.config.progress and len(todo):
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=self.iteration, desc="train", unit="it")
        try:
            for _ in todo:
                t0 = time.perf_counter()
                loss = self.step()
                self.state.losses.append(loss)
                self.state.seconds += time.perf_counter() - t0
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4g}")
                    bar.update(1)
                every = self.config.checkpoint_every
                if self.config.checkpoint and every and self.iteration % every == 0:
                    self.save(self.config.checkpoint)
        finally:
            if bar is not None:
                bar.close()
        if self.config.checkpoint and len(todo):
            self.save(self.config.checkpoint)
        return self.state.losses

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str) -> None:
        """Write parameters, Adam state, configs and progress to one HDF5 file, atomically."""
        save_checkpoint(path, self.model.host_params(), self.optimizer.state(),
                        {"model": self.model.config_dict(), "adam": asdict(self.optimizer.config),
                         "train": {"shuffle_seed": self.config.shuffle_seed,
                                   "reduction": self.config.reduction}},
                        extra={"losses": self.state.losses, "seconds": self.state.seconds})

    def resume(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`save` (same model config required)."""
        ckpt = load_checkpoint(path)
        saved = {"name": "fcn32s", **ckpt.config.get("model", {})}   # unnamed: before tinyseg.models
        mine = self.model.config_dict()
        if saved != mine:
            raise ValueError(f"checkpoint {path} was written for model config {saved}, "
                             f"but this model is {mine}")
        self.model.load_params(ckpt.params)
        self.optimizer.load_state(ckpt.adam_state, self.model.backend)
        extra = ckpt.extra or {}
        self.state = TrainState(losses=list(extra.get("losses", [])), seconds=extra.get("seconds", 0.0))

    # ------------------------------------------------------------------ logging
    def _log(self, iteration: int, loss: float, grads: dict) -> None:
        if self.config.log_csv:
            new = not os.path.exists(self.config.log_csv)
            with open(self.config.log_csv, "a", newline="") as f:
                w = csv.writer(f)
                if new:
                    w.writerow(["iteration", "loss"])
                w.writerow([iteration, repr(float(loss))])
        if self.config.tensorboard:
            if self._writer is None:
                try:
                    from tensorboardX import SummaryWriter
                except ImportError as exc:
                    raise RuntimeError("TensorBoard logging needs tensorboardX: "
                                       "pip install 'tinyseg[tensorboard]'") from exc
                self._writer = SummaryWriter(self.config.tensorboard)
            self._writer.add_scalar("cross_entropy_loss", loss, iteration)
            be = self.model.backend
            for name, g in grads.items():
                self._writer.add_histogram(f"gradients/{name.replace('.', '/')}", be.to_numpy(g), iteration)


def build_model(n_classes: int, width: float = 1.0, seed: int = 0, weights: str | None = None,
                backend: str = "cpu", dropout: float = 0.5) -> FCN32s:
    """An FCN-32s, He-initialised or (``weights``) from imported VGG-16 parameters (fc8 fresh)."""
    params = None
    if weights:
        from .weights import load_params
        params = {k: v for k, v in load_params(weights).items() if not k.startswith("fc8.")}
    return FCN32s(FCN32sConfig(n_classes=n_classes, width=width, seed=seed, dropout=dropout),
                  backend=backend, params=params)
