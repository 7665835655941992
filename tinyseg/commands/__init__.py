"""The ``train``, ``predict``, ``evaluate``, ``import-weights`` and ``synthetic`` subcommands of ``tinyseg``.

One module per subcommand, each with ``register(subparsers)``; options and helpers they share live
in :mod:`tinyseg.commands.common`.
"""
from __future__ import annotations

from . import evaluate, import_weights, predict, synthetic, train

__all__ = ["register"]


def register(subparsers):
    for module in (train, predict, evaluate, import_weights, synthetic):
        module.register(subparsers)
