#!/usr/bin/env bash
# One-shot check that tinyseg's CUDA backend works on this machine's GPU, in at most 8 minutes.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          (default: gpu-check-YYYYmmdd-HHMMSS)
#
# 1. installs the project with the `cuda`, `test` and `peers` extras into a fresh virtual
#    environment OUT_DIR/venv (numba-cuda with the CUDA 12 toolkit's NVVM/runtime as wheels, so
#    only an NVIDIA driver is needed; PyTorch is the timing peer);
# 2. `tinyseg info` (versions, GPUs, libNVVM) -> OUT_DIR/info.txt;
# 3. the CUDA tests on the GPU, the simulator off: `pytest -m cuda` -> OUT_DIR/pytest.xml;
# 4. benchmarks/gpu_parity.py: GEMM, FCN-32s forward/backward/Adam and the CRF at 2 and 21
#    labels on the GPU against the CPU backend -> OUT_DIR/parity.json;
# 5. benchmarks/bench_gpu.py: GEMM vs torch.matmul, per-layer ops, a training step at 375×500
#    and at batch 8 × 224×224 vs PyTorch CUDA, the CRF at 2 and 21 labels -> OUT_DIR/bench_gpu.json.
# Everything printed also goes to OUT_DIR/log.txt. Any failure or mismatch with the CPU backend
# ends the script at once with a line "gpu_check: FAIL: ..." and a non-zero exit code; success
# ends with "gpu_check: PASS".
#
# Environment: GPU_CHECK_SECONDS (default 480) is the whole check's time limit; PYTHON (default
# python3) makes the venv; GPU_CHECK_VENV=DIR reuses an existing
# venv instead of installing (saves the install's minutes on a second run); pip's own variables
# work as usual, e.g. PIP_NO_INDEX=1 PIP_FIND_LINKS=wheels/ on a machine without network.
# GPU_CHECK_SIMULATE=1 runs the same steps in numba's CUDA simulator on tiny shapes (no GPU
# needed; slow: give it GPU_CHECK_SECONDS=3600): it checks this script, not the GPU.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" && out=$(cd "$out" && pwd)
exec > >(tee -a "$out/log.txt") 2>&1
simulate=${GPU_CHECK_SIMULATE:-0}
start=$SECONDS

limit=${GPU_CHECK_SECONDS:-480}    # the whole check, install included

fail() { echo "gpu_check: FAIL: $*"; exit 1; }
# Run "$@" for at most CAP seconds (stretched 20× in the slow simulator) and what is left of the
# budget; returns its exit code, 124 when it ran out of time (then says so).
capped() {
    local cap=$1; shift
    [ "$simulate" = 1 ] && cap=$((cap * 20))
    local l=$((limit - (SECONDS - start))); ((l < 1)) && l=1; ((l < cap)) && cap=$l
    timeout "$cap" "$@"; local rc=$?
    [ $rc = 124 ] && echo "gpu_check: the step timed out after ${cap} s"
    return $rc
}
step() {
    ((SECONDS - start < limit)) || fail "out of time: the check's ${limit} s are spent"
    echo; echo "== $* ($((SECONDS - start)) s)"
}

step "GPU"
if [ "$simulate" = 1 ]; then
    export NUMBA_ENABLE_CUDASIM=1
    echo "GPU_CHECK_SIMULATE=1: numba's CUDA simulator, tiny shapes; this checks the script only"
else
    export NUMBA_ENABLE_CUDASIM=0
    command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no NVIDIA driver on this machine"
    nvidia-smi -L || fail "nvidia-smi lists no GPU"
fi

step "install into a fresh virtual environment"
if [ -n "${GPU_CHECK_VENV:-}" ]; then
    venv=$GPU_CHECK_VENV
    echo "reusing $venv"
else
    venv=$out/venv
    "${PYTHON:-python3}" -m venv "$venv" || fail "could not create a virtual environment in $venv"
    capped 300 "$venv/bin/python" -m pip install -q -e "$repo[cuda,test,peers]" \
        || fail "pip install -e '$repo[cuda,test,peers]' failed (see above)"
fi
py=$venv/bin/python

step "tinyseg info"
"$py" -m tinyseg.cli info | tee "$out/info.txt" || fail "tinyseg info failed"
if [ "$simulate" != 1 ]; then
    "$py" - <<'EOF' || fail "the cuda backend cannot run here (see above)"
from tinyseg.backend import get_backend
get_backend("cuda")
EOF
fi

step "CUDA tests (pytest -m cuda, NUMBA_ENABLE_CUDASIM=$NUMBA_ENABLE_CUDASIM)"
(cd "$repo" && capped 240 "$py" -m pytest -q -p no:cacheprovider -m cuda --junitxml "$out/pytest.xml" tests) \
    || fail "CUDA tests failed (see above; $out/pytest.xml)"

smoke=(); [ "$simulate" = 1 ] && smoke=(--smoke)
step "GPU vs CPU backend (benchmarks/gpu_parity.py)"
capped 120 "$py" "$repo/benchmarks/gpu_parity.py" "${smoke[@]}" --json "$out/parity.json" \
    || fail "the GPU's results differ from the CPU backend's (see above; $out/parity.json)"

step "timings (benchmarks/bench_gpu.py)"
capped 240 "$py" "$repo/benchmarks/bench_gpu.py" "${smoke[@]}" --repeat 3 --warmup 1 --json "$out/bench_gpu.json" \
    || fail "bench_gpu.py failed (see above)"
[ -s "$out/bench_gpu.json" ] || fail "bench_gpu.py wrote no records"

echo
echo "gpu_check: PASS in $((SECONDS - start)) s; log, info, pytest.xml, parity.json and bench_gpu.json in $out"
