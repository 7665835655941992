"""The CPU and CUDA backends are one to one: the same kernel files, the same exported names, and
each exported kernel takes the same arguments. The CUDA backend imports without a GPU (the
simulator stands in, see conftest.py)."""
import importlib
import inspect
import os

import numpy as np
import pytest

import tinyseg.backend as registry

HERE = os.path.dirname(registry.__file__)


def _kernel_files(name):
    """The public module files of a backend (private helpers start with ``_``)."""
    return sorted(f for f in os.listdir(os.path.join(HERE, name))
                  if f.endswith(".py") and not f.startswith("_"))


def test_both_backends_have_the_same_kernel_files():
    assert _kernel_files("cpu") == _kernel_files("cuda")


def test_both_backends_export_the_same_names():
    cpu = importlib.import_module("tinyseg.backend.cpu")
    cuda = importlib.import_module("tinyseg.backend.cuda")
    assert sorted(cpu.__all__) == sorted(cuda.__all__)
    for name in cpu.__all__:
        assert hasattr(cpu, name), f"cpu lists {name} but lacks it"
        assert hasattr(cuda, name), f"cuda lists {name} but lacks it"


@pytest.mark.parametrize("module", [m[:-3] for m in _kernel_files("cpu")])
def test_each_kernel_file_exports_the_same_functions_with_the_same_arguments(module):
    cpu = importlib.import_module(f"tinyseg.backend.cpu.{module}")
    cuda = importlib.import_module(f"tinyseg.backend.cuda.{module}")
    backend = importlib.import_module("tinyseg.backend.cpu")
    exported = [n for n in backend.__all__ if hasattr(cpu, n) and getattr(cpu, n) is getattr(backend, n)]
    for name in exported:
        assert hasattr(cuda, name), f"backend/cuda/{module}.py lacks {name}"
        a, b = getattr(cpu, name), getattr(cuda, name)
        if not callable(a):
            continue
        pa = list(inspect.signature(getattr(a, "py_func", a)).parameters)
        pb = list(inspect.signature(getattr(b, "py_func", b)).parameters)
        assert pa == pb, f"{module}.{name}: cpu {pa} vs cuda {pb}"


def test_the_cpu_gemm_is_blas_with_the_cuda_gemms_arguments(rng):
    from tinyseg.backend.cpu.matmul import gemm
    a, b = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal((5, 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    want = a @ b.T + c + bias
    gemm(a, b, c, trans_b=True, beta=1.0, bias=bias)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_the_gemms_agree(rng):
    cpu, gpu = registry.get_backend("cpu"), registry.get_backend("cuda")
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((5, 7)).astype(np.float32)
    c_cpu = np.zeros((6, 7), np.float32)
    cpu.gemm(a, b, c_cpu)
    c_gpu = gpu.zeros((6, 7), np.float32)
    gpu.gemm(gpu.asarray(a), gpu.asarray(b), c_gpu)
    np.testing.assert_allclose(gpu.to_numpy(c_gpu), c_cpu, rtol=1e-4, atol=1e-5)
