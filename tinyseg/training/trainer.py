"""Training: batches by gradient accumulation, the papers' recipes, validation, MPI ranks.

One step ``t`` over a global batch of ``B`` images (``B = 1``, Adam and a summed loss is the post)::

    for each image j of the batch that is this rank's:   # rank r takes j = r, r+R, …
        image, labels = augment(samples[order(t·B + j)], seed, t, j)
        logits = model.forward(preprocess(image)[None], train=True, step=t·B + j)
        loss_j, dlogits = softmax_cross_entropy(logits, labels, reduction="sum") · scale
        model.backward(dlogits, grad_ready=buckets.hook)   # sums into buckets; Iallreduce as they fill
    grads = buckets.finish()                               # Σ over the batch's images and the ranks
    optimizer.step(params, grads, lr=schedule(t))          # Adam or SGD, same on every rank

``scale`` is 1 for a summed loss and 1/(labelled pixels of the whole batch) for a mean. Samples
are visited in a fixed order that depends only on ``(shuffle_seed, epoch)``, augmentation on
``(shuffle_seed, t, j)`` and dropout masks on ``(model seed, t·B + j)``, so a run resumed from a
checkpoint continues exactly as if it had never stopped, and ``R`` ranks compute what one
process computes. A NaN or infinite loss stops training before the update is applied.

Nothing is lost or overwritten unasked: an existing checkpoint file is replaced only by the run
that resumed from it or wrote it (or with ``overwrite=True``); SIGINT (Ctrl-C) or SIGTERM, the
time budget (``max_minutes``) or a bad data file finish at a step boundary, write the checkpoint
(rank 0 alone writes, atomically) and stop; the loss CSV keeps exactly the rows of the iterations
done. With a validation set, every ``val_every`` iterations and at the end the mean IoU is
measured and the best model so far is kept in ``best_checkpoint`` beside the last one; with
``validate_start`` the starting model (iteration 0) is measured too and can be that best. A
CRF-as-RNN model is scored by its output (network + CRF); its network alone is measured beside.
"""
from __future__ import annotations

import inspect
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from .. import ops
from ..data import preprocess
from ..ops import scale_into
from ..tuning import tune_process
from .augment import AugmentConfig, augment
from .checkpointing import TrainState, best_path, check_may_write, load_run, save_run
from .distributed import GradientBuckets, World
from .interrupt import TrainingInterrupted, stop_on_signals
from .log import TrainLog
from .optim import LRSchedule, make_optimizer


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the parameters were left as they were before that step."""


@dataclass
class TrainConfig:
    iterations: int = 10                # optimizer steps in total (the post: 10); 0: as many as fit
                                        # in max_minutes, fixed after the warm-up and saved
    batch: int = 1                      # images per step (global over ranks), by gradient accumulation
    optimizer: str = "adam"             # "adam" (the post) or "sgd" (FCN: momentum, weight decay)
    lr: float = 1e-4                    # base learning rate; the post's Adam rate
    momentum: float = 0.99              # SGD only: FCN's momentum for batch 1
    weight_decay: float = 5e-4          # SGD only: FCN's L2 penalty
    lr_schedule: str = "constant"       # "constant" or DeepLab's "poly" (1 − t/iterations)^0.9
    warmup: int = 0                     # steps of linear learning-rate warm-up
    reduction: str = "sum"              # "sum" over pixels (the post, FCN) or "mean" (DeepLab)
    shuffle_seed: int = 0               # order of the samples in each epoch, and augmentation
    augment: AugmentConfig = field(default_factory=AugmentConfig)   # flip/scale/crop; none by default
    val_every: int = 0                  # validate every k iterations (and at the end) if val data given
    validate_start: bool = False        # also validate the starting model (iteration 0): it can be the best
    max_minutes: float | None = None    # stop at a step boundary when this much time has passed
    clock_start: float | None = None    # time.monotonic() max_minutes counts from (default: run())
    checkpoint: str | None = None       # HDF5 checkpoint path, written atomically
    best_checkpoint: str | None = None  # where the best-mIoU model goes (default: NAME.best.h5)
    checkpoint_every: int = 0           # also save every k iterations (0: only at the end)
    overwrite: bool = False             # may replace a checkpoint file this run did not resume/write
    log_csv: str | None = None          # "iteration,loss,val_miou" rows; rows past the resumed
                                        # iteration dropped (see tinyseg.trainlog)
    tensorboard: str | None = None      # a log folder for TensorBoard (needs tensorboardX)
    progress: bool = True               # show a tqdm progress bar with the loss
    handle_signals: bool = True         # SIGINT/SIGTERM: finish the step, save, TrainingInterrupted

    def recipe(self) -> dict:
        """What decides the updates (stored in checkpoints; a resume continues with it)."""
        keys = ("iterations", "batch", "optimizer", "lr", "momentum", "weight_decay", "lr_schedule",
                "warmup", "reduction", "shuffle_seed", "val_every")
        return {**{k: getattr(self, k) for k in keys}, "augment": asdict(self.augment)}


class Trainer:
    """Trains ``model`` on ``samples`` — a sequence of ``(image uint8 H×W×3, labels int H×W)``.

    ``val_samples`` (same kind) are evaluated every ``config.val_every`` iterations; ``metadata``
    (e.g. ``{"classes": LabelMap.to_dict()}``) is stored in every checkpoint's config. ``world``
    is the MPI world (default: this process alone). ``tune`` calls
    :func:`tinyseg.tuning.tune_process` (malloc thresholds, ``OMP_WAIT_POLICY``,
    ``OPENBLAS_THREAD_TIMEOUT``) first.
    """

    def __init__(self, model, samples: Sequence, config: TrainConfig | None = None, optimizer=None,
                 *, val_samples: Sequence | None = None, metadata: dict | None = None,
                 world: World | None = None, tune: bool = True):
        if tune:                        # malloc thresholds, OMP_WAIT_POLICY (see tinyseg.tuning)
            tune_process()
        self.model = model
        self.samples = samples
        self.config = c = config or TrainConfig()
        self.val_samples = val_samples
        self.metadata = dict(metadata or {})
        self.world = world or World()
        if len(samples) == 0:
            raise ValueError("`samples` is empty: nothing to train on")
        if c.reduction not in ("sum", "mean"):
            raise ValueError(f"`reduction` must be 'sum' or 'mean', got {c.reduction!r}")
        if c.batch < 1 or c.iterations < 0 or (c.iterations == 0 and not c.max_minutes):
            raise ValueError(f"`batch` must be >= 1 and `iterations` >= 1 (or 0 with `max_minutes`), "
                             f"got {c.batch}, {c.iterations}")
        options = {"momentum": c.momentum, "weight_decay": c.weight_decay} if c.optimizer == "sgd" else {}
        self.optimizer = optimizer or make_optimizer(c.optimizer, c.lr, **options)
        self.optimizer.lr_scale.update(getattr(model, "lr_scale", {}))   # e.g. CRF-as-RNN's rate
        self.schedule = LRSchedule(c.lr, c.lr_schedule, total=max(c.iterations, 1), warmup=c.warmup)
        self.state = TrainState()
        self.log = TrainLog(c, enabled=self.world.is_root)
        self._buckets = None
        # Does backward announce finished gradients (``grad_ready``)? Then the reduction over the
        # ranks overlaps backward; a model without it has its gradients summed after backward.
        self._announces = "grad_ready" in inspect.signature(model.backward).parameters
        self._owned = set()             # checkpoint files this trainer resumed from or wrote
        self._stop_reason = None
        self._last_saved = None         # (checkpoint path, the iteration it holds), for a signal's notice
        self.stopped_early = None       # why run() returned before its iterations were done

    @property
    def iteration(self) -> int:
        """Iterations done so far (= the optimizer's step count)."""
        return self.optimizer.t

    def sample_index(self, k: int) -> int:
        """Which sample the ``k``-th image of the run (0-based) is: epoch ``k // n`` is a fixed permutation."""
        n = len(self.samples)
        if n == 1:
            return 0
        epoch, i = divmod(k, n)
        return int(np.random.default_rng([self.config.shuffle_seed, epoch]).permutation(n)[i])

    # ------------------------------------------------------------------ one step
    def _batch(self, t: int):
        """This rank's ``(j, image, labels)`` of step ``t``; a bad file stops every rank together."""
        B, items, error = self.config.batch, [], None
        try:
            for j in self.world.share(range(B)):
                image, labels = self.samples[self.sample_index(t * B + j)]
                labels = np.asarray(labels)
                if labels.shape != image.shape[:2]:
                    raise ValueError(f"labels of sample {self.sample_index(t * B + j)} are "
                                     f"{labels.shape} but its image is {image.shape[:2]}")
                image, labels = augment(image, labels, self.config.augment, self.config.shuffle_seed, t, j)
                items.append((j, image, labels))
        except (OSError, ValueError) as exc:
            error = exc
        self.world.agree(error)
        return items

    def step(self) -> float:
        """One training iteration over a global batch; returns its loss."""
        t, B, model = self.iteration, self.config.batch, self.model
        items = self._batch(t)
        counted = sum(int(np.count_nonzero(labels != 255)) for _, _, labels in items)
        total = float(self.world.sum_float([counted])[0])
        scale = 1.0 / total if self.config.reduction == "mean" and total > 0 else 1.0
        buckets = self._gradient_buckets(len(items))
        loss_sum = 0.0
        if hasattr(model, "begin_iteration"):      # e.g. CRF-as-RNN's warm-up freezes the network
            model.begin_iteration(t)
        for j, image, labels in items:
            logits = model.forward(preprocess(image)[None], train=True, step=t * B + j)
            loss, dlogits = ops.softmax_cross_entropy(logits, labels[None], reduction="sum")
            if hasattr(model, "auxiliary_loss"):   # a model's extra loss term (deep supervision)
                loss += model.auxiliary_loss(labels[None], scale)
            loss_sum += loss
            if scale != 1.0:
                scale_into(dlogits, scale)
            if buckets is None or not self._announces:
                model.backward(dlogits)
            else:
                model.backward(dlogits, grad_ready=buckets.hook(lambda: model.grads))
            if buckets is not None:
                buckets.end_image(model.grads)      # takes whatever was not announced
            model.clear()
        grads = model.grads if buckets is None else buckets.finish()
        loss = float(self.world.sum_float([loss_sum])[0]) * scale
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at iteration {t + 1}; stopped before updating the parameters"
                + (f"; the last good checkpoint is {self.config.checkpoint}"
                   if self.config.checkpoint and os.path.exists(self.config.checkpoint) else ""))
        self.optimizer.step(getattr(model, "trainable_params", model.params), grads, lr=self.schedule(t))
        self.log.step(t + 1, loss, grads, model.backend)
        return loss

    def _gradient_buckets(self, n_images: int):
        """``None`` when the model's own gradients are the step's (one image, one process)."""
        if self.world.size == 1 and self.config.batch == 1:
            return None
        if self._buckets is None:
            self._buckets = GradientBuckets(self.model.params, self.world, self.model.backend)
        self._buckets.begin(n_images)
        return self._buckets

    # ------------------------------------------------------------------ the loop
    def run(self, iterations: int | None = None) -> list:
        """Train until ``iterations`` (default: the config's) are done, the time is up or a signal came.

        ``iterations`` only says where to stop: the learning-rate schedule runs over the config's.

        When ``max_minutes`` ends the run early, ``stopped_early`` says so (else it is ``None``).

        Raises
        ------
        FileExistsError
            Before any step, if a checkpoint file exists that this trainer neither resumed from
            nor wrote, and ``config.overwrite`` is false.
        TrainingInterrupted
            After SIGINT/SIGTERM: the current step was finished and the checkpoint written.
        """
        c = self.config
        if iterations is not None and not c.iterations:
            c.iterations = self.schedule.total = iterations

        def last():   # the iteration to stop after; the schedule keeps config.iterations
            return iterations if iterations is not None else c.iterations

        if last() and self.iteration >= last():
            return self.state.losses
        check_may_write(c, self._owned)
        self._stop_reason = self.stopped_early = None
        self.log.start(self.iteration, last() or None)
        self.world.broadcast_params(self.model.params, self.model.backend)
        if c.validate_start and self.iteration == 0:
            self._maybe_validate(final=False, force=True)
        start = c.clock_start if c.clock_start is not None else time.monotonic()
        deadline = start + 60 * c.max_minutes if c.max_minutes else None
        step_times, error = [], None
        try:
            with stop_on_signals("training", enabled=c.handle_signals,
                                 saved=(lambda: self._last_saved) if c.checkpoint else None,
                                 announce=self.world.is_root) as stop:
                while not last() or self.iteration < last():
                    t0 = time.monotonic()
                    loss = self.step()
                    step_times.append(time.monotonic() - t0)
                    self.state.losses.append(loss)
                    self.state.seconds += step_times[-1]
                    if not c.iterations and self.iteration >= max(c.warmup, 4):
                        self._fit_iterations(step_times, deadline)
                    # Stop now if the next step (and a validation) would overrun the budget.
                    time_up = deadline is not None and self.world.is_root and \
                        time.monotonic() + step_times[-1] + self._validation_s > deadline
                    self._stop_reason = self._agree_stop(stop, time_up)
                    if self._stop_reason is not None:
                        break
                    self._maybe_validate(final=False)
                    every = c.checkpoint_every
                    if c.checkpoint and every and self.iteration % every == 0:
                        self.save(c.checkpoint)
        except (OSError, ValueError) as exc:      # a bad data file: keep what is trained, then report
            error = exc
        finally:
            self.log.close_bar()
        reason = self._stop_reason
        try:
            if error is None and reason in (None, "time"):
                self._maybe_validate(final=True)
        finally:
            self.log.close()
        if c.checkpoint and self.iteration > 0:
            self.save(c.checkpoint)
        if error is None and not self.world.same_on_all_ranks(self.model.params, self.model.backend):
            raise RuntimeError("the MPI ranks ended with different parameters (they must stay "
                               "bit-identical); the checkpoint holds rank 0's")
        self.world.barrier()
        if error is not None:
            raise error
        if reason is not None and reason != "time":
            signum = getattr(reason, "signum", None) or signal.SIGTERM
            raise TrainingInterrupted(signum, self.iteration, c.checkpoint)
        if reason == "time":
            self.stopped_early = (f"--max-minutes {c.max_minutes:g} reached after iteration "
                                  f"{self.iteration} ({(time.monotonic() - start) / 60:.1f} min)")
        return self.state.losses

    def _fit_iterations(self, step_times, deadline) -> None:
        """Fix ``iterations`` (0 so far) to what fits before ``deadline``; rank 0's clock decides.

        From the median step time after the first (compiling) step, and the time a validation
        takes if there is one; the poly schedule then decays to 0 exactly at the deadline. The
        number is saved in the checkpoint's recipe, so a resumed run keeps the same schedule.
        """
        c = self.config
        per = float(np.median(step_times[1:] if len(step_times) > 1 else step_times))
        if self.val_samples and not self._validation_s:
            self._maybe_validate(final=False, force=True)     # measures a validation
        val_s = self._validation_s
        left = deadline - time.monotonic() - val_s            # the final validation is reserved
        per_step = per + (val_s / c.val_every if self.val_samples and c.val_every > 0 else 0.0)
        more = max(int(left / per_step), 0) if self.world.is_root else 0
        c.iterations = self.schedule.total = self.iteration + int(self.world.sum_float([more])[0])
        c.iterations = max(c.iterations, self.iteration, 1)
        self.log.set_total(c.iterations)

    def _agree_stop(self, signal_request, time_up: bool):
        """Collective: every rank stops after the same step (rank 0's clock, any rank's signal).

        Returns ``None`` (go on), ``"time"``, or the signal's stop request (or ``"signal"`` when
        the signal reached another rank only).
        """
        flags = self.world.sum_float([float(bool(time_up)), float(bool(signal_request))])
        if flags[1]:
            return signal_request if signal_request else "signal"
        return "time" if flags[0] else None

    # ------------------------------------------------------------------ validation
    _validation_s = 0.0

    def _maybe_validate(self, final: bool, force: bool = False) -> None:
        """Validate if it is time to (every ``val_every`` iterations, at the end, or ``force``)."""
        c = self.config
        if not self.val_samples:
            return
        done = [it for it, _ in self.state.validations]
        if done and done[-1] == self.iteration:
            return
        if not (final or force or (c.val_every > 0 and self.iteration % c.val_every == 0)):
            return
        t0 = time.monotonic()
        miou = self.validate()
        self._validation_s = time.monotonic() - t0
        self.state.validations.append([self.iteration, miou])
        network = self._network_miou
        if network is not None:
            self.state.network_validations.append([self.iteration, network])
        improved = self.state.best_miou is None or miou > self.state.best_miou
        if improved:
            self.state.best_miou, self.state.best_iteration = miou, self.iteration
        self.log.validation(self.iteration, miou, self.state.best_miou, self.state.best_iteration, network)
        if improved and c.checkpoint:
            self.save(c.best_checkpoint or best_path(c.checkpoint))

    _network_miou = None

    def validate(self) -> float:
        """Mean IoU on the validation samples (test mode), images sharded over the ranks.

        For a CRF-as-RNN model, the mean IoU of its output (network + CRF); that of its network
        alone is kept in ``_network_miou`` (else ``None``). See :func:`tinyseg.training.validation.mean_ious`.
        """
        from .validation import mean_ious

        miou, self._network_miou = mean_ious(self.model, self.val_samples, self.world)
        return miou

    # ------------------------------------------------------------------ checkpoints
    # What a checkpoint holds and the checks on resuming: tinyseg.training.checkpointing.
    def save(self, path: str) -> None:
        """Write parameters, optimizer state, configs and progress to one HDF5 file (rank 0, atomically)."""
        self._owned.add(os.path.abspath(path))
        if not self.world.is_root:
            return
        self.log.flush_row()
        save_run(path, self.model, self.optimizer, self.config.recipe(), self.metadata, self.state)
        if path == self.config.checkpoint:          # not NAME.best.h5
            self._last_saved = (path, self.iteration)

    def resume(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`save` (same model config required)."""
        self.state = load_run(path, self.model, self.optimizer)
        self._owned.add(os.path.abspath(path))
        self._last_saved = (path, self.iteration)
        if self.config.checkpoint:
            self._owned.add(os.path.abspath(self.config.best_checkpoint or best_path(self.config.checkpoint)))
