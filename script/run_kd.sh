#!/usr/bin/env bash
# KD-train a student.   script/run_kd.sh DATASET [key=value ...]
#   the student: student.depths=[...] student.widths=[[...],...] | student_file=<search JSON>
#                | candidates_file=<json|pt> index=<i>;   seeds=[1,2,3] for several seeds
#   teacher      default runs/teacher/<dataset>/teacher.pt (where the teacher stage writes it)
#   PROFILE      cpu (default) or paper: reads configs/kd/$PROFILE.yaml
#   NPROC        processes (GPUs) for data-parallel training through torchrun (default 1)
# Output: runs/kd/<dataset>/<arch key>-<identity hash>/ (override run_dir=...). Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || "$1" == *=* ]]; then
  echo "usage: script/run_kd.sh DATASET [key=value ...]" >&2
  exit 2
fi
PY=${PYTHON:-python3}
PROFILE=${PROFILE:-cpu}
NPROC=${NPROC:-1}
DATASET=$1
shift
NAME=${DATASET//\//-}
NAME=${NAME//:/_}
ARGS=(--config "configs/kd/$PROFILE.yaml" "dataset=$DATASET" "teacher=runs/teacher/$NAME/teacher.pt" "$@")
if [[ "$NPROC" -gt 1 ]]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m dass.kd "${ARGS[@]}"
fi
exec "$PY" -m dass.kd "${ARGS[@]}"
