#!/usr/bin/env bash
# Meta-train the predictor on a database.
#   script/run_meta_train.sh <db folder> [key=value ...]
#   PROFILE   cpu (default) or paper: reads configs/predictor/$PROFILE.yaml
# Output: runs/meta_train/$PROFILE/ (override run_dir=...): best.pt, last.pt, history.csv,
# metrics.json, config.yaml. Rerunning with the same run_dir resumes from last.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || "$1" == *=* ]]; then
  echo "usage: script/run_meta_train.sh <db folder> [key=value ...]" >&2
  exit 2
fi
PROFILE=${PROFILE:-cpu}
DB=$1
shift
exec "${PYTHON:-python3}" -m dass.predictor --config "configs/predictor/$PROFILE.yaml" "db=$DB" \
  "run_dir=runs/meta_train/$PROFILE" "$@"
