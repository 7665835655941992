"""A hand-written shared-memory tiled GEMM for ``numba.cuda`` (no cuBLAS, no CuPy).

    C (M, N) = op(A) @ op(B) + beta · C + bias[None, :]

with ``op(A) = A`` for ``A (M, K)`` or ``Aᵀ`` for ``A`` stored ``(K, M)`` (``trans_a``), and likewise
``op(B) = B (K, N)`` or ``Bᵀ`` for ``B`` stored ``(N, K)`` (``trans_b``). All arrays are C-contiguous
float32 (row-major); ``beta`` is 0 (overwrite) or 1 (accumulate, as the conv's ``dw`` over im2col
blocks needs); ``bias`` is optional.

Tiling scheme (one :class:`GemmConfig`, compile-time constants of the kernel):

* A thread block computes a ``BM × BN`` tile of C with ``(BN/TN) × (BM/TM)`` threads; each thread
  owns a ``TM × TN`` register block of accumulators at rows ``ty + i·TY`` and columns
  ``tx + j·TX`` (strided, so a warp's shared-memory reads hit consecutive banks and its global
  stores are coalesced along a row of C).
* The contraction runs over ``K`` in steps of ``BK``: all threads cooperatively copy an
  ``BM × BK`` slab of op(A) and a ``BK × BN`` slab of op(B) into shared memory (stored ``[k][m]``
  and ``[k][n]``, padded by one column against bank conflicts; the copy walks the operand's
  contiguous axis so global loads coalesce whether or not it is transposed; out-of-range
  elements are stored as 0, which is how sizes that are not multiples of the tile are handled),
  ``syncthreads``, then each thread does ``BK`` rank-1 updates of its register block from
  ``TM`` values of the A slab and ``TN`` of the B slab, ``syncthreads``, next slab.
* The epilogue adds ``bias`` and ``beta · C`` and stores only the in-range elements.
* Split-K: when C has too few tiles to fill the GPU but ``K`` is long (the conv's
  ``dw = colᵀ @ dout``: a small ``(kh·kw·C, F)`` output, a contraction over every pixel), the
  grid gets a third axis of ``S`` slices of ``K``; slice ``z`` writes its raw partial product to
  ``part[z]`` and a second kernel sums the ``S`` partials in a fixed order (deterministic, no
  atomics) and applies ``beta``/``bias``.

Configurations: ``LARGE`` (128×64 tiles, BK 8, 8×4 per thread, 256 threads) when there are
enough tiles to fill the GPU, else ``SMALL`` (64×64, BK 16, 4×4 per thread, 256 threads);
``TINY`` (8×8, BK 4, 2×2 per thread, 16 threads) under the simulator, where each thread is a
Python thread. The same kernel source serves all three. Compiled for sm_90 (libNVVM from the
CUDA 12.9 toolkit, then ``ptxas -v``), LARGE uses 105 registers and SMALL 90–96, with no stack
frame or spills: the accumulators stay in registers. An 8×8 register block (128×128 tiles) did
not: NVVM left its 64 accumulators in a 256-byte local-memory frame, so it is not offered.
``benchmarks/bench_gpu.py`` times each configuration against ``torch.matmul``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import cuda

from ._launch import SIMULATOR, launch_1d, scratch


@dataclass(frozen=True)
class GemmConfig:
    BM: int  # rows of C per block
    BN: int  # columns of C per block
    BK: int  # contraction step held in shared memory
    TM: int  # rows of C per thread (register block)
    TN: int  # columns of C per thread

    @property
    def threads(self) -> tuple[int, int]:
        """(threads along x = columns, threads along y = rows) of a block."""
        return self.BN // self.TN, self.BM // self.TM


LARGE = GemmConfig(BM=128, BN=64, BK=8, TM=8, TN=4)
SMALL = GemmConfig(BM=64, BN=64, BK=16, TM=4, TN=4)
TINY = GemmConfig(BM=8, BN=8, BK=4, TM=2, TN=2)

_kernels: dict = {}


def _make_slab_loader(R: int, BK: int, T: int, k_fastest: bool):
    """Device function that copies one ``BK × R`` slab of an operand into shared memory.

    ``load(src, dst, tid, r0, k0, R_total, k_end)``: ``dst[kk, rr] = op[r0 + rr, k0 + kk]``, where
    ``src`` stores ``op`` as ``(R_total, K)`` when ``k_fastest`` (k is its contiguous axis) and as
    ``(K, R_total)`` otherwise; elements past ``R_total`` or ``k_end`` are stored as 0. The ``T``
    threads of the block share the copy, consecutive threads taking consecutive elements of the
    operand's contiguous axis, so the global loads coalesce in either layout. For A, ``op`` is
    op(A) ``(M, K)`` (``R = BM``; k fastest unless ``trans_a``); for B, it is op(B)ᵀ ``(N, K)``
    (``R = BN``; k fastest when ``trans_b``), so both slabs are stored ``[k][row]``.
    """
    LOADS = (R * BK + T - 1) // T       # shared-memory elements each thread copies per slab
    K_FASTEST = bool(k_fastest)

    @cuda.jit(device=True)
    def load(src, dst, tid, r0, k0, R_total, k_end):
        for l in range(LOADS):
            idx = tid + l * T
            if idx < R * BK:
                if K_FASTEST:          # src is (R, K): walk k
                    kk = idx % BK
                    rr = idx // BK
                else:                  # src is (K, R): walk r
                    rr = idx % R
                    kk = idx // R
                gr = r0 + rr
                gk = k0 + kk
                v = np.float32(0.0)
                if gr < R_total and gk < k_end:
                    if K_FASTEST:
                        v = src[gr, gk]
                    else:
                        v = src[gk, gr]
                dst[kk, rr] = v

    return load


def _make_gemm_kernel(trans_a: bool, trans_b: bool, cfg: GemmConfig):
    """Compile-time specialisation of the tiled kernel for operand layouts and tile sizes."""
    BM, BN, BK, TM, TN = cfg.BM, cfg.BN, cfg.BK, cfg.TM, cfg.TN
    TX, TY = cfg.threads
    T = TX * TY
    load_a = _make_slab_loader(BM, BK, T, k_fastest=not trans_a)    # As[k][m] = op(A)[m, k]
    load_b = _make_slab_loader(BN, BK, T, k_fastest=bool(trans_b))  # Bs[k][n] = op(B)[k, n]
    BM_PAD = BM + 1        # shared-array shapes must be literal constants: no arithmetic inside
    BN_PAD = BN + 1

    @cuda.jit
    def gemm_kernel(a, b, c, part, bias, M, N, K, k_per_slice, beta, use_bias):
        """One BM×BN tile of C (or of the partial ``part[z]`` when split over K)."""
        As = cuda.shared.array((BK, BM_PAD), np.float32)   # op(A) slab, [k][m], padded
        Bs = cuda.shared.array((BK, BN_PAD), np.float32)   # op(B) slab, [k][n], padded
        acc = cuda.local.array((TM, TN), np.float32)
        a_reg = cuda.local.array(TM, np.float32)
        b_reg = cuda.local.array(TN, np.float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        m0 = cuda.blockIdx.x * BM
        n0 = cuda.blockIdx.y * BN
        z = cuda.blockIdx.z
        k_begin = z * k_per_slice
        k_end = k_begin + k_per_slice            # min(K, ...): builtin min does not compile for
        if k_end > K:                            # numba 0.68's CUDA target (its *args overload)
            k_end = K
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = np.float32(0.0)
        for k0 in range(k_begin, k_end, BK):
            load_a(a, As, tid, m0, k0, M, k_end)
            load_b(b, Bs, tid, n0, k0, N, k_end)
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(TM):
                    a_reg[i] = As[kk, ty + i * TY]
                for j in range(TN):
                    b_reg[j] = Bs[kk, tx + j * TX]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()
        split = cuda.gridDim.z > 1
        for i in range(TM):
            row = m0 + ty + i * TY
            if row < M:
                for j in range(TN):
                    col = n0 + tx + j * TX
                    if col < N:
                        if split:
                            part[z, row, col] = acc[i, j]
                        else:
                            v = acc[i, j]
                            if beta != 0:
                                v += beta * c[row, col]
                            if use_bias != 0:
                                v += bias[col]
                            c[row, col] = v

    return gemm_kernel


@cuda.jit
def _sum_partials_kernel(part, c, bias, beta, use_bias):
    """c[m, n] = Σ_z part[z, m, n] (z in order) + beta·c[m, n] + bias[n]; one thread per element."""
    i = cuda.grid(1)
    S, M, N = part.shape
    if i < M * N:
        m = i // N
        n = i % N
        v = part[0, m, n]
        for z in range(1, S):
            v += part[z, m, n]
        if beta != 0:
            v += beta * c[m, n]
        if use_bias != 0:
            v += bias[n]
        c[m, n] = v


def get_kernel(trans_a: bool, trans_b: bool, cfg: GemmConfig):
    key = (bool(trans_a), bool(trans_b), cfg)
    if key not in _kernels:
        _kernels[key] = _make_gemm_kernel(trans_a, trans_b, cfg)
    return _kernels[key]


_dummy = {}
_sm_count = []


def _dummy_arrays():
    """A (1,) bias and (1, 1, 1) partial buffer for launches that use neither."""
    if not _dummy:
        _dummy["bias"] = cuda.device_array((1,), np.float32)
        _dummy["part"] = cuda.device_array((1, 1, 1), np.float32)
    return _dummy["bias"], _dummy["part"]


def _multiprocessors() -> int:
    if not _sm_count:
        try:
            _sm_count.append(int(cuda.get_current_device().MULTIPROCESSOR_COUNT))
        except Exception:  # the simulator's fake device may not report it
            _sm_count.append(1)
    return _sm_count[0]


def choose_config(M: int, N: int) -> GemmConfig:
    """TINY in the simulator; LARGE when its tiles alone give two blocks per multiprocessor."""
    if SIMULATOR:
        return TINY
    tiles = math.ceil(M / LARGE.BM) * math.ceil(N / LARGE.BN)
    return LARGE if tiles >= 2 * _multiprocessors() else SMALL


def choose_split(M: int, N: int, K: int, cfg: GemmConfig) -> int:
    """Slices of K so the grid has about two blocks per multiprocessor (1 when it already does).

    Each slice keeps at least 32 slabs of work, so the partial sums' extra traffic stays small.
    """
    if SIMULATOR:
        return 1
    tiles = math.ceil(M / cfg.BM) * math.ceil(N / cfg.BN)
    want = math.ceil(2 * _multiprocessors() / tiles)
    most = max(1, K // (32 * cfg.BK))
    return max(1, min(want, most, 64))


def gemm(a, b, c, *, trans_a: bool = False, trans_b: bool = False, beta: float = 0.0,
         bias=None, config: GemmConfig | None = None, split_k: int | None = None) -> None:
    """``c = op(a) @ op(b) + beta·c (+ bias)`` on device arrays, with the tiled kernel.

    Parameters
    ----------
    a : (M, K) float32, or (K, M) with ``trans_a``
    b : (K, N) float32, or (N, K) with ``trans_b``
    c : (M, N) float32, written in place (read too when ``beta != 0``)
    beta : 0 to overwrite ``c``, 1 to accumulate into it
    bias : (N,) float32 or None, added to every row
    config : tile sizes (default: :func:`choose_config`)
    split_k : slices of the contraction (default: :func:`choose_split`)
    """
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    if M == 0 or N == 0:
        return
    cfg = config or choose_config(M, N)
    S = split_k or choose_split(M, N, K, cfg)
    S = max(1, min(S, max(K, 1)))
    k_per_slice = math.ceil(max(K, 1) / S / cfg.BK) * cfg.BK   # whole slabs per slice
    S = max(1, math.ceil(max(K, 1) / k_per_slice))
    dummy_bias, dummy_part = _dummy_arrays()
    part = scratch((S, M, N), np.float32) if S > 1 else dummy_part
    use_bias = np.int32(bias is not None)
    bias_arr = bias if bias is not None else dummy_bias
    kernel = get_kernel(trans_a, trans_b, cfg)
    grid = (math.ceil(M / cfg.BM), math.ceil(N / cfg.BN), S)
    kernel[grid, cfg.threads](a, b, c, part, bias_arr, M, N, K, k_per_slice,
                              np.float32(beta), use_bias)
    if S > 1:
        launch_1d(_sum_partials_kernel, M * N, part, c, bias_arr, np.float32(beta), use_bias)
