#!/usr/bin/env bash
# Your own dataset in one command: the teacher (trained here unless teacher=<checkpoint> is given),
# the student search under a budget, KD of the best picks, and a report.
#   bash script/own_dataset.sh DATASET [key=value ...]
#   DATASET   folder:<path> (an image folder), npy:<path> (train_images.npy, train_labels.npy,
#             test_images.npy, test_labels.npy) or a built-in name such as glyphs/dingbats
#   e.g.      bash script/own_dataset.sh npy:/data/mine teacher=/data/mine/teacher.pt budget.macs=0.25
#   CONFIG    configs/pipeline/cpu.yaml (default; the shipped cpu predictor and recipes)
# Keys: python -m dass.pipeline --help. Output: runs/pipeline/<dataset>/report.md (override
# run_dir=...). Rerunning skips the finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || "$1" == *=* ]]; then
  echo "usage: script/own_dataset.sh DATASET [key=value ...]" >&2
  exit 2
fi
DATASET=$1
shift
exec "${PYTHON:-python3}" -m dass.pipeline --config "${CONFIG:-configs/pipeline/cpu.yaml}" "dataset=$DATASET" "$@"
