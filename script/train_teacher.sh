#!/usr/bin/env bash
# Train a teacher (python -m dass.teacher).   bash script/<this file> [DATASET] [key=value ...]
#   DATASET   registry name (default glyphs/latin), e.g. glyphs/greek, tiny_imagenet-3, cub
#   PROFILE   cpu (default) or paper: reads configs/teacher/$PROFILE.yaml
#   NPROC     processes (GPUs) for data-parallel training through torchrun (default 1)
# Output: runs/teacher/<dataset>/teacher.pt (override run_dir=...). Rerunning resumes (same inputs only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PROFILE=${PROFILE:-cpu}
NPROC=${NPROC:-1}
DATASET=glyphs/latin
if [[ $# -gt 0 && "$1" != *=* ]]; then DATASET=$1; shift; fi
NAME=${DATASET//\//-}
NAME=${NAME//:/_}
# a fixed folder (the module's default would carry the run's identity hash), where run_kd.sh and
# run_search.sh look for the teacher; a rerun with other inputs is refused there
set -- "run_dir=runs/teacher/$NAME" "$@"
if [[ "$NPROC" -gt 1 ]]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" \
    -m dass.teacher --config "configs/teacher/$PROFILE.yaml" "dataset=$DATASET" "$@"
fi
exec "$PY" -m dass.teacher --config "configs/teacher/$PROFILE.yaml" "dataset=$DATASET" "$@"
