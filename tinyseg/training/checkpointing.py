"""A training run's checkpoints: what one holds, how a run resumes from it, which files it may replace.

A checkpoint (:mod:`tinyseg.weights.checkpoint`'s HDF5 file) of a run holds the parameters, the
optimizer's state (Adam's ``m``, ``v`` and step, or SGD's momentum), the configs — the model's
(``config_dict()``, with its registry name), the optimizer's, the training recipe
(:meth:`~tinyseg.training.trainer.TrainConfig.recipe`) and the trainer's ``metadata`` such as
the classes — and the run's progress (:class:`TrainState`: losses, time, validations). Resuming
loads all of it, so the run continues exactly as if it had never stopped.

A run keeps its last model in ``NAME.h5`` and its best-validated one beside it
(:func:`best_path`: ``NAME.best.h5``); it replaces neither unless it resumed from it, wrote it,
or was told to overwrite (:func:`check_may_write`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from ..weights.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["TrainState", "best_path", "save_run", "load_run", "check_may_write"]


@dataclass
class TrainState:
    losses: list = field(default_factory=list)    # loss of every iteration done so far
    seconds: float = 0.0                          # training time so far
    best_miou: float | None = None                # best validation mean IoU so far
    best_iteration: int = 0                       # the iteration that reached it
    validations: list = field(default_factory=list)   # [iteration, mean IoU] of every validation
    network_validations: list = field(default_factory=list)   # CRF-as-RNN: the network alone's


def best_path(checkpoint: str) -> str:
    """``run.h5`` → ``run.best.h5``: where the best-mIoU checkpoint goes beside the last one."""
    root, ext = os.path.splitext(checkpoint)
    return f"{root}.best{ext or '.h5'}"


def save_run(path: str, model, optimizer, recipe: dict, metadata: dict, state: TrainState) -> None:
    """Write ``model``'s parameters, ``optimizer``'s state, the configs and ``state`` (atomically)."""
    save_checkpoint(path, model.host_params(), optimizer.state(),
                    {"model": model.config_dict(), "optimizer": optimizer.name,
                     "adam": asdict(optimizer.config), "train": recipe, **metadata},
                    extra=asdict(state))


def load_run(path: str, model, optimizer) -> TrainState:
    """Load a :func:`save_run` checkpoint into ``model`` and ``optimizer``; return its progress.

    The checkpoint must be of the same model config (a checkpoint without a model name is an
    FCN-32s's) and optimizer; otherwise a ``ValueError`` says which differs.
    """
    ckpt = load_checkpoint(path)
    saved = {"name": "fcn32s", **ckpt.config.get("model", {})}
    mine = model.config_dict()
    if saved != mine:
        raise ValueError(f"checkpoint {path} was written for model config {saved}, "
                         f"but this model is {mine}")
    if ckpt.config.get("optimizer", "adam") != optimizer.name:
        raise ValueError(f"checkpoint {path} was trained with {ckpt.config.get('optimizer', 'adam')}, "
                         f"not {optimizer.name}")
    model.load_params(ckpt.params)
    optimizer.load_state(ckpt.adam_state, model.backend)
    extra = ckpt.extra or {}
    return TrainState(**{k: extra[k] for k in asdict(TrainState()) if k in extra})


def check_may_write(config, owned: set) -> None:
    """Refuse to replace a checkpoint of another run: ``config``'s checkpoint and best checkpoint.

    ``owned`` holds the absolute paths the trainer resumed from or wrote; with
    ``config.overwrite`` anything may be replaced. Raises ``FileExistsError`` otherwise.
    """
    if not config.checkpoint or config.overwrite:
        return
    for path in (config.checkpoint, config.best_checkpoint or best_path(config.checkpoint)):
        if os.path.exists(path) and os.path.abspath(path) not in owned:
            raise FileExistsError(
                f"checkpoint {path} already exists and this trainer did not resume from it; "
                f"resume from it (Trainer.resume) or set TrainConfig(overwrite=True) to replace it")
