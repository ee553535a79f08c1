#!/usr/bin/env bash
# Meta-train the predictor on a database.
#   script/run_meta_train.sh <db folder> [key=value ...]
#   PROFILE   cpu (default) or paper: reads configs/predictor/$PROFILE.yaml
# Output: runs/meta_train/$PROFILE/ (override run_dir=...): best.pt, last.pt, history.csv,
# metrics.json, config.yaml. Rerunning with the same run_dir resumes from last.pt.
#   script/run_meta_train.sh GPU_NUM   the original's form (digits: a GPU index): meta-trains the paper
#     profile on the original's database under preprocessed/, imported on first use (dass/compat/scripts.py)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then  # the original release's form
  if [[ $# -ne 1 ]]; then
    echo "usage: script/run_meta_train.sh GPU_NUM" >&2
    exit 2
  fi
  exec "${PYTHON:-python3}" -m dass.compat.scripts meta_train "$@"
fi
if [[ $# -lt 1 || "$1" == *=* ]]; then
  echo "usage: script/run_meta_train.sh <db folder> [key=value ...]" >&2
  exit 2
fi
PROFILE=${PROFILE:-cpu}
DB=$1
shift
exec "${PYTHON:-python3}" -m dass.predictor --config "configs/predictor/$PROFILE.yaml" "db=$DB" \
  "run_dir=runs/meta_train/$PROFILE" "$@"
