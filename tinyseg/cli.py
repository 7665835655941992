"""The ``tinyseg`` console command.

Each subcommand lives in the module that owns its work and exposes two functions:
``register(subparsers)`` adds its parser (with ``--help`` text for every option) and sets
``func`` to the function that runs it; this module only collects them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that provide subcommands, in the order ``tinyseg --help`` lists them.
SUBCOMMAND_MODULES = [
    "tinyseg.demo",
    "tinyseg.commands",
    "tinyseg.crf.cli",
    "tinyseg.info",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyseg",
        description="FCN-32s semantic segmentation and a dense CRF, from scratch in NumPy/Numba.",
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"tinyseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        # Bad input is reported in one line that names the problem, not as a traceback.
        print(f"tinyseg {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
