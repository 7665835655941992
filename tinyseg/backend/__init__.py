"""The backend seam: one small registry that picks who runs the kernels.

A backend is a module that provides, with identical names, arguments and semantics:

* array helpers: ``empty(shape, dtype)``, ``zeros(shape, dtype)``, ``asarray(host_array)``,
  ``to_numpy(array)``, ``owns(array) -> bool`` (is this one of my arrays?);
* kernels that write into preallocated outputs (see ``tinyseg.backend.cpu`` for the list and the
  exact contract of each).

Layers and the public ops never import a backend module: they call :func:`get_backend` with a
name, or :func:`backend_for` with an array (NumPy arrays live on ``"cpu"``, device arrays on
``"cuda"``), so data stays wherever it already is between layers.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# name -> module path; a backend is imported only when first asked for.
_BACKEND_MODULES = {
    "cpu": "tinyseg.backend.cpu",
    "cuda": "tinyseg.backend.cuda",
}
_loaded: dict[str, ModuleType] = {}


def available_backends() -> list[str]:
    """Names of the registered backends (whether or not their hardware is present)."""
    return list(_BACKEND_MODULES)


def get_backend(name: str = "cpu") -> ModuleType:
    """Return the backend module called ``name`` (``"cpu"`` or ``"cuda"``)."""
    if name not in _BACKEND_MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {available_backends()}")
    if name not in _loaded:
        module = importlib.import_module(_BACKEND_MODULES[name])
        check = getattr(module, "check_available", None)
        if check is not None:
            check()  # raises a RuntimeError that says what is missing
        _loaded[name] = module
    return _loaded[name]


def backend_for(array) -> ModuleType:
    """The backend that owns ``array``: NumPy arrays → cpu; numba.cuda device arrays → cuda."""
    for name, module in _loaded.items():
        if name != "cpu" and module.owns(array):
            return module
    cpu = get_backend("cpu")
    if cpu.owns(array):
        return cpu
    raise TypeError(f"expected a NumPy array or a device array of a tinyseg backend, "
                    f"got {type(array).__name__}")
