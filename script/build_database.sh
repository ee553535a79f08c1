#!/usr/bin/env bash
# Build a meta-training database (teachers, students, merge); rerun to resume.
#   script/build_database.sh [key=value ...]       PROFILE=cpu|paper (default cpu), NPROC=N for torchrun
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PROFILE=${PROFILE:-cpu}
NPROC=${NPROC:-1}
if [[ "$NPROC" -gt 1 ]]; then
  exec "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m dass.database \
    --config "configs/database/$PROFILE.yaml" launcher=torchrun "$@"
fi
exec "$PY" -m dass.database --config "configs/database/$PROFILE.yaml" "$@"
