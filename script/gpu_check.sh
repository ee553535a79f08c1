#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py; bench/README.md "GPU check"): on a CUDA machine, with the
# packages installed and no network needed, it generates the glyph data, runs the fast tests with
# CUDA present, the demo's stages with device=cuda, the benchmarks with --device cuda, a short
# profile (GPU busy share, kernel launches per step), prints one table and writes
# bench/results/gpu-check-<YYYY-MM-DD>.json. Without a GPU it says so and runs its CPU-side parts at
# tiny sizes (dry mode), exit code 0.
#   bash script/gpu_check.sh                     # DASS_COMMIT=<sha> when the copy has no .git
#   bash script/gpu_check.sh --dry --data-root /tmp/d --out /tmp/check.json
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
