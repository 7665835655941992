"""The dense CRF's parameters on the command line and in files, shared by ``crf``, ``predict``,
``evaluate`` and ``crf-search``.

A parameter file (what ``tinyseg crf-search`` writes, what ``--crf-params FILE`` reads) is a JSON
object with :func:`tinyseg.crf.dense_crf`'s keyword names::

    {"sdims": [80, 80], "schan": [13, 13, 13], "compat": 4.0,
     "gaussian_sdims": [3, 3], "gaussian_compat": 3.0, "iterations": 10}

Any subset may be given; ``crf-search`` adds its findings under other keys (``"search"``), which
are ignored here. Precedence: the post's defaults, then the file, then explicit options.
"""
from __future__ import annotations

import argparse
import json
import math
import os

__all__ = ["PARAM_NAMES", "add_crf_options", "crf_params_from_args", "crf_options_given",
           "load_crf_params", "check_crf_params", "save_crf_params"]

#: How many numbers each parameter has (1 = a scalar).
PARAM_NAMES = {"sdims": 2, "schan": 3, "compat": 1, "gaussian_sdims": 2, "gaussian_compat": 1,
               "iterations": 1}


def _as_numbers(name: str, value, n: int):
    """``value`` as n finite floats (a single number is repeated), or an error naming ``name``."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"CRF parameter `{name}` takes 1 or {n} numbers, got {len(values)}")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"CRF parameter `{name}` must be numbers, got {value!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"CRF parameter `{name}` must be finite, got {value!r}")
    return out


def check_crf_params(params: dict) -> dict:
    """Validate and normalise CRF parameters (names as :data:`PARAM_NAMES`); unknown keys are an
    error. Bandwidths must be positive, weights non-negative, iterations a non-negative integer."""
    out = {}
    for name, value in params.items():
        if name not in PARAM_NAMES:
            raise ValueError(f"unknown CRF parameter `{name}`; known: {', '.join(PARAM_NAMES)}")
        n = PARAM_NAMES[name]
        numbers = _as_numbers(name, value, n)
        if name == "iterations":
            if numbers[0] != int(numbers[0]) or numbers[0] < 0:
                raise ValueError(f"CRF parameter `iterations` must be a non-negative integer, "
                                 f"got {value!r}")
            out[name] = int(numbers[0])
        elif name in ("compat", "gaussian_compat"):
            if numbers[0] < 0:
                raise ValueError(f"CRF parameter `{name}` (a weight) must be >= 0, got {value!r}")
            out[name] = numbers[0]
        else:
            if min(numbers) <= 0:
                raise ValueError(f"CRF parameter `{name}` (standard deviations) must be > 0, "
                                 f"got {value!r}")
            out[name] = tuple(numbers)
    return out


def load_crf_params(path: str) -> dict:
    """The CRF parameters of a JSON file (see the module); one clear error for a bad file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CRF parameter file not found: {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read CRF parameter file {path!r} as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"CRF parameter file {path!r} must hold a JSON object, got "
                         f"{type(data).__name__}")
    params = data.get("params", data)          # crf-search's file nests them, a hand-written may not
    if not isinstance(params, dict):
        raise ValueError(f"CRF parameter file {path!r}: `params` must be an object")
    try:
        return check_crf_params({k: v for k, v in params.items() if k != "search"})
    except ValueError as exc:
        raise ValueError(f"CRF parameter file {path!r}: {exc}") from None


def save_crf_params(path: str, params: dict, **extra) -> None:
    """Write ``params`` (and ``extra`` keys, e.g. the search log) as a parameter file, atomically."""
    from .._atomic import atomic_output

    doc = {"params": {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in check_crf_params(params).items()}, **extra}
    with atomic_output(path, "CRF parameter file") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)


def add_crf_options(parser: argparse.ArgumentParser, *, iterations_flag: str = "--crf-iterations",
                    title: str = "dense CRF (defaults: the post's; see also --crf-params)"):
    """Add ``--crf-params FILE`` and one option per CRF parameter (default: unset)."""
    g = parser.add_argument_group(title)
    g.add_argument("--crf-params", metavar="FILE",
                   help="JSON file of CRF parameters, e.g. written by `tinyseg crf-search`; "
                   "explicit options below override it")
    g.add_argument("--sdims", type=float, nargs="+", metavar="S",
                   help="bilateral kernel: spatial standard deviation(s) in pixels (row, col); "
                   "the post 50, DeepLab 80")
    g.add_argument("--schan", type=float, nargs="+", metavar="S",
                   help="bilateral kernel: colour standard deviation(s) in 0-255 units (r, g, b); "
                   "the post 20, DeepLab 13")
    g.add_argument("--compat", type=float, metavar="W",
                   help="bilateral kernel: Potts weight (0 drops the kernel); the post 10, DeepLab 4")
    g.add_argument("--gaussian-sdims", type=float, nargs="+", metavar="S",
                   help="spatial Gaussian kernel: standard deviation(s) in pixels; the post 10, DeepLab 3")
    g.add_argument("--gaussian-compat", type=float, metavar="W",
                   help="spatial Gaussian kernel: Potts weight (0 drops the kernel); the post and DeepLab 3")
    g.add_argument(iterations_flag, dest="crf_iterations", type=int, metavar="N",
                   help="mean-field iterations; the post 5, DeepLab 10")
    return g


def crf_params_from_args(args) -> dict:
    """:func:`tinyseg.crf.dense_crf` keywords from the options of :func:`add_crf_options`:
    the post's defaults (:data:`tinyseg.crf.POST_CRF`), overridden by ``--crf-params``, overridden
    by explicit options."""
    from ..crf.refine import POST_CRF

    params = dict(POST_CRF)
    if getattr(args, "crf_params", None):
        params.update(load_crf_params(args.crf_params))
    explicit = {"sdims": args.sdims, "schan": args.schan, "compat": args.compat,
                "gaussian_sdims": args.gaussian_sdims, "gaussian_compat": args.gaussian_compat,
                "iterations": args.crf_iterations}
    try:
        params.update(check_crf_params({k: v for k, v in explicit.items() if v is not None}))
    except ValueError as exc:
        raise ValueError(str(exc).replace("CRF parameter `", "--").replace("`", "")) from None
    return params


def crf_options_given(args) -> bool:
    """Whether ``--crf-params`` or any CRF option of :func:`add_crf_options` was given."""
    return any(getattr(args, k, None) is not None for k in
               ("crf_params", "sdims", "schan", "compat", "gaussian_sdims", "gaussian_compat",
                "crf_iterations"))


from .._moved import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__)   # the old names (see tinyseg._moved)
