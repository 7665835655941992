"""The ``tinyseg`` console command.

Each subcommand is one module of this package (``train``, ``predict``, ``evaluate``,
``import_weights``, ``synthetic``, ``crf``, ``crf_search``, ``demo``, ``info``; the options they
share live in :mod:`tinyseg.cli.common`, :mod:`tinyseg.cli.dataopts`, :mod:`tinyseg.cli.argcheck`
and :mod:`tinyseg.cli.crf_options`) and exposes two functions:
``register(subparsers)`` adds its parser (with ``--help`` text for every option) and sets
``func`` to the function that runs it; this module only collects them.

Every error ends in one line on stderr, ``tinyseg COMMAND: error: …``, and a non-zero exit code:
2 for a bad option (argparse), 1 for bad input found by a command, 128 + the signal number
(130, 143) after Ctrl-C or SIGTERM. ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that provide subcommands, in the order ``tinyseg --help`` lists them.
SUBCOMMAND_MODULES = [
    "tinyseg.cli.demo",
    "tinyseg.cli.train",
    "tinyseg.cli.predict",
    "tinyseg.cli.evaluate",
    "tinyseg.cli.import_weights",
    "tinyseg.cli.synthetic",
    "tinyseg.cli.crf",
    "tinyseg.cli.crf_search",
    "tinyseg.cli.info",
]

# Errors that mean "bad input or environment"; anything else is reported as an internal error.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, RuntimeError, KeyError, ImportError)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (argparse prints the usage line as well)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tinyseg",
        description="FCN-32s semantic segmentation and a dense CRF, from scratch in NumPy/Numba.",
    )
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"tinyseg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for sub in subparsers.choices.values():         # also accept `tinyseg COMMAND ... --debug`
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of an error instead of one line")
    return parser


def _one_line(exc: BaseException) -> str:
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text + (" …" if len(lines) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    from ..tuning import tune_process

    tune_process()              # before Numba starts its threads and loads its BLAS (see tuning.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    name = f"tinyseg {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        code = getattr(exc, "exit_code", None)
        if code is not None:                        # e.g. TrainingInterrupted: 130 or 143
            print(f"{name}: {_one_line(exc)}", file=sys.stderr)
            return int(code)
        if isinstance(exc, EXPECTED_ERRORS):
            print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        else:
            print(f"{name}: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  f"(run with --debug for the traceback)", file=sys.stderr)
        return 1
