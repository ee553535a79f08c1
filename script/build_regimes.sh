#!/usr/bin/env bash
# Build the teacher-strength regime database (configs/database/regimes.yaml, issue #26) into
# assets/cpu/db_regimes (task files, tracked) and assets/cpu/db_regimes_build (finished runs and the cut
# teachers, git-ignored), in the order its uses need it, each step resumable (rerun to go on):
#   1. the 36 cut teachers (5-16 epochs of the cpu teacher recipe, ~20-50 s each);
#   2. meta-test, one task at a time (the task-dependence table needs only these);
#   3. meta-valid (a predictor's checkpoint choice);
#   4. meta-train, four tasks at a time.
# Commit the task files as they land (git add assets/cpu/db_regimes). Then the union with the strong
# tasks: python -m dass.database --union assets/cpu/db_all assets/cpu/db assets/cpu/db_regimes
#   script/build_regimes.sh [key=value ...]     CODE=<frozen checkout> as for build_database_ordered.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ -n "${CODE:-}" ]]; then
  export PYTHONPATH="$CODE" PYTHONSAFEPATH=1
fi
export OMP_NUM_THREADS=1
ARGS=(out=assets/cpu/db_regimes work_dir=assets/cpu/db_regimes_build teachers_dir=assets/cpu/db_regimes_build/teachers)
B=("$PY" -m dass.database --config configs/database/regimes.yaml workers=2 "${ARGS[@]}" "$@")
source script/database_steps.sh   # keys CONFIG SPLIT, step SPLIT KEY...
echo "== teachers $(date -u +%T)"
"${B[@]}" --phase teachers
mapfile -t K < <(keys configs/database/regimes.yaml meta_test)
for k in "${K[@]}"; do step meta_test "$k"; done
mapfile -t K < <(keys configs/database/regimes.yaml meta_valid)
step meta_valid "${K[@]}"
mapfile -t T < <(keys configs/database/regimes.yaml meta_train)
for ((i = 0; i < ${#T[@]}; i += 4)); do step meta_train "${T[@]:i:4}"; done
echo "== merge $(date -u +%T)"
"${B[@]}" --phase merge
echo "== done $(date -u +%T)"
