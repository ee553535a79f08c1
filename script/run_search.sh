#!/usr/bin/env bash
# Search students for a dataset with a meta-trained predictor.
#   script/run_search.sh DATASET [key=value ...]      e.g. budget.macs=0.5 top_k=5
#   teacher    default runs/teacher/<dataset>/teacher.pt (where the teacher stage writes it)
#   predictor  default runs/meta_train/$PROFILE/best.pt (as written by script/run_meta_train.sh)
#   PROFILE    cpu (default) or paper: reads configs/search/$PROFILE.yaml
# Output: runs/search/<dataset>/top.json (what script/run_kd.sh DATASET student_file=... reads)
# and scores.csv.
#   script/run_search.sh GPU_NUM      the original's form (digits: a GPU index): searches cub, dtd,
#     quickdraw and stanford_cars with exp/meta_train/dass/best.pt; writes exp/search/obtained_net_index.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then  # the original release's form
  if [[ $# -ne 1 ]]; then
    echo "usage: script/run_search.sh GPU_NUM" >&2
    exit 2
  fi
  exec "${PYTHON:-python3}" -m dass.compat.scripts search "$@"
fi
if [[ $# -lt 1 || "$1" == *=* ]]; then
  echo "usage: script/run_search.sh DATASET [key=value ...]" >&2
  exit 2
fi
PROFILE=${PROFILE:-cpu}
DATASET=$1
shift
NAME=${DATASET//\//-}
NAME=${NAME//:/_}
exec "${PYTHON:-python3}" -m dass.search --config "configs/search/$PROFILE.yaml" "dataset=$DATASET" \
  "data_root=data" "teacher=runs/teacher/$NAME/teacher.pt" "predictor=runs/meta_train/$PROFILE/best.pt" \
  "run_dir=runs/search/$NAME" "$@"
