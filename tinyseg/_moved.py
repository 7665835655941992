"""Old module paths and names that moved: they keep working for one release, with a warning.

The whole table of what moved is here, in one place:

* :data:`MODULES` -- an old module path -> its new home. ``import tinyseg.optim`` (or
  ``from tinyseg.optim import Adam``, or ``tinyseg.optim`` as an attribute) gives a stand-in
  module that forwards every attribute to the new module and warns with a
  :class:`DeprecationWarning` naming the new path. A small import hook
  (:class:`_OldPathFinder`) serves exactly these names and nothing else (no file lives at an old
  path any more); it sits first in ``sys.meta_path`` so that a stale copy of an old file, e.g.
  another checkout on the path, is never imported instead.
* :data:`NAMES` -- ``(module, old name) -> "new.module:new_name"`` for names that were renamed
  or moved to another module (e.g. the NumPy twins' ``*_naive`` names, the buffer updates that
  moved from the optimizer module to :mod:`tinyseg.ops`). Modules that had such names call
  :func:`module_getattr` for their ``__getattr__``.
* :data:`REMOVED` -- ``(module, name) -> what to use instead``, for names that are gone because
  they duplicated another: using one raises an ``AttributeError`` that says what replaced it.
* :data:`VALUES` -- ``(option, old value) -> new value`` for renamed values of command-line
  options (the blog post's recipe and dataset are "post", not "seed": "seed" means only a random
  seed). The command line takes an old value through :func:`cli_value` (one line on stderr, then
  the new value); Python functions through :func:`new_value` (a :class:`DeprecationWarning`);
  files that stored an old value read it through :func:`new_value` with ``warn=False``.

Remove the entries (and this module) one release after they were added.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old module path -> new module path
MODULES = {
    # the command line: tinyseg.cli is a package with one module per subcommand
    "tinyseg.commands": "tinyseg.cli",
    "tinyseg.commands.argcheck": "tinyseg.cli.argcheck",
    "tinyseg.commands.common": "tinyseg.cli.common",
    "tinyseg.commands.dataopts": "tinyseg.cli.dataopts",
    "tinyseg.commands.evaluate": "tinyseg.cli.evaluate",
    "tinyseg.commands.import_weights": "tinyseg.cli.import_weights",
    "tinyseg.commands.predict": "tinyseg.cli.predict",
    "tinyseg.commands.recipe": "tinyseg.cli.recipe",
    "tinyseg.commands.synthetic": "tinyseg.cli.synthetic",
    "tinyseg.commands.train": "tinyseg.cli.train",
    "tinyseg.demo": "tinyseg.cli.demo",
    "tinyseg.info": "tinyseg.cli.info",
    "tinyseg.warmup": "tinyseg.cli.warmup",
    "tinyseg.crf.cli": "tinyseg.cli.crf",
    "tinyseg.crf.search": "tinyseg.cli.crf_search",
    "tinyseg.crf.options": "tinyseg.cli.crf_options",
    # training
    "tinyseg.train": "tinyseg.training.trainer",
    "tinyseg.optim": "tinyseg.training.optim",
    "tinyseg.augment": "tinyseg.training.augment",
    "tinyseg.distributed": "tinyseg.training.distributed",
    "tinyseg.trainlog": "tinyseg.training.log",
    "tinyseg.interrupt": "tinyseg.training.interrupt",
    # parameter files
    "tinyseg.checkpoint": "tinyseg.weights.checkpoint",
    "tinyseg.weights_npz": "tinyseg.weights.npz",
    # models
    "tinyseg.model": "tinyseg.models",
    "tinyseg.crf.rnn_model": "tinyseg.models.crf_rnn",
    # the CRF-as-RNN in its own subpackage
    "tinyseg.crf.rnn_engine": "tinyseg.crf.rnn.engine",
    "tinyseg.crf.rnn_kernels": "tinyseg.crf.rnn.kernels",
    "tinyseg.crf.rnn_reference": "tinyseg.crf.rnn.reference",
    # the CRF's CUDA kernels belong to the CRF
    "tinyseg.backend.cuda.crf": "tinyseg.crf.cuda",
    "tinyseg.backend.cuda.crf_inference": "tinyseg.crf.cuda.inference",
    "tinyseg.backend.cuda.crf_sparse": "tinyseg.crf.cuda.sparse",
    "tinyseg.backend.cuda.crf_rnn": "tinyseg.crf.cuda.rnn",
    # the backends' files one to one
    "tinyseg.backend.cpu.blas": "tinyseg.backend.cpu.matmul",
    "tinyseg.backend.cuda.tiled_gemm": "tinyseg.backend.cuda.matmul",
    # studies
    "tinyseg.study": "tinyseg.studies.cures",
    "tinyseg.crf.rnn_study": "tinyseg.studies.crf_rnn",
    # ops and their twins
    "tinyseg.model_ops": "tinyseg.ops.fuse",
    "tinyseg.model_reference": "tinyseg.reference",
    "tinyseg.upsampling": "tinyseg.ops.upsampling",
}

#: (module, old name) -> "new.module:new_name"
NAMES = {
    ("tinyseg.optim", "sgd_update"): "tinyseg.ops:sgd_update",
    ("tinyseg.optim", "copy_into"): "tinyseg.ops:copy_into",
    ("tinyseg.optim", "add_into"): "tinyseg.ops:add_into",
    ("tinyseg.optim", "scale_into"): "tinyseg.ops:scale_into",
    ("tinyseg.optim", "sgd_update_naive"): "tinyseg.reference:sgd_update",
    ("tinyseg.optim", "add_into_naive"): "tinyseg.reference:add_into",
    ("tinyseg.model_ops", "accumulate"): "tinyseg.ops:add_into",
    ("tinyseg.model_reference", "accumulate"): "tinyseg.reference:add_into",
    ("tinyseg.model", "predict_probabilities"): "tinyseg.models:predict_probabilities",
    ("tinyseg.model", "UPSAMPLE_FACTOR"): "tinyseg.models.fcn32s:UPSAMPLE_FACTOR",
    ("tinyseg.model", "VGG16_BLOCKS"): "tinyseg.models.vgg:VGG16_BLOCKS",
    ("tinyseg.crf.rnn_study", "SmallFCN"): "tinyseg.models.small:SmallFCN",
    ("tinyseg.study", "SmallFCN"): "tinyseg.models.small:SmallFCN",
    ("tinyseg.models.crf_rnn", "model_from_config"): "tinyseg.models:model_from_config",
    ("tinyseg.crf.rnn_model", "model_from_config"): "tinyseg.models:model_from_config",
    ("tinyseg.predict", "SEED_CRF"): "tinyseg.crf.refine:POST_CRF",
    ("tinyseg.cli.crf_options", "SEED_PARAMS"): "tinyseg.crf.refine:POST_CRF",
    ("tinyseg.crf.options", "SEED_PARAMS"): "tinyseg.crf.refine:POST_CRF",
    **{("tinyseg.reference", f"{name}_naive"): f"tinyseg.reference:{name}" for name in (
        "conv2d_forward", "conv2d_backward", "winograd_weights", "conv2d_winograd_forward",
        "conv2d_winograd_weight_grad", "maxpool_forward", "maxpool_backward",
        "maxpool3x3_forward", "maxpool3x3_backward", "relu_forward", "relu_backward",
        "uniform_from_counter", "dropout_forward", "dropout_backward",
        "conv_transpose2d_forward", "conv_transpose2d_backward",
        "conv_transpose2d_depthwise_forward", "conv_transpose2d_depthwise_backward",
        "softmax", "softmax_cross_entropy", "adam_update")},
    # the random walker's hand-drawn markers ("seed" means only a random seed)
    ("tinyseg.assets.make_chelsea_annotation", "CAT_SEEDS"):
        "tinyseg.assets.make_chelsea_annotation:CAT_MARKERS",
    ("tinyseg.assets.make_chelsea_annotation", "BACKGROUND_SEEDS"):
        "tinyseg.assets.make_chelsea_annotation:BACKGROUND_MARKERS",
}

#: (module, name) -> what replaced it (for names removed as duplicates)
REMOVED = {
    ("tinyseg.train", "build_model"): "tinyseg.models.build_model(name, n_classes, ...) "
                                      "(the model's name comes first)",
    ("tinyseg.backend.cpu", "crf_mean_field"): "tinyseg.crf.kernels.mean_field(\"cpu\", ...)",
    ("tinyseg.backend.cpu", "crf_rnn_kernels"): "tinyseg.crf.rnn.engine.rnn_kernels(\"cpu\")",
    ("tinyseg.backend.cuda", "crf_mean_field"): "tinyseg.crf.kernels.mean_field(\"cuda\", ...)",
    ("tinyseg.backend.cuda", "crf_rnn_kernels"): "tinyseg.crf.rnn.engine.rnn_kernels(\"cuda\")",
    ("tinyseg.model", "FC_CHANNELS"): "the model's config (fc6/fc7 have 4096 channels at width 1)",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} has moved to {new}; the old name will be removed in the next release",
                  DeprecationWarning, stacklevel=3)


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _lookup(module: str, name: str):
    """The value of a moved or renamed ``module.name`` (warning), or raise ``AttributeError``."""
    target = NAMES.get((module, name))
    if target is not None:
        _warn(f"{module}.{name}", target.replace(":", "."))
        return _resolve(target)
    instead = REMOVED.get((module, name))
    if instead is not None:
        raise AttributeError(f"{module}.{name} was removed: use {instead}")
    sub = f"{module}.{name}"
    if sub in MODULES:                      # an old submodule as an attribute: tinyseg.optim
        return importlib.import_module(sub)
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def module_getattr(module: str):
    """A module-level ``__getattr__`` for ``module`` that serves its moved names (PEP 562)."""
    def __getattr__(name: str):
        return _lookup(module, name)
    return __getattr__


class _OldModule(types.ModuleType):
    """Stands in for an old module path: forwards attribute reads to the new module."""

    def __getattr__(self, name: str):
        old = self.__name__
        if (old, name) in NAMES or (old, name) in REMOVED:
            return _lookup(old, name)
        if f"{old}.{name}" in MODULES:
            return importlib.import_module(f"{old}.{name}")
        return getattr(importlib.import_module(MODULES[old]), name)

    def __dir__(self):
        return sorted(set(dir(importlib.import_module(MODULES[self.__name__]))))


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the old module paths of :data:`MODULES` (and only those) as :class:`_OldModule`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MODULES:
            return None
        is_package = any(m.startswith(fullname + ".") for m in MODULES)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec):
        module = _OldModule(spec.name)
        if spec.submodule_search_locations is not None:
            module.__path__ = []
        return module

    def exec_module(self, module):
        _warn(module.__name__, MODULES[module.__name__])
        importlib.import_module(MODULES[module.__name__])   # fail here, at import, if it cannot


def install() -> None:
    """Put the finder for the old module paths first in ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldPathFinder())


#: (option, old value) -> new value
VALUES = {
    ("--recipe", "seed"): "post",               # tinyseg train; a checkpoint's "recipe"
    ("--data", "chelsea-seed"): "chelsea-post",  # tinyseg demo --compare; studies.cures.study_data
}


def new_value(option: str, value, warn: bool = True):
    """``value`` of ``option`` under its current name; an old name warns (unless ``warn=False``)."""
    new = VALUES.get((option, value))
    if new is None:
        return value
    if warn:
        warnings.warn(f"{value!r} ({option}) is deprecated; use {new!r} (the old value will be removed "
                      "in the next release)", DeprecationWarning, stacklevel=3)
    return new


def cli_value(option: str):
    """An argparse ``type=`` for ``option``: an old value prints one line on stderr, gives the new."""
    def convert(text: str) -> str:
        new = VALUES.get((option, text))
        if new is None:
            return text
        print(f"{option} {text} is deprecated; use {option} {new}", file=sys.stderr)
        return new
    return convert
