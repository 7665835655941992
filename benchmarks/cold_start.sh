#!/bin/bash
# The first `tinyseg demo` after an install: a fresh clone and venv, Numba's cache empty.
#
#   benchmarks/cold_start.sh [COMMIT...]      (default: HEAD; several commits run alternately)
#
# For each commit: clone this repository into /tmp, make a venv there and `pip install -e` it (pip's
# cache supplies the wheels), then time `tinyseg demo` twice: cold (no __pycache__ at all, as
# after a fresh clone) and warm. Prints wall and CPU seconds and the load average around each run:
# on a busy 2-core machine the wall times say little, measure on a quiet one.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commits=("${@:-HEAD}")
for c in "${commits[@]}"; do
  sha=$(git -C "$repo" rev-parse --short "$c")
  base=/tmp/tinyseg-cold-$sha
  if [ ! -x "$base/venv/bin/tinyseg" ]; then
    rm -rf "$base" && git clone -q "$repo" "$base/clone" && git -C "$base/clone" checkout -q "$sha"
    python3 -m venv "$base/venv" && "$base/venv/bin/pip" install -q -e "$base/clone" >/dev/null 2>&1
  fi
done
run() {  # run LABEL CLONE VENV
  local d; d=$(mktemp -d /tmp/tinyseg-demo.XXXX)
  local l0; l0=$(cut -d' ' -f1 /proc/loadavg)
  (cd "$d" && /usr/bin/time -f "%e %U %S" -o "$d/time" "$3/bin/tinyseg" demo --out demo --no-progress > "$d/out" 2>&1)
  read -r wall user sys < "$d/time"
  echo "$1: wall ${wall} s, CPU $(python3 -c "print(round($user + $sys, 1))") s, load $l0..$(cut -d' ' -f1 /proc/loadavg) | $(grep '^time:' "$d/out")"
  rm -rf "$d"
}
for c in "${commits[@]}"; do
  sha=$(git -C "$repo" rev-parse --short "$c"); base=/tmp/tinyseg-cold-$sha
  find "$base/clone" -name __pycache__ -type d -prune -exec rm -rf {} +
  run "$sha cold" "$base/clone" "$base/venv"
  run "$sha warm" "$base/clone" "$base/venv"
done
