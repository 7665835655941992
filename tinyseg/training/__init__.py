"""Training: the trainer and everything only training needs.

* :mod:`~tinyseg.training.trainer` -- :class:`Trainer` and :class:`TrainConfig`: the loop, resume,
  validation, divergence checks.
* :mod:`~tinyseg.training.checkpointing` -- what a run's checkpoint holds (:class:`TrainState`
  among it), resuming from one, which checkpoint files a run may replace.
* :mod:`~tinyseg.training.validation` -- the mean IoU on held-out samples, over the ranks.
* :mod:`~tinyseg.training.optim` -- Adam and SGD (momentum, weight decay) and the learning-rate
  schedules; the update kernels are ops (:mod:`tinyseg.ops`).
* :mod:`~tinyseg.training.augment` -- flips, scales, crops and colour jitter, a pure function of
  ``(seed, step, index)``.
* :mod:`~tinyseg.training.distributed` -- MPI ranks and the bucketed gradient exchange.
* :mod:`~tinyseg.training.log` -- progress bar, CSV and TensorBoard.
* :mod:`~tinyseg.training.interrupt` -- Ctrl-C / SIGTERM: finish the step, checkpoint, stop.
"""
from .augment import AugmentConfig, augment
from .optim import SGD, Adam, AdamConfig, LRSchedule, SGDConfig, make_optimizer
from .trainer import TrainConfig, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "Adam", "AdamConfig", "SGD", "SGDConfig",
           "LRSchedule", "make_optimizer", "AugmentConfig", "augment"]
