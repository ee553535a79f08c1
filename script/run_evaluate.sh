#!/usr/bin/env bash
# Evaluate baselines and meta-trained predictors on the meta-test tasks of a database.
#   script/run_evaluate.sh <profile: cpu|paper> <db folder> [key=value ...]
# Predictor checkpoints are read from $DASS_CKPT (DaSS) and $META_NAS_A_CKPT (KD-unaware A
# predictor) when set; a missing one is skipped with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 ]]; then
  echo "usage: $0 <cpu|paper> <db folder> [key=value ...]" >&2
  exit 2
fi
profile=$1 db=$2
shift 2
preds=()
[[ -n "${DASS_CKPT:-}" ]] && preds+=("dass: ${DASS_CKPT}")
[[ -n "${META_NAS_A_CKPT:-}" ]] && preds+=("meta_nas_A: ${META_NAS_A_CKPT}")
joined=$(IFS=,; echo "${preds[*]:-}")
exec "${PYTHON:-python3}" -m dass.evaluation --config "configs/evaluation/${profile}.yaml" "db=${db}" \
  "predictors={${joined}}" "$@"
