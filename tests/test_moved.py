"""Every old module path and name still works for one release, and says where it moved."""
import importlib
import inspect
import sys
import warnings

import pytest

import tinyseg
from tinyseg import _moved


def _fresh_import(name):
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        if isinstance(sys.modules[key], _moved._OldModule):
            del sys.modules[key]
    return importlib.import_module(name)


@pytest.mark.parametrize("old, new", sorted(_moved.MODULES.items()))
def test_an_old_module_path_imports_with_a_warning_naming_the_new_one(old, new):
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = _fresh_import(old)
    target = importlib.import_module(new)
    public = [n for n in getattr(target, "__all__", dir(target))
              if not n.startswith("_") and not inspect.ismodule(getattr(target, n))]
    for name in public[:5]:
        assert getattr(module, name) is getattr(target, name)


@pytest.mark.parametrize("key, target", sorted(_moved.NAMES.items()))
def test_a_renamed_name_still_works_and_warns(key, target):
    old_module, name = key
    new_module, _, new_name = target.partition(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=f"{new_module}.{new_name}".replace(".", r"\.")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new_module), new_name)


@pytest.mark.parametrize("key, instead", sorted(_moved.REMOVED.items()))
def test_a_removed_name_says_what_replaced_it(key, instead):
    old_module, name = key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old_module)
    with pytest.raises(AttributeError, match="was removed: use"):
        getattr(module, name)


def test_old_paths_work_as_attributes_and_in_from_imports():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tinyseg.model import FCN32s
        from tinyseg.optim import add_into
        assert tinyseg.optim.Adam is tinyseg.training.optim.Adam
        from tinyseg.commands.common import load_model
        from tinyseg import study
    assert FCN32s is tinyseg.models.FCN32s
    assert add_into is tinyseg.ops.add_into
    assert load_model is importlib.import_module("tinyseg.cli.common").load_model
    assert study.run_study is importlib.import_module("tinyseg.studies.cures").run_study


def test_the_finder_serves_only_the_old_names():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tinyseg.no_such_module")
    with pytest.raises(AttributeError, match="no attribute"):
        tinyseg.no_such_name  # noqa: B018
    for new in _moved.MODULES.values():          # no old path points at another old path
        assert new not in _moved.MODULES


def test_the_new_modules_import_without_warnings():
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning); import tinyseg; "
            "import importlib; [importlib.import_module(m) for m in %r]"
            % sorted(set(_moved.MODULES.values()) - {"tinyseg.crf.cuda", "tinyseg.crf.cuda.inference",
                                                      "tinyseg.crf.cuda.sparse", "tinyseg.crf.cuda.rnn"}))
    import subprocess
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
