#!/usr/bin/env bash
# Build the from-scratch companion of the shipped cpu database (issue: the rapid-NAS baseline),
# the labels a MetaD2A-style predictor learns from: the same students as assets/cpu/db, trained from
# random initialisation on CE only for 40 epochs (the from-scratch pilot's schedule, docs/DATABASE.md),
# one seed. In the order the baseline needs them, each step resumable (rerun the script to go on):
#   1. meta-train: the first 8 of the 32 class-subset tasks, 20 of their 40 students each (a
#      predictor meta-trained on 8 x 20 KD labels ranks meta-valid as well as one on 32 x 40:
#      bench/meta_train_size.py, docs/DATABASE.md);
#   2. meta-valid: the 4 datasets, 20 of their 40 students each (checkpoint choice of the baseline);
#   3. meta-test: the 8 datasets, 20 of their 50 students each, seeds 1 and 2 (--compare with the KD labels);
#   4. meta-train: the next 8 class-subset tasks (16 in all).
# Outputs: assets/cpu/db_scratch (task files, tracked) and assets/cpu/db_scratch_build (finished runs,
# git-ignored like the other build folders once the build completed; restore with
# `git checkout af0928a -- assets/cpu/db_scratch_build`, which a resumed or extended build needs); commit
# the task files as they land (`git add assets/cpu/db_scratch`).
#   script/build_scratch_companion.sh [key=value ...]     CODE=<frozen checkout> as for build_database_ordered.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ -n "${CODE:-}" ]]; then
  export PYTHONPATH="$CODE" PYTHONSAFEPATH=1
fi
ARGS=(scratch=true kd_recipe.alpha=1.0 kd_recipe.epochs=40 out=assets/cpu/db_scratch work_dir=assets/cpu/db_scratch_build
      'labelled_students={meta_train: 20, meta_valid: 20, meta_test: 20}' 'label_seeds={meta_train: [1], meta_valid: [1], meta_test: [1, 2]}')
if [[ "${1:-}" == "--args" ]]; then printf '%s\n' "${ARGS[@]}"; exit 0; fi
B=("$PY" -m dass.database --config configs/database/cpu.yaml workers=2 "${ARGS[@]}" "$@")
source script/database_steps.sh   # keys CONFIG SPLIT, step SPLIT KEY...
mapfile -t T < <(keys configs/database/cpu.yaml meta_train)
for ((i = 0; i < 8; i += 4)); do step meta_train "${T[@]:i:4}"; done
mapfile -t K < <(keys configs/database/cpu.yaml meta_valid)
step meta_valid "${K[@]}"
mapfile -t K < <(keys configs/database/cpu.yaml meta_test)
for k in "${K[@]}"; do step meta_test "$k"; done
for ((i = 8; i < 16; i += 4)); do step meta_train "${T[@]:i:4}"; done
echo "== merge $(date -u +%T)"
"${B[@]}" --phase merge 'splits=[meta_train, meta_valid, meta_test]' "only=[$(keys configs/database/cpu.yaml meta_train | head -16 | paste -sd,),$(keys configs/database/cpu.yaml meta_valid | paste -sd,),$(keys configs/database/cpu.yaml meta_test | paste -sd,)]"
echo "== done $(date -u +%T)"
